"""Right-padded batches of (prompt, main text) documents, ready for one pass through the backbone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cllm4rec.core.errors import CLLM4RecError


@dataclass
class Batch:
    """A right-padded batch of documents.

    ``loss_mask`` is True at main-text tokens: the tokens to predict. The first main token is included (it is
    predicted from the last prompt position); position 0 is never a target since nothing precedes it.
    """

    input_ids: torch.Tensor  # (B, T) long, right-padded with pad_id
    attention_mask: torch.Tensor  # (B, T) long, 1 at real tokens
    loss_mask: torch.Tensor  # (B, T) bool, True at main-text tokens
    lengths: torch.Tensor  # (B,) long, real length of each document

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(
            self.input_ids.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            self.loss_mask.to(device, non_blocking=True),
            self.lengths.to(device, non_blocking=True),
        )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_tokens(self) -> int:
        """Real (non-pad) tokens in the batch: the 'useful' tokens of throughput figures."""
        return int(self.lengths.sum())

    @property
    def padding_share(self) -> float:
        """Fraction of the (B, T) positions that are padding."""
        return 1.0 - self.n_tokens / max(1, self.input_ids.numel())


def collate(
    docs: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    max_length: int | None = None,
    pad_multiple: int = 1,
) -> Batch:
    """Pad ``(prompt_ids, main_ids)`` documents to the longest one (right padding).

    The prompt is kept whole and the main text is cut so each document fits ``max_length``; a prompt longer
    than ``max_length`` is an error. An empty main text is allowed (prompt-only documents for scoring).
    ``pad_multiple`` rounds the width up to a multiple (never past ``max_length``): fewer distinct shapes, so a
    long-running server compiles and caches few kernels.
    """
    if not docs:
        raise CLLM4RecError("cannot collate an empty batch")
    if max_length is not None and max_length < 1:
        raise CLLM4RecError(f"max_length must be >= 1 (got {max_length})")
    rows: list[list[int]] = []
    starts: list[int] = []
    for k, (prompt, main) in enumerate(docs):
        if max_length is not None:
            if len(prompt) > max_length:
                raise CLLM4RecError(
                    f"document {k}: prompt of {len(prompt)} tokens is longer than max_length {max_length}"
                )
            main = main[: max_length - len(prompt)]
        if not prompt and not main:
            raise CLLM4RecError(f"document {k} is empty")
        rows.append([*prompt, *main])
        starts.append(max(len(prompt), 1))
    lengths = [len(r) for r in rows]
    width = -(-max(lengths) // max(1, pad_multiple)) * max(1, pad_multiple)
    if max_length is not None:
        width = max(max(lengths), min(width, max_length))
    input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)  # (B, T)
    lengths_t = torch.tensor(lengths, dtype=torch.long)  # (B,)
    pos = torch.arange(width).unsqueeze(0)  # (1, T)
    attention_mask = (pos < lengths_t.unsqueeze(1)).long()  # (B, T)
    loss_mask = (pos >= torch.tensor(starts).unsqueeze(1)) & attention_mask.bool()  # (B, T)
    return Batch(input_ids, attention_mask, loss_mask, lengths_t)
