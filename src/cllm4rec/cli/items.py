"""``cllm4rec add-items``: new items, known only by their text, added to a trained run."""

from __future__ import annotations

import argparse
import json

from cllm4rec.cli.common import add_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "add-items",
        help="add new items from their text alone to a trained run (no interactions needed)",
        description=(
            "Place new items from their text (JSON lines: an id plus text fields) with the backbone frozen and "
            "every trained row unchanged, and write RUN/items/, the checkpoint that recommend, evaluate and "
            "serve use from then on (restart a running server to serve them)."
        ),
    )
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--items", required=True, metavar="FILE.jsonl", help='one item per line: {"id": ..., "title": ...}')
    p.add_argument("--data", metavar="DIR", help="the run's dataset folder, when it is no longer where it was trained")
    p.add_argument("--passes", type=int, default=1, help="content LM passes over the new texts (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the content passes (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(p)
    p.set_defaults(handler=_add_items)


def _add_items(args: argparse.Namespace) -> int:
    from cllm4rec.model.new_items import PlacementOptions
    from cllm4rec.serving.add_items import add_items

    options = PlacementOptions(passes=args.passes, seed=args.seed)
    summary = add_items(
        args.run, args.items, data=args.data, options=options, device=args.device, progress=not args.no_progress
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"added {summary['added']} items ({summary['items']} in all) in {summary['total_seconds']:.1f} s; "
            f"wrote {summary['checkpoint']} (restart 'cllm4rec serve' to serve them)"
        )
    return 0
