"""evaluate, recommend and benchmark through the CLI, including every bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cllm4rec.cli.main import main
from cllm4rec.data import Dataset
from cllm4rec.serving.recommend import load_run, recommend, recommend_many, user_history


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


def test_recommend_known_user_excludes_history(tiny_run: Path) -> None:
    loaded = load_run(tiny_run, device="cpu")
    ds = loaded.dataset
    recs = recommend(loaded, user="u3", k=5)
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:], strict=False))
    seen = {ds.item_ids[j] for j in user_history(ds, ds.user_index["u3"])}
    assert not seen & {r.item for r in recs}
    assert all(r.item in ds.item_index and r.title == ds.item_title(ds.item_index[r.item]) for r in recs)
    batch = recommend_many(loaded, users=["u3", "u4"], k=5)
    assert [r.item for r in batch[0]] == [r.item for r in recs]  # batch and single agree
    chunked = recommend_many(loaded, users=["u3", "u4"], k=5, chunk_users=1)
    assert [[r.item for r in rs] for rs in chunked] == [[r.item for r in rs] for rs in batch]


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


def test_chunked_evaluation_equals_one_pass(tiny_run: Path) -> None:
    from cllm4rec.serving.scoring import evaluate_model

    loaded = load_run(tiny_run, device="cpu")
    args = (loaded.model, loaded.tok, loaded.dataset, "test")
    whole, _ = evaluate_model(*args, max_length=loaded.max_length, style=loaded.style)
    chunked, evaluator = evaluate_model(*args, max_length=loaded.max_length, style=loaded.style, chunk_users=5)
    assert chunked == whole
    assert len(evaluator.per_user()) == whole["n_users"]
