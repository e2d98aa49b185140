"""Fixtures for the data-layer tests: the MovieLens 100K copy that ``data fetch`` obtains."""

from __future__ import annotations

from pathlib import Path

import pytest

from cllm4rec.data import fetch_ml100k


@pytest.fixture(scope="session")
def ml100k_recbole_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MovieLens 100K as RecBole atomic files, fetched for real (pip download) into a fresh cache."""
    return fetch_ml100k(tmp_path_factory.mktemp("cache"))
