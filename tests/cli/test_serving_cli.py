"""evaluate, recommend and benchmark through the CLI, including every bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from cllm4rec.cli.main import main
from cllm4rec.data import Dataset


def _run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_matches_train_metrics_and_writes_per_user(tiny_run: Path, tmp_path: Path, capsys) -> None:
    per_user = tmp_path / "per_user.csv"
    code, out, _ = _run_cli(
        capsys, "evaluate", "--run", str(tiny_run), "--json", "--per-user", str(per_user), "--device", "cpu"
    )
    assert code == 0
    result = json.loads(out)
    saved = json.loads((tiny_run / "metrics.json").read_text())["metrics"]
    for key in ("recall@20", "recall@40", "ndcg@100"):
        assert result["metrics"][key] == pytest.approx(saved[key], abs=1e-9)
    rows = list(csv.DictReader(per_user.open()))
    assert len(rows) == result["metrics"]["n_users"]
    mean = sum(float(r["recall@20"]) for r in rows) / len(rows)
    assert mean == pytest.approx(result["metrics"]["recall@20"], abs=1e-9)
    code, out, _ = _run_cli(capsys, "evaluate", "--run", str(tiny_run), "--split", "val", "--device", "cpu")
    assert code == 0 and "recall@20" in out and "valid split" in out


def test_recommend_from_raw_history(tiny_run: Path, capsys) -> None:
    code, out, _ = _run_cli(
        capsys,
        "recommend",
        "--run",
        str(tiny_run),
        "--history",
        "i1,i2,i3",
        "-k",
        "4",
        "--json",
        "--device",
        "cpu",
    )
    assert code == 0
    items = [r["item"] for r in json.loads(out)]
    assert len(items) == 4 and not {"i1", "i2", "i3"} & set(items)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_recommend_batch_mode(tiny_run: Path, tmp_path: Path, capsys, suffix: str) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u0\nu5\n\nu7\n")
    out_file = tmp_path / f"recs{suffix}"
    code, out, _ = _run_cli(
        capsys,
        "recommend",
        "--run",
        str(tiny_run),
        "--users-file",
        str(users),
        "--output",
        str(out_file),
        "-k",
        "3",
        "--device",
        "cpu",
    )
    assert code == 0 and "3 users" in out
    if suffix == ".csv":
        rows = list(csv.DictReader(out_file.open()))
        assert len(rows) == 9 and {r["user"] for r in rows} == {"u0", "u5", "u7"}
    else:
        rows = [json.loads(line) for line in out_file.read_text().splitlines()]
        assert [r["user"] for r in rows] == ["u0", "u5", "u7"] and all(len(r["items"]) == 3 for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "unknown user"),
        (["--history", "i1,zzz"], "unknown item"),
        (["--history", " , "], "history is empty"),
        (["--user", "u1", "-k", "0"], "positive"),
        (["--user", "u1", "-k", "1000"], "larger than the number of items"),
        (["--users-file", "missing.txt", "--output", "x.csv"], "does not exist"),
        (["--user", "u1", "--output", "x.csv"], "goes with --users-file"),
    ],
)
def test_recommend_errors(tiny_run: Path, capsys, args: list[str], message: str) -> None:
    code, _, err = _run_cli(capsys, "recommend", "--run", str(tiny_run), "--device", "cpu", *args)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_batch_errors_leave_no_output(tiny_run: Path, tmp_path: Path, capsys) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u0\nstranger\n")
    out_file = tmp_path / "recs.csv"
    code, _, err = _run_cli(
        capsys,
        "recommend",
        "--run",
        str(tiny_run),
        "--users-file",
        str(users),
        "--output",
        str(out_file),
        "--device",
        "cpu",
    )
    assert code == 2 and "unknown user 'stranger'" in err
    assert not out_file.exists()
    code, _, err = _run_cli(
        capsys,
        "recommend",
        "--run",
        str(tiny_run),
        "--users-file",
        str(users),
        "--output",
        str(tmp_path / "recs.txt"),
        "--device",
        "cpu",
    )
    assert code == 2 and ".csv or .jsonl" in err


def test_evaluate_rejects_non_run(tmp_path: Path, capsys) -> None:
    code, _, err = _run_cli(capsys, "evaluate", "--run", str(tmp_path), "--device", "cpu")
    assert code == 2 and "not a cllm4rec run folder" in err


def test_benchmark_table_and_plot(tiny_run: Path, tmp_path: Path, capsys) -> None:
    data = Dataset.load(json.loads((tiny_run / "run.json").read_text())["dataset"])
    out = tmp_path / "bench"
    code, stdout, _ = _run_cli(
        capsys,
        "benchmark",
        "--data",
        str(data.path),
        "--out",
        str(out),
        "--runs",
        str(tiny_run),
        "--baselines",
        "pop,ease",
        "--device",
        "cpu",
    )
    assert code == 0
    table = (out / "results.md").read_text()
    assert "| Popularity |" in table and "| EASE |" in table and "| CLLM4Rec (run) |" in table
    assert (out / "results.png").stat().st_size > 5000
    rows = json.loads((out / "results.json").read_text())
    saved = json.loads((tiny_run / "metrics.json").read_text())["metrics"]
    ours = next(r for r in rows if r["kind"] == "cllm4rec")
    assert ours["metrics"]["recall@20"] == pytest.approx(saved["recall@20"], abs=1e-9)
    code, _, err = _run_cli(capsys, "benchmark", "--data", str(data.path), "--out", str(out), "--baselines", "pop")
    assert code == 2 and "already exists" in err
    code, _, err = _run_cli(
        capsys, "benchmark", "--data", str(data.path), "--out", str(tmp_path / "b2"), "--baselines", "svd"
    )
    assert code == 2 and "unknown baseline" in err and not (tmp_path / "b2").exists()


def test_moved_run_answers_recommend_without_its_dataset(
    tiny_run: Path, tmp_path: Path, capsys, make_dataset, run_dataset, tiny_cli_args: list[str]
) -> None:
    """Copy the run folder elsewhere, delete the dataset it was trained on: recommend still works."""
    data = tmp_path / "data"
    shutil.copytree(tiny_run.parent / "data", data)
    code, _, err = _run_cli(capsys, "train", "--data", str(data), "--out", str(tmp_path / "run"), *tiny_cli_args)
    assert code == 0, err
    moved = tmp_path / "moved" / "run"
    shutil.move(tmp_path / "run", moved)
    shutil.rmtree(data)
    code, out, err = _run_cli(capsys, "recommend", "--run", str(moved), "--user", "u3", "-k", "5", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 5 and all(r["title"].startswith("Movie ") for r in json.loads(out))
    code, out, err = _run_cli(capsys, "recommend", "--run", str(moved), "--history", "i1,i2", "-k", "3")
    assert code == 0 and out.startswith("top-3 for history of 2 items:"), err
    code, _, err = _run_cli(capsys, "evaluate", "--run", str(moved))
    assert code == 2 and "--data DIR" in err and err.count("\n") == 1
    code, out, err = _run_cli(capsys, "evaluate", "--run", str(moved), "--data", str(tiny_run.parent / "data"))
    assert code == 0 and "recall@20" in out, err  # the same content in another folder
    make_dataset(seed=5, n_users=run_dataset.n_users, n_items=run_dataset.n_items).save(tmp_path / "other")
    code, out, err = _run_cli(capsys, "evaluate", "--run", str(moved), "--data", str(tmp_path / "other"))
    assert code == 2 and "differs from the one this run was trained on" in err


def test_truncated_checkpoint_file_is_a_one_line_error(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    tables = run / "finetune" / "best" / "model" / "id_embeddings.safetensors"
    tables.write_bytes(tables.read_bytes()[:1000])
    code, _, err = _run_cli(capsys, "recommend", "--run", str(run), "--user", "u3")
    assert code == 2 and err.count("\n") == 1
    assert str(tables) in err and "truncated or corrupted" in err and "Traceback" not in err
