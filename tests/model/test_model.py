"""CLLM4Rec on the tiny GPT-2 and Llama backbones: exactness, gradients, padding, learning, persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model import CLLM4Rec, LMLoss, bf16_supported
from cllm4rec.tokenization import Batch, IDTokenizer, collate

N_USERS, N_ITEMS = 6, 30


@pytest.fixture()
def model(tiny_backbone: LoadedBackbone) -> CLLM4Rec:
    m = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0)
    m.autocast = False  # exactness tests run in fp32
    return m


@pytest.fixture()
def tok(tiny_backbone: LoadedBackbone) -> IDTokenizer:
    return tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)


def interaction_docs(tok: IDTokenizer) -> list[tuple[list[int], list[int]]]:
    histories = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11], [12, 13, 14]]
    return [(tok.encode(f"user_{u} has interacted with"), tok.item_tokens(h)) for u, h in enumerate(histories)]


def text_docs(tok: IDTokenizer) -> list[tuple[list[int], list[int]]]:
    texts = [(1, " The Matrix"), (2, " A great product, works as described."), (3, " Good value")]
    return [(tok.encode(f"The title of item_{j} is:"), tok.encode(t)) for j, t in texts]


def rec_docs(tok: IDTokenizer) -> list[tuple[list[int], list[int]]]:
    hist = [[1, 2], [5], [7, 8, 9]]
    texts = [f"user_{u} has interacted with" + "".join(f" item_{j}" for j in h) for u, h in enumerate(hist)]
    return [(tok.encode(t + f", user_{u} will interact with"), []) for u, t in enumerate(texts)]


def rec_targets(rows: list[list[int]]) -> torch.Tensor:
    targets = torch.zeros(len(rows), N_ITEMS)
    for r, items in enumerate(rows):
        targets[r, items] = 1.0
    return targets


# ----- construction ------------------------------------------------------------------------------------
def test_tables_shapes_init_and_trainable_set(model: CLLM4Rec, tiny_backbone: LoadedBackbone) -> None:
    d = model.hidden_size
    assert (model.n_words, model.n_users, model.n_items) == (384, N_USERS, N_ITEMS)
    for name in ("user_collab", "user_content"):
        assert getattr(model, name).weight.shape == (N_USERS, d)
    for name in ("item_collab", "item_content"):
        assert getattr(model, name).weight.shape == (N_ITEMS, d)
    word_std = float(tiny_backbone.model.get_input_embeddings().weight.std())
    big = CLLM4Rec(tiny_backbone, 400, 500, init_scale=0.5, seed=1)
    assert abs(float(big.item_content.weight.detach().std()) - 0.5 * word_std) < 0.05 * word_std
    assert abs(float(big.user_collab.weight.detach().mean())) < 0.05 * word_std
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "user_collab.weight",
        "item_collab.weight",
        "user_content.weight",
        "item_content.weight",
    }
    assert model.trainable_parameters("collab") == [model.user_collab.weight, model.item_collab.weight]
    assert model.trainable_parameters("content") == [model.user_content.weight, model.item_content.weight]
    assert model.autocast is False and CLLM4Rec(tiny_backbone, 2, 2).autocast is True
    with pytest.raises(CLLM4RecError):
        model.trainable_parameters("rec")


def test_seeded_init_is_reproducible(tiny_backbone: LoadedBackbone) -> None:
    a = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=3)
    b = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=3)
    c = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=4)
    assert torch.equal(a.item_collab.weight, b.item_collab.weight)
    assert not torch.equal(a.item_collab.weight, c.item_collab.weight)
    assert not torch.equal(a.item_collab.weight, a.item_content.weight)


def test_backbone_stays_in_eval_mode(model: CLLM4Rec) -> None:
    model.train()
    assert model.training and not model.backbone.training
    assert all(not m.training for m in model.backbone.modules())


# ----- exactness ---------------------------------------------------------------------------------------
def test_no_id_tokens_matches_plain_backbone(model: CLLM4Rec, tok: IDTokenizer) -> None:
    docs = [(tok.encode("The quick brown fox jumps over the lazy dog"), []), (tok.encode("A good film"), [])]
    batch = collate(docs, tok.pad_id)
    h = model.hidden_states(batch, "collab")  # (B, T, d)
    out = model.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    real = batch.attention_mask.bool()
    torch.testing.assert_close(h[real], out.hidden_states[-1][real], rtol=0, atol=1e-5)
    torch.testing.assert_close(model.word_logits(h)[real], out.logits[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(model.hidden_states(batch, "content"), h, rtol=0, atol=0)


def test_embed_routes_ids_to_the_right_tables(model: CLLM4Rec, tok: IDTokenizer) -> None:
    ids = torch.tensor([[5, tok.user_token(2), tok.item_token(7), tok.pad_id]])
    for side, (users, items) in (("collab", model.tables("collab")), ("content", model.tables("content"))):
        e = model.embed(ids, side)  # (1, 4, d)
        assert torch.equal(e[0, 0], model.backbone.get_input_embeddings().weight[5])
        assert torch.equal(e[0, 1], users.weight[2]) and torch.equal(e[0, 2], items.weight[7])
    with pytest.raises(CLLM4RecError, match="token ids"):
        model.embed(torch.tensor([[model.vocab_size]]), "collab")


def test_one_pass_with_sdpa_causal_fast_path(model: CLLM4Rec, tok: IDTokenizer, monkeypatch: Any) -> None:
    seen: list[tuple[Any, Any]] = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append((kwargs.get("attn_mask"), kwargs.get("is_causal")))
        return real_sdpa(*args, **kwargs)

    calls: list[int] = []
    hook = model.decoder.register_forward_hook(lambda *a: calls.append(1))
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model.item_lm_loss(collate(interaction_docs(tok), tok.pad_id))
    hook.remove()
    assert calls == [1]  # prompt and main text in a single backbone pass
    assert len(seen) == 2 and all(mask is None and causal for mask, causal in seen)


def test_word_head_runs_only_where_needed(model: CLLM4Rec, tok: IDTokenizer) -> None:
    batch = collate(text_docs(tok), tok.pad_id)
    rows: list[int] = []
    hook = model.backbone.get_output_embeddings().register_forward_hook(
        lambda mod, inp, out: rows.append(inp[0].shape[0])
    )
    out = model.word_lm_loss(batch)
    hook.remove()
    assert rows == [int(batch.loss_mask.sum())] == [int(out.n_targets.sum())]


def test_left_padding_gives_the_same_results(model: CLLM4Rec, tok: IDTokenizer) -> None:
    right = collate(interaction_docs(tok), tok.pad_id)
    shift = (right.input_ids.shape[1] - right.lengths).tolist()
    left = Batch(
        *(
            torch.stack([t.roll(s) for t, s in zip(x, shift, strict=True)])
            for x in (right.input_ids, right.attention_mask, right.loss_mask)
        ),
        right.lengths,
    )
    a, b = model.item_lm_loss(right), model.item_lm_loss(left)
    torch.testing.assert_close(a.per_doc, b.per_doc, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.rec_scores(right), model.rec_scores(left), rtol=0, atol=1e-5)


# ----- gradients ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["item", "word", "rec"])
def test_only_id_embeddings_get_gradients(model: CLLM4Rec, tok: IDTokenizer, task: str) -> None:
    if task == "item":
        out, side = model.item_lm_loss(collate(interaction_docs(tok), tok.pad_id)), "collab"
    elif task == "word":
        out, side = model.word_lm_loss(collate(text_docs(tok), tok.pad_id)), "content"
    else:
        out = model.rec_loss(collate(rec_docs(tok), tok.pad_id), rec_targets([[3], [4, 9], [20]]))
        side = "collab"
    assert isinstance(out, LMLoss) and out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {f"user_{side}.weight", f"item_{side}.weight"}
    assert all(p.grad is None for p in model.backbone.parameters())
    assert float(getattr(model, f"item_{side}").weight.grad.abs().sum()) > 0


# ----- padding invariance ------------------------------------------------------------------------------
def test_padding_invariance(model: CLLM4Rec, tok: IDTokenizer) -> None:
    short_i = (tok.encode("user_5 has interacted with"), tok.item_tokens([20, 21]))
    short_w = (tok.encode("The title of item_5 is:"), tok.encode(" Good"))
    short_r = (tok.encode("user_5 has interacted with item_20, user_5 will interact with"), [])
    alone_i = model.item_lm_loss(collate([short_i], tok.pad_id))
    mixed_i = model.item_lm_loss(collate([*interaction_docs(tok), short_i], tok.pad_id))
    torch.testing.assert_close(mixed_i.per_doc[-1], alone_i.per_doc[0], rtol=0, atol=1e-5)
    assert int(mixed_i.n_targets[-1]) == 2
    alone_w = model.word_lm_loss(collate([short_w], tok.pad_id))
    mixed_w = model.word_lm_loss(collate([*text_docs(tok), short_w], tok.pad_id))
    torch.testing.assert_close(mixed_w.per_doc[-1], alone_w.per_doc[0], rtol=0, atol=1e-5)
    alone_b, mixed_b = collate([short_r], tok.pad_id), collate([*rec_docs(tok), short_r], tok.pad_id)
    assert mixed_b.input_ids.shape[1] > alone_b.input_ids.shape[1]
    torch.testing.assert_close(model.rec_scores(mixed_b)[-1], model.rec_scores(alone_b)[0], rtol=0, atol=1e-5)
    t = rec_targets([[1], [2], [3], [9, 10]])
    alone_r, mixed_r = model.rec_loss(alone_b, t[-1:]), model.rec_loss(mixed_b, t)
    torch.testing.assert_close(mixed_r.per_doc[-1], alone_r.per_doc[0], rtol=0, atol=1e-5)


def test_losses_match_a_hand_computation(model: CLLM4Rec, tok: IDTokenizer) -> None:
    docs = interaction_docs(tok)[:2]
    batch = collate(docs, tok.pad_id)
    out = model.item_lm_loss(batch)
    h = model.hidden_states(batch, "collab")
    nll = []
    for b, (prompt, main) in enumerate(docs):
        for k, token in enumerate(main):
            pos = len(prompt) + k - 1  # the position that predicts main token k
            logits = h[b, pos] @ model.item_collab.weight.T
            nll.append(-torch.log_softmax(logits, -1)[token - tok.item_token(0)])
    torch.testing.assert_close(out.loss, torch.stack(nll).mean(), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.per_doc[1], torch.stack(nll[4:]).mean(), rtol=0, atol=1e-5)
    assert out.n_targets.tolist() == [4, 2]

    rbatch = collate(rec_docs(tok), tok.pad_id)
    targets = rec_targets([[3], [4, 9], [20]])
    scores = model.rec_scores(rbatch)  # (B, J)
    logp = torch.log_softmax(scores, -1)
    per_doc = torch.stack([-logp[0, 3], -(logp[1, 4] + logp[1, 9]), -logp[2, 20]])
    r = model.rec_loss(rbatch, targets)
    torch.testing.assert_close(r.per_doc, per_doc, rtol=0, atol=1e-5)
    torch.testing.assert_close(r.loss, per_doc.mean(), rtol=0, atol=1e-5)
    m = model.rec_loss(rbatch, targets, reduction="mean")
    torch.testing.assert_close(m.per_doc, per_doc / torch.tensor([1.0, 2.0, 1.0]), rtol=0, atol=1e-5)
    last = rbatch.lengths - 1
    torch.testing.assert_close(scores, h_last_scores(model, rbatch, last), rtol=0, atol=1e-5)


def h_last_scores(model: CLLM4Rec, batch: Batch, last: torch.Tensor) -> torch.Tensor:
    h = model.hidden_states(batch, "collab")
    return torch.stack([h[b, int(t)] for b, t in enumerate(last)]) @ model.item_collab.weight.T


def test_wrong_token_kinds_raise(model: CLLM4Rec, tok: IDTokenizer) -> None:
    with pytest.raises(CLLM4RecError, match="item token"):
        model.item_lm_loss(collate(text_docs(tok), tok.pad_id))
    with pytest.raises(CLLM4RecError, match="must be words"):
        model.word_lm_loss(collate(interaction_docs(tok), tok.pad_id))
    with pytest.raises(CLLM4RecError, match="targets must have shape"):
        model.rec_loss(collate(rec_docs(tok), tok.pad_id), torch.zeros(3, N_ITEMS + 1))
    with pytest.raises(CLLM4RecError, match="side"):
        model.rec_scores(collate(rec_docs(tok), tok.pad_id), side="both")
    too_long = [([tok.pad_id] * (model.max_positions + 1), [])]
    with pytest.raises(CLLM4RecError, match="positions"):
        model.rec_scores(collate(too_long, tok.pad_id))


# ----- learning ----------------------------------------------------------------------------------------
def _overfit(model: CLLM4Rec, side: str, loss_fn: Any, steps: int = 40, lr: float = 0.05) -> tuple[float, float]:
    opt = torch.optim.Adam(model.trainable_parameters(side), lr=lr)
    first = 0.0
    for step in range(steps):
        loss = loss_fn().loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if step == 0 else first
    return first, float(loss_fn().loss.detach())


def test_overfitting_one_batch(model: CLLM4Rec, tok: IDTokenizer) -> None:
    ibatch = collate(interaction_docs(tok), tok.pad_id)
    first, last = _overfit(model, "collab", lambda: model.item_lm_loss(ibatch))
    assert last < 0.1 * first, (first, last)

    # Word targets predicted from the ID token's own position: on a 2-layer random backbone the frozen
    # word positions barely attend to the ID token, so only these targets can be driven near zero.
    words = [tok.encode(w)[0] for w in (" the", " and", " film")]
    wbatch = collate([(tok.encode(f"The title of item_{j}"), [w]) for j, w in enumerate(words)], tok.pad_id)
    first, last = _overfit(model, "content", lambda: model.word_lm_loss(wbatch))
    assert last < 0.1 * first, (first, last)

    rbatch, targets = collate(rec_docs(tok), tok.pad_id), rec_targets([[20], [21], [22]])
    first, last = _overfit(model, "collab", lambda: model.rec_loss(rbatch, targets))
    assert last < 0.1 * first, (first, last)


def test_word_loss_decreases_on_ordinary_text(model: CLLM4Rec, tok: IDTokenizer) -> None:
    batch = collate(text_docs(tok), tok.pad_id)
    first, last = _overfit(model, "content", lambda: model.word_lm_loss(batch), steps=30)
    assert last < first, (first, last)


def test_autocast_bf16_is_close_to_fp32(model: CLLM4Rec, tok: IDTokenizer) -> None:
    batch = collate(interaction_docs(tok), tok.pad_id)
    ref = model.item_lm_loss(batch).loss
    assert not model.autocast_active
    model.autocast = True
    assert model.autocast_active == bf16_supported("cpu")
    model.force_autocast = True  # emulated bf16 where the CPU has no native support: slow but correct
    assert model.autocast_active
    out = model.item_lm_loss(batch)
    out.loss.backward()
    assert out.loss.dtype == torch.float32 and model.rec_scores(batch).dtype == torch.float32
    assert abs(float(out.loss.detach()) - float(ref.detach())) < 0.05 * float(ref.detach())
    assert torch.isfinite(model.item_collab.weight.grad).all()


# ----- mutual regularisation ---------------------------------------------------------------------------
def test_mutual_reg_definition_and_gradients(model: CLLM4Rec, tok: IDTokenizer) -> None:
    docs = [
        (tok.encode("user_1 has interacted with item_2 item_3, user_1 will interact with"), []),
        (tok.encode("The title of item_3 is:"), []),
    ]
    batch = collate(docs, tok.pad_id)
    uc, ic, un, inn = (
        t.weight.detach() for t in (model.user_collab, model.item_collab, model.user_content, model.item_content)
    )
    doc0 = ((uc[1] - un[1]) ** 2).sum() + ((ic[2] - inn[2]) ** 2).sum() + ((ic[3] - inn[3]) ** 2).sum()
    doc1 = ((ic[3] - inn[3]) ** 2).sum()
    expected = 0.5 * (doc0 + doc1) / 2  # distinct tokens per document, averaged over documents
    reg = model.mutual_reg(batch.input_ids, trained="collab")
    torch.testing.assert_close(reg, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.mutual_reg(batch, trained="content"), expected, rtol=1e-5, atol=1e-6)
    reg.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {"user_collab.weight", "item_collab.weight"}
    assert float(model.item_collab.weight.grad[3].abs().sum()) > 0
    assert float(model.item_collab.weight.grad[5].abs().sum()) == 0  # not in the batch
    no_ids = collate([(tok.encode("plain words only"), [])], tok.pad_id)
    assert float(model.mutual_reg(no_ids.input_ids, trained="content").detach()) == 0.0


def test_mutual_reg_pulls_tables_together(model: CLLM4Rec, tok: IDTokenizer) -> None:
    ids = collate(interaction_docs(tok), tok.pad_id).input_ids
    content_before = model.item_content.weight.detach().clone()
    opt = torch.optim.SGD(model.trainable_parameters("collab"), lr=0.5)
    values = []
    for _ in range(5):
        reg = model.mutual_reg(ids, trained="collab")
        values.append(float(reg.detach()))
        opt.zero_grad()
        reg.backward()
        opt.step()
    assert all(b < a for a, b in zip(values, values[1:], strict=False)) and values[-1] < 0.5 * values[0]
    assert torch.equal(model.item_content.weight, content_before)  # the other side never moves


# ----- persistence -------------------------------------------------------------------------------------
def test_save_load_round_trip(model: CLLM4Rec, tok: IDTokenizer, tmp_path: Path) -> None:
    batch = collate(rec_docs(tok), tok.pad_id)
    with torch.no_grad():
        model.item_collab.weight.add_(0.1)  # make sure trained values, not the init, are saved
    scores = model.rec_scores(batch)
    path = tmp_path / "model"
    model.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["id_embeddings.safetensors", "model.json"]
    meta = json.loads((path / "model.json").read_text())
    assert meta["n_users"] == N_USERS and meta["n_items"] == N_ITEMS and meta["n_words"] == 384
    assert meta["backbone"]["name"] == model.ref.name and meta["version"] == 1
    loaded = CLLM4Rec.load(path)
    loaded.autocast = False
    assert torch.equal(loaded.rec_scores(batch), scores)
    for name in ("user_collab", "item_collab", "user_content", "item_content"):
        assert torch.equal(getattr(loaded, name).weight, getattr(model, name).weight)
    assert loaded.ref == model.ref and loaded.loaded_backbone is not None
    # saving again into the existing folder replaces the files in place
    (path / "state.json").write_text("{}")
    model.save(path)
    assert (path / "state.json").exists()
    reused = CLLM4Rec.load(path, backbone=model.loaded_backbone)
    assert reused.backbone is model.backbone


def test_load_refuses_bad_folders(model: CLLM4Rec, tmp_path: Path, tiny_backbone: LoadedBackbone) -> None:
    with pytest.raises(CLLM4RecError, match="not a saved CLLM4Rec model"):
        CLLM4Rec.load(tmp_path)
    bare = CLLM4Rec(tiny_backbone.model, 2, 3)
    bare.save(tmp_path / "bare")
    with pytest.raises(CLLM4RecError, match="without a backbone reference"):
        CLLM4Rec.load(tmp_path / "bare")
    assert CLLM4Rec.load(tmp_path / "bare", backbone=tiny_backbone).n_items == 3
    model.save(tmp_path / "m")
    other = "tiny-llama" if model.ref.name == "tiny-gpt2" else "tiny-gpt2"
    from cllm4rec.backbone import load_backbone

    with pytest.raises(CLLM4RecError, match="trained on backbone"):
        CLLM4Rec.load(tmp_path / "m", backbone=load_backbone(other))


def test_gpt2_gelu_is_fused_and_equivalent(tiny_backbone: LoadedBackbone) -> None:
    from transformers.activations import GELUTanh, NewGELUActivation

    acts = [m for m in tiny_backbone.model.modules() if isinstance(m, (GELUTanh, NewGELUActivation))]
    assert all(type(m) is GELUTanh for m in acts)
    x = torch.linspace(-8, 8, 10001)
    torch.testing.assert_close(GELUTanh()(x), NewGELUActivation()(x), rtol=0, atol=1e-6)
