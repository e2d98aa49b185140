"""``cllm4rec backbone info`` and ``cllm4rec tokenize``: inspect a backbone and the extended vocabulary.

    cllm4rec backbone info [NAME] [--json] [--cache-dir DIR] [--random-init] [--seed N]
    cllm4rec tokenize [--backbone NAME] --users I --items J [--json] [--cache-dir DIR] "TEXT"

Heavy imports (torch, transformers) happen inside the handlers so that ``cllm4rec --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cllm4rec.cli.common import print_help
from cllm4rec.core.defaults import DEFAULT_BACKBONE

_CACHE_HELP = "cache root (default: $CLLM4REC_CACHE or ~/.cache/cllm4rec)"
_NAME_HELP = (
    "alias (smollm2-135m, tiny-gpt2, tiny-llama, gpt2-small-random), model folder, .gguf file or hub id "
    f"(default {DEFAULT_BACKBONE})"
)


def register(subparsers: Any) -> None:
    """Add ``backbone`` (with ``info``) and ``tokenize`` to the top-level parser."""
    backbone = subparsers.add_parser("backbone", help="inspect a backbone language model")
    backbone.set_defaults(handler=lambda args: print_help(backbone))
    sub = backbone.add_subparsers(dest="backbone_command", metavar="SUBCOMMAND")
    info = sub.add_parser(
        "info",
        help="load a backbone and print its architecture, sizes, source and load time",
        description="Load a backbone (fetching and caching the default one if needed) and describe it.",
    )
    info.add_argument("name", nargs="?", default=DEFAULT_BACKBONE, help=_NAME_HELP)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--cache-dir", default=None, help=_CACHE_HELP)
    info.add_argument("--random-init", action="store_true", help="re-initialise the weights randomly")
    info.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    info.set_defaults(handler=_info)

    tok = subparsers.add_parser(
        "tokenize",
        help="show how a text splits into word and user/item tokens",
        description=(
            "Tokenize TEXT with the extended vocabulary: user_<i> and item_<j> are single tokens, the rest "
            "goes through the backbone tokenizer. Prints one line per token: position, id, token."
        ),
    )
    tok.add_argument("text", help='text to tokenize, e.g. "user_3 has interacted with item_7 item_9"')
    tok.add_argument("--backbone", default=DEFAULT_BACKBONE, help=_NAME_HELP)
    tok.add_argument("--users", type=int, required=True, help="number of users I (ids user_0..user_{I-1})")
    tok.add_argument("--items", type=int, required=True, help="number of items J (ids item_0..item_{J-1})")
    tok.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tok.add_argument("--cache-dir", default=None, help=_CACHE_HELP)
    tok.set_defaults(handler=_tokenize)


def _info(args: argparse.Namespace) -> int:
    from cllm4rec.backbone import load_backbone

    loaded = load_backbone(args.name, cache_dir=args.cache_dir, random_init=args.random_init, seed=args.seed)
    info = loaded.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "parameters":
            value = f"{value:,} ({value / 1e6:.1f} M)"
        print(f"{key:<{width}}  {value}")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from cllm4rec.backbone import load_backbone

    loaded = load_backbone(args.backbone, cache_dir=args.cache_dir)
    tokenizer = loaded.id_tokenizer(args.users, args.items)
    ids = tokenizer.encode(args.text)
    tokens = tokenizer.tokenize(args.text)
    if args.json:
        print(json.dumps({"ids": ids, "tokens": tokens, "decoded": tokenizer.decode(ids)}, indent=2))
        return 0
    for pos, (tid, token) in enumerate(zip(ids, tokens, strict=True)):
        kind = "id" if tid >= tokenizer.n_words else "word"
        print(f"{pos:>4}  {tid:>8}  {kind:<4}  {token}")
    sizes = f"{tokenizer.n_words} words + {tokenizer.n_users} users + {tokenizer.n_items} items"
    print(f"{len(ids)} tokens; vocabulary {sizes}")
    return 0
