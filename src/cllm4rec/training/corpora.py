"""The documents CLLM4Rec trains on (docs/DESIGN.md §2 and §4), as (prompt ids, main-text ids) pairs.

Interaction documents (main text: the user's items), content documents (reviews, item and user texts) and
one epoch of recommendation documents (a masked history as the prompt, the held-out items as targets). The
prompt templates live in :mod:`cllm4rec.tokenization.prompts`. Only training interactions (and reviews of
training pairs) are used, so nothing leaks from validation or test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cllm4rec.data import Dataset
from cllm4rec.data.matrix import row_items
from cllm4rec.tokenization import IDTokenizer
from cllm4rec.tokenization.prompts import (
    interaction_prompt,
    item_field_prompt,
    rec_prompt,
    review_prompt,
    user_field_prompt,
)

Doc = tuple[list[int], list[int]]


def interaction_docs(
    tok: IDTokenizer, train: sp.csr_matrix, rng: np.random.Generator, reorder: bool = True
) -> list[Doc]:
    """One document per user with train items; item order reshuffled on every call when ``reorder``."""
    docs: list[Doc] = []
    for user in range(train.shape[0]):
        items = row_items(train, user)
        if len(items) == 0:
            continue
        if reorder:
            items = rng.permutation(items)
        prompt = interaction_prompt(tok, user)
        docs.append((prompt, [tok.item_token(int(j)) for j in items]))
    return docs


def content_docs(tok: IDTokenizer, dataset: Dataset, max_length: int) -> list[Doc]:
    """Review, item-text and user-text documents (built once: they do not change between epochs).

    Reviews are kept only for training pairs. Main texts are cut to ``max_length`` minus the prompt.
    """
    docs: list[Doc] = []
    train = dataset.train
    for review in dataset.reviews:
        if train[review.user, review.item] == 0:
            continue
        prompt = review_prompt(tok, review.user, review.item)
        docs.append(_text_doc(tok, prompt, review.text, max_length))
    for item, fields in enumerate(dataset.item_text):
        for name, text in fields.items():
            prompt = item_field_prompt(tok, item, name)
            docs.append(_text_doc(tok, prompt, text, max_length))
    for user, fields in enumerate(dataset.user_text):
        for name, text in fields.items():
            prompt = user_field_prompt(tok, user, name)
            docs.append(_text_doc(tok, prompt, text, max_length))
    return [d for d in docs if d[1]]


def _text_doc(tok: IDTokenizer, prompt: list[int], text: str, max_length: int) -> Doc:
    main = tok.encode_text(" " + text.strip())  # free text: never parsed for ID tokens (docs/DESIGN.md §1)
    return prompt, main[: max(0, max_length - len(prompt))]


@dataclass
class RecDocs:
    """One epoch of recommendation documents: prompts, and the items each should predict."""

    users: np.ndarray
    prompts: list[list[int]]
    targets: list[np.ndarray]


def rec_docs(
    tok: IDTokenizer,
    train: sp.csr_matrix,
    rng: np.random.Generator,
    mask_fraction: float,
    target: str,
    max_length: int,
) -> RecDocs:
    """Mask a random ``mask_fraction`` (>= 1) of each user's train items: the rest, shuffled, is the prompt.

    ``target="heldout"`` predicts the masked items (the paper), ``"all"`` every train item.
    """
    users, prompts, targets = [], [], []
    for user in range(train.shape[0]):
        items = row_items(train, user)
        if len(items) == 0:
            continue
        items = rng.permutation(items)
        n_hold = max(1, int(round(mask_fraction * len(items))))
        held, kept = items[:n_hold], items[n_hold:]
        users.append(user)
        prompts.append(rec_prompt(tok, user, kept, max_length))
        targets.append(np.sort(held) if target == "heldout" else np.sort(items))
    return RecDocs(np.asarray(users, dtype=np.int64), prompts, targets)
