"""Data-parallel training: two processes (torch.distributed.run, gloo on the CPU) train as one process with
the same global batch (docs/DESIGN.md §10), and an interrupted two-process run resumes with the stage
commands.

Tolerances (two processes against one): losses and regularizations relative 1e-6, ID-embedding tables
absolute 1e-5, validation and test metrics absolute 1e-6. The runs differ only in float summation order (a
batch's shares are computed and reduced separately); measured: losses 5e-8 relative, tables 7e-7 after
Adam at lr 1e-2, metrics equal. Averaging the processes' own means instead of weighting each share by its
part of the global batch is off by 4e-5 from the first epoch. A resumed two-process run equals the
uninterrupted one exactly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cllm4rec.runs.config import load_config
from cllm4rec.training.runner import RunOptions, run_train

LOSS_RTOL = 1e-6
TABLE_ATOL = 1e-5
METRIC_ATOL = 1e-6
TIMEOUT = 300
"""Seconds a launched run may take before the test fails (it takes about 20 on a shared 2-core CPU)."""
# A global batch of 5 splits 3 + 2; the 24 interaction and recommendation documents end on a batch of 4
# (2 + 2) and the 156 content documents on a batch of 1, which leaves the second process's share empty.
OVERRIDES = [
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=64",
    "model.init_scale=1.0",
    "pretrain.batch_size=5",
    "finetune.batch_size=5",
    "pretrain.lr=1e-2",
    "finetune.lr=1e-2",
    "pretrain.warmup_epochs=1",
    "pretrain.epochs=3",
    "finetune.epochs=2",
]
SEED = 7
STAGES = ("pretrain", "finetune")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(*args: str) -> list[str]:
    """``cllm4rec ARGS`` on two CPU processes, the rendezvous on a free local port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "cllm4rec",
        *args,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(cmd: list[str]) -> str:
    """Run a launch to the end and return its output; past ``TIMEOUT``, stop it and fail.

    The launcher is stopped with SIGTERM, which it passes on to its workers (they run in their own sessions,
    so killing the launcher alone would leave them behind).
    """
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop(proc)
        pytest.fail(f"{' '.join(cmd)} took more than {TIMEOUT} s")
    assert proc.returncode == 0, out[-6000:]
    return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the launcher (it stops its workers), SIGKILL if it has not exited after 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _train_args(out: Path, data: Path) -> list[str]:
    return ["train", "--out", str(out), "--data", str(data), "--seed", str(SEED), "--device", "cpu", "--no-progress"]


def _history(run: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run / stage / "log.jsonl").read_text().splitlines()]


def _tables(run: Path, stage: str, which: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(run / stage / which / "model" / "id_embeddings.safetensors"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, make_dataset) -> Path:
    path = tmp_path_factory.mktemp("dist") / "data"
    make_dataset().save(path)
    return path


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, str]:
    """A whole ``cllm4rec train`` on two processes: its run folder and its console output."""
    out = tmp_path_factory.mktemp("two") / "run"
    return out, _run(_launch(*_train_args(out, data_dir), *OVERRIDES))


def test_two_processes_train_as_one_with_the_same_global_batch(
    two_process_run: tuple[Path, str], data_dir: Path, tmp_path: Path
) -> None:
    two, stdout = two_process_run
    one = tmp_path / "one"
    run_train(one, data_dir, load_config(overrides=OVERRIDES), RunOptions(seed=SEED, device="cpu", progress=False))

    for stage in STAGES:
        rows_one, rows_two = _history(one, stage), _history(two, stage)
        assert [r["epoch"] for r in rows_two] == [r["epoch"] for r in rows_one]
        for a, b in zip(rows_one, rows_two, strict=True):
            assert (a["processes"], a["batch_size"], a["process_batch_size"]) == (1, 5, 5)
            assert (b["processes"], b["batch_size"], b["process_batch_size"]) == (2, 5, 3)
            losses = [k for k in a if k.endswith(("_loss", "_reg"))]
            metrics = [k for k in a if k.startswith("valid_")]
            assert set(losses + metrics) <= set(b)
            for key in losses:
                assert b[key] == pytest.approx(a[key], rel=LOSS_RTOL, abs=1e-12), (stage, a["epoch"], key)
            for key in metrics:
                assert b[key] == pytest.approx(a[key], abs=METRIC_ATOL), (stage, a["epoch"], key)
            for key, points in a.get("trace", {}).items():
                got = [p for point in b["trace"][key] for p in point]
                assert got == pytest.approx([p for point in points for p in point], rel=LOSS_RTOL), key
        for which in ("last", "best"):
            ta, tb = _tables(one, stage, which), _tables(two, stage, which)
            assert ta.keys() == tb.keys()
            for key in ta:
                torch.testing.assert_close(tb[key], ta[key], rtol=0, atol=TABLE_ATOL, msg=f"{stage}/{which} {key}")
    # the runs trained: finetuning moved the tables far beyond the tolerance
    moved = _tables(one, "finetune")["item_collab"] - _tables(one, "pretrain")["item_collab"]
    assert moved.abs().max() > 1000 * TABLE_ATOL

    m1 = json.loads((one / "metrics.json").read_text())["metrics"]
    m2 = json.loads((two / "metrics.json").read_text())["metrics"]
    assert m2 == pytest.approx(m1, abs=METRIC_ATOL)
    # only the main process printed: one summary per epoch, one result, both batch sizes announced
    assert stdout.count('"split": "test"') == 1
    assert stdout.count("pretrain epoch 1 ") == 1
    assert "pretrain on 2 processes: global batch 5 (3 per process)" in stdout


def test_interrupted_two_process_run_resumes_with_the_stage_commands(
    two_process_run: tuple[Path, str], data_dir: Path, tmp_path: Path
) -> None:
    """Stop a two-process ``train`` (SIGTERM to the launcher, as a scheduler would) after an epoch, then
    ``pretrain --resume`` and ``finetune`` on two processes: the same tables as the uninterrupted run."""
    full, _ = two_process_run
    run = tmp_path / "run"
    cmd = _launch(*_train_args(run, data_dir), *OVERRIDES)
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = run / "pretrain" / "last" / "state.json"
    deadline = time.time() + TIMEOUT
    try:
        while time.time() < deadline and proc.poll() is None:
            if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 1:
                break
            time.sleep(0.01)
    finally:
        _stop(proc)
    stopped_at = json.loads(state_file.read_text())["epoch"]
    assert stopped_at < 4 and not (run / "finetune").exists(), "the run finished before it could be stopped"

    common = ["--device", "cpu", "--no-progress"]
    out = _run(_launch("pretrain", "--out", str(run), "--resume", *common))
    assert "pretraining done: 4 epochs" in out
    # "--": torchrun's own parser would take --run for its --run-path (README)
    out = _run(_launch("--", "finetune", "--run", str(run), *common))
    assert out.count("finetuning done: best epoch") == 1
    for stage in STAGES:
        for which in ("last", "best"):
            a, b = _tables(full, stage, which), _tables(run, stage, which)
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), (stage, which, key)
        assert [r["epoch"] for r in _history(run, stage)] == [r["epoch"] for r in _history(full, stage)]
