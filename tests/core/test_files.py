"""Atomic writes leave either the old file or the new one; hashes stream."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir, atomic_file, sha256_file, write_json_atomic, write_text_atomic


def test_atomic_file_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    write_json_atomic(tmp_path / "a.json", {"b": 1})
    assert (tmp_path / "a.json").read_text() == '{\n  "b": 1\n}\n'


def test_atomic_dir_refuses_or_swaps(tmp_path: Path) -> None:
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("1")
    with pytest.raises(CLLM4RecError, match="already exists"), atomic_dir(target):
        pass
    with pytest.raises(ValueError), atomic_dir(target, force=True) as tmp:
        (tmp / "f").write_text("2")
        raise ValueError
    assert (target / "f").read_text() == "1" and len(list(tmp_path.iterdir())) == 1


def test_sha256_file(tmp_path: Path) -> None:
    data = b"x" * (3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
