"""New items from their text alone: grow the item tables, learn the content rows, place the collab rows.

The backbone stays frozen and every warm row stays as it is (docs/DESIGN.md §11). For each new item:

1. Its content row starts at the mean of its text's word embeddings (the paper's initialisation of content
   tokens) and is then trained for ``passes`` passes of the content LM objective on its own text documents
   (``The title of item_j is: ...``), only the new rows moving.
2. Its collaborative row and item bias come from a map learned on the warm items, from the item's text to
   (collab row, bias): what interactions taught the warm items that read like it. A new item has no
   popularity of its own; the map's bias is the estimate of it from its text. Two maps: a ridge regression
   from the text's TF-IDF (reduced by an SVD), and the similarity-weighted mean over its nearest warm items
   by TF-IDF cosine; ``fit="auto"`` takes whichever ranks held-out warm items better when they are placed
   the same way, from their text alone (``_choose_map``, over five folds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.text import item_document
from cllm4rec.model.text_states import mean_pooled_states
from cllm4rec.tokenization import collate
from cllm4rec.tokenization.prompts import item_field_prompt

if TYPE_CHECKING:
    from cllm4rec.model.cllm4rec import CLLM4Rec
    from cllm4rec.tokenization import IDTokenizer

FEATURES = ("words", "text")
FITS = ("auto", "ridge", "neighbours")
FOLDS = 5
"""Folds of the supervising warm items over which ``fit="auto"`` compares the maps."""


@dataclass(frozen=True)
class PlacementOptions:
    """How new items are placed (defaults measured on the cold-validation items, docs/BENCHMARKS.md)."""

    passes: int = 1
    """Passes of the content LM objective over the new items' texts (0: the word-embedding start only)."""
    lr: float = 1e-2
    batch_size: int = 32
    fit: str = "auto"
    """The map from text to (collab row, bias): ``ridge`` (a ridge regression from ``features``),
    ``neighbours`` (the similarity-weighted mean over the most similar warm items by TF-IDF cosine), or
    ``auto``: whichever ranks held-out warm items better, placed from their text alone (needs the users'
    head states; ridge without them)."""
    features: str = "words"
    """What the ridge map reads: ``words`` (the texts' TF-IDF reduced to ``word_dims`` by a seeded truncated
    SVD) or ``text`` (the backbone's mean-pooled final hidden states)."""
    word_dims: int = 256
    ridge: float = 1.0
    """Ridge strength, relative to the mean eigenvalue of the warm features' covariance."""
    neighbours: int = 20
    """How many textual neighbours a new item's rows average (``fit="neighbours"``)."""
    max_length: int = 64
    """Text tokens read per field (documents and features)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.passes < 0 or self.batch_size < 1 or self.max_length < 1 or self.neighbours < 1:
            raise CLLM4RecError("new items: passes must be >= 0, batch_size, max_length and neighbours >= 1")
        if self.fit not in FITS:
            raise CLLM4RecError(f"new items: fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.features not in FEATURES:
            raise CLLM4RecError(f"new items: features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if not (self.lr > 0 and self.ridge > 0):
            raise CLLM4RecError("new items: lr and ridge must be > 0")


def grow_item_tables(model: CLLM4Rec, n_new: int) -> None:
    """Append ``n_new`` item rows to both item tables and the bias (zeros); warm rows are copied unchanged."""
    if n_new < 1:
        raise CLLM4RecError("no new items to add")
    _resize_items(model, model.n_items + n_new)


def shrink_item_tables(model: CLLM4Rec, n_items: int) -> None:
    """Drop the item rows after the first ``n_items`` (items added by :func:`grow_item_tables`)."""
    if not 0 < n_items <= model.n_items:
        raise CLLM4RecError(f"cannot keep {n_items} of the model's {model.n_items} items")
    _resize_items(model, n_items)


def _resize_items(model: CLLM4Rec, n_items: int) -> None:
    """Both item tables and the bias cut or zero-padded to ``n_items`` rows, as new parameters (kept rows
    copied exactly), and the model's counts to match."""

    def resized(weight: torch.Tensor) -> torch.Tensor:
        weight = weight.detach()[:n_items].clone()
        extra = n_items - weight.shape[0]
        return torch.cat([weight, weight.new_zeros(extra, *weight.shape[1:])]) if extra else weight

    for name in ("item_collab", "item_content"):
        old = getattr(model, name)
        table = nn.Embedding.from_pretrained(resized(old.weight), freeze=False)
        table.sparse = old.sparse
        setattr(model, name, table)
    if model.item_bias is not None:
        model.item_bias = nn.Parameter(resized(model.item_bias))
    model.vocab_size += n_items - model.n_items
    model.n_items = n_items


def _word_ids(tok: IDTokenizer, text: str, max_length: int) -> list[int]:
    return tok.encode_text(" " + text.strip())[:max_length]


def place_new_items(
    model: CLLM4Rec,
    texts: list[dict[str, str]],
    warm_texts: list[dict[str, str]],
    warm_counts: np.ndarray | None = None,
    options: PlacementOptions | None = None,
    *,
    user_states: np.ndarray | None = None,
    interactions: sp.csr_matrix | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Add one item per entry of ``texts`` (its text fields) to ``model`` in place, after the warm items.

    ``warm_texts``: the warm items' text fields, in index order (what the map learns from);
    ``warm_counts``: training interactions per warm item (items without any do not supervise the map);
    ``user_states`` (U, d) and ``interactions`` (U, warm items): the item head's input for each user's
    history and what they interacted with, for ``fit="auto"``. Returns the chosen map and the seconds spent."""
    import time

    options = options or PlacementOptions()
    if not texts or any(not any(v.strip() for v in fields.values()) for fields in texts):
        raise CLLM4RecError("every new item needs a non-empty text")
    n_old, n_new = model.n_items, len(texts)
    if len(warm_texts) != n_old:
        raise CLLM4RecError(f"warm_texts has {len(warm_texts)} entries, the model {n_old} items")
    start = time.perf_counter()
    docs = [item_document(f) for f in [*warm_texts, *texts]]
    collab = model.item_collab.weight.detach().float().cpu().numpy()
    targets = collab if model.item_bias is None else np.concatenate([collab, _bias(model)[:, None]], axis=1)
    keep = np.ones(n_old, dtype=bool) if warm_counts is None else np.asarray(warm_counts).reshape(-1) > 0
    supervising = np.flatnonzero(keep)
    tfidf = _tfidf(docs)
    features = None if options.fit == "neighbours" else _features(model, tfidf, docs, n_old, options, progress)
    fit = options.fit
    report: dict[str, Any] = {}
    if fit == "auto":
        fit = "ridge"
        if user_states is not None and interactions is not None:
            fit, report = _choose_map(features, tfidf, targets, supervising, user_states, interactions, options)
    predicted = _place(fit, features, tfidf, targets, supervising, np.arange(n_old, n_old + n_new), options)
    report.update(fit=fit, map_seconds=time.perf_counter() - start)
    grow_item_tables(model, n_new)
    _init_content(model, n_old, texts, options.max_length)
    t0 = time.perf_counter()
    _train_content(model, n_old, texts, options, progress)
    report["content_seconds"] = time.perf_counter() - t0
    with torch.no_grad():
        device = model.item_collab.weight.device
        model.item_collab.weight[n_old:] = torch.as_tensor(predicted[:, : model.hidden_size], device=device)
        if model.item_bias is not None:
            model.item_bias[n_old:] = torch.as_tensor(predicted[:, -1], device=device)
    report["total_seconds"] = time.perf_counter() - start
    return report


def _bias(model: CLLM4Rec) -> np.ndarray:
    assert model.item_bias is not None
    return model.item_bias.detach().float().cpu().numpy()


def _tfidf(docs: list[str]) -> sp.csr_matrix:
    """The documents' TF-IDF (sublinear term frequency, rows L2-normalised), fitted on them all: what both
    maps read (new texts are known when they are placed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True).fit_transform(docs).tocsr()


def _features(
    model: CLLM4Rec, tfidf: sp.csr_matrix, docs: list[str], n_old: int, options: PlacementOptions, progress: bool
) -> np.ndarray:
    """The ridge map's input for every document (warm, then new), standardised per dimension."""
    if options.features == "words":
        x = word_features(tfidf, options.word_dims, options.seed)
    else:
        warm = _warm_states(model, docs[:n_old], options.max_length, progress)
        new = mean_pooled_states(_loaded(model), docs[n_old:], max_length=options.max_length, progress=progress)
        x = np.concatenate([warm, new])
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _place(
    fit: str,
    features: np.ndarray | None,
    tfidf: sp.csr_matrix,
    targets: np.ndarray,
    supervising: np.ndarray,
    query: np.ndarray,
    options: PlacementOptions,
) -> np.ndarray:
    """(collab row, bias) of the documents ``query`` from the warm items ``supervising``, by ``fit``."""
    if fit == "neighbours":
        return neighbour_rows(tfidf, supervising, query, targets, options.neighbours)
    assert features is not None
    return ridge_map(features[supervising], targets[supervising], features[query], options.ridge)


def _choose_map(
    features: np.ndarray | None,
    tfidf: sp.csr_matrix,
    targets: np.ndarray,
    supervising: np.ndarray,
    states: np.ndarray,
    interactions: sp.csr_matrix,
    options: PlacementOptions,
) -> tuple[str, dict[str, Any]]:
    """The map that ranks warm items best when they are placed from their text alone: the supervising items
    in ``FOLDS`` seeded folds, each placed by the map fitted on the others and ranked among its fold for the
    users who interacted with its items (the cold protocol, on items whose answers are known), scored by the
    project's selection rule (Recall@20 + Recall@40 + NDCG@100) averaged over the folds."""
    rng = np.random.default_rng(options.seed)
    folds = np.array_split(rng.permutation(supervising), FOLDS)
    inter = sp.csr_matrix(interactions)
    d = states.shape[1]
    score = {"ridge": 0.0, "neighbours": 0.0}
    for fold in folds:
        fold = np.sort(fold)
        rest = np.setdiff1d(supervising, fold)
        truth = inter[:, fold].tocsr()
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if not len(users) or not len(rest):
            continue
        for fit in score:
            rows = _place(fit, features, tfidf, targets, rest, fold, options)  # (F, d [+ 1])
            scores = states[users] @ rows[:, :d].T + (rows[:, d] if rows.shape[1] > d else 0.0)  # (U_f, F)
            score[fit] += _selection(scores, truth[users]) / len(folds)
    best = max(score, key=lambda f: score[f])
    return best, {f"held_score_{f}": round(v, 4) for f, v in score.items()}


def _selection(scores: np.ndarray, truth: sp.csr_matrix) -> float:
    """Mean Recall@20 + Recall@40 + NDCG@100 of ranking ``scores`` (U, F) against ``truth`` (U, F)."""
    k = min(100, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
    hits = np.take_along_axis(truth.toarray(), top, axis=1) > 0  # (U, k), best first
    n_pos = np.diff(truth.indptr)
    recall = sum(hits[:, :c].sum(1) / np.minimum(c, n_pos) for c in (20, 40))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(k, n_pos) - 1]
    return float(np.mean(recall + (hits * discount).sum(1) / ideal))


def ridge_fit(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression of ``y`` on ``x``: ``(w, b)`` with predictions ``x @ w + b``; the intercept is not
    penalised (both sides are centred). The penalty is ``ridge`` times the mean eigenvalue of x's covariance,
    so one value suits features of any scale. Solved in float64 from the (D, D) normal equations."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    mx, my = x64.mean(0), y64.mean(0)
    xc = x64 - mx
    gram = xc.T @ xc
    alpha = ridge * max(np.trace(gram) / max(1, gram.shape[0]), 1e-12)  # constant features: w = 0
    w = np.linalg.solve(gram + alpha * np.eye(gram.shape[0]), xc.T @ (y64 - my))
    return w, my - mx @ w


def ridge_map(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, ridge: float) -> np.ndarray:
    """The :func:`ridge_fit` of ``y`` on ``x``, applied to ``x_new``."""
    w, b = ridge_fit(x, y, ridge)
    return (x_new.astype(np.float64) @ w + b).astype(np.float32)


def neighbour_rows(
    tfidf: sp.csr_matrix, supervising: np.ndarray, query: np.ndarray, targets: np.ndarray, k: int
) -> np.ndarray:
    """Each query document's (collab row, bias) as the TF-IDF-cosine-weighted mean over its ``k`` most
    similar supervising warm items: a new item sits where the items that read like it sit. One that shares no
    term with any of them gets their mean. ``tfidf``: L2-normalised rows, one per document."""
    sims = np.asarray((tfidf[query] @ tfidf[supervising].T).todense(), dtype=np.float64)  # (Q, S)
    k = max(1, min(k, len(supervising)))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    w = np.take_along_axis(sims, top, axis=1)  # (Q, k)
    rows = targets[supervising]
    out = np.einsum("qk,qkd->qd", w, rows[top]) / np.maximum(w.sum(1, keepdims=True), 1e-12)
    out[w.sum(1) <= 0] = rows.mean(0)
    return out.astype(np.float32)


def word_features(tfidf: sp.csr_matrix, dims: int, seed: int) -> np.ndarray:
    """(N, <= dims): the documents' TF-IDF reduced by a seeded truncated SVD."""
    from sklearn.decomposition import TruncatedSVD

    dims = max(1, min(dims, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
    return TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf).astype(np.float32)


_WARM_STATES: dict[tuple[int, int, int], np.ndarray] = {}


def _warm_states(model: CLLM4Rec, docs: list[str], max_length: int, progress: bool) -> np.ndarray:
    """The warm items' backbone states, kept for the next placement on the same model (one entry): the
    cold-validation and cold-test placements read the same warm texts."""
    key = (id(model.backbone), max_length, hash(tuple(docs)))
    if key not in _WARM_STATES:
        _WARM_STATES.clear()
        _WARM_STATES[key] = mean_pooled_states(_loaded(model), docs, max_length=max_length, progress=progress)
    return _WARM_STATES[key]


def _loaded(model: CLLM4Rec):  # noqa: ANN202 - a LoadedBackbone; imported lazily (layering)
    from cllm4rec.backbone import LoadedBackbone

    if model.loaded_backbone is not None:
        return model.loaded_backbone
    if model.backbone_tokenizer is None or model.ref is None:
        raise CLLM4RecError("placing new items needs a model built from a loaded backbone (with its tokenizer)")
    return LoadedBackbone(model.backbone, model.backbone_tokenizer, model.ref, "model", 0.0)


def _docs(
    model: CLLM4Rec, n_old: int, texts: list[dict[str, str]], max_length: int
) -> list[tuple[list[int], list[int]]]:
    """The content documents of the new items: ``The <field> of item_j is: <text>``, one per field."""
    tok = model.id_tokenizer()
    docs = []
    for k, fields in enumerate(texts):
        for name, text in fields.items():
            main = _word_ids(tok, text, max_length)
            if main:
                docs.append((item_field_prompt(tok, n_old + k, name), main))
    return docs


@torch.no_grad()
def text_rows(model: CLLM4Rec, texts: list[dict[str, str]], max_length: int) -> tuple[np.ndarray, torch.Tensor]:
    """(indices of the texts that have words, their rows): each the mean word embedding of the whole text,
    the paper's initialisation of a content token."""
    words = model.backbone.get_input_embeddings().weight
    tok = model.id_tokenizer()
    keep, rows = [], []
    for k, fields in enumerate(texts):
        doc = item_document(fields)
        ids = _word_ids(tok, doc, max_length * max(1, len(fields))) if doc.strip() else []
        if ids:
            keep.append(k)
            rows.append(words[torch.as_tensor(ids, device=words.device)].float().mean(0))
    if not rows:
        return np.zeros(0, dtype=np.int64), words.new_zeros((0, words.shape[1]))
    return np.asarray(keep, dtype=np.int64), torch.stack(rows)


@torch.no_grad()
def init_content_from_text(
    model: CLLM4Rec, item_text: list[dict[str, str]], user_text: list[dict[str, str]], max_length: int
) -> None:
    """Start every content row that has text at the mean word embedding of its text (``model.content_init``)."""
    for table, texts in ((model.item_content, item_text), (model.user_content, user_text)):
        keep, rows = text_rows(model, texts, max_length)
        if len(keep):
            table.weight[torch.as_tensor(keep, device=table.weight.device)] = rows.to(table.weight.dtype)


@torch.no_grad()
def _init_content(model: CLLM4Rec, n_old: int, texts: list[dict[str, str]], max_length: int) -> None:
    """Each new content row at the mean word embedding of its whole text (the paper's initialisation)."""
    keep, rows = text_rows(model, texts, max_length)
    model.item_content.weight[torch.as_tensor(n_old + keep, device=rows.device)] = rows.to(
        model.item_content.weight.dtype
    )


def _train_content(
    model: CLLM4Rec, n_old: int, texts: list[dict[str, str]], options: PlacementOptions, progress: bool
) -> None:
    """``options.passes`` passes of Adam on the content LM loss of the new items' documents; every other
    parameter is frozen for the duration and the warm rows' gradients are zeroed, so only new rows move."""
    if options.passes == 0:
        return
    docs = _docs(model, n_old, texts, options.max_length)
    rng = np.random.default_rng(options.seed)
    table = model.item_content
    was_sparse, was_training = table.sparse, model.training
    frozen = [p for p in model.parameters() if p.requires_grad and p is not table.weight]
    for p in frozen:
        p.requires_grad_(False)
    table.sparse = False
    optimizer = torch.optim.Adam([table.weight], lr=options.lr)
    model.train()
    try:
        for epoch in range(options.passes):
            order = rng.permutation(len(docs))
            chunks = [order[i : i + options.batch_size] for i in range(0, len(order), options.batch_size)]
            desc = f"new items {epoch + 1}/{options.passes}"
            for idx in tqdm(chunks, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
                batch = collate([docs[i] for i in idx], model.id_tokenizer().pad_id).to(model.device)
                optimizer.zero_grad(set_to_none=False)
                model.word_lm_loss(batch, side="content").loss.backward()
                assert table.weight.grad is not None
                table.weight.grad[:n_old] = 0  # Adam's moments of warm rows stay 0: they never move
                optimizer.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        table.sparse = was_sparse
        model.train(was_training)


def estimate_placement_seconds(
    model: CLLM4Rec, warm_texts: list[dict[str, str]], n_new: int, options: PlacementOptions | None = None
) -> float:
    """Seconds :func:`place_new_items` will take for ``n_new`` items: the text features of a sample of warm
    items are timed and extrapolated (a training step of the content pass costs about three forwards)."""
    import time

    options = options or PlacementOptions()
    sample = [item_document(f) for f in warm_texts[:: max(1, len(warm_texts) // 32)][:32]]
    if not sample:
        return 0.0
    mean_pooled_states(_loaded(model), sample[:4], max_length=options.max_length)  # warm-up
    t0 = time.perf_counter()
    mean_pooled_states(_loaded(model), sample, max_length=options.max_length)
    per_text = (time.perf_counter() - t0) / len(sample)
    n_features = len(warm_texts) + n_new if options.features == "text" else 0
    fields = np.mean([max(1, len(f)) for f in warm_texts]) if warm_texts else 1.0
    return per_text * (n_features + 3 * options.passes * n_new * fields)
