"""Growth: scoring time and peak memory against the catalogue size, L-pass epoch time against the users.

Three subcommands, each a short burst, writing JSON; ``plot`` draws both on log-log axes with fitted slopes.

- ``catalogue``: for each J (synthetic ID tables of J items, freshly initialised), in a fresh process so the
  peak RSS is its own: rank ``--users`` synthetic users through the library's scoring path,
  ``CLLM4RecRecommender.score`` (one forward pass, the item head over all J items, docs/DESIGN.md §5), then
  ``evaluation.topk_items`` (top-20, history excluded). History lengths are drawn from the prepared
  dataset's training histories, items uniformly from the J. Reported: seconds per user for scoring and for
  top-k, the peak RSS *during* scoring above the RSS before it (the kernel's ``VmHWM`` reset first), the
  process's peak RSS and the size of the ID tables.
- ``users``: for each I (synthetic users with the dataset's history lengths over its J items), the L-pass
  step of training (``ObjectiveModule`` with the next-item loss and mutual regularization, backward, Adam on
  the collaborative tables with the ``quick`` preset's user learning-rate scale). Only ``--steps`` batches
  are timed, spread evenly over the epoch's length-sorted batches, so the per-epoch time is an
  **estimate**: mean seconds per step x batches per epoch. Forward + backward and the optimizer step are
  timed apart (Adam updates the whole user table every step: an O(I) term per step).
- ``plot``: ``docs/scaling.png`` from the two JSON files, slopes fitted by least squares on log10-log10.

    cllm4rec data prepare --format movielens --input ../shared/data/ml-100k --out runs/ml100k
    python benchmarks/scaling.py catalogue --data runs/ml100k --sizes 1000,10000,100000,1000000 \
        --json runs/bench/scaling_catalogue.json                                # about 3 minutes
    python benchmarks/scaling.py users --data runs/ml100k --sizes 1000,3000,10000,30000,100000 \
        --json runs/bench/scaling_users.json                                    # about 5 minutes
    python benchmarks/scaling.py plot --catalogue-json runs/bench/scaling_catalogue.json \
        --users-json runs/bench/scaling_users.json --out docs/scaling.png
    # common options: [--backbone smollm2-135m] [--threads N] [--precision auto|fp32|bf16] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from benchenv import describe, machine_info, peak_rss_mib, reset_peak_rss, rss_mib, sync, write_json
from tqdm.auto import tqdm

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import collate
from cllm4rec.tokenization.prompts import interaction_prompt


def history_lengths(data: Path) -> np.ndarray:
    """Training-history lengths of the prepared dataset's users (at least one item each)."""
    train = Dataset.load(data).train
    lengths = np.diff(train.indptr)
    return lengths[lengths > 0]


def synthetic_history(n_users: int, n_items: int, lengths: np.ndarray, rng: np.random.Generator) -> sp.csr_matrix:
    """(n_users, n_items) binary histories: lengths drawn from ``lengths``, items uniform without repeats."""
    sizes = np.minimum(rng.choice(lengths, size=n_users), n_items)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.concatenate([np.sort(rng.choice(n_items, size=int(s), replace=False)) for s in sizes])
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))


def build_model(args: argparse.Namespace, n_users: int, n_items: int, loaded: Any) -> tuple[CLLM4Rec, float]:
    """A freshly initialised model over ``n_users`` x ``n_items`` synthetic IDs, and its build seconds."""
    start = time.perf_counter()
    model = CLLM4Rec(loaded, n_users, n_items, init_scale=0.1, seed=args.seed).to(args.device)
    if args.precision != "auto":
        model.autocast = model.force_autocast = args.precision == "bf16"
    return model, time.perf_counter() - start


def table_mib(model: CLLM4Rec) -> float:
    """Size of the four ID tables, MiB."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) / 2**20


def available_mib() -> float:
    """MemAvailable of the machine, MiB (infinite where /proc/meminfo is missing): a run that would push the
    machine into swap or the OOM killer, hurting whatever else runs there, is skipped instead."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


# ----- catalogue size ------------------------------------------------------------------------------------
def catalogue_one(args: argparse.Namespace) -> dict[str, Any]:
    """One catalogue size, in this process: build, score ``args.users`` users, top-k, memory."""
    from cllm4rec.evaluation.metrics import topk_items
    from cllm4rec.model.recommender import CLLM4RecRecommender

    n_items = args.size
    loaded = load_backbone(args.backbone)
    hidden = int(loaded.model.get_input_embeddings().weight.shape[1])
    need_mib = 2 * (args.users + n_items) * hidden * 4 / 2**20 + 2048  # four fp32 tables, 2 GiB for the rest
    if need_mib > available_mib():
        raise SystemExit(f"skipped: J={n_items} needs about {need_mib:.0f} MiB, {available_mib():.0f} available")
    rng = np.random.default_rng(args.seed)
    history = synthetic_history(args.users, n_items, history_lengths(args.data), rng)
    model, build_s = build_model(args, args.users, n_items, loaded)
    tok = loaded.id_tokenizer(args.users, n_items)
    rec = CLLM4RecRecommender(model, tok, style="rec", max_length=args.max_length, batch_size=args.batch_size)
    users = np.arange(args.users)
    warm = users[: args.batch_size]
    rec.score(warm, history[warm])  # untimed: first-call kernel set-up
    rss_before = rss_mib()
    reset_ok = reset_peak_rss()
    start = time.perf_counter()
    scores = rec.score(users, history)
    sync(args.device)
    score_s = time.perf_counter() - start
    start = time.perf_counter()
    top = topk_items(scores, args.k, exclude=history)
    topk_s = time.perf_counter() - start
    peak = peak_rss_mib()
    assert top.shape == (args.users, args.k)
    return {
        "n_items": n_items,
        "users": args.users,
        "batch_size": args.batch_size,
        "mean_history": round(float(np.diff(history.indptr).mean()), 1),
        "autocast_bf16": model.autocast_active,
        "build_seconds": round(build_s, 2),
        "score_seconds": round(score_s, 3),
        "score_ms_per_user": round(1000 * score_s / args.users, 2),
        "topk_ms_per_user": round(1000 * topk_s / args.users, 3),
        "rss_before_scoring_mib": round(rss_before, 1),
        "peak_rss_scoring_mib": round(peak, 1) if reset_ok else None,
        "peak_extra_scoring_mib": round(peak - rss_before, 1) if reset_ok else None,
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "id_tables_mib": round(table_mib(model), 1),
        "scores_mib": round(scores.nbytes / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def catalogue(args: argparse.Namespace) -> dict[str, Any]:
    """Every catalogue size, each in a fresh process (``catalogue-one``) so its peak RSS is its own."""
    rows = []
    for size in tqdm([int(s) for s in args.sizes.split(",")], desc="catalogue", dynamic_ncols=True):
        cmd = [sys.executable, __file__, "catalogue-one", "--size", str(size), *common_argv(args)]
        cmd += ["--users", str(args.users), "--batch-size", str(args.batch_size), "--k", str(args.k)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tqdm.write(f"J={size}: failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
            rows.append({"n_items": size, "error": done.stderr.strip()[-2000:], "returncode": done.returncode})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        tqdm.write(
            f"J={size}: {row['score_ms_per_user']} ms/user scoring, {row['topk_ms_per_user']} ms/user top-k, "
            f"peak +{row['peak_extra_scoring_mib']} MiB, load {row['load_average']}"
        )
    print(
        f"\n{'items':>9} {'ms/user score':>14} {'ms/user top-k':>14} {'peak +MiB':>10} {'proc peak MiB':>14} "
        f"{'tables MiB':>11} {'build s':>8}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['n_items']:>9} failed (exit {r['returncode']})")
            continue
        print(
            f"{r['n_items']:>9} {r['score_ms_per_user']:>14.2f} {r['topk_ms_per_user']:>14.3f} "
            f"{r['peak_extra_scoring_mib']:>10} {r['process_peak_rss_mib']:>14.1f} {r['id_tables_mib']:>11.1f} "
            f"{r['build_seconds']:>8.2f}"
        )
    return {"rows": rows}


def interaction_batch(
    tok: Any, history: sp.csr_matrix, idx: np.ndarray, rng: np.random.Generator, args: argparse.Namespace
) -> Any:
    """The interaction documents of users ``idx`` (items shuffled, as every epoch does), collated."""
    docs = [
        (interaction_prompt(tok, int(u)), [tok.item_token(int(j)) for j in rng.permutation(history[int(u)].indices)])
        for u in idx
    ]
    return collate(docs, tok.pad_id, args.max_length).to(args.device)


# ----- training growth: users and items ------------------------------------------------------------------
def train_sweep(args: argparse.Namespace, axis: str) -> dict[str, Any]:
    """Estimated L-pass epoch time of the shipped ``quick`` step for each number of users (``axis="users"``,
    the dataset's items) or items (``axis="items"``, ``--fixed`` users), a bounded number of timed steps."""
    from types import SimpleNamespace

    from cllm4rec.runs.config import load_config
    from cllm4rec.training.engine import make_optimizers, stage_batch_size, train_step
    from cllm4rec.training.objectives import ObjectiveModule, collab_objective
    from cllm4rec.training.sharding import make_accelerator

    cfg = load_config("quick")
    m, p = cfg.model, cfg.pretrain
    dataset = Dataset.load(args.data)
    lengths_pool = history_lengths(args.data)
    loaded = load_backbone(args.backbone)
    hidden = int(loaded.model.get_input_embeddings().weight.shape[1])
    accelerator = make_accelerator(torch.device(args.device))
    objective = collab_objective(p.collab_target)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n_users, n_items = (size, dataset.n_items) if axis == "users" else (args.fixed, size)
        # four tables, Adam's two moments of the collaborative ones, fp32, and 1 GiB margin
        need_mib = 8 * (n_users + n_items) * hidden * 4 / 2**20 + 1024
        if need_mib > available_mib():
            tqdm.write(f"{axis}={size}: skipped, needs about {need_mib:.0f} MiB, {available_mib():.0f} available")
            rows.append({"n_users": n_users, "n_items": n_items, "error": f"skipped: needs {need_mib:.0f} MiB"})
            continue
        rng = np.random.default_rng([args.seed, n_users, n_items])
        history = synthetic_history(n_users, n_items, lengths_pool, rng)
        start = time.perf_counter()
        model = CLLM4Rec(loaded, n_users, n_items, m, seed=args.seed).to(args.device)
        model.set_sparse_grads(True)
        if args.precision != "auto":
            model.autocast = model.force_autocast = args.precision == "bf16"
        build_s = time.perf_counter() - start
        tok = loaded.id_tokenizer(n_users, n_items)
        batch_size = stage_batch_size(p.batch_size, p.max_steps, n_users)
        optimizer = make_optimizers(model, p.lr, p.user_lr_scale)["collab"]
        ctx = SimpleNamespace(
            accelerator=accelerator,
            objectives=ObjectiveModule(model),
            tok=tok,
            model_config=replace_max_length(m, args.max_length),
            dataset=SimpleNamespace(n_items=n_items),
            device=torch.device(args.device),
        )
        docs = [
            (interaction_prompt(tok, u), [tok.item_token(int(j)) for j in rng.permutation(history[u].indices)])
            for u in range(n_users)
        ]
        order = np.argsort([len(a) + len(b) for a, b in docs], kind="stable")
        chunks = [order[k : k + batch_size] for k in range(0, n_users, batch_size)]
        # batches at the mid-points of steps equal shares of the length-sorted epoch: their mean is the epoch's
        picks = np.floor((np.arange(args.steps) + 0.5) / args.steps * len(chunks)).astype(int)
        model.train()
        phases: dict[str, float] = {}
        for n, k in enumerate(tqdm([picks[0], *picks], desc=f"{axis}={size}", leave=False, dynamic_ncols=True)):
            timed = phases if n > 0 else {}  # the first is an untimed warm-up
            train_step(ctx, objective, docs, np.sort(chunks[k]), p.lambda_c, None, optimizer, phases=timed)
        sync(args.device)
        per_step = {key: value / len(picks) for key, value in phases.items()}
        row = {
            "n_users": n_users,
            "n_items": n_items,
            "interactions": int(history.nnz),
            "batch_size": batch_size,
            "batches_per_epoch": len(chunks),
            "timed_steps": len(picks),
            "fwd_bwd_s_per_step": round(per_step["forward"] + per_step["backward"], 3),
            "optimizer_s_per_step": round(per_step["optimizer"], 4),
            "epoch_seconds_estimate": round(sum(per_step.values()) * len(chunks), 1),
            "optimizer_epoch_seconds": round(per_step["optimizer"] * len(chunks), 2),
            "build_seconds": round(build_s, 2),
            "id_tables_mib": round(table_mib(model), 1),
            "autocast_bf16": model.autocast_active,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        rows.append(row)
        tqdm.write(
            f"{axis}={size}: batch {batch_size}, {row['fwd_bwd_s_per_step']} s fwd+bwd, "
            f"{row['optimizer_s_per_step']} s Adam per step, epoch ~{row['epoch_seconds_estimate']} s "
            f"({len(chunks)} batches), load {row['load_average']}"
        )
        del model, optimizer, ctx, docs
    print(f"\n{'users':>8} {'items':>8} {'batch':>6} {'steps':>6} {'fwd+bwd s':>10} {'Adam s':>8} {'epoch s':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['n_users']:>8} {r['n_items']:>8} {r['error']}")
            continue
        print(
            f"{r['n_users']:>8} {r['n_items']:>8} {r['batch_size']:>6} {r['batches_per_epoch']:>6} "
            f"{r['fwd_bwd_s_per_step']:>10.3f} {r['optimizer_s_per_step']:>8.4f} {r['epoch_seconds_estimate']:>9.1f}"
        )
    return {"axis": axis, "rows": rows}


def replace_max_length(model_config: Any, max_length: int) -> Any:
    """The preset's model config with the sweep's context budget."""
    from dataclasses import replace

    return replace(model_config, max_length=max_length)


# ----- plot ----------------------------------------------------------------------------------------------
def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log10(y) against log10(x)."""
    return float(np.polyfit(np.log10(x), np.log10(y), 1)[0])


def plot(args: argparse.Namespace) -> dict[str, Any]:
    """docs/scaling.png: scoring time and memory against J, epoch time against I, with fitted slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cat_files = [json.loads(f.read_text()) for f in args.catalogue_json]
    usr_files = [json.loads(f.read_text()) for f in args.users_json]
    cat = sorted((r for f in cat_files for r in f["rows"] if "error" not in r), key=lambda r: r["n_items"])
    usr = sorted((r for f in usr_files for r in f["rows"] if "error" not in r), key=lambda r: r["n_users"])
    cat_json, env = cat_files[0], cat_files[0]["env"]
    loads = [f["env"][key][0] for f in cat_files + usr_files for key in ("load_average", "load_average_end")]
    title = args.title or (
        f"CLLM4Rec growth: {cat_json['args']['backbone']}, {env['cpu_model']}, {env['torch_threads']} torch thread(s), "
        f"1-minute load average {min(loads)}-{max(loads)} (shared machine)"
    )
    itm = sorted(
        (r for f in args.items_json or [] for r in json.loads(f.read_text())["rows"] if "error" not in r),
        key=lambda r: r["n_items"],
    )
    fig, axes = plt.subplots(1, 4 if itm else 3, figsize=(20 if itm else 15, 4.4))
    slopes: dict[str, float] = {}

    def panel(ax: Any, x: list[float], series: dict[str, list[float]], xlabel: str, ylabel: str) -> None:
        for label, y in series.items():
            s = slope(x, y)
            slopes[f"{ylabel} / {label}"] = round(s, 3)
            ax.loglog(x, y, "o-", label=f"{label} (slope {s:.2f})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)

    j = [r["n_items"] for r in cat]
    panel(
        axes[0],
        j,
        {"scoring": [r["score_ms_per_user"] for r in cat], "top-20": [r["topk_ms_per_user"] for r in cat]},
        "catalogue size J (items)",
        "ms per user",
    )
    axes[0].set_title("ranking the whole catalogue")
    panel(
        axes[1],
        j,
        {
            "process peak RSS": [r["process_peak_rss_mib"] for r in cat],
            "ID tables": [r["id_tables_mib"] for r in cat],
            "peak above baseline while scoring": [max(r["peak_extra_scoring_mib"], 0.1) for r in cat],
        },
        "catalogue size J (items)",
        "MiB",
    )
    axes[1].set_title(f"memory ({cat[0]['users']} users scored)")
    i = [r["n_users"] for r in usr]
    panel(
        axes[2],
        i,
        {
            "L-pass epoch (estimate)": [r["epoch_seconds_estimate"] for r in usr],
            "Adam step x batches": [r["optimizer_s_per_step"] * r["batches_per_epoch"] for r in usr],
        },
        "users I (synthetic histories)",
        "seconds",
    )
    axes[2].set_title(f"L-pass epoch against users ({usr[0]['n_items']} items)")
    if itm:
        panel(
            axes[3],
            [r["n_items"] for r in itm],
            {
                "L-pass epoch (estimate)": [r["epoch_seconds_estimate"] for r in itm],
                "Adam step x batches": [r["optimizer_s_per_step"] * r["batches_per_epoch"] for r in itm],
            },
            "items J (synthetic histories)",
            "seconds ",
        )
        axes[3].set_title(f"L-pass epoch against items ({itm[0]['n_users']} users)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    for key, value in slopes.items():
        print(f"  slope {key}: {value}")
    return {"slopes": slopes}


def common_argv(args: argparse.Namespace) -> list[str]:
    """The options a ``catalogue-one`` child process inherits."""
    out = ["--data", str(args.data), "--backbone", args.backbone, "--precision", args.precision]
    out += ["--seed", str(args.seed), "--device", args.device, "--max-length", str(args.max_length)]
    return out + (["--threads", str(args.threads)] if args.threads else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, default=Path("runs/ml100k"), help="prepared dataset (history lengths)")
    common.add_argument("--backbone", default="smollm2-135m")
    common.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    common.add_argument("--threads", type=int, default=None)
    common.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--max-length", type=int, default=256, help="context budget (the quick preset's)")
    common.add_argument("--json", type=Path, default=None)
    p = sub.add_parser("catalogue", parents=[common], help="scoring time and memory against J")
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--users", type=int, default=16, help="users scored per catalogue size")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass")
    p.add_argument("--k", type=int, default=20)
    p = sub.add_parser("catalogue-one", parents=[common], help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--k", type=int, default=20)
    for axis, fixed in (("users", "the dataset's items"), ("items", "--fixed users")):
        p = sub.add_parser(axis, parents=[common], help=f"estimated L-pass epoch time against {axis} ({fixed})")
        p.add_argument("--sizes", default="1000,3000,10000,30000,100000")
        p.add_argument("--steps", type=int, default=4, help="timed steps per size (after one warm-up)")
        p.add_argument("--fixed", type=int, default=20000, help="users, for the items sweep")
    p = sub.add_parser("plot", help="docs/scaling.png from the two JSON files")
    p.add_argument("--catalogue-json", type=Path, nargs="+", required=True, help="one or more (rows merged)")
    p.add_argument("--users-json", type=Path, nargs="+", required=True, help="one or more (rows merged)")
    p.add_argument("--items-json", type=Path, nargs="*", default=None, help="the items sweep (optional)")
    p.add_argument("--out", type=Path, default=Path("docs/scaling.png"))
    p.add_argument("--title", default=None, help="default: backbone, CPU, threads and load from the JSON")
    args = parser.parse_args(argv)
    if args.command == "plot":
        plot(args)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "catalogue-one":
        print(json.dumps(catalogue_one(args)))
        return 0
    env = machine_info(args.device)
    print(describe(env))
    result = catalogue(args) if args.command == "catalogue" else train_sweep(args, args.command)
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        write_json(args.json, {"env": env, "args": vars(args), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
