"""Where caches live: ``$CLLM4REC_CACHE``, else ``$XDG_CACHE_HOME/cllm4rec``, else ``~/.cache/cllm4rec``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return (and create) the cache folder; ``override`` wins over the environment."""
    if override is not None:
        root = Path(override)
    elif os.environ.get("CLLM4REC_CACHE"):
        root = Path(os.environ["CLLM4REC_CACHE"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "cllm4rec"
    root.mkdir(parents=True, exist_ok=True)
    return root
