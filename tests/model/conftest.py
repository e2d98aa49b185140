"""Fixtures for the model tests: the two tiny random backbones, loaded once per session."""

from __future__ import annotations

import pytest

from cllm4rec.backbone import LoadedBackbone, load_backbone

TINY = ("tiny-gpt2", "tiny-llama")


@pytest.fixture(scope="session", params=TINY)
def tiny_backbone(request: pytest.FixtureRequest) -> LoadedBackbone:
    """Each tiny backbone in turn (tests using it run once per architecture)."""
    return load_backbone(request.param)
