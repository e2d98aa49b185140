"""Defaults shared by several layers and the command line (kept import-free so ``--help`` stays instant)."""

DEFAULT_SEED = 98765
"""Seed of the data split, the training run and the baselines unless one is given."""

READOUTS = ("last", "mean")
"""Where the recommendation head reads a prompt: its last token, or the mean over its item tokens and its last
token (docs/DESIGN.md §4)."""
COLLAB_TARGETS = ("next", "rest")
"""What each position of an interaction document predicts: the next item, or every item from there on (§2)."""
DEFAULT_BACKBONE = "smollm2-135m"
"""The backbone alias used when none is named: SmolLM2-135M-Instruct (see ``backbone/smollm2.py``)."""

DEVICES = ("auto", "cpu", "cuda")
"""Where a model may run; ``auto`` picks CUDA when available."""

DATA_FORMATS = ("movielens", "recbole", "amazon", "csv")
"""Source formats ``cllm4rec data prepare`` reads (see ``data/readers``)."""
