"""Training throughput of the three passes (docs/DESIGN.md §2-§4) and their FLOP utilisation.

Passes, each one optimizer step per batch through the trainer's own ``training/engine.py:train_step`` (the
batch's collation, the objective through ``ObjectiveModule``, mutual regularization included, backward,
row-sparse Adam on that side's tables):

- ``collab``: the L-pass, next-item loss of interaction documents ``user_i has interacted with <items>``;
- ``content``: the C-pass, next-word loss of the item-text and user-text documents;
- ``rec``: the finetuning pass, multinomial loss of held-out items after the recommendation prompt.

Documents come from a prepared dataset folder through the library's corpora (training split only), are cut
to ``--max-length`` tokens and batched by length (sorted, consecutive chunks); the timed batches are spread
evenly over an epoch's length distribution. "Useful tokens" are non-pad tokens.

FLOP model (useful tokens only; N = the backbone's matmul weights outside the embeddings, L layers, query
width d_a, hidden d, J items, V words): the backbone is frozen, so a step is its forward (2N per token) and
the backward through its activations down to the input embeddings (2N per token, no weight gradients):
4N per token. Attention: 4 d_a per query-key pair and layer forward, 8 d_a backward, over the n(n+1)/2 causal
pairs of a document of n tokens. Heads: the item head costs 6dJ per target (forward, gradient to h, gradient
to the trained item table), the frozen word head 4dV per target; the rec pass has one target per document.
Utilisation = model FLOP/s over this machine's measured square-matmul peak in the precision used. The peak
is read just before and just after each configuration (the larger of the two is "peak"), because on a
shared machine the core's share changes by the minute: "util" is all timed steps against that adjacent
peak. "paired" pairs every timed step with a short 2048^3 matmul reading right before and right after it
(the larger of the two), so step and peak see the same contention; it is the median over the steps of
step FLOP/s over its paired peak. The JSON also holds the fastest step against the session's best peak.

Prepare the data once, then (about 8 minutes on a quiet 2-core CPU):

    cllm4rec data prepare --format movielens --input ../shared/data/ml-100k --out runs/ml100k
    python benchmarks/throughput.py --data runs/ml100k --json runs/bench/throughput.json
    # defaults: --backbones smollm2-135m,gpt2-small-random --passes collab,content,rec --precisions fp32,bf16
    #           --batch-size 20 --max-length 128 --warmup 1 --steps 5 [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchenv import describe, machine_info, matmul_peak, step_context, sync, write_json
from torch import nn
from tqdm.auto import tqdm

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import Batch, IDTokenizer, collate
from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
from cllm4rec.training.engine import make_optimizers, train_step
from cllm4rec.training.objectives import COLLAB, CONTENT, REC, Objective

PASSES = {"collab": COLLAB, "content": CONTENT, "rec": REC}
DEFAULT_DATA = Path("runs/ml100k")


def matmul_weights(decoder: nn.Module) -> int:
    """N of the FLOP model: elements of the 2-D weights of the decoder's leaf layers, embeddings excluded."""
    total = 0
    for module in decoder.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Embedding) or weight is None or next(module.children(), None) is not None:
            continue
        if weight.ndim == 2:
            total += weight.numel()
    return total


def pass_docs(
    name: str, tok: IDTokenizer, dataset: Dataset, max_length: int, seed: int
) -> tuple[list[tuple[list[int], list[int]]], list[np.ndarray] | None]:
    """The documents (and, for ``rec``, the held-out targets) of one epoch of pass ``name``."""
    rng = np.random.default_rng(seed)
    if name == "collab":
        return interaction_docs(tok, dataset.train, rng), None
    if name == "content":
        return content_docs(tok, dataset, max_length), None
    docs = rec_docs(tok, dataset.train, rng, 0.2, "heldout", max_length)
    return [(p, []) for p in docs.prompts], docs.targets


def step_flop(model: CLLM4Rec, batch: Batch, pass_name: str, n_weights: int) -> dict[str, float]:
    """FLOP of one training step on ``batch`` under the model in the module docstring, by term."""
    cfg = model.backbone.config
    layers = int(cfg.num_hidden_layers)
    heads = int(cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or model.hidden_size // heads)
    lengths = batch.lengths.double()
    pairs = float((lengths * (lengths + 1) / 2).sum())
    tokens = float(lengths.sum())
    d = model.hidden_size
    if pass_name == "rec":
        head = 6.0 * d * model.n_items * len(batch)
    else:
        targets = float(batch.loss_mask[:, 1:].sum())
        per_target = 6.0 * d * model.n_items if pass_name == "collab" else 4.0 * d * model.n_words
        head = per_target * targets
    return {"backbone": 4.0 * n_weights * tokens, "attention": 12.0 * layers * heads * head_dim * pairs, "head": head}


def run_config(ctx: Any, pass_name: str, precision: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.steps`` training steps of one pass after ``args.warmup`` untimed ones."""
    model, tok, dataset = ctx.model, ctx.tok, ctx.dataset
    objective: Objective = PASSES[pass_name]
    docs, targets = pass_docs(pass_name, tok, dataset, args.max_length, args.seed)
    lengths = np.array([min(len(p) + len(m), args.max_length) for p, m in docs])
    order = np.argsort(lengths, kind="stable")
    chunks = [order[k : k + args.batch_size] for k in range(0, len(order), args.batch_size)]
    picks = np.linspace(0, len(chunks) - 1, args.steps).round().astype(int)
    model.autocast = model.force_autocast = precision == "bf16"  # measure bf16 even where it is emulated
    optimizer = make_optimizers(model, lr=1e-3, user_lr_scale=1.0)[objective.side]
    n_weights = matmul_weights(model.decoder)

    def step(idx: np.ndarray) -> float:
        loss, _, _ = train_step(ctx, objective, docs, idx, args.lambda_c, targets, optimizer)
        return loss

    timed = [chunks[k] for k in picks]
    batches = [collate([docs[i] for i in idx], tok.pad_id, args.max_length) for idx in timed]  # FLOP counts
    ctx.objectives.train()
    for idx in timed[: args.warmup]:
        step(idx)
    sync(args.device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def probe() -> float:  # the matmul rate the core gives right now (paired with the neighbouring steps)
        return matmul_peak(dtype, args.device, sizes=(2048,), seconds=args.peak_seconds)["gflops"]

    step_seconds, losses, probes = [], [], [probe()]
    for idx in tqdm(timed, desc=f"{pass_name} {precision}", leave=False, dynamic_ncols=True):
        start = time.perf_counter()
        losses.append(step(idx))
        sync(args.device)
        step_seconds.append(time.perf_counter() - start)
        probes.append(probe())
    seconds = sum(step_seconds)
    flop = {key: 0.0 for key in ("backbone", "attention", "head")}
    step_gflops = []
    for batch, sec in zip(batches, step_seconds, strict=True):
        terms = step_flop(model, batch, pass_name, n_weights)
        step_gflops.append(sum(terms.values()) / sec / 1e9)
        for key, value in terms.items():
            flop[key] += value
    useful = sum(b.n_tokens for b in batches)
    computed = sum(b.input_ids.numel() for b in batches)
    total_flop = sum(flop.values())
    return {
        "pass": pass_name,
        "precision": precision,
        "steps": len(timed),
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / len(timed), 3),
        "useful_tokens": useful,
        "useful_tokens_per_s": round(useful / seconds, 1),
        "computed_tokens_per_s": round(computed / seconds, 1),
        "padding_share_timed": round(1 - useful / computed, 4),
        "padding_share_epoch": round(1 - float(lengths.sum()) / sum(int(lengths[c].max()) * len(c) for c in chunks), 4),
        "docs_per_epoch": len(docs),
        "mean_doc_tokens": round(float(lengths.mean()), 1),
        "model_gflop": round(total_flop / 1e9, 2),
        "flop_share": {key: round(value / total_flop, 4) for key, value in flop.items()},
        "achieved_gflops": round(total_flop / seconds / 1e9, 1),
        "best_step_gflops": round(max(step_gflops), 1),
        "step_gflops": [round(x, 1) for x in step_gflops],
        "paired_probe_gflops": probes,
        "paired_utilisation": round(
            float(np.median([g / max(probes[i], probes[i + 1]) for i, g in enumerate(step_gflops)])), 4
        ),
        "step_seconds": [round(x, 3) for x in step_seconds],
        "matmul_weights": n_weights,
        "mean_loss": round(float(np.mean(losses)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prepared dataset folder")
    parser.add_argument("--backbones", default="smollm2-135m,gpt2-small-random")
    parser.add_argument("--passes", default="collab,content,rec")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lambda-c", type=float, default=0.1, help="mutual regularization weight (its cost)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (on the timed batches)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--peak-seconds", type=float, default=0.4, help="per size, per matmul-peak reading")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not (args.data / "meta.json").is_file():
        print(f"{args.data} is not a prepared dataset folder (cllm4rec data prepare ...)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    passes = args.passes.split(",")
    precisions = args.precisions.split(",")
    if unknown := set(passes) - set(PASSES) or set(precisions) - {"fp32", "bf16"}:
        print(f"unknown pass or precision: {sorted(unknown)}", file=sys.stderr)
        return 2
    dataset = Dataset.load(args.data)
    env = machine_info(args.device)
    print(describe(env))
    print(f"{args.data}: {dataset.n_users} users, {dataset.n_items} items, {dataset.train.nnz} train interactions")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    results = []
    for name in args.backbones.split(","):
        loaded = load_backbone(name)
        model = CLLM4Rec(loaded, dataset.n_users, dataset.n_items, init_scale=0.1, seed=args.seed).to(args.device)
        model.set_sparse_grads(True)  # as the trainer on one process: row-sparse gradients of the looked-up tables
        ctx = step_context(model, loaded.id_tokenizer(dataset.n_users, dataset.n_items), dataset, args.max_length)
        for pass_name in passes:
            for precision in precisions:
                before = matmul_peak(dtypes[precision], args.device, seconds=args.peak_seconds)
                row = run_config(ctx, pass_name, precision, args)
                after = matmul_peak(dtypes[precision], args.device, seconds=args.peak_seconds)
                row |= {
                    "backbone": name,
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "matmul_peak_before": before,
                    "matmul_peak_after": after,
                    "peak_gflops": max(before["gflops"], after["gflops"]),
                }
                results.append(row)
                print(
                    f"  {name} {pass_name} {precision}: {row['useful_tokens_per_s']} useful tok/s, "
                    f"{row['achieved_gflops']} GFLOP/s, matmul peak {before['gflops']} / {after['gflops']} GFLOP/s "
                    f"before / after, load {row['load_average']}",
                    flush=True,
                )
    session_peak = {p: max(r["peak_gflops"] for r in results if r["precision"] == p) for p in precisions}
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n{describe(env | {'load_average': env['load_average_end']})}")
    print(
        "best matmul peak of the session: "
        + ", ".join(
            f"{p} {session_peak[p]} GFLOP/s" + ("" if p == "fp32" or env["native_bf16"] else " (emulated)")
            for p in precisions
        )
    )
    columns = (
        "backbone",
        "pass",
        "prec",
        "s/step",
        "useful tok/s",
        "pad",
        "GFLOP/s",
        "peak",
        "util",
        "paired",
        "head%",
    )
    print("{:<18} {:<8} {:<5} {:>7} {:>12} {:>6} {:>8} {:>7} {:>6} {:>6} {:>6}".format(*columns))
    for r in results:
        r["utilisation"] = round(r["achieved_gflops"] / r["peak_gflops"], 4)
        r["session_peak_gflops"] = session_peak[r["precision"]]
        r["best_step_utilisation"] = round(r["best_step_gflops"] / r["session_peak_gflops"], 4)
        print(
            f"{r['backbone']:<18} {r['pass']:<8} {r['precision']:<5} {r['seconds_per_step']:>7.2f} "
            f"{r['useful_tokens_per_s']:>12.1f} {r['padding_share_timed']:>6.1%} {r['achieved_gflops']:>8.1f} "
            f"{r['peak_gflops']:>7.1f} {r['utilisation']:>6.1%} {r['paired_utilisation']:>6.1%} "
            f"{r['flop_share']['head']:>6.1%}"
        )
    if args.json:
        payload = {
            "env": env,
            "args": vars(args),
            "session_matmul_peak_gflops": session_peak,
            "results": results,
        }
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
