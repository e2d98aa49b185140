"""Checkpoint folders: the model (its own safetensors + model.json), optimizer state and ``state.json``.

Layout of ``<stage>/last/`` and ``<stage>/best/``::

    model/                  CLLM4Rec.save(): id_embeddings.safetensors + model.json (loadable on its own)
    optimizer.safetensors   Adam moments per optimizer, plus the torch RNG state
    optimizer.json          the optimizers' scalar state (param groups, steps)
    state.json              stage, epoch, step, seed, best metric, patience, history

Every folder is written to a temporary sibling and renamed into place, so a kill at any moment leaves
either the previous checkpoint or the new one, never a mix. Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from cllm4rec.atomic import atomic_dir
from cllm4rec.errors import CLLM4RecError


def save_checkpoint(
    path: Path, model: Any, optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any]
) -> None:
    """Write a checkpoint folder atomically, replacing an older one at ``path``."""
    with atomic_dir(path, force=True) as tmp:
        model.save(tmp / "model")
        tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
        scalars: dict[str, Any] = {}
        for name, opt in optimizers.items():
            sd = opt.state_dict()
            per_param: dict[str, dict[str, Any]] = {}
            for idx, pstate in sd["state"].items():
                per_param[str(idx)] = {}
                for key, value in pstate.items():
                    if torch.is_tensor(value) and value.dim() > 0:
                        tensors[f"{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
                    else:
                        per_param[str(idx)][key] = float(value)
            scalars[name] = {"param_groups": sd["param_groups"], "scalars": per_param}
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(scalars, indent=1), encoding="utf-8")
        (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def read_state(path: Path) -> dict[str, Any] | None:
    """The ``state.json`` of a checkpoint folder, or None when there is no complete checkpoint."""
    file = path / "state.json"
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def load_tables(model: torch.nn.Module, path: Path) -> None:
    """Copy the ID-embedding tables of the checkpoint at ``path`` into ``model`` (backbone untouched)."""
    files = sorted((path / "model").glob("*.safetensors"))
    if not files:
        raise CLLM4RecError(f"checkpoint {path} holds no model weights")
    trainable = dict(model.named_parameters())
    loaded = 0
    for file in files:
        for key, value in load_file(str(file)).items():
            target = trainable.get(key) or trainable.get(f"{key}.weight")
            if target is None:
                continue
            if target.shape != value.shape:
                raise CLLM4RecError(
                    f"checkpoint {path}: {key} has shape {tuple(value.shape)}, expected {tuple(target.shape)}"
                )
            with torch.no_grad():
                target.copy_(value.to(target.device, target.dtype))
            loaded += 1
    if loaded == 0:
        raise CLLM4RecError(f"checkpoint {path} holds no ID-embedding tables")


def load_optimizers(optimizers: dict[str, torch.optim.Optimizer], path: Path) -> None:
    """Restore optimizer state and the torch RNG from a checkpoint folder."""
    tensors = load_file(str(path / "optimizer.safetensors"))
    scalars = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    torch.set_rng_state(tensors["rng.torch"])
    for name, opt in optimizers.items():
        saved = scalars[name]
        state: dict[int, dict[str, Any]] = {}
        for idx, values in saved["scalars"].items():
            entry: dict[str, Any] = {k: torch.tensor(v) for k, v in values.items()}
            prefix = f"{name}.{idx}."
            entry.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            state[int(idx)] = entry
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
