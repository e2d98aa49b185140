"""New items from their text alone: grow the item tables, learn the content rows, place the collab rows.

The backbone stays frozen and every warm row stays as it is (docs/DESIGN.md §11). For each new item:

1. Its content row starts at the mean of its text's word embeddings (the paper's initialisation of content
   tokens) and is then trained for ``passes`` passes of the content LM objective on its own text documents
   (``The title of item_j is: ...``), only the new rows moving.
2. Its collaborative row and item bias come from a ridge map fitted on the warm items, from a text feature
   to (collab row, bias): the conditional mean of what interactions taught the warm items, given their text.
   The bias is part of that map because a new item has no popularity of its own, and the prediction from
   its text is the least-squares estimate of it; the warm items' mean bias is its value when the text says
   nothing. The feature (``features``) is the frozen backbone's mean-pooled final hidden states over the
   item's text (``text``: the same for warm and new items), or the content row itself (``content``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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

FEATURES = ("text", "words", "text+words", "content")
FITS = ("ridge", "rec")


@dataclass(frozen=True)
class PlacementOptions:
    """How new items are placed (defaults measured on the cold-validation items, docs/BENCHMARKS.md)."""

    passes: int = 1
    """Passes of the content LM objective over the new items' texts (0: the word-embedding start only)."""
    lr: float = 1e-2
    batch_size: int = 32
    features: str = "words"
    """What the map reads: ``text`` (mean-pooled backbone states), ``words`` (the texts' TF-IDF reduced to
    ``word_dims`` by a truncated SVD), ``text+words`` (both, each standardised) or ``content`` (the row)."""
    word_dims: int = 256
    min_interactions: int = 1
    """Warm items with fewer training interactions do not supervise the map (their rows are mostly noise)."""
    ridge: float = 1.0
    """Ridge strength, relative to the mean eigenvalue of the warm features' covariance."""
    fit: str = "ridge"
    """How the map is fitted: ``ridge`` (least squares to the warm rows) or ``rec`` (the ridge solution, then
    refined on the recommendation loss of the users' interactions, scored through the map)."""
    fit_epochs: int = 30
    """Most epochs of the ``rec`` refinement; it keeps the epoch whose held-out warm items rank best."""
    max_length: int = 64
    """Text tokens read per field (documents and features)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.passes < 0 or self.batch_size < 1 or self.max_length < 1:
            raise CLLM4RecError("new items: passes must be >= 0, batch_size and max_length >= 1")
        if self.fit not in FITS or self.fit_epochs < 0:
            raise CLLM4RecError(f"new items: fit must be one of {', '.join(FITS)} and fit_epochs >= 0")
        if self.features not in FEATURES:
            raise CLLM4RecError(f"new items: features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if not (self.lr > 0 and self.ridge > 0):
            raise CLLM4RecError("new items: lr and ridge must be > 0")


def grow_item_tables(model: CLLM4Rec, n_new: int) -> None:
    """Append ``n_new`` item rows to both item tables and the bias (zeros); warm rows are copied unchanged."""
    if n_new < 1:
        raise CLLM4RecError("no new items to add")
    for name in ("item_collab", "item_content"):
        old = getattr(model, name)
        weight = torch.cat([old.weight.detach(), old.weight.new_zeros(n_new, model.hidden_size)])
        table = nn.Embedding.from_pretrained(weight, freeze=False)
        table.sparse = old.sparse
        setattr(model, name, table)
    if model.item_bias is not None:
        model.item_bias = nn.Parameter(torch.cat([model.item_bias.detach(), model.item_bias.new_zeros(n_new)]))
    model.n_items += n_new
    model.vocab_size += n_new


def _word_ids(model: CLLM4Rec, text: str, max_length: int) -> list[int]:
    tok = model.id_tokenizer()
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
) -> dict[str, float]:
    """Add one item per entry of ``texts`` (its text fields) to ``model`` in place, after the warm items.

    ``warm_texts``: the warm items' text fields, in index order (what the map learns from);
    ``warm_counts``: training interactions per warm item, where items without any do not supervise the map.
    ``user_states`` (U, d) and ``interactions`` (U, warm items), for ``fit="rec"``: the item head's input for
    each user's history and what they interacted with. Returns timings of the steps, in seconds."""
    import time

    options = options or PlacementOptions()
    if not texts or any(not any(v.strip() for v in fields.values()) for fields in texts):
        raise CLLM4RecError("every new item needs a non-empty text")
    n_old, n_new = model.n_items, len(texts)
    if len(warm_texts) != n_old:
        raise CLLM4RecError(f"warm_texts has {len(warm_texts)} entries, the model {n_old} items")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    warm_features = None
    parts: list[np.ndarray] = []
    if options.features in ("text", "text+words"):
        warm_states = _warm_states(model, warm_texts, options.max_length, progress)
        new_states = mean_pooled_states(
            _loaded(model), [item_document(f) for f in texts], max_length=options.max_length, progress=progress
        )
        parts.append(np.concatenate([warm_states, new_states]))
    if options.features in ("words", "text+words"):
        parts.append(word_features([item_document(f) for f in [*warm_texts, *texts]], options.word_dims, options.seed))
    if parts:
        both = np.concatenate([(p - p.mean(0)) / (p.std(0) + 1e-6) for p in parts], axis=1)
        warm_features, new_features = both[:n_old], both[n_old:]
        timings["features_seconds"] = time.perf_counter() - start
    grow_item_tables(model, n_new)
    _init_content(model, n_old, texts, options.max_length)
    t0 = time.perf_counter()
    _train_content(model, n_old, texts, options, progress)
    timings["content_seconds"] = time.perf_counter() - t0
    if options.features == "content":
        rows = model.item_content.weight.detach().float().cpu().numpy()
        warm_features, new_features = rows[:n_old], rows[n_old:]
    assert warm_features is not None
    collab = model.item_collab.weight.detach().float().cpu().numpy()[:n_old]
    bias = model.item_bias.detach().float().cpu().numpy()[:n_old] if model.item_bias is not None else None
    keep = np.ones(n_old, dtype=bool)
    if warm_counts is not None:
        keep = np.asarray(warm_counts).reshape(-1) >= max(1, options.min_interactions)
    targets = collab if bias is None else np.concatenate([collab, bias[:, None]], axis=1)
    predicted = ridge_map(warm_features[keep], targets[keep], new_features, options.ridge)
    if options.fit == "rec":
        if user_states is None or interactions is None:
            raise CLLM4RecError("fit='rec' needs the users' head states and interactions")
        t0 = time.perf_counter()
        predicted = rec_map(
            warm_features, targets, new_features, user_states, interactions, keep, options, bias is not None
        )
        timings["fit_seconds"] = time.perf_counter() - t0
    with torch.no_grad():
        device = model.item_collab.weight.device
        model.item_collab.weight[n_old:] = torch.as_tensor(predicted[:, : model.hidden_size], device=device)
        if model.item_bias is not None:
            model.item_bias[n_old:] = torch.as_tensor(predicted[:, -1], device=device)
    timings["total_seconds"] = time.perf_counter() - start
    return timings


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


def word_features(docs: list[str], dims: int, seed: int) -> np.ndarray:
    """(N, <= dims): the documents' TF-IDF (sublinear term frequency) reduced by a seeded truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True).fit_transform(docs)
    dims = max(1, min(dims, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
    return TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf).astype(np.float32)


_WARM_STATES: dict[tuple[int, int, int], np.ndarray] = {}


def _warm_states(model: CLLM4Rec, warm_texts: list[dict[str, str]], max_length: int, progress: bool) -> np.ndarray:
    """The warm items' text features, kept for the next placement on the same model (one entry): the
    cold-validation and cold-test placements read the same warm texts."""
    docs = [item_document(f) for f in warm_texts]
    key = (id(model.backbone), max_length, hash(tuple(docs)))
    if key not in _WARM_STATES:
        _WARM_STATES.clear()
        _WARM_STATES[key] = mean_pooled_states(_loaded(model), docs, max_length=max_length, progress=progress)
    return _WARM_STATES[key]


def rec_map(
    x: np.ndarray,
    y: np.ndarray,
    x_new: np.ndarray,
    states: np.ndarray,
    interactions: sp.csr_matrix,
    keep: np.ndarray,
    options: PlacementOptions,
    has_bias: bool,
) -> np.ndarray:
    """A linear map from text features to (collab row, bias), fitted on the recommendation loss.

    The scores of warm item j for user u are ``states_u . (A x_j + a) + (v . x_j + c)``: the trained item
    head with each warm item's row replaced by the map's. Starting from the ridge solution, Adam lowers the
    multinomial loss of the users' interactions over 90% of the supervising warm items (seeded); after each
    epoch the other 10% are ranked among themselves from their text alone (Recall@20, as new items would be),
    and the best epoch's map is kept (the ridge start counts as epoch 0)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6  # standardised features: one learning rate suits every feature
    x, x_new = (x - mu) / sd, (x_new - mu) / sd
    rng = np.random.default_rng(options.seed)
    torch_gen = torch.Generator().manual_seed(options.seed)
    d = states.shape[1]
    supervised = np.flatnonzero(keep)
    held = rng.choice(supervised, size=max(1, len(supervised) // 10), replace=False)
    fit_items = np.setdiff1d(supervised, held)
    xt = torch.as_tensor(x, dtype=torch.float32)  # (J, D)
    xn = torch.as_tensor(x_new, dtype=torch.float32)
    w, b = ridge_fit(x[fit_items], y[fit_items], options.ridge)
    weight = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float32))  # (D, d [+ 1 for the bias])
    offset = torch.nn.Parameter(torch.as_tensor(b, dtype=torch.float32))
    h = torch.as_tensor(states, dtype=torch.float32)  # (U, d)
    inter = sp.csr_matrix(interactions)
    users = np.flatnonzero(np.diff(inter[:, fit_items].tocsr().indptr) > 0)
    held_inter = inter[:, held].tocsr()
    held_users = np.flatnonzero(np.diff(held_inter.indptr) > 0)
    fit_t = torch.as_tensor(fit_items)

    def rows(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = feats @ weight + offset
        return (out[:, :d], out[:, d]) if has_bias else (out, None)

    def held_recall() -> float:
        with torch.no_grad():
            e, b = rows(xt[torch.as_tensor(held)])
            scores = h[torch.as_tensor(held_users)] @ e.T + (0 if b is None else b)
            top = torch.topk(scores, min(20, len(held)), dim=1).indices.numpy()
        truth = held_inter[held_users]
        hits = np.asarray([truth[r, top[r]].sum() for r in range(len(held_users))]).ravel()
        return float(np.mean(hits / np.minimum(20, np.diff(truth.indptr))))

    best = (held_recall(), weight.detach().clone(), offset.detach().clone())
    optimizer = torch.optim.Adam([weight, offset], lr=1e-3)
    batch = 512
    for _ in range(options.fit_epochs):
        order = torch.randperm(len(users), generator=torch_gen).numpy()
        for start in range(0, len(order), batch):
            ub = users[order[start : start + batch]]
            target = torch.as_tensor(inter[ub][:, fit_items].toarray())  # (B, J_fit)
            e, b = rows(xt[fit_t])
            logits = h[torch.as_tensor(ub)] @ e.T + (0 if b is None else b)
            loss = -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        recall = held_recall()
        if recall > best[0]:
            best = (recall, weight.detach().clone(), offset.detach().clone())
    with torch.no_grad():
        weight.copy_(best[1])
        offset.copy_(best[2])
        out = xn @ weight + offset
    return out.numpy()


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
            main = _word_ids(model, text, max_length)
            if main:
                docs.append((item_field_prompt(tok, n_old + k, name), main))
    return docs


@torch.no_grad()
def text_rows(model: CLLM4Rec, texts: list[dict[str, str]], max_length: int) -> tuple[np.ndarray, torch.Tensor]:
    """(indices of the texts that have words, their rows): each the mean word embedding of the whole text,
    the paper's initialisation of a content token."""
    words = model.backbone.get_input_embeddings().weight
    keep, rows = [], []
    for k, fields in enumerate(texts):
        doc = item_document(fields)
        ids = _word_ids(model, doc, max_length * max(1, len(fields))) if doc.strip() else []
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
    n_features = len(warm_texts) + n_new if "text" in options.features else 0
    fields = np.mean([max(1, len(f)) for f in warm_texts]) if warm_texts else 1.0
    return per_text * (n_features + 3 * options.passes * n_new * fields)
