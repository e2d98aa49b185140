"""``cllm4rec baseline`` end to end on a small saved dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cllm4rec.cli.main import main
from cllm4rec.data import Dataset


@pytest.fixture()
def data_dir(tiny: Dataset, tmp_path: Path) -> Path:
    return tiny.save(tmp_path / "tiny")


def test_json_output(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "--data", str(data_dir), "--model", "ease", "--json", "--param", "lam=10"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "ease" and out["params"] == {"lam": 10.0}
    assert 0 <= out["test"]["recall@20"] <= 1 and out["valid"]["n_users"] == 60


def test_table_output(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "--data", str(data_dir), "--model", "itemknn", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Recall@20" in out and "NDCG@100" in out and "chosen hyperparameters: k=" in out
    assert "validation search" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in (["valid"], ["test"])}
    assert set(lines) == {"valid", "test"}


def test_multivae_params_from_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "baseline",
        "--data",
        str(data_dir),
        "--model",
        "multivae",
        "--json",
        "--seed",
        "3",
        "--no-progress",
    ]
    argv += ["--param", "max_epochs=2", "hidden=8", "--param", "latent=4"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["seed"] == 3 and out["params"]["hidden"] == 8 and out["info"]["epochs_run"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "lam"], "KEY=VALUE"),
        (["--param", "alpha=1"], "unknown parameter"),
    ],
)
def test_errors_are_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["baseline", "--data", str(data_dir), "--model", "ease", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("cllm4rec: error:")


def test_missing_dataset_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "--data", str(tmp_path / "nope"), "--model", "pop"]) == 2
    assert "does not exist" in capsys.readouterr().err
