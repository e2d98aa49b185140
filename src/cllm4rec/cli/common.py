"""Pieces every command module shares (kept import-free so ``cllm4rec --help`` stays instant)."""

from __future__ import annotations

import argparse

from cllm4rec.core.defaults import DEVICES


def print_help(parser: argparse.ArgumentParser) -> int:
    """Print a command group's help (it was called without a subcommand) and return the usage exit code."""
    parser.print_help()
    return 2


def add_device(parser: argparse.ArgumentParser, what: str = "where to run") -> None:
    """``--device auto|cpu|cuda``."""
    parser.add_argument("--device", default="auto", choices=DEVICES, help=f"{what} (default auto: CUDA if available)")
