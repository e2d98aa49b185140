"""Where the memory of a training step goes: resident set size (RSS) after each phase, and the peak inside it.

Builds the training context of a config (backbone load, model, item-head centre) on a prepared dataset, then
runs one optimizer step of each objective (the trainer's own ``training/engine.py:train_step``) on the batch
of the longest documents: the collaborative pass (the L-step), a content pass and a recommendation step.
RSS is sampled every 5 ms by a thread (psutil), so each phase reports its own peak, not only the
process-lifetime maximum, and its wall and CPU seconds (the CPU time is the steadier figure on a shared
machine). Numbers in docs/BENCHMARKS.md.

    python benchmarks/memory_probe.py --data runs/ml100k --preset quick
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import psutil

GIB = 1 << 30


class PeakRSS:
    """Samples this process's RSS in a background thread; ``phase`` reports the peak inside a block."""

    def __init__(self, interval: float = 0.005) -> None:
        self.process = psutil.Process()
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.peak = before = self.process.memory_info().rss
        start, cpu = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        time.sleep(2 * self.interval)
        after = self.process.memory_info().rss
        print(
            f"{name:<34} before {before / GIB:6.2f} GiB  peak {self.peak / GIB:6.2f} GiB  "
            f"after {after / GIB:6.2f} GiB  ({wall:.1f} s wall, {cpu:.1f} s CPU)",
            flush=True,
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _longest(docs: list, batch_size: int) -> list:
    """The ``batch_size`` longest documents: the step with the largest activations."""
    order = np.argsort([-(len(p) + len(m)) for p, m in docs], kind="stable")
    return [docs[i] for i in order[:batch_size]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--malloc-defaults", action="store_true", help="skip release_large_blocks (as before it)")
    ap.add_argument("--no-checkpoint", action="store_true", help="keep every activation (as before checkpointing)")
    ap.add_argument("overrides", nargs="*", help="config overrides, as for cllm4rec train")
    args = ap.parse_args()

    probe = PeakRSS()
    with probe.phase("import torch + cllm4rec"):
        import torch  # noqa: F401 (what this phase measures)

        from cllm4rec.data import Dataset
        from cllm4rec.runs.config import load_config
        from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
        from cllm4rec.training.engine import build_context, make_optimizers, train_step
        from cllm4rec.training.objectives import COLLAB_OBJECTIVES, CONTENT, REC

    from cllm4rec.core.memory import release_large_blocks

    if not args.malloc_defaults:
        release_large_blocks()  # what the training runner does
    config = load_config(preset=args.preset, overrides=args.overrides)
    dataset = Dataset.load(args.data)
    with probe.phase("backbone + model + head centre"):
        ctx = build_context(dataset, config, seed=0, device="cpu", progress=False)
    tok, max_len, batch_size = ctx.tok, config.model.max_length, config.pretrain.batch_size
    if args.no_checkpoint:
        ctx.model.checkpoint_tokens = 1 << 62
    optimizers = make_optimizers(ctx.model, 1e-4, 1.0)
    rng = np.random.default_rng(0)
    ctx.objectives.train()

    def step(objective, docs: list, targets: list[np.ndarray] | None = None) -> Callable[[], None]:
        def run() -> None:
            train_step(ctx, objective, docs, np.arange(len(docs)), 0.1, targets, optimizers[objective.side])
            longest = max(min(len(p) + len(m), max_len) for p, m in docs)
            print(f"  batch of {len(docs)} documents, the longest {longest} tokens", flush=True)

        return run

    collab = COLLAB_OBJECTIVES[config.pretrain.collab_target]
    with probe.phase(f"collab step ({config.pretrain.collab_target})"):
        step(collab, _longest(interaction_docs(tok, dataset.train, rng), batch_size))()
    with probe.phase("collab step again (steady state)"):
        step(collab, _longest(interaction_docs(tok, dataset.train, rng), batch_size))()
    docs = content_docs(tok, dataset, max_len)
    if docs:
        with probe.phase("content step"):
            step(CONTENT, _longest(docs, batch_size))()
    rec = rec_docs(tok, dataset.train, rng, config.finetune.mask_fraction, config.finetune.target, max_len)
    longest = np.argsort([-len(p) for p in rec.prompts], kind="stable")[:batch_size]
    with probe.phase("rec step"):
        step(REC, [(rec.prompts[i], []) for i in longest], [rec.targets[i] for i in longest])()
    print(f"process peak RSS {psutil.Process().memory_info().rss / GIB:.2f} GiB now; see the phase peaks above")
    probe.close()


if __name__ == "__main__":
    main()
