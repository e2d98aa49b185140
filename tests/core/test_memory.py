"""The allocator setting that returns freed tensor memory to the OS."""

from __future__ import annotations

import sys

import pytest

from cllm4rec.core.memory import release_large_blocks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_large_blocks_is_accepted_by_glibc() -> None:
    """glibc accepts the threshold (mallopt returns 1); its effect on RSS is measured in docs/BENCHMARKS.md."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert release_large_blocks() is True
