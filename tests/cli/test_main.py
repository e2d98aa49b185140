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
    for command in ("benchmark", "baseline"):
        assert command in listed


def test_bad_inputs_are_one_line_errors(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{not json")
    cases = [
        ["evaluate", "--run", str(run)],
        ["recommend", "--run", str(run), "--user", "u1"],
        ["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "pretrain.lr=[1"],
        ["baseline", "--data", str(tmp_path / "missing"), "--model", "pop"],
    ]
    for args in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("cllm4rec: error: ") and err.count("\n") == 1, (args, err)
        assert "Traceback" not in err


def test_a_successful_command_destroys_the_process_group_it_leaves(tmp_path, capsys) -> None:
    """A distributed launch must not leave its gloo group to interpreter teardown (it can abort the process)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        command = ["tokenize", "--backbone", "tiny-llama", "--users", "3", "--items", "3", "user_1 liked item_2"]
        assert main(command) == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_a_failed_command_leaves_the_process_group_alone(tmp_path) -> None:
    """After an error another process may still be in a collective: destroying the group then can hang."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
