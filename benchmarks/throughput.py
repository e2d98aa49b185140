"""Training-step throughput of the collaborative LM pass (docs/DESIGN.md §2) on ML-100K interaction documents.

One step = ``model.item_lm_loss(batch).loss.backward()`` plus an Adam step on the collaborative ID tables:
forward through the frozen backbone, backward through its activations down to the ID embeddings. Documents
are ``user_i has interacted with item_a item_b ...`` built from ``u.data`` (rating > 3), cut to
``--max-length`` tokens, and batched by length buckets (documents sorted by length, consecutive chunks) so
padding stays small. "Useful tokens" are non-pad tokens; the timed batches are spread evenly over the length
distribution, so their mean length is that of an epoch.

    python benchmarks/throughput.py [--data PATH/u.data] [--backbones smollm2-135m,gpt2-small-random]
                                    [--precisions fp32,bf16] [--batch-size 20] [--max-length 128]
                                    [--warmup 1] [--steps 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cllm4rec.backbone import load_backbone
from cllm4rec.model import CLLM4Rec, bf16_supported
from cllm4rec.tokenization import Batch, IDTokenizer, collate

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"


def read_histories(path: Path, min_rating: float = 4.0) -> tuple[list[list[int]], int, int]:
    """Per-user item lists (by time) of ratings >= ``min_rating``, users and items re-indexed from 0."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            user, item, rating, ts = line.split()
            if float(rating) >= min_rating:
                rows.append((user, item, int(ts)))
    users = {u: k for k, u in enumerate(sorted({r[0] for r in rows}, key=int))}
    items = {i: k for k, i in enumerate(sorted({r[1] for r in rows}, key=int))}
    histories: list[list[int]] = [[] for _ in users]
    for user, item, _ in sorted(rows, key=lambda r: (r[2], r[0], r[1])):
        histories[users[user]].append(items[item])
    return histories, len(users), len(items)


def bucketed_batches(tok: IDTokenizer, histories: list[list[int]], batch_size: int, max_length: int) -> list[Batch]:
    """All documents, sorted by length and cut into consecutive batches (little padding)."""
    docs = [(tok.encode(f"user_{u} has interacted with"), tok.item_tokens(h)) for u, h in enumerate(histories)]
    docs.sort(key=lambda d: min(max_length, len(d[0]) + len(d[1])))
    return [collate(docs[k : k + batch_size], tok.pad_id, max_length) for k in range(0, len(docs), batch_size)]


def run_config(
    loaded: Any,
    histories: list[list[int]],
    n_users: int,
    n_items: int,
    precision: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Time ``args.steps`` training steps after ``args.warmup`` untimed ones."""
    tok = loaded.id_tokenizer(n_users, n_items)
    batches = bucketed_batches(tok, histories, args.batch_size, args.max_length)
    picks = torch.linspace(0, len(batches) - 1, args.steps).round().long().tolist()
    timed = [batches[k] for k in picks]
    model = CLLM4Rec(loaded, n_users, n_items, init_scale=0.1, seed=0)
    model.autocast = precision == "bf16"
    model.force_autocast = precision == "bf16"  # measure bf16 even where the CPU only emulates it
    opt = torch.optim.Adam(model.trainable_parameters("collab"), lr=1e-3)

    def step(batch: Batch) -> float:
        loss = model.item_lm_loss(batch, side="collab").loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for batch in timed[: args.warmup]:
        step(batch)
    start = time.perf_counter()
    losses = [step(batch) for batch in timed]
    seconds = time.perf_counter() - start
    useful = sum(b.n_tokens for b in timed)
    computed = sum(b.input_ids.numel() for b in timed)
    epoch_useful = sum(b.n_tokens for b in batches)
    epoch_computed = sum(b.input_ids.numel() for b in batches)
    return {
        "backbone": loaded.ref.name,
        "precision": precision,
        "steps": len(timed),
        "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / len(timed), 2),
        "useful_tokens": useful,
        "useful_tokens_per_s": round(useful / seconds, 1),
        "computed_tokens_per_s": round(computed / seconds, 1),
        "padding_share_timed": round(1 - useful / computed, 4),
        "padding_share_epoch": round(1 - epoch_useful / epoch_computed, 4),
        "batches_per_epoch": len(batches),
        "mean_doc_tokens": round(epoch_useful / len(histories), 1),
        "mean_loss": round(sum(losses) / len(losses), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"ML-100K u.data (default {DEFAULT_DATA})")
    parser.add_argument("--backbones", default="smollm2-135m,gpt2-small-random")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (on the timed batches)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"no u.data at {args.data} (use --data)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    histories, n_users, n_items = read_histories(args.data)
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "native_bf16": bf16_supported("cpu"),
        "load_average_start": os.getloadavg(),
    }
    print(f"ML-100K: {n_users} users, {n_items} items, {sum(map(len, histories))} interactions (rating > 3)")
    print(
        f"torch {env['torch']}, {env['threads']} threads, native CPU bf16: {env['native_bf16']}, "
        f"load average {env['load_average_start']}"
    )
    results = []
    columns = ("backbone", "prec", "s/step", "useful tok/s", "computed tok/s", "pad timed", "pad epoch")
    print("{:<18} {:<5} {:>7} {:>12} {:>14} {:>9} {:>9}".format(*columns))
    for name in args.backbones.split(","):
        loaded = load_backbone(name)
        for precision in args.precisions.split(","):
            r = run_config(loaded, histories, n_users, n_items, precision, args)
            results.append(r)
            row = (
                f"{r['backbone']:<18} {precision:<5} {r['seconds_per_step']:>7.2f} "
                f"{r['useful_tokens_per_s']:>12.1f} {r['computed_tokens_per_s']:>14.1f} "
                f"{r['padding_share_timed']:>9.1%} {r['padding_share_epoch']:>9.1%}"
            )
            print(row, flush=True)
    env["load_average_end"] = os.getloadavg()
    print(f"load average at the end {env['load_average_end']}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"env": env, "args": vars(args) | {"data": str(args.data)}, "results": results},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
