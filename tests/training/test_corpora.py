"""Corpora and batching: reordering, masking, leakage and bucketing."""

from __future__ import annotations

import numpy as np
import pytest

from cllm4rec.backbone import load_backbone
from cllm4rec.training.batching import bucket_batches, padding_share
from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
from cllm4rec.training.engine import epoch_rng


@pytest.fixture(scope="module")
def setup(make_dataset):
    ds = make_dataset()
    tok = load_backbone("tiny-llama").id_tokenizer(ds.n_users, ds.n_items)
    return ds, tok


def _items(tok, main: list[int]) -> list[int]:
    return [t - tok.n_words - tok.n_users for t in main]


def test_interaction_docs_reorder_between_epochs(setup) -> None:
    ds, tok = setup
    e1 = interaction_docs(tok, ds.train, epoch_rng(1, "pretrain", 1), reorder=True)
    e2 = interaction_docs(tok, ds.train, epoch_rng(1, "pretrain", 2), reorder=True)
    assert len(e1) == ds.n_users
    changed = sum(a[1] != b[1] for a, b in zip(e1, e2, strict=True))
    assert changed >= ds.n_users // 2  # item order really differs between epochs
    for (p1, m1), (p2, m2) in zip(e1, e2, strict=True):
        assert p1 == p2 and sorted(m1) == sorted(m2)  # same set, same prompt
    again = interaction_docs(tok, ds.train, epoch_rng(1, "pretrain", 1), reorder=True)
    assert again == e1  # seeded: the same epoch replays exactly


def test_fixed_order_when_reordering_is_off(setup) -> None:
    ds, tok = setup
    e1 = interaction_docs(tok, ds.train, epoch_rng(1, "pretrain", 1), reorder=False)
    e2 = interaction_docs(tok, ds.train, epoch_rng(1, "pretrain", 2), reorder=False)
    assert e1 == e2
    for user, (_, main) in enumerate(e1):
        assert _items(tok, main) == sorted(ds.items_of(user).tolist())


def test_interaction_prompt_starts_with_user_token(setup) -> None:
    ds, tok = setup
    docs = interaction_docs(tok, ds.train, np.random.default_rng(0))
    assert docs[3][0][0] == tok.user_token(3)
    assert tok.decode(docs[3][0]).startswith("user_3")


def test_content_docs_use_only_train_reviews(setup) -> None:
    ds, tok = setup
    from cllm4rec.data import Review

    leaked = Review(0, int(ds.items_of(0, "test")[0]), "this pair is a test interaction")
    ds.reviews.append(leaked)
    try:
        docs = content_docs(tok, ds, max_length=64)
        texts = [tok.decode(p) for p, _ in docs]
        assert not any(f"user_0 wrote the following review for item_{leaked.item}" in t for t in texts)
        n_train_reviews = len(ds.reviews) - 1
        n_fields = sum(len(f) for f in ds.item_text) + sum(len(f) for f in ds.user_text)
        assert len(docs) == n_train_reviews + n_fields
        assert any(t.startswith("The title of item_0 is:") for t in texts)
    finally:
        ds.reviews.pop()


def test_content_main_texts_hold_only_words(id_mention_dataset) -> None:
    """A review and a title that mention ``item_5`` / ``user_12`` (and an out-of-range ``item_999``)."""
    ds = id_mention_dataset
    tok = load_backbone("tiny-llama").id_tokenizer(ds.n_users, ds.n_items)
    docs = content_docs(tok, ds, max_length=64)
    assert all(t < tok.n_words for _, main in docs for t in main)
    mentions = [main for _, main in docs if tok.decode(main).strip().startswith(("better than item_5", "item_5 "))]
    assert len(mentions) == 2


def test_rec_docs_mask_and_targets(setup) -> None:
    ds, tok = setup
    rec = rec_docs(tok, ds.train, np.random.default_rng(0), mask_fraction=0.2, target="heldout", max_length=64)
    for user, prompt, target in zip(rec.users, rec.prompts, rec.targets, strict=True):
        train = set(ds.items_of(int(user)).tolist())
        in_prompt = {t - tok.n_words - tok.n_users for t in prompt if t >= tok.n_words + tok.n_users}
        assert len(target) >= 1
        assert set(target.tolist()) | in_prompt == train
        assert not set(target.tolist()) & in_prompt
        assert tok.decode(prompt).rstrip().endswith(f"user_{user} will interact with")
    full = rec_docs(tok, ds.train, np.random.default_rng(0), mask_fraction=0.2, target="all", max_length=64)
    assert all(
        set(t.tolist()) == set(ds.items_of(int(u)).tolist()) for u, t in zip(full.users, full.targets, strict=False)
    )


def test_bucket_batches_cover_everything_once_with_little_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000)
    batches = bucket_batches(lengths, 20, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(len(b) <= 20 for b in batches)
    random_batches = [np.arange(i, min(i + 20, 1000)) for i in range(0, 1000, 20)]
    assert padding_share(lengths, batches) < 0.05 < padding_share(lengths, random_batches)
