"""Prompt templates: exact token layout, the anonymous variant, the context budget and the scoring cut."""

from __future__ import annotations

import numpy as np
import pytest

from cllm4rec.backbone import load_backbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.tokenization.prompts import (
    HISTORY_MARGIN,
    interaction_prompt,
    item_field_prompt,
    lm_prompt,
    rec_prompt,
    review_prompt,
    scoring_prompt,
    user_field_prompt,
)

N_USERS, N_ITEMS = 10, 400


@pytest.fixture(scope="module")
def tok():
    return load_backbone("tiny-llama").id_tokenizer(N_USERS, N_ITEMS)


def test_templates_read_back_as_text(tok) -> None:
    assert tok.decode(interaction_prompt(tok, 3)) == "user_3 has interacted with"
    assert tok.decode(interaction_prompt(tok, None)) == "A user has interacted with"
    assert tok.decode(review_prompt(tok, 1, 2)) == "user_1 wrote the following review for item_2:"
    assert tok.decode(item_field_prompt(tok, 5, "title")) == "The title of item_5 is:"
    assert tok.decode(user_field_prompt(tok, 4, "profile")) == "The profile of user_4 is:"
    assert (
        tok.decode(rec_prompt(tok, 2, [7, 8], 64))
        == "user_2 has interacted with item_7 item_8, user_2 will interact with"
    )
    assert (
        tok.decode(rec_prompt(tok, None, [7], 64)) == "A user has interacted with item_7, the user will interact with"
    )
    assert tok.decode(lm_prompt(tok, 2, [7, 8], 64)) == "user_2 has interacted with item_7 item_8"


def test_templates_encode_as_the_parsed_strings(tok) -> None:
    """Built from parts, the templates give the same ids as parsing their text did (no drift in training)."""
    assert interaction_prompt(tok, 3) == tok.encode("user_3 has interacted with")
    assert review_prompt(tok, 1, 2) == tok.encode("user_1 wrote the following review for item_2:")
    assert item_field_prompt(tok, 5, "title") == tok.encode("The title of item_5 is:")
    assert user_field_prompt(tok, 4, "profile") == tok.encode("The profile of user_4 is:")
    assert rec_prompt(tok, 2, [7], 64) == tok.encode("user_2 has interacted with item_7, user_2 will interact with")
    anonymous = "A user has interacted with item_7, the user will interact with"
    assert rec_prompt(tok, None, [7], 64) == tok.encode(anonymous)


def test_field_names_stay_words(tok) -> None:
    ids = item_field_prompt(tok, 3, "item_5 note")
    assert [t for t in ids if t >= tok.n_words] == [tok.item_token(3)]
    ids = user_field_prompt(tok, 4, "user_1 bio")
    assert [t for t in ids if t >= tok.n_words] == [tok.user_token(4)]


def test_rec_prompt_respects_context_budget(tok) -> None:
    prompt = rec_prompt(tok, 0, list(range(N_ITEMS)), max_length=20)
    assert len(prompt) <= 20
    anonymous = rec_prompt(tok, None, [1, 2], max_length=64)
    assert not any(tok.n_words <= t < tok.n_words + tok.n_users for t in anonymous)  # no user token


def test_scoring_prompt_cuts_long_histories_reproducibly(tok) -> None:
    items = np.arange(300)
    a = scoring_prompt(tok, 1, items, max_length=64)
    b = scoring_prompt(tok, 1, items, max_length=64)
    other = scoring_prompt(tok, 2, items, max_length=64)
    assert a == b and len(a) <= 64
    kept = [t for t in a if t >= tok.n_words + tok.n_users]
    assert len(kept) == 64 - HISTORY_MARGIN
    assert kept != [t for t in other if t >= tok.n_words + tok.n_users]  # seeded by the user
    short = scoring_prompt(tok, 1, [3, 4], max_length=64, style="lm")
    assert short == lm_prompt(tok, 1, [3, 4], 64)
    with pytest.raises(CLLM4RecError, match="prompt style"):
        scoring_prompt(tok, 1, [3], max_length=64, style="chat")
