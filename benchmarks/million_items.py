"""A one-million-item catalogue: top-K for a batch of users and one training step, in bounded memory.

Builds CLLM4Rec with a synthetic ID table of ``--items`` rows (default 1,000,000) on a backbone (default the
tiny random Llama, hidden 64; ``--backbone smollm2-135m`` gives hidden 576), with the item bias and the centred
head on. Then, with RSS sampled every 5 ms:

1. ranks the whole catalogue for ``--users`` users with histories of ``--history`` random items
   (``CLLM4RecRecommender.topk``: item chunks, no (users, J) matrix), and checks the first users' top-K
   against ranking the full logits row by row;
2. runs one optimizer-free training step (forward + backward) of the rest-of-set next-item loss on
   ``--users`` interaction documents: (positions, J) logits would not fit, the chunked head holds one
   (positions, chunk) block at a time.

    python benchmarks/million_items.py
    python benchmarks/million_items.py --backbone smollm2-135m --users 32 --no-train-step
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch
from memory_probe import GIB, PeakRSS

from cllm4rec.backbone import load_backbone
from cllm4rec.evaluation import topk_items
from cllm4rec.model import CLLM4Rec
from cllm4rec.model.recommender import CLLM4RecRecommender
from cllm4rec.tokenization import collate
from cllm4rec.tokenization.prompts import interaction_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=64, help="users ranked, and documents in the training step")
    ap.add_argument("--history", type=int, default=50, help="items per user history / document")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--backbone", default="tiny-llama")
    ap.add_argument("--check", type=int, default=4, help="users whose top-K is checked against full logits")
    ap.add_argument("--no-train-step", action="store_true", help="rank only (the step is slow at hidden 576)")
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    probe = PeakRSS()

    with probe.phase(f"build model ({args.items:,} items)"):
        loaded = load_backbone(args.backbone)
        model = CLLM4Rec(loaded, args.users, args.items, seed=0, item_bias=True, center_head=True)
        model.init_item_bias(rng.zipf(1.5, size=args.items).astype(np.float64))
        model.eval()
    print(f"  hidden {model.hidden_size}; one item table {model.item_collab.weight.numel() * 4 / GIB:.2f} GiB")
    tok = loaded.id_tokenizer(args.users, args.items)
    histories = [np.sort(rng.choice(args.items, size=args.history, replace=False)) for _ in range(args.users)]
    indptr = np.arange(args.users + 1) * args.history
    history = sp.csr_matrix(
        (np.ones(indptr[-1], dtype=np.float32), np.concatenate(histories), indptr), shape=(args.users, args.items)
    )
    users = np.arange(args.users)
    rec = CLLM4RecRecommender(model, tok, batch_size=16)

    dense_gib = args.users * args.items * 4 / GIB
    with probe.phase(f"top-{args.k} of {args.users} users (chunked)"):
        t0 = time.perf_counter()
        items, _ = rec.topk(users, history, args.k)
        seconds = time.perf_counter() - t0
    print(f"  {seconds:.2f} s; a dense (users, J) fp32 score matrix would be {dense_gib:.2f} GiB")

    check = users[: args.check]
    full = rec.score(check, history[check])  # (check, J) dense, the reference ranking
    same = np.array_equal(items[: len(check)], topk_items(full, args.k, exclude=history[check]))
    print(f"  top-{args.k} of the first {len(check)} users equal to ranking the full logits: {same}")

    if args.no_train_step:
        probe.close()
        raise SystemExit(0 if same else "chunked top-K differs from the full ranking")
    docs = [(interaction_prompt(tok, int(u)), tok.item_tokens(h.tolist())) for u, h in enumerate(histories)]
    batch = collate(docs, tok.pad_id)
    positions = int(batch.loss_mask[:, 1:].sum())
    model.train()
    with probe.phase(f"training step, {positions} positions"):
        t0 = time.perf_counter()
        loss = model.item_lm_loss(batch, target="rest").loss
        loss.backward()
        seconds = time.perf_counter() - t0
    print(
        f"  loss {loss.item():.4f} in {seconds:.2f} s; (positions, J) fp32 logits alone would be "
        f"{positions * args.items * 4 / GIB:.1f} GiB, plus as much for their gradient"
    )
    print(f"  item table gradient {model.item_collab.weight.grad.numel() * 4 / GIB:.2f} GiB (dense, like the table)")
    probe.close()
    if not same:
        raise SystemExit("chunked top-K differs from the full ranking")


if __name__ == "__main__":
    main()
