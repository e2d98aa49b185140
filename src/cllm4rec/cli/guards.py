"""What every writing command does before it writes: lock its output folder, refuse outputs it must not
replace, and catch a misspelled backbone before anything is created (kept import-light for ``--help``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def is_launch_main() -> bool:
    """Whether this is the writing process: always without ``accelerate launch``, rank 0 under it."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold ``folder``'s exclusive lock for the whole command (on the writing process of a launch)."""
    from cllm4rec.core.files import folder_lock

    if not is_launch_main():
        yield
        return
    with folder_lock(folder, what):
        yield


def check_backbone(name: str) -> None:
    """Fail at once, offline, on a backbone name that can only be a typo: not an alias, not a local path,
    not a hub id (``owner/name``) and not in the local hub cache. Hub ids are checked by loading."""
    from cllm4rec.backbone import ALIASES
    from cllm4rec.core.errors import CLLM4RecError

    if name in ALIASES or Path(name).expanduser().exists():
        return
    accepted = f"an alias ({', '.join(ALIASES)}), a local folder or .gguf file, or a hub id owner/name"
    if name.endswith(".gguf") or name.startswith((".", "/", "~")):
        raise CLLM4RecError(f"backbone {name!r} not found; model.backbone takes {accepted}")
    if _in_hub_cache(name):
        return
    if "/" not in name.strip("/") or " " in name:
        raise CLLM4RecError(f"unknown backbone {name!r}; model.backbone takes {accepted}")
    from transformers import AutoConfig

    try:  # a hub id not cached yet: its config now, before a run folder exists to block the retry
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError, KeyError) as exc:
        raise CLLM4RecError(f"backbone {name!r} could not be found on the hub or in the cache: {exc}") from exc


def _in_hub_cache(name: str) -> bool:
    """Whether a hub model of this name is already in the local cache (a legacy id such as ``gpt2``)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an id the hub library itself rejects
        return False
