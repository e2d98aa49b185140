"""GGUF files: converted (dequantized) once into an ordinary safetensors folder, cached by content hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cllm4rec.backbone.hf import check_causal_lm, from_pretrained, quiet_transformers
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir, file_lock, sha256_file, write_json_atomic

MARKER = "cllm4rec_backbone.json"  # written last into a cached backbone folder: its presence means complete


def cache_gguf_as_folder(gguf: Path, target: Path, marker: dict[str, Any]) -> None:
    """Load (dequantize) a GGUF file once and store it as config + safetensors + tokenizer, atomically."""
    import safetensors.torch
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            model = from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CLLM4RecError(f"could not load GGUF file {gguf}: {exc}") from exc
    check_causal_lm(model.config, str(gguf))
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained; its weights are plain fp32
    # tensors by now, so we write them ourselves and drop the quantization entry from the config.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target, force=True) as tmp:
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(tmp / MARKER, {**marker, "gguf": gguf.name})


def ensure_gguf_cached(gguf: Path, cache_root: Path) -> tuple[Path, str]:
    """A user-supplied GGUF file, converted once and cached by content hash."""
    sha = sha256_file(gguf)
    target = cache_root / "backbones" / f"gguf-{sha[:16]}"
    if not (target / MARKER).is_file():
        with file_lock(cache_root / "backbones" / f".gguf-{sha[:16]}.lock"):
            if not (target / MARKER).is_file():
                cache_gguf_as_folder(gguf, target, {"source": str(gguf), "sha256": sha})
    return target, sha
