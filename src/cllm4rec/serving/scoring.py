"""Batched, length-bucketed scoring of histories: one forward pass ranks the whole catalogue per user."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from cllm4rec.data import Dataset
from cllm4rec.tokenization import IDTokenizer, collate
from cllm4rec.training.corpora import lm_prompt, rec_prompt, user_items

PROMPT_STYLES = ("rec", "lm")


def build_prompts(
    tok: IDTokenizer,
    users: Sequence[int | None],
    histories: Sequence[np.ndarray | list[int]],
    max_length: int,
    style: str = "rec",
) -> list[list[int]]:
    """Scoring prompts: ``rec`` (finetuned item head) or ``lm`` (pretrained next-item distribution).

    A history longer than the context budget is cut to a random subset seeded by the user index, so the
    same user always gets the same prompt.
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}")
    prompts = []
    for user, items in zip(users, histories, strict=True):
        items = np.asarray(items, dtype=np.int64)
        if len(items) > max_length - 16:
            rng = np.random.default_rng(0 if user is None else user)
            items = np.sort(rng.choice(items, size=max_length - 16, replace=False))
        if style == "lm":
            prompts.append(lm_prompt(tok, user, items, max_length))
        else:
            prompts.append(rec_prompt(tok, user, items, max_length))
    return prompts


@torch.inference_mode()
def score_prompts(
    model: torch.nn.Module,
    tok: IDTokenizer,
    prompts: list[list[int]],
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """Scores for all items, (len(prompts), J) float32 on the CPU, in the order of ``prompts``."""
    order = np.argsort([len(p) for p in prompts], kind="stable")
    out = torch.empty(len(prompts), model.n_items, dtype=torch.float32)
    was_training = model.training
    model.eval()
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in tqdm(chunks, desc="scoring", disable=not progress, leave=False, dynamic_ncols=True):
        batch = collate([(prompts[i], []) for i in idx], tok.pad_id).to(device)
        out[torch.as_tensor(idx)] = model.rec_scores(batch, side="collab").float().cpu()
    model.train(was_training)
    return out


def known_histories(known: sp.csr_matrix, users: Sequence[int]) -> list[np.ndarray]:
    """The known items of each user, as arrays of item indices."""
    return [user_items(known, int(u)) for u in users]


def evaluate_model(
    model: torch.nn.Module,
    tok: IDTokenizer,
    dataset: Dataset,
    split: str = "valid",
    *,
    max_length: int = 256,
    batch_size: int = 32,
    style: str = "rec",
    device: torch.device | str = "cpu",
    progress: bool = False,
    chunk_users: int = 4096,
):
    """Full-ranking metrics of the model on ``split`` (history = what is known for that split).

    Users are scored in chunks of ``chunk_users`` (shortest histories first within a chunk), so memory stays
    at chunk x items scores however many users there are. Returns (metrics dict, Evaluator) so per-user rows
    stay available.
    """
    from cllm4rec.evaluation.metrics import Evaluator

    known = dataset.known(split)
    evaluator = Evaluator(dataset.split(split), known)
    users = np.asarray(evaluator.users, dtype=np.int64)
    chunks = [users[i : i + chunk_users] for i in range(0, len(users), chunk_users)]
    for chunk in tqdm(chunks, desc=f"evaluating {split}", disable=not progress or len(chunks) == 1, leave=False):
        ids = [int(u) for u in chunk]
        prompts = build_prompts(tok, ids, known_histories(known, ids), max_length, style)
        scores = score_prompts(model, tok, prompts, batch_size=batch_size, device=device, progress=progress)
        evaluator.add(chunk, scores.numpy())
    return evaluator.result(), evaluator
