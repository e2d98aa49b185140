"""Shared test fixtures: where the real data lives, and skipping cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ML100K = SHARED_DATA / "ml-100k"
AMAZON_MI = SHARED_DATA / "amazon-musical-instruments-5core-2014" / "reviews_Musical_Instruments_5.json.gz"


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The raw MovieLens 100K folder, or a skip saying where it was looked for."""
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"real data not found at {ML100K}")
    return ML100K


@pytest.fixture(scope="session")
def amazon_mi_file() -> Path:
    """The Amazon Musical Instruments 5-core reviews file, or a skip."""
    if not AMAZON_MI.is_file():
        pytest.skip(f"real data not found at {AMAZON_MI}")
    return AMAZON_MI
