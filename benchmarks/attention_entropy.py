"""How evenly does the last prompt position attend over a user's history? Per layer, pretrained vs random.

Feeds recommendation prompts (``user_i has interacted with <items>, user_i will interact with``) for a sample
of users through the frozen backbone with freshly initialised ID tables (or a checkpoint's), and prints, per
layer, the attention entropy of the last position over the *item* positions, normalised by log(#items)
(1 = uniform over the history, 0 = one item), and the share of attention mass on item tokens at all.

    python benchmarks/attention_entropy.py --data runs/ml100k --users 64 --out docs/attention_entropy.png
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.data.matrix import row_items
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization.prompts import scoring_prompt


@torch.inference_mode()
def layer_stats(model: CLLM4Rec, tok, prompts: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per layer: mean normalised entropy over item positions, mean attention mass on item positions."""
    n_layers = model.backbone.config.num_hidden_layers
    ent, mass = np.zeros(n_layers), np.zeros(n_layers)
    for prompt in prompts:
        ids = torch.tensor([prompt])
        embeds = model.embed(ids, "collab")
        out = model.decoder(inputs_embeds=embeds, output_attentions=True, use_cache=False)
        is_item = (ids[0] >= model.n_words + model.n_users).numpy()
        n = int(is_item.sum())
        for layer, att in enumerate(out.attentions):
            a = att[0, :, -1, :].float().numpy()  # (heads, T): the last position's attention
            on_items = a[:, is_item]  # (heads, n)
            mass[layer] += on_items.sum(1).mean()
            p = on_items / on_items.sum(1, keepdims=True)
            h = -(p * np.log(p + 1e-12)).sum(1) / np.log(n)
            ent[layer] += h.mean()
    return ent / len(prompts), mass / len(prompts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--backbone", default="smollm2-135m")
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--init-scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=98765)
    ap.add_argument("--out", default=None, help="PNG plot of both curves")
    args = ap.parse_args()
    dataset = Dataset.load(args.data)
    rng = np.random.default_rng(args.seed)
    known = dataset.known("valid")
    lengths = np.diff(known.indptr)
    candidates = np.flatnonzero(lengths >= 10)
    users = [int(u) for u in np.sort(rng.choice(candidates, size=min(args.users, len(candidates)), replace=False))]
    results = {}
    for name, random_init in (("pretrained", False), ("random", True)):
        loaded = load_backbone(args.backbone, random_init=random_init, seed=args.seed)
        loaded.model.set_attn_implementation("eager")
        model = CLLM4Rec(loaded, dataset.n_users, dataset.n_items, init_scale=args.init_scale, seed=args.seed)
        model.autocast = False
        tok = loaded.id_tokenizer(dataset.n_users, dataset.n_items)
        prompts = [scoring_prompt(tok, u, row_items(known, u), 256, "rec") for u in users]
        ent, mass = layer_stats(model, tok, prompts)
        results[name] = {"entropy": ent.round(3).tolist(), "item_mass": mass.round(3).tolist()}
        print(
            json.dumps(
                {
                    "backbone": name,
                    "mean_entropy": round(float(ent.mean()), 3),
                    "mean_item_mass": round(float(mass.mean()), 3),
                    **results[name],
                }
            ),
            flush=True,
        )
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for name, r in results.items():
            axes[0].plot(r["entropy"], marker="o", ms=3, label=name)
            axes[1].plot(r["item_mass"], marker="o", ms=3, label=name)
        axes[0].set(xlabel="layer", ylabel="entropy / log(#items)", title="last position over history items")
        axes[1].set(xlabel="layer", ylabel="attention mass on items", title="share of attention on items")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
