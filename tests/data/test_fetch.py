"""``cllm4rec data fetch ml-100k``: a real download, the cache, and the failure paths (with pip faked)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import cllm4rec.data.fetch as fetch_mod
from cllm4rec.cli.main import main
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import fetch_ml100k


def _no_pip(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("pip must not run when the cache is complete")


def test_fetch_for_real_then_from_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    assert main(["data", "fetch", "ml-100k", "--cache-dir", str(cache)]) == 0
    folder = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert folder == cache / "datasets" / "ml-100k"
    rows = {p.name: len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in folder.iterdir()}
    assert rows == {"ml-100k.inter": 100_000, "ml-100k.item": 1_682, "ml-100k.user": 943}
    assert (cache / "downloads" / fetch_mod.RECBOLE_WHEEL).is_file()

    monkeypatch.setattr(fetch_mod.subprocess, "run", _no_pip)
    assert main(["data", "fetch", "ml-100k", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(folder)
    # a damaged extraction is rebuilt from the downloaded wheel, still without pip
    (folder / "ml-100k.item").write_text("item_id:token\n1\n")
    assert fetch_ml100k(cache) == folder
    assert len((folder / "ml-100k.item").read_text(encoding="utf-8").splitlines()) == 1_683


def _fake_pip(tmp_path: Path, calls: list[list[str]], rows: int = 3, returncode: int = 0) -> Any:
    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        if returncode == 0:
            dest = Path(cmd[cmd.index("-d") + 1]) / fetch_mod.RECBOLE_WHEEL
            with zipfile.ZipFile(dest, "w") as zf:
                for name in fetch_mod.ML100K_ROWS:
                    zf.writestr(f"{fetch_mod.WHEEL_FOLDER}/{name}", "header\n" + "row\n" * rows)
        return subprocess.CompletedProcess(cmd, returncode, "", "ERROR: No matching distribution found\n")

    return run


def test_fetch_runs_pip_download_and_checks_row_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(fetch_mod.subprocess, "run", _fake_pip(tmp_path, calls))
    cache = tmp_path / "cache"
    with pytest.raises(CLLM4RecError, match="ml-100k.inter has 3 rows, expected 100000"):
        fetch_ml100k(cache)
    downloads = cache / "downloads"
    assert calls == [[sys.executable, "-m", "pip", "download", "--no-deps", "recbole==1.2.1", "-d", str(downloads)]]
    datasets = cache / "datasets"
    assert not (datasets / "ml-100k").exists() and not list(datasets.iterdir())  # nothing half-written
    assert not (downloads / fetch_mod.RECBOLE_WHEEL).exists()  # a bad wheel is not reused
    with pytest.raises(CLLM4RecError):
        fetch_ml100k(cache)
    assert len(calls) == 2


def test_fetch_reports_pip_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fetch_mod.subprocess, "run", _fake_pip(tmp_path, [], returncode=1))
    assert main(["data", "fetch", "ml-100k", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "cllm4rec: error: pip could not download recbole==1.2.1: ERROR: No matching distribution found"
    )
    assert not (tmp_path / "datasets" / "ml-100k").exists()


def test_fetch_unknown_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "netflix", "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "cllm4rec: error: unknown dataset 'netflix'; available: ml-100k\n"


def test_fetch_source_names_no_registry_address() -> None:
    source = Path(fetch_mod.__file__).read_text(encoding="utf-8")
    assert "://" not in source and "pypi" not in source.lower()
