"""``cllm4rec baseline``: run a classic baseline on a prepared dataset and print its metrics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cllm4rec.baselines import BASELINES
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="run a classic baseline (popularity, ItemKNN, EASE, Multi-VAE, TF-IDF kNN, LLM-embedding kNN)",
        description=(
            "Tune a baseline on the validation split, refit it for test where the method calls for it, and "
            "report Recall@20/40/100 and NDCG@20/100 on validation and test with the same metric code as "
            "CLLM4Rec."
        ),
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="prepared dataset folder")
    parser.add_argument("--model", required=True, choices=list(BASELINES), help="which baseline")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed for models that draw random numbers (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="fix a hyperparameter (it is then not tuned), e.g. lam=200 or max_epochs=50",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(handler=run)


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; types are checked by the model's parameters."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CLLM4RecError(f"--param expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def format_result(result: dict[str, Any], header: str) -> str:
    """A human-readable table of one ``BaselineResult.to_dict()``."""
    from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS, REPORT_KEYS, metric_title, selection_score

    params = ", ".join(f"{k}={v}" for k, v in result["params"].items()) or "(none)"
    lines = [header, f"chosen hyperparameters: {params}"]
    if result["info"]:
        lines.append("details: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result["info"].items()))
    lines.append(
        f"fit {result['fit_seconds']:.2f} s (validation search {result['tune_seconds']:.2f} s), "
        f"scoring {result['score_seconds_per_1k_users']:.3f} s per 1k users"
    )
    lines.append("")
    lines.append(f"{'ranking':<11} {'users':>6} " + " ".join(f"{metric_title(key):>10}" for key in REPORT_KEYS))
    rows = {"valid": result["valid"], "test": result["test"], **result.get("cold", {})}
    if result.get("few", {}).get("n_users"):
        rows["test <=5"] = result["few"]
    for split, metrics in rows.items():
        cells = " ".join(f"{metrics[key]:>10.4f}" for key in REPORT_KEYS)
        lines.append(f"{split:<11} {metrics['n_users']:>6} {cells}")
    if result["tuning"]:
        rule = " + ".join(metric_title(key) for key in DEFAULT_SELECTION_KEYS)
        lines += ["", f"validation search (selection score = {rule}):"]
        for row in result["tuning"]:
            tuned = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k != "seed")
            lines.append(f"  {tuned:<30} {selection_score(row.get('valid-cold', row['valid'])):.4f}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    from cllm4rec.baselines.runner import run_baseline
    from cllm4rec.data import Dataset

    params = parse_params(args.param)
    dataset = Dataset.load(args.data)
    result = run_baseline(args.model, dataset, seed=args.seed, progress=not args.no_progress, params=params)
    out = result.to_dict()
    if args.json:
        out["data"] = str(args.data)
        print(json.dumps(out))
    else:
        header = f"baseline {result.name} on {args.data} ({dataset.n_users} users, {dataset.n_items} items)"
        print(format_result(out, header))
    return 0
