"""``cllm4rec data``: fetch a public dataset, prepare a dataset folder, print its statistics.

    cllm4rec data fetch ml-100k [--cache-dir DIR]
    cllm4rec data prepare --format {movielens,recbole,amazon,csv} --input PATH [--meta PATH] --out DIR
                          [--min-rating 4] [--kcore 0] [--split random|loo] [--cold-items F] [--seed N] [--force] ...
    cllm4rec data stats DIR [--json]

Heavy imports (numpy, scipy) happen inside the handlers so that ``cllm4rec --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cllm4rec.cli.common import print_help
from cllm4rec.core.defaults import DATA_FORMATS, DEFAULT_SEED


def register(subparsers: Any) -> None:
    """Add ``data`` and its subcommands to the top-level parser."""
    data = subparsers.add_parser("data", help="fetch, prepare and inspect datasets")
    data.set_defaults(handler=lambda args: print_help(data))
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    fetch = sub.add_parser(
        "fetch",
        help="download a public dataset into the cache (prints its folder)",
        description="Download a public dataset into the cache; the last line printed is its folder.",
    )
    fetch.add_argument("name", help="dataset name: ml-100k (MovieLens 100K, as RecBole atomic files)")
    fetch.add_argument("--cache-dir", default=None, help="cache root (default: $CLLM4REC_CACHE or ~/.cache/cllm4rec)")
    fetch.set_defaults(handler=_fetch)

    prep = sub.add_parser(
        "prepare",
        help="read a source, filter, re-index and split it into a dataset folder",
        description="Read a source, keep positives, merge duplicates, re-index and split per user.",
    )
    prep.add_argument("--format", required=True, help=f"source format: {', '.join(DATA_FORMATS)}")
    prep.add_argument("--input", required=True, help="source file or folder")
    prep.add_argument("--meta", default=None, help="amazon: item metadata file (2014 or 2018, plain or .gz)")
    prep.add_argument("--out", required=True, help="dataset folder to write (refused if it exists, see --force)")
    prep.add_argument("--force", action="store_true", help="replace an existing --out folder")
    g = prep.add_argument_group("preprocessing and split")
    g.add_argument("--min-rating", type=float, default=4.0, help="keep ratings >= this (default 4; 0 keeps all)")
    g.add_argument("--kcore", type=int, default=0, help="iterative k-core filtering (default 0 = off)")
    g.add_argument("--split", default="random", help="random (per-user 80/10/10, default) or loo (leave last out)")
    g.add_argument(
        "--cold-items",
        type=float,
        default=0.0,
        metavar="F",
        help="hold out a seeded share F of the items as cold-start items, half for validation, half for test "
        "(default 0 = none)",
    )
    g.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the random split (default {DEFAULT_SEED})")
    c = prep.add_argument_group("columns (csv, recbole)")
    c.add_argument("--user-col", default=None, help="user ID column")
    c.add_argument("--item-col", default=None, help="item ID column")
    c.add_argument("--rating-col", default=None, help="rating column")
    c.add_argument("--time-col", default=None, help="timestamp column (unix seconds or ISO date)")
    c.add_argument("--text-col", default=None, help="review-text column")
    c.add_argument("--sep", default=None, help="csv delimiter (default: sniffed; '\\t' for tab)")
    c.add_argument("--item-text-fields", default=None, help="recbole: comma-separated .item columns (col or col=name)")
    c.add_argument("--user-text-fields", default=None, help="recbole: comma-separated .user columns (col or col=name)")
    prep.set_defaults(handler=_prepare)

    stats = sub.add_parser("stats", help="print statistics of a prepared dataset folder")
    stats.add_argument("dir", help="prepared dataset folder")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(handler=_stats)


def _fetch(args: argparse.Namespace) -> int:
    from cllm4rec.core.errors import CLLM4RecError
    from cllm4rec.data.fetch import DATASETS, fetch_ml100k

    if args.name not in DATASETS:
        raise CLLM4RecError(f"unknown dataset {args.name!r}; available: {', '.join(DATASETS)}")
    folder = fetch_ml100k(args.cache_dir)
    print(
        "MovieLens 100K (RecBole atomic files); prepare it with: "
        f"cllm4rec data prepare --format recbole --input {folder} --out DIR",
        file=sys.stderr,
    )
    print(folder)
    return 0


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip()) or None


def _prepare(args: argparse.Namespace) -> int:
    from cllm4rec.cli.guards import writer_lock
    from cllm4rec.core.errors import CLLM4RecError
    from cllm4rec.core.files import check_output_folder, remove_stale_temporaries
    from cllm4rec.data.options import check_format

    check_format(args.format)
    out = Path(args.out)
    with writer_lock(out, "dataset folder"):
        remove_stale_temporaries(out)  # what a killed earlier prepare of this folder left beside it
        check_output_folder(
            out,
            what="dataset",
            marker="meta.json",
            marker_key="content_hash",
            inputs=[args.input, args.meta],
            force=args.force,
        )
        if out.exists() and not args.force:
            raise CLLM4RecError(f"output folder {out} already exists (use --force to overwrite)")
        return _prepare_locked(args, out)


def _prepare_locked(args: argparse.Namespace, out: Path) -> int:
    from cllm4rec.data.options import PrepareOptions, ReaderOptions
    from cllm4rec.data.prepare import prepare_dataset
    from cllm4rec.data.stats import dataset_stats, format_stats

    sep = args.sep
    if sep is not None and sep.lower() in ("\\t", "tab"):
        sep = "\t"
    options = PrepareOptions(
        min_rating=args.min_rating, kcore=args.kcore, split=args.split, seed=args.seed, cold_items=args.cold_items
    )
    reader_options = ReaderOptions(
        user_col=args.user_col,
        item_col=args.item_col,
        rating_col=args.rating_col,
        time_col=args.time_col,
        text_col=args.text_col,
        sep=sep,
        item_text_fields=_split_list(args.item_text_fields),
        user_text_fields=_split_list(args.user_text_fields),
    )
    ds = prepare_dataset(args.format, args.input, args.meta, options, reader_options)
    ds.save(out, force=args.force)
    print(format_stats(dataset_stats(ds)))
    print(f"content hash  {ds.meta['content_hash'][:16]}")
    print(f"wrote {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from cllm4rec.data.dataset import Dataset
    from cllm4rec.data.stats import dataset_stats, format_stats

    stats = dataset_stats(Dataset.load(args.dir))
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats))
    return 0
