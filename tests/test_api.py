"""The Python API: ``import cllm4rec`` is cheap, its names resolve, overrides are typed values, and the
README's "From Python" section runs as written (on a tiny backbone and a small MovieLens-format folder)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cllm4rec
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs import config as config_module
from cllm4rec.runs.config import load_config as load_config_strings

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_PRESET = {
    "model": {"backbone": "tiny-llama", "bf16": False, "max_length": 64},
    "pretrain": {"warmup_epochs": 0, "epochs": 1, "lr": 1e-2, "batch_size": 8},
    "finetune": {"epochs": 1, "lr": 1e-2, "batch_size": 8},
}
"""What every preset means inside the README test: the tiny backbone, one epoch per stage."""


def test_import_does_not_load_torch() -> None:
    code = "import cllm4rec, sys; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_public_name_resolves() -> None:
    public = set(cllm4rec.__all__) - {"CLLM4RecError", "__version__"}
    assert public == set(cllm4rec._LAZY)
    for name in sorted(public):
        assert getattr(cllm4rec, name) is not None, name
    with pytest.raises(AttributeError):
        cllm4rec.no_such_name  # noqa: B018


def test_overrides_as_dict_dotted_keys_or_keywords_equal_the_strings() -> None:
    expected = load_config_strings("quick", overrides=["pretrain.epochs=2", "model.readout=last"])
    assert cllm4rec.load_config("quick", {"pretrain": {"epochs": 2}, "model": {"readout": "last"}}) == expected
    assert cllm4rec.load_config("quick", {"pretrain.epochs": 2, "model.readout": "last"}) == expected
    assert cllm4rec.load_config("quick", pretrain__epochs=2, model__readout="last") == expected
    assert cllm4rec.load_config("quick", {"pretrain": {"epochs": 5}}, pretrain__epochs=2, model__readout="last") == (
        expected
    )  # keywords come last
    base = cllm4rec.load_config(base=expected, finetune__epochs=1)
    assert base.pretrain.epochs == 2 and base.finetune.epochs == 1
    assert cllm4rec.load_config("quick") == load_config_strings("quick")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pretrain__no_such_key": 1}, "unknown key"),
        ({"nosection__epochs": 1}, "unknown config section"),
        ({"pretrain__epochs": -1}, "epochs must be >= 0"),
        ({"pretrain__epochs": "many"}, "pretrain.epochs"),
    ],
)
def test_bad_overrides_are_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(CLLM4RecError, match=message):
        cllm4rec.load_config("quick", **kwargs)


def test_train_refuses_a_dataset_that_is_not_saved(tmp_path: Path, make_dataset) -> None:
    with pytest.raises(CLLM4RecError, match="save the dataset first"):
        cllm4rec.train(make_dataset(), "quick", out=tmp_path / "run")


def _movielens_folder(folder: Path, n_users: int = 40, n_items: int = 50, seed: int = 0) -> None:
    """A MovieLens 100K-format folder (u.data, u.item) with two taste clusters; user 196 is one of them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = []
    for u in range(180, 180 + n_users):
        pool = np.arange(1, n_items // 2 + 1) if u % 2 == 0 else np.arange(n_items // 2 + 1, n_items + 1)
        for t, j in enumerate(rng.choice(pool, size=12, replace=False)):
            lines.append(f"{u}\t{j}\t{rng.integers(4, 6)}\t{1000 + t}")
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    flags = "|".join(["0"] * 19)
    items = [f"{j}|Movie {j} (1995)|01-Jan-1995||http://x|{flags}" for j in range(1, n_items + 1)]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))


def readme_python_block() -> str:
    """The first python code block of the README's "From Python" section."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's From Python section has no python code block"
    return match.group(1)


def test_the_readme_python_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code = readme_python_block()
    assert 15 <= len(code.strip().splitlines()) <= 25
    _movielens_folder(tmp_path / "ml-100k")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config_module, "preset_dict", lambda name: TINY_PRESET)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert (tmp_path / "runs").is_dir() and out.count("\n") >= 5
    assert "ease" in out and "cllm4rec" in out
