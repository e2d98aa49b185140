"""Per-phase seconds of one training epoch on a prepared dataset (benchmarks/README.md).

Times, with the shipped preset's settings, a sample of steps of each pass (L-pass, C-pass, finetuning
R-pass), split into data preparation, forward, backward and optimizer step, and scales them to a whole
epoch; validation is timed in full. Prints the CPU, threads and load average beside the numbers.

    python benchmarks/epoch_phases.py --data runs/toys --preset quick --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from cllm4rec.data import Dataset
from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS
from cllm4rec.runs.config import load_config
from cllm4rec.training import engine
from cllm4rec.training.batching import bucket_batches
from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
from cllm4rec.training.epoch import validation_row
from cllm4rec.training.objectives import CONTENT, REC, collab_objective


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def time_pass(ctx, objective, docs, batch_size, optimizer, steps, targets=None, lambda_c=0.1):
    max_len = ctx.model_config.max_length
    lengths = np.fromiter((min(len(p) + len(m), max_len) for p, m in docs), dtype=np.int64, count=len(docs))
    batches = bucket_batches(lengths, batch_size, np.random.default_rng(0))
    batches = sorted(batches, key=lambda idx: int(lengths[idx].max()))  # the mid-points of equal shares:
    steps = min(steps, len(batches))  # their mean is the epoch's mean step
    pick = np.floor((np.arange(steps) + 0.5) / steps * len(batches)).astype(int)
    t = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    ctx.objectives.train()
    for k in pick:
        engine.train_step(ctx, objective, docs, batches[k], lambda_c, targets, optimizer, phases=t)
    scale = len(batches) / len(pick)
    return {k: v * scale for k, v in t.items()} | {"steps_per_epoch": len(batches), "timed_steps": len(pick)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--no-validation", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    cfg = load_config(args.preset, overrides=args.set)
    ds = Dataset.load(args.data)
    print(f"cpu: {cpu_name()}; torch threads {torch.get_num_threads()}; load {os.getloadavg()}")
    out = {}
    t0 = time.perf_counter()
    ctx = engine.build_context(ds, cfg, seed=98765, progress=False)
    out["setup"] = time.perf_counter() - t0
    n_docs = int((ds.train.getnnz(axis=1) > 0).sum())
    l_batch = engine.stage_batch_size(cfg.pretrain.batch_size, cfg.pretrain.max_steps, n_docs)
    r_batch = engine.stage_batch_size(cfg.finetune.batch_size, cfg.finetune.max_steps, n_docs)
    opts = engine.make_optimizers(ctx.model, cfg.pretrain.lr, cfg.pretrain.user_lr_scale)
    t0 = time.perf_counter()
    docs = interaction_docs(ctx.tok, ds.train, np.random.default_rng(1), True)
    out["data_L"] = time.perf_counter() - t0
    coll = collab_objective(cfg.pretrain.collab_target)
    out["L"] = time_pass(ctx, coll, docs, l_batch, opts["collab"], args.steps)
    t0 = time.perf_counter()
    content = content_docs(ctx.tok, ds, cfg.model.max_length)
    out["data_C_once"] = time.perf_counter() - t0
    sampled = engine.sample_docs(
        content, cfg.pretrain.content_fraction, np.random.default_rng(2), cfg.pretrain.content_max_docs
    )
    out["C"] = time_pass(ctx, CONTENT, sampled, cfg.pretrain.batch_size, opts["content"], args.steps)
    t0 = time.perf_counter()
    rec = rec_docs(
        ctx.tok,
        ds.train,
        np.random.default_rng(3),
        cfg.finetune.mask_fraction,
        cfg.finetune.target,
        cfg.model.max_length,
    )
    out["data_R"] = time.perf_counter() - t0
    rdocs = [(p, []) for p in rec.prompts]
    out["R"] = time_pass(ctx, REC, rdocs, r_batch, opts["collab"], args.steps, targets=rec.targets)
    if not args.no_validation:
        t0 = time.perf_counter()
        validation_row(ctx, DEFAULT_SELECTION_KEYS, style="lm")
        out["validation"] = time.perf_counter() - t0
    out["load_after"] = os.getloadavg()
    for k, v in out.items():
        if isinstance(v, dict):
            s = sum(x for n, x in v.items() if n in ("forward", "backward", "optimizer"))
            print(
                f"{k:12s} epoch {s:7.1f}s  "
                + "  ".join(f"{n}={x:.1f}" if isinstance(x, float) else f"{n}={x}" for n, x in v.items())
            )
        else:
            print(f"{k:12s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
