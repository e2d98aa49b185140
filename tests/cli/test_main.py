"""The command-line entry point: instant help, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from cllm4rec.cli.main import main


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from cllm4rec.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_command_is_registered(capsys) -> None:
    assert main([]) == 2
    listed = capsys.readouterr().out
    for command in ("data", "backbone", "tokenize", "pretrain", "finetune", "train", "evaluate", "recommend"):
        assert command in listed
    for command in ("benchmark", "upgrade-run", "baseline"):
        assert command in listed
