"""Nothing lost, nothing forged on disk: locks, what ``--force`` may replace, damaged checkpoints, backbone
typos, stale temporaries, resumed finished runs and file modes (issue 19, items 2-8)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cllm4rec.cli.main import main
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir, folder_lock, remove_stale_temporaries, write_text_atomic
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import verify_checkpoint


def _csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "x.csv"
    path.write_text("user,item,rating\n" + "".join(f"u{k % 4},i{k % 7},5\n" for k in range(40)))
    return path


def _prepare(src: Path, out: Path, *extra: str) -> list[str]:
    return ["data", "prepare", "--format", "csv", "--input", str(src), "--out", str(out), *extra]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ----- 2. a lock per output folder ---------------------------------------------------------------------
def test_a_second_writer_of_a_run_folder_is_refused_naming_the_holder(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys
) -> None:
    run = tmp_path / "run"
    with folder_lock(run, "run folder"):  # another process would hold it the same way (flock per open file)
        code = main(["train", "--data", str(tiny_data_dir), "--out", str(run), "--force", *tiny_cli_args])
        err = capsys.readouterr().err
        assert code == 2 and f"in use by another cllm4rec process (PID {os.getpid()})" in err
        assert err.count("\n") == 1 and not run.exists()
        src = _csv(tmp_path / "src")
        assert main(_prepare(src, tmp_path / "ds")) == 0  # other folders are free
        with folder_lock(tmp_path / "ds", "dataset folder"):
            assert main(_prepare(src, tmp_path / "ds", "--force")) == 2
            assert "dataset folder" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), *tiny_cli_args]) == 0


def test_the_lock_is_held_by_a_running_command(tmp_path: Path) -> None:
    """A real second process: the lock file names its PID while it holds the lock."""
    target = tmp_path / "out"
    code = (
        f"from cllm4rec.core.files import folder_lock\nwith folder_lock({str(target)!r}):\n"
        "    print('locked', flush=True)\n    input()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"  # the holder has the lock
        with pytest.raises(CLLM4RecError, match=f"PID {holder.pid}"), folder_lock(target):
            pass
    finally:
        holder.communicate("\n", timeout=30)
    with folder_lock(target):  # released with its process
        pass


# ----- 3. --force replaces only cllm4rec folders of its kind, never an input ---------------------------
def test_force_never_deletes_the_folder_holding_the_input(tmp_path: Path, capsys) -> None:
    src = _csv(tmp_path / "d")
    assert main(_prepare(src, tmp_path / "d", "--force")) == 2
    assert "holds the input" in capsys.readouterr().err and src.is_file()


def test_force_refuses_a_folder_of_another_kind(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys
) -> None:
    other = tmp_path / "other-data"
    shutil.copytree(tiny_data_dir, other)
    code = main(["train", "--data", str(tiny_data_dir), "--out", str(other), "--force", *tiny_cli_args])
    assert code == 2 and "is not a cllm4rec run folder" in capsys.readouterr().err
    assert (other / "meta.json").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(_prepare(_csv(tmp_path / "src"), mine, "--force")) == 2
    assert "is not a cllm4rec dataset folder" in capsys.readouterr().err and (mine / "thesis.tex").is_file()
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(mine), "--force", *tiny_cli_args]) == 2
    assert (mine / "thesis.tex").is_file()
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), *tiny_cli_args]) == 0
    assert main(_prepare(_csv(tmp_path / "src"), run, "--force")) == 2  # a run folder is not a dataset
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), "--force", *tiny_cli_args]) == 0


# ----- 4. a missing manifest is damage: nothing is read unverified ----------------------------------------
def test_a_checkpoint_without_its_manifest_is_damaged(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = run / "finetune" / "best"
    (best / "manifest.json").unlink()
    tables = best / "model" / "id_embeddings.safetensors"
    data = bytearray(tables.read_bytes())
    data[-7] ^= 0x10  # a flipped bit the manifest would have caught
    tables.write_bytes(bytes(data))
    with pytest.raises(CLLM4RecError, match="is damaged: its manifest.json is missing"):
        verify_checkpoint(best)
    code = main(["recommend", "--run", str(run), "--user", "u3"])
    err = capsys.readouterr().err
    assert code == 2 and "damaged" in err and err.count("\n") == 1


# ----- 5. a misspelled backbone fails at once, before any folder -----------------------------------------
@pytest.mark.parametrize("name", ["smollm2-135", "tiny-lama", "./no/such/folder"])
def test_unknown_backbone_fails_at_once_and_leaves_no_run_folder(
    name: str, tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(Dataset, "load", lambda *a, **k: pytest.fail("read the dataset before checking the name"))
    run = tmp_path / "run"
    args = [a for a in tiny_cli_args if not a.startswith("model.backbone=")]
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), *args, f"model.backbone={name}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "smollm2-135m, tiny-gpt2, tiny-llama" in err and not run.exists()


# ----- 6. stale temporaries of a killed writer -----------------------------------------------------------
def test_stale_temporaries_of_a_killed_prepare_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".ds.tmp-{dead}-abc123"
    busy = tmp_path / f".ds.tmp-{alive}-def456"  # another live writer's: not ours to remove
    for folder in (stale, busy):
        folder.mkdir()
        (folder / "train.npz").write_bytes(b"half")
    assert main(_prepare(_csv(tmp_path / "src"), out)) == 0
    assert not stale.exists() and busy.exists() and (out / "meta.json").is_file()


def test_a_parked_old_folder_comes_back_when_the_swap_was_cut(tmp_path: Path) -> None:
    target = tmp_path / "last"
    parked = tmp_path / f".last.old-{_dead_pid()}"
    parked.mkdir()
    (parked / "state.json").write_text("{}")
    remove_stale_temporaries(target)
    assert (target / "state.json").is_file() and not parked.exists()


# ----- 7. a finished run's results stand ------------------------------------------------------------------
def test_resuming_a_finished_run_keeps_its_results(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys
) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), *tiny_cli_args]) == 0
    before = (run / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--device", "cpu", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert (run / "metrics.json").read_bytes() == before and "has finished" in err
    assert json.loads(out) == json.loads(before)


def test_a_resumed_run_counts_the_time_of_every_part(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str]
) -> None:
    run = tmp_path / "run"
    args = [a for a in tiny_cli_args if a != "pretrain.epochs=1"] + ["pretrain.epochs=3"]
    assert main(["pretrain", "--data", str(tiny_data_dir), "--out", str(run), *args]) == 0
    assert main(["train", "--out", str(run), "--resume", "--device", "cpu", "--no-progress"]) == 0
    seconds = sum(
        row["seconds"]
        for stage in ("pretrain", "finetune")
        for row in json.loads((run / stage / "last" / "state.json").read_text())["history"]
    )
    assert json.loads((run / "metrics.json").read_text())["train_seconds"] >= round(seconds, 1) - 0.05


# ----- 8. the user's umask, not mkdtemp's 0700 -----------------------------------------------------------
@pytest.mark.parametrize(("mask", "folder", "file"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_outputs_follow_the_umask(mask: int, folder: int, file: int, tmp_path: Path) -> None:
    old = os.umask(mask)
    try:
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "f").write_text("x")
        write_text_atomic(tmp_path / "t.txt", "x")
        assert main(_prepare(_csv(tmp_path / "src"), tmp_path / "ds")) == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "d", tmp_path / "d" / "sub", tmp_path / "ds"):
        assert stat.S_IMODE(path.stat().st_mode) == folder, path
    for path in (tmp_path / "d" / "sub" / "f", tmp_path / "t.txt", tmp_path / "ds" / "meta.json"):
        assert stat.S_IMODE(path.stat().st_mode) == file, path


# ----- 1. resume repairs a best/ that a kill left behind its last/ ---------------------------------------
def test_resume_repairs_a_best_checkpoint_the_kill_left_behind(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys
) -> None:
    """Killed after pretraining's final last/ but before its best/ copy (an unvalidated stage writes best/
    once, at its end): the resumed run repairs best/ from last/ and ends as the uninterrupted one."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(full), *tiny_cli_args]) == 0
    assert main(["pretrain", "--data", str(tiny_data_dir), "--out", str(cut), *tiny_cli_args]) == 0
    shutil.rmtree(cut / "pretrain" / "best")
    capsys.readouterr()
    assert main(["train", "--out", str(cut), "--resume", "--device", "cpu", "--no-progress"]) == 0
    assert "pretrain/best is missing (last/ names epoch 1): copied last/ to best/" in capsys.readouterr().err
    metrics = [json.loads((run / "metrics.json").read_text())["metrics"] for run in (full, cut)]
    assert metrics[0] == metrics[1]


def test_a_stale_best_is_an_error_not_a_silent_result(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = run / "finetune" / "best"
    state = json.loads((best / "state.json").read_text())
    shutil.rmtree(best)
    shutil.copytree(run / "finetune" / "last", best)  # as if best/ were one epoch behind last/'s best epoch
    state["epoch"] -= 1
    (best / "state.json").write_text(json.dumps(state))
    code = main(["evaluate", "--run", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and f"is inconsistent: finetune/best holds epoch {state['epoch']}" in err
    shutil.rmtree(best)
    shutil.copytree(run / "pretrain" / "best", best)  # another stage's checkpoint
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "finetune/best holds a pretrain checkpoint" in capsys.readouterr().err
