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
CHECKPOINT_TOKENS = 2048
"""Padded tokens of a training batch above which the backbone's layers recompute their activations in the
backward pass: kept activations stay under about 1.7 GiB on SmolLM2 (29 KB per token and layer, measured) at
the price of one more backbone forward on those batches (docs/DESIGN.md §2)."""
