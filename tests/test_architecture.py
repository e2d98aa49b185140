"""The layer contract in pyproject.toml holds, and it is live: a deliberately wrong import breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's configuration on the package under ``root/src``."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """A copy of the package and its configuration, safe to break."""
    shutil.copytree(
        REPO_ROOT / "src" / "cllm4rec", tmp_path / "src" / "cllm4rec", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contract_is_kept() -> None:
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(copy: Path) -> None:
    """The model layer may not reach up into serving."""
    (copy / "src" / "cllm4rec" / "model" / "shortcut.py").write_text("from cllm4rec.serving import load_run\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "Layers: every package imports only from the layers below it BROKEN" in result.stdout
    assert "cllm4rec.model.shortcut -> cllm4rec.serving" in result.stdout


def test_sibling_layers_stay_independent(copy: Path) -> None:
    """Training and serving are independent: neither imports the other."""
    (copy / "src" / "cllm4rec" / "training" / "peek.py").write_text("import cllm4rec.serving.recommend\n")
    result = _lint(copy)
    assert result.returncode == 1 and "cllm4rec.training.peek -> cllm4rec.serving.recommend" in result.stdout


def test_a_cycle_inside_a_package_breaks_the_acyclic_contract(copy: Path) -> None:
    """Two modules of one package importing each other (the old backbone loading <-> smollm2 shape)."""
    gguf = copy / "src" / "cllm4rec" / "backbone" / "gguf.py"
    gguf.write_text(gguf.read_text() + "\nfrom cllm4rec.backbone import smollm2  # noqa: E402\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "No import cycles between sibling packages or modules, at any depth BROKEN" in result.stdout
