"""``cllm4rec evaluate | recommend | benchmark``: metrics of a run, top-k lists, comparisons."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cllm4rec.baselines import BASELINES
from cllm4rec.cli.common import add_device
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add evaluate, recommend and benchmark."""
    p = subparsers.add_parser("evaluate", help="full-ranking metrics of a trained run on validation or test")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--split", default="test", choices=("val", "valid", "test"), help="split (default test)")
    p.add_argument("--per-user", metavar="FILE", help="also write per-user rows to FILE (.csv or .jsonl)")
    p.add_argument("--data", metavar="DIR", help="the dataset folder, when it is no longer where it was trained")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device(p)
    p.add_argument("--batch-size", type=int, default=32, help="prompts per forward pass (default 32)")
    p.set_defaults(handler=_evaluate)

    p = subparsers.add_parser("recommend", help="top-k items for a user, a raw history, or a file of users")
    p.add_argument("--run", required=True, help="run folder")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="external ID of a user in the dataset")
    who.add_argument("--history", help="comma-separated external item IDs of someone not in the data")
    who.add_argument("--users-file", help="file with one external user ID per line (batch mode)")
    p.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--output", help="batch mode: OUT.csv or OUT.jsonl")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_device(p)
    p.set_defaults(handler=_recommend)

    p = subparsers.add_parser("benchmark", help="baselines and CLLM4Rec runs side by side on the test split")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", required=True, help="folder for results.md, results.json and results.png")
    p.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="CLLM4Rec run folders to evaluate")
    p.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help=f"comma-separated baselines (default all: {','.join(BASELINES)}; empty for none)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the baselines (default {DEFAULT_SEED})")
    add_device(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing --out folder")
    p.set_defaults(handler=_benchmark)


def _evaluate(args: argparse.Namespace) -> int:
    from cllm4rec.evaluation import REPORT_KEYS, evaluate
    from cllm4rec.serving import load_run
    from cllm4rec.serving.outputs import check_output_path, write_rows

    if args.batch_size < 1:
        raise CLLM4RecError("--batch-size must be >= 1")
    if args.per_user:
        check_output_path(args.per_user)
    split = "valid" if args.split in ("val", "valid") else "test"
    loaded = load_run(args.run, device=args.device, data=args.data, progress=not args.json)
    loaded.recommender.batch_size = args.batch_size
    dataset = loaded.dataset()
    evaluation = evaluate(loaded.recommender, dataset, split, progress=not args.json)
    metrics = evaluation.metrics
    if args.per_user:
        rows = [{**row, "user": dataset.user_ids[row["user"]]} for row in evaluation.per_user()]
        columns = ["user", "n_heldout", *[k for k in rows[0] if k not in ("user", "n_heldout")]] if rows else []
        write_rows(args.per_user, rows, columns)
    rankings = {"metrics": metrics}
    if dataset.cold is not None and loaded.style == "rec" and not loaded.catalog.added:  # new items (§11)
        from cllm4rec.runs.folder import RunFolder
        from cllm4rec.training.runner import cold_rankings

        seed = int(RunFolder(loaded.root).info().get("seed", DEFAULT_SEED))
        rankings.update(cold_rankings(loaded.recommender, dataset, split, seed=seed, progress=not args.json))
    if args.json:
        out = {"run": str(args.run), "split": split, "checkpoint": str(loaded.checkpoint), **rankings}
        print(json.dumps(out, indent=2))
    else:
        print(f"run {args.run}, {split} split, {metrics['n_users']} users, checkpoint {loaded.checkpoint}")
        names = {"metrics": "", "metrics_cold": "cold ", "metrics_all": "all  "}
        for name, values in rankings.items():
            for key in REPORT_KEYS:
                print(f"  {names[name]}{key:<11} {values[key]:.4f}")
        if args.per_user:
            print(f"per-user rows written to {args.per_user}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from cllm4rec.serving import Query, load_run, recommend
    from cllm4rec.serving.outputs import check_output_path, write_rows

    if args.k <= 0:
        raise CLLM4RecError(f"-k must be a positive number of items, got {args.k}")
    if args.users_file:
        if not args.output:
            raise CLLM4RecError("--users-file needs --output OUT.csv or OUT.jsonl")
        check_output_path(args.output)
        users = _read_users(Path(args.users_file))
        queries = [Query(user=u) for u in users]
    elif args.output:
        raise CLLM4RecError("--output goes with --users-file")
    elif args.history is not None:
        history = tuple(h.strip() for h in args.history.split(",") if h.strip())
        if not history:
            raise CLLM4RecError("--history is empty: give at least one item ID")
        queries = [Query(history=history)]
    else:
        queries = [Query(user=args.user)]
    loaded = load_run(args.run, device=args.device, progress=bool(args.users_file))
    lists = recommend(loaded, queries, k=args.k)
    if args.users_file:
        if Path(args.output).suffix == ".csv":
            rows = [{"user": u, **r.to_dict()} for u, recs in zip(users, lists, strict=True) for r in recs]
            write_rows(args.output, rows, ["user", "rank", "item", "score", "title"])
        else:
            rows = [{"user": u, "items": [r.to_dict() for r in recs]} for u, recs in zip(users, lists, strict=True)]
            write_rows(args.output, rows, ["user", "items"])
        print(f"wrote top-{args.k} for {len(users)} users to {args.output}")
        return 0
    recs = lists[0]
    if args.json:
        print(json.dumps([r.to_dict() for r in recs], indent=2, ensure_ascii=False))
    else:
        print(f"top-{args.k} for {queries[0].describe()}:")
        for r in recs:
            print(f"{r.rank:>4}. {r.item:<12} {r.score:>9.3f}  {r.title or ''}")
    return 0


def _read_users(path: Path) -> list[str]:
    if not path.is_file():
        raise CLLM4RecError(f"users file {path} does not exist")
    users = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not users:
        raise CLLM4RecError(f"users file {path} lists no users")
    return users


def _benchmark(args: argparse.Namespace) -> int:
    from cllm4rec.benchmark import run_benchmark

    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    table = run_benchmark(
        args.data,
        args.out,
        runs=args.runs,
        baselines=baselines,
        seed=args.seed,
        device=args.device,
        force=args.force,
    )
    print(table)
    return 0
