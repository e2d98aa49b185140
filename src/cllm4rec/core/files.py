"""File helpers used everywhere: atomic writes (a crash never leaves a half-written result), hashes, locks.

Temporaries are hidden siblings of their target named with the writer's PID (``.NAME.tmp-PID-XXXX``,
``.NAME.old-PID``), so the next writer of the same target removes those a killed process left behind. What
they become gets the modes the user's umask gives a new file or folder, not ``mkstemp``'s private 0600/0700.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cllm4rec.core.errors import CLLM4RecError

RENAME_EXCHANGE = 2
"""``renameat2`` flag (linux/fs.h): swap two paths in one step."""


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (else set and restored at once)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(root: Path) -> None:
    """Give ``root`` and everything under it the modes a plain ``open``/``mkdir`` would have (0666/0777 less
    the umask): ``mkdtemp`` and ``mkstemp`` create them private, and a rename keeps the mode."""
    mask = current_umask()
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for path in paths:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporaries(target: Path) -> Iterator[tuple[Path, int, str]]:
    """The hidden temporaries of ``target`` in its folder: (path, writer PID, ``tmp`` or ``old``)."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(tmp|old)-(\d+)(?:-.*)?$")
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        if match:
            yield entry, int(match.group(2)), match.group(1)


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed writers of ``target`` left beside it (their PID is gone); returns what was removed.

    A previous version parked by a writer killed between the two renames of a swap is put back first when
    ``target`` itself is missing, so nothing complete is ever lost.
    """
    target = Path(target)
    removed = []
    for path, pid, kind in sorted(_temporaries(target), key=lambda t: t[2]):  # "old" before "tmp"
        if pid == os.getpid() or pid_alive(pid):
            continue
        if kind == "old" and not target.exists():
            os.replace(path, target)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``target``, on error it is removed.

    An existing ``target`` is refused unless ``force``; with ``force`` it is swapped out only after the
    new content is complete, in one step where the system allows, so a kill at any moment leaves either the
    old folder or the new one at ``target``.
    """
    target = Path(target)
    if target.exists() and not force:
        raise CLLM4RecError(f"output folder {target} already exists (use --force to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        apply_umask(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists() and _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old content
        return
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on error removed.

    The writer inside the ``with`` block may use any library that writes to a path (safetensors, matplotlib).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, flushed to disk, and an atomic rename."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks so large files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock, so two processes never build the same cache entry at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file of an output folder: a hidden sibling, so deleting or swapping the folder keeps it."""
    target = Path(target).resolve()
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def folder_lock(target: str | os.PathLike[str], what: str = "folder") -> Iterator[None]:
    """Hold an exclusive lock on output folder ``target`` for the ``with`` block, without waiting.

    A second writer gets a one-line error naming the PID that holds it. The lock is the kernel's (``flock``),
    so it dies with its process: a killed writer never leaves a folder locked. The lock file is removed on
    release; a writer that locked a file just removed that way sees it is gone and takes the new one.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (closed below, after the with block)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise CLLM4RecError(
                f"{what} {target} is in use by another cllm4rec process (PID {holder}); wait for it to finish"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()  # locked a file its holder removed on release: lock the current one instead
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_folder(
    target: str | os.PathLike[str],
    *,
    what: str,
    marker: str,
    marker_key: str,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
) -> None:
    """Refuse an output folder that holds (or is) one of the command's ``inputs``, and, with ``force``, an
    existing non-empty folder that is not a cllm4rec ``what`` folder: one whose ``marker`` JSON file has the
    key ``marker_key``. ``--force`` replaces only what cllm4rec itself wrote."""
    target = Path(target)
    resolved = target.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if _inside(source, resolved):
            raise CLLM4RecError(f"output folder {target} holds the input {given}; choose another output folder")
    if not force or not target.exists():
        return
    if not target.is_dir():
        raise CLLM4RecError(f"output {target} exists and is not a folder; refusing to replace it")
    if not any(target.iterdir()):
        return
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((target / marker).read_text(encoding="utf-8"))
        if isinstance(data, dict) and marker_key in data:
            return
    raise CLLM4RecError(
        f"{target} is not a cllm4rec {what} folder (no {marker}); --force replaces only those, so delete it yourself"
    )


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON content of ``path``; a missing or broken file is a one-line error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CLLM4RecError(f"cannot read {path}: {exc}") from exc
