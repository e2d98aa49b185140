"""The model's config: what is built (backbone, ID tables, item head, precision), one frozen dataclass.

It is the ``model`` section of a run config (``runs/config.py`` validates it with the rest) and what
:class:`~cllm4rec.model.CLLM4Rec` is built from. Kept import-free (no torch) so configs load instantly.
"""

from __future__ import annotations

from dataclasses import dataclass

from cllm4rec.core.defaults import CHECKPOINT_TOKENS, DEFAULT_BACKBONE


@dataclass(frozen=True)
class ModelConfig:
    """What is built: the backbone and how the ID tokens and documents are shaped."""

    backbone: str = DEFAULT_BACKBONE
    """Backbone alias, Hugging Face id or folder, or a ``.gguf`` file."""
    random_backbone: bool = False
    """Re-initialise the backbone's weights randomly (the "from scratch" ablation)."""
    collab_layers: int = 0
    """The collaborative side (interaction documents, finetuning, ranking) runs only the backbone's first N
    transformer blocks, then its own final norm; 0 runs all of them. The content side (text LM, explanations)
    always runs the whole backbone. Fewer blocks make every collaborative step cheaper and leave the ID
    tokens closer to the item head (docs/DESIGN.md §4)."""
    init_scale: float = 0.1
    """ID embeddings start as N(0, (init_scale * std of the backbone's word embeddings)^2)."""
    item_init: str = "random"
    """How the collaborative item table starts: ``random`` (the paper) or ``svd`` (the top singular vectors of
    the normalised training interactions, at the random start's scale: docs/DESIGN.md §4)."""
    content_init: str = "random"
    """How the content tables start: ``random``, or ``text``: each item's (and user's) content row at the mean
    word embedding of its text, the paper's initialisation of content tokens (rows without text stay random;
    docs/DESIGN.md §3)."""
    max_length: int = 256
    """Context budget in tokens per document; prompts stay whole, main texts are cut."""
    item_bias: bool = False
    """Add a per-item bias to the collaborative item head, started at the centred log(1 + training count)
    of each item and trained with the collaborative tables (docs/DESIGN.md §4)."""
    center_head: bool = False
    """Subtract a fixed centre (the mean final hidden state of the interaction documents at the start) from
    the collaborative item head's input: logits = (h - c) . V^T (+ bias). Use with ``item_bias`` (§4)."""
    readout: str = "last"
    """Where recommendation scores are read from a prompt: ``last`` (its last token, the paper) or ``mean``
    (the mean of the final hidden states over its item tokens and its last token; docs/DESIGN.md §4)."""
    content: bool = True
    """Train the content side: false means no content pass and no mutual regularization in either stage
    (the "collaborative only" ablation, docs/DESIGN.md §3)."""
    bf16: bool = True
    """Run the backbone under bfloat16 autocast where the hardware does bf16 natively (CUDA, CPUs with
    AVX512-BF16 or AMX); elsewhere, and when false, fp32 (emulated bf16 is about 4x slower than fp32)."""
    checkpoint_tokens: int = CHECKPOINT_TOKENS
    """Training batches of more than this many tokens (counted through the whole backbone: a side that runs
    2 of 30 blocks may hold 15 times as many) recompute the backbone's activations in the backward
    pass instead of keeping them (less memory, one more forward pass for those batches; 0 turns it off;
    docs/DESIGN.md §2)."""
