"""The extended vocabulary: atomic ID tokens, whitespace rules, round trips, batching."""

from __future__ import annotations

import pytest
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.tokenization import Batch, IDTokenizer, collate


@pytest.fixture()
def tok(tiny_backbone: LoadedBackbone) -> IDTokenizer:
    return tiny_backbone.id_tokenizer(20, 30)


def test_layout(tok: IDTokenizer) -> None:
    n = tok.n_words
    assert n == 384 and tok.vocab_size == n + 50
    assert tok.user_token(0) == n and tok.user_token(19) == n + 19
    assert tok.item_token(0) == n + 20 and tok.item_token(29) == n + 49
    assert tok.pad_id == tok.tokenizer.pad_token_id
    for bad in (-1, 20):
        with pytest.raises(CLLM4RecError, match="user index"):
            tok.user_token(bad)
    with pytest.raises(CLLM4RecError, match="item index"):
        tok.item_token(30)


def test_id_tokens_are_atomic(tok: IDTokenizer) -> None:
    ids = tok.encode("user_12 has interacted with item_3 item_29")
    assert ids[0] == tok.user_token(12) and ids[-2:] == [tok.item_token(3), tok.item_token(29)]
    assert tok.tokenize("user_12")[0] == "user_12" and tok.encode("user_12") == [tok.user_token(12)]
    # the words in between are exactly what the backbone tokenizer makes of " has interacted with"
    assert ids[1:-2] == tok.tokenizer.encode(" has interacted with", add_special_tokens=False)
    plain = tok.tokenizer.encode("user_12", add_special_tokens=False)
    assert len(plain) > 1  # what the spec protects us from: the backbone alone splits it


def test_out_of_range_ids_raise(tok: IDTokenizer) -> None:
    with pytest.raises(CLLM4RecError, match="user index 20"):
        tok.encode("user_20 has interacted with item_1")
    with pytest.raises(CLLM4RecError, match="item index 30"):
        tok.encode("user_1 has interacted with item_30")
    with pytest.raises(CLLM4RecError):
        tok.decode([tok.vocab_size])


def test_whitespace_rules(tok: IDTokenizer) -> None:
    enc = tok.tokenizer
    # whitespace-only pieces between / around ID tokens are dropped
    assert tok.encode("  item_1 \n item_2  ") == [tok.item_token(1), tok.item_token(2)]
    # a text piece keeps its leading space; trailing whitespace before an ID token is dropped
    expected = enc.encode(" rated", add_special_tokens=False)
    assert tok.encode("item_1 rated   item_2") == [tok.item_token(1), *expected, tok.item_token(2)]
    # text after the last ID token goes through unchanged (trailing whitespace kept)
    tail = enc.encode(" is good. ", add_special_tokens=False)
    assert tok.encode("item_4 is good. ") == [tok.item_token(4), *tail]
    # no ID tokens: the backbone tokenizer alone, no special tokens added
    assert tok.encode(" The title is: ") == enc.encode(" The title is: ", add_special_tokens=False)
    assert tok.encode("") == []


def test_not_an_id_token(tok: IDTokenizer) -> None:
    for text in ("superuser_1", "user_1x", "item_", "user12"):
        assert all(t < tok.n_words for t in tok.encode(text)), text
    assert tok.encode("item_007") == [tok.item_token(7)]
    assert tok.encode("user_3's") == [
        tok.user_token(3),
        *tok.tokenizer.encode("'s", add_special_tokens=False),
    ]


def test_free_text_is_never_parsed_for_ids(tok: IDTokenizer) -> None:
    """Reviews and titles may mention ``item_5`` or ``user_12``: words to the backbone, never ID tokens."""
    for text in (" I prefer item_5 to user_12's pick", "item_5", " user_99 and item_300 (out of range)"):
        ids = tok.encode_text(text)
        assert ids == tok.tokenizer.encode(text, add_special_tokens=False)
        assert all(t < tok.n_words for t in ids), text
    assert tok.encode_text("") == []


def test_encode_parts_places_ids_only_where_given(tok: IDTokenizer) -> None:
    user, item = tok.user_token(1), tok.item_token(2)
    parts = [user, " wrote the following review for", item, ":"]
    assert tok.encode_parts(parts) == tok.encode("user_1 wrote the following review for item_2:")
    assert tok.encode_parts(["The title  ", item, " is:"]) == tok.encode("The title item_2 is:")
    # text parts are words even when they look like IDs; adjacent text parts are joined
    ids = tok.encode_parts(["The item_5 ", "of", item, " is:"])
    assert [t for t in ids if t >= tok.n_words] == [item]
    assert tok.encode_parts([" has", " interacted"]) == tok.encode_text(" has interacted")
    with pytest.raises(CLLM4RecError, match="out of range"):
        tok.encode_parts([tok.vocab_size])


@pytest.mark.parametrize(
    "text",
    [
        "user_1 has interacted with item_2 item_3",
        "user_1 has interacted with item_2 item_3, user_1 will interact with",
        "user_7 wrote the following review for item_9: a great product.",
        "The title of item_12 is: The Matrix",
        "(item_3) and item_4's sound",
    ],
)
def test_round_trip(tok: IDTokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text
    assert len(tok.tokenize(text)) == len(ids)


def test_tokenizer_size_must_fit(tiny_backbone: LoadedBackbone) -> None:
    with pytest.raises(CLLM4RecError, match="n_words"):
        IDTokenizer(tiny_backbone.tokenizer, 2, 2, n_words=100)


def test_collate_pads_right_and_masks_main_text() -> None:
    b = collate([([5, 6], [7, 8, 9]), ([1], [2]), ([3, 4, 5], [])], pad_id=0)
    assert isinstance(b, Batch) and b.input_ids.shape == (3, 5)
    assert b.input_ids.tolist() == [[5, 6, 7, 8, 9], [1, 2, 0, 0, 0], [3, 4, 5, 0, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]
    assert b.loss_mask.tolist() == [
        [False, False, True, True, True],
        [False, True, False, False, False],
        [False, False, False, False, False],
    ]
    assert b.lengths.tolist() == [5, 2, 3] and b.n_tokens == 10 and abs(b.padding_share - 5 / 15) < 1e-9
    assert b.input_ids.dtype == torch.long and b.loss_mask.dtype == torch.bool
    moved = b.to("cpu")
    assert torch.equal(moved.input_ids, b.input_ids) and len(moved) == 3


def test_collate_truncates_main_text_only() -> None:
    b = collate([([1, 2, 3], [4, 5, 6, 7]), ([1], [2])], pad_id=0, max_length=5)
    assert b.input_ids.tolist() == [[1, 2, 3, 4, 5], [1, 2, 0, 0, 0]]
    assert b.loss_mask[0].tolist() == [False, False, False, True, True]
    assert collate([([1, 2], [3])], pad_id=0, max_length=2).input_ids.tolist() == [[1, 2]]
    with pytest.raises(CLLM4RecError, match="longer than max_length"):
        collate([([1, 2, 3], [4])], pad_id=0, max_length=2)
    with pytest.raises(CLLM4RecError):
        collate([], pad_id=0)
    with pytest.raises(CLLM4RecError, match="empty"):
        collate([([], [])], pad_id=0)


def test_collate_without_prompt_never_targets_position_zero() -> None:
    b = collate([([], [4, 5, 6])], pad_id=0)
    assert b.loss_mask.tolist() == [[False, True, True]]
