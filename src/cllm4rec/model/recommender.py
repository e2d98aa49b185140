"""A trained CLLM4Rec model behind the recommender contract: ``score(users, history) -> (B, J)`` (DESIGN §5).

The same object scores validation during training, the test split in ``evaluate`` and ``benchmark``, and
serves ``recommend``. A known user's prompt starts with their ``user_i`` token; anyone else (a row index
outside the trained users, e.g. -1) is served from their history alone with the word-only template. One
forward pass per prompt ranks the whole catalogue; prompts are scored shortest first, in batches, so little
compute goes to padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split
from cllm4rec.data.matrix import row_items
from cllm4rec.model.cllm4rec import CLLM4Rec
from cllm4rec.tokenization import Batch, IDTokenizer, collate
from cllm4rec.tokenization.prompts import PROMPT_STYLES, scoring_prompt

if TYPE_CHECKING:
    from cllm4rec.data import Dataset


class CLLM4RecRecommender:
    """Scores every item for a batch of users or raw histories with a trained :class:`CLLM4Rec`.

    ``style`` is ``rec`` for a finetuned model (the item head after the recommendation prompt) or ``lm`` for a
    model that was only pretrained (the next-item distribution after the interaction prompt).
    ``dataset_hash``, when given, is the content hash of the dataset the model was trained on: ``fit`` refuses
    any other dataset.
    """

    name = "cllm4rec"

    def __init__(
        self,
        model: CLLM4Rec,
        tok: IDTokenizer,
        *,
        style: str = "rec",
        max_length: int = 256,
        batch_size: int = 32,
        progress: bool = False,
        dataset_hash: str | None = None,
        trained_items: int | None = None,
    ) -> None:
        if style not in PROMPT_STYLES:
            raise CLLM4RecError(f"unknown prompt style {style!r}; expected one of {', '.join(PROMPT_STYLES)}")
        if batch_size < 1:
            raise CLLM4RecError(f"batch size must be >= 1, got {batch_size}")
        self.model, self.tok = model, tok
        self.style, self.max_length, self.batch_size = style, max_length, batch_size
        self.progress = progress
        self.dataset_hash = dataset_hash
        # items of the training dataset; any after them were added from their text (add-items): a dataset
        # (evaluation) covers only the first ones, a served history may hold any
        self.trained_items = model.n_items if trained_items is None else trained_items
        self.pad_multiple = 1  # right padding is exact; a server rounds widths up to reuse kernels

    @property
    def n_users(self) -> int:
        return self.model.n_users

    @property
    def n_items(self) -> int:
        return self.model.n_items

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> CLLM4RecRecommender:
        """Check that ``dataset`` is the one the model was trained on (the model is trained already); a
        recommender whose ``fit`` trains is ``cllm4rec.CLLM4Rec``, which wraps this one."""
        evaluation_split(split, "fitting a recommender")
        if (dataset.n_users, dataset.n_items) != (self.n_users, self.trained_items):
            raise CLLM4RecError(
                f"the model was trained on {self.n_users} users x {self.trained_items} items, the dataset has "
                f"{dataset.n_users} x {dataset.n_items}"
            )
        if self.dataset_hash is not None:
            actual = dataset.meta.get("content_hash") or dataset.content_hash()
            if actual != self.dataset_hash:
                raise CLLM4RecError(
                    f"the model was trained on another dataset (hash {self.dataset_hash[:12]}, this one {actual[:12]})"
                )
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """(B, J) float32 scores; row b uses ``history`` row b as the prompt's items.

        ``users[b]`` outside ``0..n_users-1`` means someone without a user token (served from the history).
        A history over the trained items only (a dataset's) gets scores for those items only.
        """
        history = sp.csr_matrix(history)
        if history.shape[1] == self.trained_items < self.n_items:
            extra = sp.csr_matrix((history.shape[0], self.n_items - self.trained_items), dtype=np.float32)
            prompts, _ = self._prompts(users, sp.hstack([history, extra]).tocsr())
            return self.score_prompts(prompts).numpy()[:, : self.trained_items]
        prompts, _ = self._prompts(users, history)
        return self.score_prompts(prompts).numpy()

    def _prompts(self, users: np.ndarray, history: sp.csr_matrix) -> tuple[list[list[int]], list[np.ndarray]]:
        """The scoring prompt of each row (``history`` row b as its items) and those items."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        history = sp.csr_matrix(history)
        if history.shape != (len(users), self.n_items):
            raise CLLM4RecError(f"history has shape {history.shape}, expected ({len(users)}, {self.n_items})")
        known = [row_items(history, b) for b in range(len(users))]
        prompts = [
            scoring_prompt(self.tok, int(u) if 0 <= u < self.n_users else None, known[b], self.max_length, self.style)
            for b, u in enumerate(users)
        ]
        return prompts, known

    def topk(self, users: np.ndarray, history: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` items of each row, best first, ``history`` items excluded, and their scores:
        ((B, k) int64, (B, k) float32). Equal to ranking :meth:`score` (ties to the lower index), but the
        catalogue is scored in item chunks (``CLLM4Rec.item_topk``), so no (B, J) matrix is built."""
        prompts, known = self._prompts(users, history)
        items, scores = self.topk_prompts(prompts, known, k)
        return items.numpy(), scores.numpy()

    @torch.inference_mode()
    def topk_prompts(
        self, prompts: list[list[int]], exclude: list[np.ndarray], k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` items and scores per prompt, ``exclude[i]`` left out, in the order of ``prompts``."""
        model = self.model
        k = min(k, model.n_items)
        items = torch.empty(len(prompts), k, dtype=torch.long)
        scores = torch.empty(len(prompts), k, dtype=torch.float32)
        for idx, batch in self._batches(prompts, "ranking"):
            seen = [torch.as_tensor(exclude[i], dtype=torch.long, device=model.device) for i in idx]
            top, val = model.item_topk(model.readout_states(batch, side="collab"), k, seen, side="collab")
            rows = torch.as_tensor(idx)
            items[rows], scores[rows] = top.cpu(), val.cpu()
        return items, scores

    def _batches(self, prompts: list[list[int]], desc: str) -> Iterator[tuple[np.ndarray, Batch]]:
        """(prompt indices, collated batch on the model's device), shortest prompts first, with the model in
        eval mode for the duration (its previous mode restored afterwards)."""
        model = self.model
        order = np.argsort([len(p) for p in prompts], kind="stable")
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        was_training = model.training
        model.eval()
        try:
            for idx in tqdm(chunks, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True):
                batch = collate([(prompts[i], []) for i in idx], self.tok.pad_id, pad_multiple=self.pad_multiple)
                yield idx, batch.to(model.device)
        finally:
            model.train(was_training)

    @torch.inference_mode()
    def head_states(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """(B, d) float32: what the item head multiplies for each row, its read-out state minus the head's
        centre (the scores are these times the item rows, plus the bias)."""
        prompts, _ = self._prompts(users, history)
        out = torch.empty(len(prompts), self.model.hidden_size, dtype=torch.float32)
        center = self.model.head_center
        for idx, batch in self._batches(prompts, "states"):
            h = self.model.readout_states(batch, side="collab").float()
            out[torch.as_tensor(idx)] = (h if center is None else h - center).cpu()
        return out.numpy()

    @torch.inference_mode()
    def score_prompts(self, prompts: list[list[int]]) -> torch.Tensor:
        """Scores for all items, (len(prompts), J) float32 on the CPU, in the order of ``prompts``."""
        out = torch.empty(len(prompts), self.model.n_items, dtype=torch.float32)
        for idx, batch in self._batches(prompts, "scoring"):
            out[torch.as_tensor(idx)] = self.model.rec_scores(batch, side="collab").float().cpu()
        return out
