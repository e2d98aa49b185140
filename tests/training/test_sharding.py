"""The sharding arithmetic of docs/DESIGN.md §10 in one process: each "process" is a thread, and a small
stand-in for the two Accelerate collectives used (reduce, gather) exchanges their tensors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.data import Dataset
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import collate
from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
from cllm4rec.training.objectives import COLLAB, CONTENT, REC, Objective, ObjectiveModule
from cllm4rec.training.sharding import ShardedScorer, loss_weights, process_batch_size, scorer, shard


class ThreadWorld:
    """``world`` threads that meet at a barrier to exchange one tensor each."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.slots: list[Any] = [None] * world
        self.barrier = threading.Barrier(world, timeout=30)

    def exchange(self, rank: int, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.slots[rank] = tensor
        self.barrier.wait()
        got = list(self.slots)
        self.barrier.wait()
        return got


class FakeAccelerator:
    """The attributes and collectives of ``accelerate.Accelerator`` that the sharding code uses."""

    def __init__(self, world: ThreadWorld, rank: int) -> None:
        self.world, self.process_index, self.num_processes = world, rank, world.world
        self.device = torch.device("cpu")

    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        assert reduction == "sum"
        return torch.stack(self.world.exchange(self.process_index, tensor)).sum(0)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.world.exchange(self.process_index, tensor))


def run_ranks(world: int, fn: Callable[[FakeAccelerator], Any]) -> list[Any]:
    """``fn(accelerator)`` on ``world`` threads, one per rank; results in rank order."""
    shared, results, errors = ThreadWorld(world), [None] * world, []

    def target(rank: int) -> None:
        try:
            results[rank] = fn(FakeAccelerator(shared, rank))
        except BaseException as exc:  # surfaced below, with the rank
            errors.append((rank, exc))
            shared.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0][1]
    return results


def test_shards_cover_a_batch_once_and_report_the_largest_share() -> None:
    idx = np.array([9, 4, 7, 1, 3])
    parts = [shard(idx, r, 2) for r in range(2)]
    assert [p.tolist() for p in parts] == [[9, 7, 3], [4, 1]]
    assert [shard(np.array([5]), r, 2).tolist() for r in range(2)] == [[5], []]
    assert [process_batch_size(b, 2) for b in (5, 8, 1)] == [3, 4, 1]
    assert process_batch_size(20, 1) == 20


@pytest.fixture(scope="module")
def model(tiny_backbone: LoadedBackbone, make_dataset) -> tuple[CLLM4Rec, Any, Dataset]:
    dataset = make_dataset()
    model = CLLM4Rec(tiny_backbone, dataset.n_users, dataset.n_items, init_scale=1.0, seed=0)
    model.autocast = False  # fp32: the comparison is about the arithmetic of the shares
    return model, tiny_backbone.id_tokenizer(dataset.n_users, dataset.n_items), dataset


def _docs_and_targets(objective: Objective, tok: Any, dataset: Dataset) -> tuple[list, list | None]:
    rng = np.random.default_rng(0)
    if objective is COLLAB:
        return interaction_docs(tok, dataset.train, rng, True)[:5], None
    if objective is CONTENT:
        return content_docs(tok, dataset, 64)[:5], None
    rec = rec_docs(tok, dataset.train, rng, 0.3, "heldout", 64)
    return [(p, []) for p in rec.prompts[:5]], rec.targets[:5]


def _multi_hot(targets: list[np.ndarray] | None, rows: np.ndarray, n_items: int) -> torch.Tensor | None:
    if targets is None:
        return None
    out = torch.zeros(len(rows), n_items)
    for r, i in enumerate(rows):
        out[r, torch.as_tensor(targets[i])] = 1.0
    return out


@pytest.mark.parametrize("objective", [COLLAB, CONTENT, REC], ids=lambda o: o.name)
def test_weighted_shares_give_the_global_batch_loss_and_gradient(model, objective: Objective) -> None:
    """Two shares (3 + 2 documents) weighted as the training step weights them, with DDP's gradient
    average, reproduce the loss, regularization and gradient of the whole batch of 5 on one process."""
    cllm, tok, dataset = model
    module = ObjectiveModule(cllm)
    docs, targets = _docs_and_targets(objective, tok, dataset)
    idx = np.arange(len(docs))
    side_params = cllm.trainable_parameters(objective.side)

    def forward(rows: np.ndarray, weights: tuple[float, float]) -> tuple[float, float, list[torch.Tensor]]:
        batch = collate([docs[i] for i in rows], tok.pad_id, 64)
        total, loss, reg = module(objective, batch, 1.0, _multi_hot(targets, rows, dataset.n_items), weights)
        grads = torch.autograd.grad(total, side_params, allow_unused=True)
        dense = [torch.zeros_like(p) if g is None else g for p, g in zip(side_params, grads, strict=True)]
        return loss.item(), reg.item(), dense

    one_loss, one_reg, one_grads = forward(idx, (1.0, 1.0))

    def share(acc: FakeAccelerator) -> tuple[tuple[float, float], np.ndarray]:
        rows = shard(idx, acc.process_index, acc.num_processes)
        batch = collate([docs[i] for i in rows], tok.pad_id, 64)
        w = loss_weights(acc, batch, len(rows), len(idx), per_document=objective.per_document)
        return w, rows

    shares = run_ranks(2, share)  # the weights need the other share's target count: both ranks at once
    assert sum(w[0] for w, _ in shares) == pytest.approx(1.0) and sum(w[1] for w, _ in shares) == pytest.approx(1.0)
    loss = reg = 0.0
    grads = [torch.zeros_like(p) for p in side_params]
    for w, rows in shares:
        part_loss, part_reg, part_grads = forward(rows, (2 * w[0], 2 * w[1]))
        loss, reg = loss + w[0] * part_loss, reg + w[1] * part_reg
        grads = [g + pg / 2 for g, pg in zip(grads, part_grads, strict=True)]  # DDP: the mean over the two processes
    assert loss == pytest.approx(one_loss, rel=1e-6)
    assert reg == pytest.approx(one_reg, rel=1e-6)
    for got, want in zip(grads, one_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert max(g.abs().max().item() for g in one_grads) > 0  # the objective does train these tables


class IndexScorer:
    """Scores that name their row: user u's score for item j is 100 u + j (and counts its calls)."""

    name = "index"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def fit(self, dataset: Any, *, split: str = "valid", progress: bool = False) -> IndexScorer:
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        self.seen += [int(u) for u in users]
        return (100.0 * np.asarray(users)[:, None] + np.arange(history.shape[1])).astype(np.float32)


@pytest.mark.parametrize("n_users", [7, 1])
def test_sharded_scoring_gathers_every_row_in_order(n_users: int) -> None:
    users = np.arange(10, 10 + n_users)
    history = sp.csr_matrix((n_users, 4), dtype=np.float32)
    inners = [IndexScorer(), IndexScorer()]
    results = run_ranks(2, lambda acc: ShardedScorer(inners[acc.process_index], acc).score(users, history))
    want = IndexScorer().score(users, history)
    for got in results:
        np.testing.assert_array_equal(got, want)
    # each row was scored by exactly one process
    assert sorted(inners[0].seen + inners[1].seen) == users.tolist()
    assert len(inners[0].seen) == (n_users + 1) // 2


def test_one_process_uses_the_recommender_itself() -> None:
    inner = IndexScorer()
    one = FakeAccelerator(ThreadWorld(1), 0)
    assert scorer(inner, one) is inner
    assert loss_weights(one, None, 3, 3, per_document=False) == (1.0, 1.0)
