"""The documents CLLM4Rec trains on (METHOD §2 and §4), as (prompt ids, main-text ids) pairs.

| corpus          | prompt                                                     | main text           |
|-----------------|------------------------------------------------------------|---------------------|
| interactions    | ``user_i has interacted with``                             | item tokens         |
| reviews         | ``user_i wrote the following review for item_j:``          | the review          |
| item text       | ``The <field> of item_j is:``                              | the field's text    |
| user text       | ``The <field> of user_i is:``                              | the field's text    |
| recommendation  | ``user_i has interacted with <items>, user_i will interact with`` | (none: scored over all items) |

Only training interactions (and reviews of training pairs) are used, so nothing leaks from validation/test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cllm4rec.data import Dataset
from cllm4rec.tokenization import IDTokenizer

Doc = tuple[list[int], list[int]]


def user_items(matrix: sp.csr_matrix, user: int) -> np.ndarray:
    """Column indices of one CSR row."""
    return matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]


def interaction_docs(
    tok: IDTokenizer, train: sp.csr_matrix, rng: np.random.Generator, reorder: bool = True
) -> list[Doc]:
    """One document per user with train items; item order reshuffled on every call when ``reorder``."""
    docs: list[Doc] = []
    for user in range(train.shape[0]):
        items = user_items(train, user)
        if len(items) == 0:
            continue
        if reorder:
            items = rng.permutation(items)
        prompt = tok.encode(f"user_{user} has interacted with")
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
        prompt = tok.encode(f"user_{review.user} wrote the following review for item_{review.item}:")
        docs.append(_text_doc(tok, prompt, review.text, max_length))
    for item, fields in enumerate(dataset.item_text):
        for name, text in fields.items():
            prompt = tok.encode(f"The {name} of item_{item} is:")
            docs.append(_text_doc(tok, prompt, text, max_length))
    for user, fields in enumerate(dataset.user_text):
        for name, text in fields.items():
            prompt = tok.encode(f"The {name} of user_{user} is:")
            docs.append(_text_doc(tok, prompt, text, max_length))
    return [d for d in docs if d[1]]


def _text_doc(tok: IDTokenizer, prompt: list[int], text: str, max_length: int) -> Doc:
    main = tok.encode(" " + text.strip())
    return prompt, main[: max(0, max_length - len(prompt))]


def rec_prompt(tok: IDTokenizer, user: int | None, items: np.ndarray | list[int], max_length: int) -> list[int]:
    """The recommendation prompt for a history; ``user=None`` serves someone without a user token.

    With a user: ``user_i has interacted with <items>, user_i will interact with``.
    Without: ``A user has interacted with <items>, the user will interact with`` (same template, the ID
    token replaced by words). A history longer than the context budget keeps its first items.
    """
    if user is None:
        head, tail = tok.encode("A user has interacted with"), tok.encode(", the user will interact with")
    else:
        head = tok.encode(f"user_{user} has interacted with")
        tail = tok.encode(f", user_{user} will interact with")
    room = max(0, max_length - len(head) - len(tail))
    return head + [tok.item_token(int(j)) for j in list(items)[:room]] + tail


def lm_prompt(tok: IDTokenizer, user: int | None, items: np.ndarray | list[int], max_length: int) -> list[int]:
    """The interaction-document prompt plus history: the pretrained LM's next-item distribution follows."""
    head = tok.encode("A user has interacted with" if user is None else f"user_{user} has interacted with")
    room = max(0, max_length - len(head))
    return head + [tok.item_token(int(j)) for j in list(items)[:room]]


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
        items = user_items(train, user)
        if len(items) == 0:
            continue
        items = rng.permutation(items)
        n_hold = max(1, int(round(mask_fraction * len(items))))
        held, kept = items[:n_hold], items[n_hold:]
        users.append(user)
        prompts.append(rec_prompt(tok, user, kept, max_length))
        targets.append(np.sort(held) if target == "heldout" else np.sort(items))
    return RecDocs(np.asarray(users, dtype=np.int64), prompts, targets)
