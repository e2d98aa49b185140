"""Kill ``cllm4rec train`` at every write point of a run, resume it, and get the uninterrupted run bit for bit.

A write point is every rename or removal the atomic writers make (``os.replace``, the one-step swap of a
folder, ``shutil.rmtree``): the moments where what is on disk changes. The killed run is a forked child that
``os._exit``s just before its N-th write point, as ``kill -9`` would (no clean-up handlers run); the next
command is then the one a user would type: ``--resume`` where a run folder exists, else the same command again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ARGS = [
    "--seed",
    "4",
    "--device",
    "cpu",
    "--no-progress",
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=48",
    "pretrain.warmup_epochs=0",
    "pretrain.epochs=1",
    "pretrain.validate=true",
    "finetune.epochs=2",
    "pretrain.batch_size=8",
    "finetune.batch_size=8",
    "pretrain.content_fraction=0.25",  # short content passes: the test runs the command twice per write point
    "finetune.content_fraction=0.25",
]
KILLED = 137


def _child(argv: list[str], kill_at: int, count_file: str) -> None:
    """Run the CLI in this forked process, dying just before write point ``kill_at`` (0: never)."""
    from cllm4rec.cli.main import main
    from cllm4rec.core import files

    torch.set_num_threads(1)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process ends with os._exit)
    seen = [0]

    def point(real):
        def wrapped(*args, **kwargs):
            seen[0] += 1
            if seen[0] == kill_at:
                os._exit(KILLED)
            return real(*args, **kwargs)

        return wrapped

    os.replace = point(os.replace)
    shutil.rmtree = point(shutil.rmtree)
    files._exchange = point(files._exchange)
    status = main(argv)
    Path(count_file).write_text(str(seen[0]))
    os._exit(status)


def _run(argv: list[str], tmp: Path, kill_at: int = 0) -> tuple[int, int]:
    """(exit status, write points passed) of one CLI command in a forked child."""
    count = tmp / "count"
    count.unlink(missing_ok=True)
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(argv, kill_at, str(count)))
    proc.start()
    proc.join(timeout=300)
    assert proc.exitcode is not None, "the command hung"
    return proc.exitcode, int(count.read_text()) if count.is_file() else -1


def _train(out: Path, data: Path) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), *ARGS]


def _record(run: Path) -> dict:
    """Everything a run's result consists of, less wall-clock times."""
    record: dict = {"metrics": json.loads((run / "metrics.json").read_text())["metrics"]}
    for stage in ("pretrain", "finetune"):
        for kind in ("last", "best"):
            folder = run / stage / kind
            tables = load_file(str(folder / "model" / "id_embeddings.safetensors"))
            record[f"{stage}/{kind}"] = {k: v.numpy().tobytes() for k, v in tables.items()}
            state = json.loads((folder / "state.json").read_text())
            for row in state["history"]:
                row.pop("seconds")
            record[f"{stage}/{kind}/state"] = state
            record[f"{stage}/{kind}/optimizer"] = load_file(str(folder / "optimizer.safetensors")).keys()
    return record


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


@pytest.mark.slow
def test_a_kill_at_every_write_point_then_resume_gives_the_uninterrupted_run(
    tiny_data_dir: Path, tmp_path: Path
) -> None:
    status, points = _run(_train(tmp_path / "full", tiny_data_dir), tmp_path)
    assert status == 0 and points > 20
    expected = _record(tmp_path / "full")
    assert expected["finetune/best/state"]["epoch"] == expected["finetune/last/state"]["best_epoch"]
    for kill_at in range(1, points + 1):
        out = tmp_path / f"killed-{kill_at}"
        status, _ = _run(_train(out, tiny_data_dir), tmp_path, kill_at)
        assert status == KILLED, kill_at
        again = ["train", "--out", str(out), "--resume"] if (out / "run.json").is_file() else _train(out, tiny_data_dir)
        status, _ = _run(again, tmp_path)
        assert status == 0, (kill_at, again)
        got = _record(out)
        for key in expected:
            assert got[key] == expected[key], (kill_at, key)
        assert _leftovers(tmp_path) == [], kill_at
        shutil.rmtree(out)
