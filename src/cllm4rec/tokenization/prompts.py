"""Every prompt template CLLM4Rec uses, as token ids (docs/DESIGN.md §2, §4 and §5).

| template        | text                                                               | used by             |
|-----------------|--------------------------------------------------------------------|---------------------|
| interaction     | ``user_i has interacted with``                                     | collaborative LM    |
| review          | ``user_i wrote the following review for item_j:``                  | content LM          |
| item field      | ``The <field> of item_j is:``                                      | content LM          |
| user field      | ``The <field> of user_i is:``                                      | content LM          |
| recommendation  | ``user_i has interacted with <items>, user_i will interact with``  | finetuning, serving |
| next item (LM)  | ``user_i has interacted with <items>``                             | pretrained scoring  |

Someone without a user token (a raw history) gets the same templates with the ID replaced by words:
``A user has interacted with <items>, the user will interact with``.

Templates are built from text parts and token ids (``IDTokenizer.encode_parts``), never by parsing a string,
so a field name or any other text that looks like ``item_5`` stays words (docs/DESIGN.md §1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.tokenization.ids import IDTokenizer

PROMPT_STYLES = ("rec", "lm")
"""How a history is scored: ``rec`` (finetuned item head) or ``lm`` (pretrained next-item distribution)."""

HISTORY_MARGIN = 16
"""Tokens kept free of history items in a scoring prompt (room for the template's words)."""


def interaction_prompt(tok: IDTokenizer, user: int | None) -> list[int]:
    """``user_i has interacted with`` (``A user has interacted with`` without a user)."""
    if user is None:
        return tok.encode_text("A user has interacted with")
    return tok.encode_parts([tok.user_token(user), " has interacted with"])


def review_prompt(tok: IDTokenizer, user: int, item: int) -> list[int]:
    """``user_i wrote the following review for item_j:``."""
    return tok.encode_parts([tok.user_token(user), " wrote the following review for", tok.item_token(item), ":"])


def item_field_prompt(tok: IDTokenizer, item: int, field: str) -> list[int]:
    """``The <field> of item_j is:``."""
    return tok.encode_parts([f"The {field} of", tok.item_token(item), " is:"])


def user_field_prompt(tok: IDTokenizer, user: int, field: str) -> list[int]:
    """``The <field> of user_i is:``."""
    return tok.encode_parts([f"The {field} of", tok.user_token(user), " is:"])


def rec_prompt(tok: IDTokenizer, user: int | None, items: np.ndarray | Sequence[int], max_length: int) -> list[int]:
    """The recommendation prompt for a history; ``user=None`` serves someone without a user token.

    With a user: ``user_i has interacted with <items>, user_i will interact with``.
    Without: ``A user has interacted with <items>, the user will interact with``. A history longer than the
    context budget keeps its first items.
    """
    head = interaction_prompt(tok, user)
    if user is None:
        tail = tok.encode_text(", the user will interact with")
    else:
        tail = tok.encode_parts([",", tok.user_token(user), " will interact with"])
    room = max(0, max_length - len(head) - len(tail))
    return head + [tok.item_token(int(j)) for j in list(items)[:room]] + tail


def lm_prompt(tok: IDTokenizer, user: int | None, items: np.ndarray | Sequence[int], max_length: int) -> list[int]:
    """The interaction prompt plus the history: the pretrained LM's next-item distribution follows."""
    head = interaction_prompt(tok, user)
    room = max(0, max_length - len(head))
    return head + [tok.item_token(int(j)) for j in list(items)[:room]]


def scoring_prompt(
    tok: IDTokenizer, user: int | None, items: np.ndarray | Sequence[int], max_length: int, style: str = "rec"
) -> list[int]:
    """The prompt that scores all items for one history, in ``style`` (``rec`` or ``lm``).

    A history longer than the context budget is cut to a random subset seeded by the user index, so the
    same user always gets the same prompt.
    """
    if style not in PROMPT_STYLES:
        raise CLLM4RecError(f"unknown prompt style {style!r}; expected one of {', '.join(PROMPT_STYLES)}")
    items = np.asarray(items, dtype=np.int64)
    budget = max_length - HISTORY_MARGIN
    if len(items) > budget:
        rng = np.random.default_rng(0 if user is None else user)
        items = np.sort(rng.choice(items, size=budget, replace=False))
    build = lm_prompt if style == "lm" else rec_prompt
    return build(tok, user, items, max_length)
