"""Saving and loading a model: the ID tables as safetensors and a ``model.json`` that rebuilds the rest.

A saved model folder holds ``id_embeddings.safetensors`` (the four tables, plus the item bias and the head's
centre when the model has them) and ``model.json`` (format, backbone reference, sizes, the structural
fields of the model's config). Nothing is pickled; the backbone is loaded again from its reference.
:meth:`CLLM4Rec.save <cllm4rec.model.CLLM4Rec.save>` and :meth:`CLLM4Rec.load
<cllm4rec.model.CLLM4Rec.load>` call these.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from cllm4rec.backbone.loading import BackboneRef, LoadedBackbone, backbone_ref_load
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir, write_json_atomic
from cllm4rec.model.config import ModelConfig

FORMAT = "cllm4rec-model"
FORMAT_VERSION = 1
TABLES_FILE = "id_embeddings.safetensors"
META_FILE = "model.json"
TABLE_NAMES = ("user_collab", "item_collab", "user_content", "item_content")
BIAS_NAME = "item_bias"
CENTER_NAME = "head_center"
STRUCTURE = ("init_scale", "item_bias", "readout", "center_head", "collab_layers")
"""The fields of :class:`ModelConfig` that shape the saved tensors or how they are read: ``model.json``
records them, and a loaded model takes them from there."""


class Model(Protocol):
    """What saving and loading read and write of the model."""

    ref: BackboneRef | None
    n_users: int
    n_items: int
    n_words: int
    hidden_size: int
    init_scale: float
    readout: str
    collab_layers: int
    item_bias: nn.Parameter | None
    head_center: nn.Parameter | None

    def named_tensors(self) -> dict[str, torch.Tensor]: ...


def model_meta(model: Model) -> dict[str, Any]:
    """What ``model.json`` holds."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "backbone": model.ref.to_dict() if model.ref is not None else None,
        "n_users": model.n_users,
        "n_items": model.n_items,
        "n_words": model.n_words,
        "hidden_size": model.hidden_size,
        "init_scale": model.init_scale,
        "tables": list(TABLE_NAMES),
        "item_bias": model.item_bias is not None,
        "readout": model.readout,
        "center_head": model.head_center is not None,
        "collab_layers": model.collab_layers,
    }


def save_model(model: Model, path: str | os.PathLike[str]) -> None:
    """Write the tables and ``model.json`` into folder ``path``.

    A new folder appears atomically; in an existing folder (a checkpoint with other files) each file is
    replaced atomically, tables first and ``model.json`` last.
    """
    import safetensors.torch

    path = Path(path)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.named_tensors().items()}

    def write(folder: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{TABLES_FILE}.", dir=folder)
        os.close(fd)
        try:
            safetensors.torch.save_file(tensors, tmp, metadata={"format": "pt"})
            os.replace(tmp, folder / TABLES_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        write_json_atomic(folder / META_FILE, model_meta(model))

    if path.exists():
        if not path.is_dir():
            raise CLLM4RecError(f"{path} exists and is not a folder")
        write(path)
    else:
        with atomic_dir(path) as tmp_dir:
            write(tmp_dir)


def read_meta(path: Path) -> dict[str, Any]:
    """The ``model.json`` of a saved model folder, checked for its format."""
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CLLM4RecError(f"{path} is not a saved CLLM4Rec model: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CLLM4RecError(
            f"{path / META_FILE}: unsupported format {meta.get('format')!r} version {meta.get('version')!r}"
        )
    return meta


def saved_backbone(
    meta: dict[str, Any], path: Path, backbone: LoadedBackbone | None, cache_dir: str | os.PathLike[str] | None
) -> LoadedBackbone:
    """The backbone a saved model was trained on: ``backbone`` if given (it must match the saved reference),
    else loaded from that reference."""
    saved_ref = BackboneRef.from_dict(meta["backbone"]) if meta.get("backbone") else None
    if backbone is None:
        if saved_ref is None:
            raise CLLM4RecError(f"{path} was saved without a backbone reference; pass backbone=")
        return backbone_ref_load(saved_ref, cache_dir=cache_dir)
    if saved_ref is not None and backbone.ref != saved_ref:
        raise CLLM4RecError(f"{path} was trained on backbone {saved_ref}, not {backbone.ref}")
    return backbone


def saved_config(meta: dict[str, Any], config: ModelConfig | None) -> ModelConfig:
    """``config`` (or the defaults) with its structural fields (:data:`STRUCTURE`) as ``model.json`` records."""
    recorded = {name: meta[name] for name in STRUCTURE if name in meta}
    return dataclasses.replace(config or ModelConfig(), **recorded)


def check_sizes(model: Model, meta: dict[str, Any], path: Path) -> None:
    """The backbone's vocabulary and width must be those the model was saved with."""
    if (model.n_words, model.hidden_size) != (meta["n_words"], meta["hidden_size"]):
        raise CLLM4RecError(
            f"{path}: saved for {meta['n_words']} words x {meta['hidden_size']} hidden, the backbone has "
            f"{model.n_words} x {model.hidden_size}"
        )


def load_tensors(model: Model, path: Path) -> None:
    """Copy the saved tables (and bias and centre, where the model has them) into ``model``, shape-checked."""
    import safetensors.torch

    try:
        saved = safetensors.torch.load_file(str(path / TABLES_FILE))
    except (OSError, ValueError, RuntimeError) as exc:
        raise CLLM4RecError(f"cannot read {path / TABLES_FILE}: {exc}") from exc
    with torch.no_grad():
        for name, tensor in model.named_tensors().items():
            if name not in saved or tuple(saved[name].shape) != tuple(tensor.shape):
                what = "table " if name in TABLE_NAMES else ""
                raise CLLM4RecError(f"{path / TABLES_FILE}: {what}{name} missing or of the wrong shape")
            tensor.copy_(saved[name])
