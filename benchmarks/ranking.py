"""Ranking cost: the whole catalogue in one pass against generating K item tokens one at a time.

Both sides start from the same recommendation prompt of the same users (docs/DESIGN.md §4-§5):

- ``one pass``: the library's scoring path, ``CLLM4RecRecommender.score`` (one forward pass, the item head over
  all J items) followed by ``evaluation.topk_items`` (top-K with the history excluded);
- ``generate``: greedy decoding of K item tokens with a KV cache on the same model: a prefill pass over the
  prompt, then K-1 one-token steps; each step scores the J items through the same tied item head
  (``CLLM4Rec.item_logits``), masks the history and the items already generated (constrained, no repeats) and
  feeds the argmax item's embedding back. Batches are left-padded with position ids counting real tokens.
  The whole loop runs inside one autocast region, so bf16 weight casts are reused across steps.
- ``--hf-generate`` adds Hugging Face ``generate`` (greedy, ``use_cache=True``, exactly K new tokens) from the
  same prompt embeddings: it decodes *words* with the backbone's head, as a check that the loop above is not
  slower than the standard implementation.

Speed does not depend on training, so the model is freshly initialised on a prepared dataset's users and
items. Latency is per batch (median over batches); users/s over all users. Example (about 3 minutes):

    cllm4rec data prepare --format movielens --input ../shared/data/ml-100k --out runs/ml100k
    python benchmarks/ranking.py --data runs/ml100k --users 32 --batch-sizes 1,8 --k 20 --hf-generate \
        --json runs/bench/ranking.json     # [--backbone smollm2-135m] [--precision auto|fp32|bf16] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from benchenv import describe, machine_info, sync, write_json
from tqdm.auto import tqdm

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.data.matrix import row_items
from cllm4rec.evaluation.metrics import topk_items
from cllm4rec.model import CLLM4Rec
from cllm4rec.model.recommender import CLLM4RecRecommender
from cllm4rec.tokenization.prompts import scoring_prompt


def left_padded(prompts: list[list[int]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, T) ids left-padded, and the attention mask (None when no row is padded: SDPA's fast path)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    return ids.to(device), (None if bool(mask.all()) else mask.to(device))


@torch.inference_mode()
def generate_items(model: CLLM4Rec, prompts: list[list[int]], known: sp.csr_matrix, k: int, pad_id: int) -> np.ndarray:
    """Greedy decoding of ``k`` distinct unseen item tokens with a KV cache; (B, k) item indices."""
    device = str(model.device)
    ids, mask = left_padded(prompts, pad_id, device)
    batch = ids.shape[0]
    rows = torch.arange(batch, device=device)
    banned = torch.zeros(batch, model.n_items, dtype=torch.bool, device=device)  # (B, J) history + generated
    coo = known.tocoo()
    banned[torch.as_tensor(coo.row, device=device), torch.as_tensor(coo.col, device=device)] = True
    positions = None if mask is None else (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
    next_pos = torch.full((batch, 1), ids.shape[1], device=device) if mask is None else positions[:, -1:] + 1
    out_items = []
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=model.autocast_active):
        out = model.decoder(
            inputs_embeds=model.embed(ids, "collab"), attention_mask=mask, position_ids=positions, use_cache=True
        )
        for step in range(k):
            logits = model.item_logits(out.last_hidden_state[:, -1]).masked_fill(banned, -torch.inf)  # (B, J)
            item = logits.argmax(-1)  # (B,)
            banned[rows, item] = True
            out_items.append(item)
            if step == k - 1:
                break
            token = (item + model.n_words + model.n_users).unsqueeze(1)  # (B, 1)
            if mask is not None:
                mask = torch.cat([mask, torch.ones(batch, 1, dtype=mask.dtype, device=device)], dim=1)
            out = model.decoder(
                inputs_embeds=model.embed(token, "collab"),
                attention_mask=mask,
                position_ids=next_pos,
                cache=out.cache,
                use_cache=True,
            )
            next_pos = next_pos + 1
    return torch.stack(out_items, 1).cpu().numpy()


@torch.inference_mode()
def hf_generate(model: CLLM4Rec, prompts: list[list[int]], k: int, pad_id: int) -> np.ndarray:
    """Hugging Face ``generate``: greedy, KV cache, exactly ``k`` new (word) tokens from the prompt embeddings."""
    ids, mask = left_padded(prompts, pad_id, str(model.device))
    if mask is None:
        mask = torch.ones_like(ids)
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=model.autocast_active):
        out = model.backbone.generate(
            inputs_embeds=model.embed(ids, "collab"),
            attention_mask=mask,
            max_new_tokens=k,
            min_new_tokens=k,
            do_sample=False,
            use_cache=True,
            pad_token_id=pad_id,
        )
    return out[:, -k:].cpu().numpy()


def time_batches(
    name: str, chunks: list[np.ndarray], run: Callable[[np.ndarray], np.ndarray], device: str
) -> tuple[dict[str, Any], np.ndarray]:
    """Run ``run`` on the first chunk untimed, then on every chunk timed: per-batch latencies, and the
    (users, K) items it returned in chunk order."""
    run(chunks[0])
    latencies, tops = [], []
    for idx in tqdm(chunks, desc=name, leave=False, dynamic_ncols=True):
        start = time.perf_counter()
        tops.append(run(idx))
        sync(device)
        latencies.append(time.perf_counter() - start)
    users = sum(len(c) for c in chunks)
    return {
        "users": users,
        "seconds": round(sum(latencies), 3),
        "users_per_s": round(users / sum(latencies), 2),
        "latency_ms_median": round(1000 * statistics.median(latencies), 1),
        "latency_ms_max": round(1000 * max(latencies), 1),
    }, np.concatenate(tops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/ml100k"), help="prepared dataset folder")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--users", type=int, default=32, help="users ranked (a seeded sample)")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--k", type=int, default=20, help="items to recommend / tokens to generate")
    parser.add_argument("--max-length", type=int, default=256, help="prompt budget, as in serving")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--hf-generate", action="store_true", help="also time Hugging Face generate")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = Dataset.load(args.data)
    loaded = load_backbone(args.backbone)
    model = CLLM4Rec(loaded, dataset.n_users, dataset.n_items, init_scale=0.1, seed=args.seed).to(args.device)
    model.eval()
    if args.precision != "auto":
        model.autocast = model.force_autocast = args.precision == "bf16"
    tok = loaded.id_tokenizer(dataset.n_users, dataset.n_items)
    rec = CLLM4RecRecommender(model, tok, style="rec", max_length=args.max_length)
    known = sp.csr_matrix(dataset.train + dataset.valid)
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(dataset.n_users, size=min(args.users, dataset.n_users), replace=False))
    prompts = {int(u): scoring_prompt(tok, int(u), row_items(known, int(u)), args.max_length, "rec") for u in users}
    order = users[np.argsort([len(prompts[int(u)]) for u in users], kind="stable")]  # length-sorted, as scoring is
    env = machine_info(args.device) | {"bf16_autocast": model.autocast_active}
    print(describe(env) + f"; bf16 autocast active: {model.autocast_active}")
    print(
        f"{args.backbone}, {dataset.n_items} items, {len(users)} users, "
        f"prompt tokens mean {np.mean([len(p) for p in prompts.values()]):.1f}, K = {args.k}"
    )

    def one_pass(idx: np.ndarray) -> np.ndarray:
        scores = rec.score(idx, known[idx])
        return topk_items(scores, args.k, exclude=known[idx])

    def generate(idx: np.ndarray) -> np.ndarray:
        return generate_items(model, [prompts[int(u)] for u in idx], known[idx], args.k, tok.pad_id)

    def hf(idx: np.ndarray) -> np.ndarray:
        return hf_generate(model, [prompts[int(u)] for u in idx], args.k, tok.pad_id)

    methods: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [("one pass", one_pass), ("generate", generate)]
    if args.hf_generate:
        methods.append(("hf generate (words)", hf))
    results: list[dict[str, Any]] = []
    one_pass_top: dict[int, np.ndarray] = {}  # batch size -> the one-pass (users, K) items
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        rec.batch_size = bs
        chunks = [order[i : i + bs] for i in range(0, len(order), bs)]
        for name, run in methods:
            row, top = time_batches(f"{name} b{bs}", chunks, run, args.device)
            if name == "generate":  # same model, same prompt: greedy's first item is the one-pass top-1
                row["first_item_agrees_with_top1"] = round(float(np.mean(top[:, 0] == one_pass_top[bs][:, 0])), 3)
            if name == "one pass":
                one_pass_top[bs] = top
            row |= {"method": name, "batch_size": bs, "load_average": [round(x, 2) for x in os.getloadavg()]}
            results.append(row)
            print(f"  {name} batch {bs}: {row['users_per_s']} users/s, load {row['load_average']}", flush=True)
    print(
        f"\n{'method':<20} {'batch':>5} {'users/s':>9} {'ms/batch (median)':>18} {'x one pass':>11} {'top-1 same':>11}"
    )
    for r in results:
        base = next(x for x in results if x["method"] == "one pass" and x["batch_size"] == r["batch_size"])
        r["slowdown_vs_one_pass"] = round(base["users_per_s"] / r["users_per_s"], 2)
        print(
            f"{r['method']:<20} {r['batch_size']:>5} {r['users_per_s']:>9.2f} {r['latency_ms_median']:>18.1f} "
            f"{r['slowdown_vs_one_pass']:>11.2f} {r.get('first_item_agrees_with_top1', ''):>11}"
        )
    if args.json:
        write_json(args.json, {"env": env, "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
