"""Quality probes: short collaborative-pretraining (+ finetuning) runs with one lever changed at a time.

Uses the library's model, corpora and training step (``training/engine.py:train_step``, without mutual
regularization); adds the levers that are *not* config switches (ID-table
initialisation from the vocabulary, a logit scale, LoRA adapters) so they can be measured before any of
them earns a place in the library. Prints one JSON line per evaluated epoch with validation Recall@20 and
NDCG@100 under the chosen read-outs. Exploration tool, not the trainer; every row it produced is in
docs/experiments/2026-11-quality-rounds.md with its command.

    OMP_NUM_THREADS=1 python benchmarks/quality_probe.py --data runs/ml100k --epochs 1 --tag base
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from benchenv import step_context

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.data.matrix import row_items
from cllm4rec.evaluation.metrics import Evaluator
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import collate
from cllm4rec.tokenization.prompts import scoring_prompt
from cllm4rec.training.batching import bucket_batches
from cllm4rec.training.corpora import interaction_docs, rec_docs
from cllm4rec.training.engine import epoch_rng, train_step
from cllm4rec.training.objectives import REC, collab_objective


@torch.inference_mode()
def evaluate(model: CLLM4Rec, tok, dataset: Dataset, style: str, readout: str, max_length: int) -> list[float]:
    """Validation [Recall@20, NDCG@100] with prompt ``style`` and read-out ``readout``."""
    known = dataset.known("valid")
    ev = Evaluator(dataset.split("valid"), known)
    users = [int(u) for u in ev.users]
    prompts = [scoring_prompt(tok, u, row_items(known, u), max_length, style) for u in users]
    order = np.argsort([len(p) for p in prompts], kind="stable")
    out = torch.empty(len(prompts), model.n_items)
    saved, model.readout = model.readout, readout
    for i in range(0, len(order), 32):
        idx = order[i : i + 32]
        out[torch.as_tensor(idx)] = model.rec_scores(collate([(prompts[j], []) for j in idx], tok.pad_id))
    model.readout = saved
    ev.add(np.asarray(users), out.numpy())
    result = ev.result()
    return [round(result["recall@20"], 4), round(result["ndcg@100"], 4)]


def init_tables(model: CLLM4Rec, tok, dataset: Dataset, mode: str, scale: float, gen: torch.Generator) -> int:
    """Collaborative ID rows in the vocabulary's own distribution.

    ``vocab``: word mean + N(0, scale^2 * per-coordinate word variance). ``text``: items start at the mean word
    embedding of their title, its deviation from the word mean rescaled to a word's typical deviation times
    ``scale``; items without text and all users get the ``vocab`` draw. Returns the items set from text.
    """
    words = model.backbone.get_input_embeddings().weight.detach().float()
    mu, sd = words.mean(0), words.std(0)
    word_dev = (words - mu).norm(dim=1).mean()
    have, rows = [], []
    with torch.no_grad():
        for table in (model.user_collab, model.item_collab):
            table.weight.copy_(mu + scale * sd * torch.randn(*table.weight.shape, generator=gen))
        if mode == "text":
            for j, fields in enumerate(dataset.item_text):
                text = fields.get("title") or next(iter(fields.values()), "")
                ids = tok.encode_text(" " + text) if text else []
                if ids:
                    rows.append(words[ids].mean(0))
                    have.append(j)
            if rows:
                dev = torch.stack(rows) - mu
                model.item_collab.weight[have] = mu + dev * (scale * word_dev / dev.norm(dim=1).mean())
    return len(have)


def init_svd(model: CLLM4Rec, dataset: Dataset, rank: int, gen: torch.Generator) -> int:
    """Collaborative ID rows from a truncated SVD of the train matrix (users U sqrt(S), items V sqrt(S)), placed
    in a random ``rank``-dimensional subspace and rescaled so their RMS equals today's N(0, init) draw."""
    from scipy.sparse.linalg import svds

    u, s, vt = svds(dataset.train.astype(np.float64), k=rank)
    basis, _ = torch.linalg.qr(torch.randn(model.hidden_size, rank, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        for table, factors in ((model.user_collab, u * np.sqrt(s)), (model.item_collab, vt.T * np.sqrt(s))):
            rows = torch.as_tensor(factors) @ basis.T
            target = table.weight.detach().double().pow(2).mean().sqrt()
            table.weight.copy_((rows * target / rows.pow(2).mean().sqrt()).to(table.weight.dtype))
    return rank


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tag", default="probe")
    ap.add_argument("--backbone", default="smollm2-135m")
    ap.add_argument("--random-backbone", action="store_true")
    ap.add_argument("--init-scale", type=float, default=0.1)
    ap.add_argument("--init", default="normal", choices=["normal", "vocab", "text", "svd"])
    ap.add_argument("--svd-rank", type=int, default=16)
    ap.add_argument("--eval-init", action="store_true", help="evaluate before any training step")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--user-lr-scale", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--bias", action="store_true", help="per-item bias in the item head, init log-popularity")
    ap.add_argument("--logit-scale", default="1", help="a number, or 'rsqrt' for 1/sqrt(d), on h . v")
    ap.add_argument("--center", action="store_true", help="item head on hidden states minus their mean")
    ap.add_argument("--collab-target", default="next", choices=["next", "rest"])
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--lora-lr", type=float, default=1e-4)
    ap.add_argument("--ft-epochs", type=int, default=0)
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--ft-readout", default="last", choices=["last", "mean"])
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=98765)
    ap.add_argument("--eval", default="lm:last,rec:last", help="comma list of style:readout")
    ap.add_argument("--layers", type=int, default=0, help="model.collab_layers: the first N blocks (0: all)")
    ap.add_argument("--eval-every", type=int, default=1, help="0: evaluate only after the last epoch of a stage")
    args = ap.parse_args()

    t0 = time.perf_counter()
    dataset = Dataset.load(args.data)
    torch.manual_seed(args.seed)
    loaded = load_backbone(args.backbone, random_init=args.random_backbone, seed=args.seed)
    model = CLLM4Rec(
        loaded,
        dataset.n_users,
        dataset.n_items,
        init_scale=args.init_scale,
        seed=args.seed,
        item_bias=args.bias,
        center_head=args.center,
        collab_layers=args.layers,
    )
    model.init_item_bias(np.asarray(dataset.train.sum(0)).ravel())
    tok = loaded.id_tokenizer(dataset.n_users, dataset.n_items)
    n_text = 0
    if args.init == "svd":
        n_text = init_svd(model, dataset, args.svd_rank, torch.Generator().manual_seed(args.seed))
    elif args.init != "normal":
        n_text = init_tables(model, tok, dataset, args.init, args.init_scale, torch.Generator().manual_seed(args.seed))
    scale = model.hidden_size**-0.5 if args.logit_scale == "rsqrt" else float(args.logit_scale)
    if scale != 1.0:
        plain_logits = model.item_logits
        model.item_logits = lambda h, side="collab": plain_logits(h * scale, side)  # type: ignore[method-assign]
    if args.center:  # the library's centred head (model.center_head), set from the first documents
        docs = interaction_docs(tok, dataset.train, np.random.default_rng(args.seed), True)[:200]
        step_docs = range(0, len(docs), args.batch_size)
        model.set_head_center(collate(docs[i : i + args.batch_size], tok.pad_id, args.max_length) for i in step_docs)
    users, items, *extra = model.trainable_parameters("collab")
    groups = [{"params": [users], "lr": args.lr * args.user_lr_scale}, {"params": [items, *extra], "lr": args.lr}]
    if args.lora_rank > 0:
        from peft import LoraConfig, inject_adapter_in_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
        lora_config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules=targets)
        inject_adapter_in_model(lora_config, model.backbone)
        lora = [p for n, p in model.backbone.named_parameters() if "lora_" in n]
        for p in lora:
            p.requires_grad_(True)
        groups.append({"params": lora, "lr": args.lora_lr})
    opt = torch.optim.Adam(groups)
    evals = [e.split(":") for e in args.eval.split(",") if e]
    head = {"tag": args.tag, "args": vars(args), "n_text_init": n_text, "setup_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps(head), flush=True)

    def report(stage: str, epoch: int, losses: list[float], seconds: float) -> None:
        t = time.perf_counter()
        row = {"tag": args.tag, "stage": stage, "epoch": epoch, "loss": round(float(np.mean(losses)), 4)}
        row["train_s"] = round(seconds, 1)
        for style, how in evals:
            row[f"{style}:{how}"] = evaluate(model, tok, dataset, style, how, args.max_length)
        row["eval_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps(row), flush=True)

    ctx = step_context(model, tok, dataset, args.max_length, args.seed)
    collab = collab_objective(args.collab_target)

    if args.eval_init:
        report("init", 0, [float("nan")], 0.0)
    for epoch in range(1, args.epochs + 1):
        t, losses = time.perf_counter(), []
        docs = interaction_docs(tok, dataset.train, epoch_rng(args.seed, "pretrain", epoch, 0), True)
        lengths = np.array([min(len(p) + len(m), args.max_length) for p, m in docs])
        ctx.objectives.train()
        for idx in bucket_batches(lengths, args.batch_size, epoch_rng(args.seed, "pretrain", epoch, 1)):
            losses.append(train_step(ctx, collab, docs, idx, 0.0, None, opt)[0])
        if epoch == args.epochs or args.eval_every:
            report("pretrain", epoch, losses, time.perf_counter() - t)

    for group in opt.param_groups[:2]:
        group["lr"] *= args.ft_lr / args.lr
    model.readout = args.ft_readout
    for epoch in range(1, args.ft_epochs + 1):
        t, losses = time.perf_counter(), []
        rec = rec_docs(tok, dataset.train, epoch_rng(args.seed, "finetune", epoch, 0), 0.2, "heldout", args.max_length)
        lengths = np.array([len(p) for p in rec.prompts])
        prompts = [(p, []) for p in rec.prompts]
        for idx in bucket_batches(lengths, args.batch_size, epoch_rng(args.seed, "finetune", epoch, 1)):
            losses.append(train_step(ctx, REC, prompts, idx, 0.0, rec.targets, opt)[0])
        if epoch == args.ft_epochs or args.eval_every:
            report("finetune", epoch, losses, time.perf_counter() - t)
    print(json.dumps({"tag": args.tag, "total_s": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
