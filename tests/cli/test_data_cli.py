"""``cllm4rec data prepare`` and ``data stats`` through the CLI entry point, including every bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cllm4rec.cli.main import main
from cllm4rec.data import Dataset


def _csv(tmp_path: Path, text: str = "", name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text or "user,item,rating,timestamp\n" + "".join(f"u{k % 4},i{k % 7},5,{k}\n" for k in range(40)))
    return path


def test_prepare_and_stats_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert main(["data", "prepare", "--format", "csv", "--input", str(_csv(tmp_path)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "users         4" in printed and printed.strip().endswith(f"wrote {out}")
    ds = Dataset.load(out)
    assert ds.n_users == 4 and ds.n_items == 7
    assert ds.meta["source"]["format"] == "csv" and ds.meta["seed"] == 98765
    assert ds.meta["reader_options"]["sep"] is None and ds.meta["source"]["delimiter"] == ","

    assert main(["data", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 4 and stats["interactions"]["total"] == 28  # 4 users x 7 items, duplicates merged
    assert set(stats["train_history_length"]) == {"min", "p25", "p50", "p75", "p90", "max", "mean"}
    assert main(["data", "stats", str(out)]) == 0
    assert "density" in capsys.readouterr().out


def test_prepare_refuses_existing_out_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = _csv(tmp_path), tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["data", "prepare", "--format", "csv", "--input", str(src), "--out", str(out)]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main([*args, "--force"]) == 2  # not a dataset folder: --force does not delete the user's files
    assert "is not a cllm4rec dataset folder" in capsys.readouterr().err and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    assert main([*args, "--force"]) == 0  # an empty folder is no one's files
    assert main([*args, "--force", "--seed", "3"]) == 0  # a prepared dataset is replaced
    assert Dataset.load(out).meta["seed"] == 3


def test_prepare_movielens_real(ml100k_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ml"
    assert main(["data", "prepare", "--format", "movielens", "--input", str(ml100k_dir), "--out", str(out)]) == 0
    assert "interactions  55,376 (train" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["n_users"], meta["n_items"]) == (942, 1447)
    assert sum(meta["n_interactions"].values()) == 55_376


def test_recbole_options_through_cli(tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "toy.inter").write_text("uid:token\tiid:token\nA\tx\nA\ty\nB\tx\n")
    (folder / "toy.item").write_text("iid:token\tname:token_seq\tcategories:token_seq\nx\tRed Pen\tOffice\n")
    out = tmp_path / "ds"
    args = ["data", "prepare", "--format", "recbole", "--input", str(folder), "--out", str(out)]
    args += ["--user-col", "uid", "--item-col", "iid", "--item-text-fields", "name,categories=kind"]
    assert main(args) == 0
    ds = Dataset.load(out)
    assert ds.item_text[ds.item_index["x"]] == {"title": "Red Pen", "kind": "Office"}


def _broken_json(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.json.gz"
    good = json.dumps({"reviewerID": "U", "asin": "A", "overall": 5, "unixReviewTime": 1})
    path.write_bytes(gzip.compress(f"{good}\n{good}\n{{'reviewerID': oops\n".encode()))
    return path


BAD_INPUTS = {
    "missing file": (lambda p: ["--format", "csv", "--input", str(p / "nope.csv")], "does not exist"),
    "missing folder": (lambda p: ["--format", "movielens", "--input", str(p / "nope")], "does not exist"),
    "not movielens": (lambda p: ["--format", "movielens", "--input", str(p)], "no u.data"),
    "missing recbole": (lambda p: ["--format", "recbole", "--input", str(p)], "no .inter file"),
    "missing meta": (
        lambda p: ["--format", "amazon", "--input", str(_broken_json(p)), "--meta", str(p / "m.json")],
        "metadata file",
    ),
    "wrong columns": (
        lambda p: ["--format", "csv", "--input", str(_csv(p, "who,what\na,b\n"))],
        "no user column found; name it with --user-col",
    ),
    "named column absent": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--rating-col", "stars"],
        "no column 'stars' for the rating",
    ),
    "wrong delimiter": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--sep", ";"],
        "delimiter ';'",
    ),
    "ragged row": (
        lambda p: ["--format", "csv", "--input", str(_csv(p, "user,item\na,b\nc,d,e\n"))],
        "ratings.csv:3: 3 fields, header has 2",
    ),
    "non-numeric rating": (
        lambda p: ["--format", "csv", "--input", str(_csv(p, "user,item,rating\na,b,5\nc,d,great\n"))],
        "ratings.csv:3: rating 'great' is not a number",
    ),
    "non-numeric recbole rating": (
        lambda p: ["--format", "recbole", "--input", str(_recbole_bad_rating(p))],
        "bad.inter:3: rating 'x' is not a number",
    ),
    "bad timestamp": (
        lambda p: ["--format", "csv", "--input", str(_csv(p, "user,item,timestamp\na,b,yesterday\n"))],
        "timestamp 'yesterday' is neither unix seconds nor an ISO date",
    ),
    "broken json line": (
        lambda p: ["--format", "amazon", "--input", str(_broken_json(p))],
        "reviews.json.gz:3: broken JSON line",
    ),
    "empty after filtering": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--min-rating", "6"],
        "no interactions left after keeping ratings >= 6",
    ),
    "empty after kcore": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--kcore", "50"],
        "no interactions left after 50-core",
    ),
    "loo without timestamps": (
        lambda p: ["--format", "csv", "--input", str(_csv(p, "user,item\na,b\n")), "--split", "loo"],
        "needs timestamps",
    ),
    "unknown split": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--split", "time"],
        "unknown split",
    ),
    "unknown format": (lambda p: ["--format", "parquet", "--input", str(p)], "unknown format 'parquet'"),
    "meta with csv": (
        lambda p: ["--format", "csv", "--input", str(_csv(p)), "--meta", str(_csv(p))],
        "--meta is only used with --format amazon",
    ),
}


def _recbole_bad_rating(tmp_path: Path) -> Path:
    path = tmp_path / "bad.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\na\tb\t5\nc\td\tx\n")
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_args, message = BAD_INPUTS[case]
    out = tmp_path / "out" / "ds"
    code = main(["data", "prepare", *make_args(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("cllm4rec: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_stats_of_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
