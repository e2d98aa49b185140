"""Entry point: builds the argparse tree from the command modules and maps errors to one line on stderr.

Each command module exposes ``register(subparsers)``; handlers import torch and friends lazily so that
``cllm4rec --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cllm4rec import __version__
from cllm4rec.core.errors import CLLM4RecError

COMMAND_MODULES = (
    "cllm4rec.cli.data",
    "cllm4rec.cli.backbone",
    "cllm4rec.cli.train",
    "cllm4rec.cli.evaluate",
    "cllm4rec.cli.baseline",
    "cllm4rec.cli.serve",
    "cllm4rec.cli.items",
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the full parser from every command module that is present."""
    parser = argparse.ArgumentParser(
        prog="cllm4rec",
        description="CLLM4Rec: recommendation with a collaborative large language model.",
    )
    parser.add_argument("--version", action="version", version=f"cllm4rec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


def close_process_group() -> None:
    """Destroy the process group a distributed command initialised, while the interpreter is still whole.

    Left to interpreter teardown, gloo's worker threads can abort a process that has finished its work
    (``terminate called without an active exception``, SIGABRT), which fails the launch. Called only after a
    command succeeded: destroying a group while another process is still in a collective can hang.
    """
    dist = sys.modules.get("torch.distributed")  # never imports torch for a command that did not
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        status = int(args.handler(args) or 0)
        close_process_group()
        return status
    except CLLM4RecError as exc:
        print(f"cllm4rec: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: the user's to fix, not a crash
        print(f"cllm4rec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cllm4rec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
