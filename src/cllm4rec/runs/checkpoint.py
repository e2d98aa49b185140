"""Checkpoint folders: everything needed to resume training or to serve, nothing pickled (docs/DESIGN.md §7).

Layout of ``<stage>/last/`` and ``<stage>/best/``::

    model/                  CLLM4Rec.save(): id_embeddings.safetensors + model.json (backbone reference)
    catalog/                external ID maps, item titles, every known interaction (see catalog.py)
    config.yaml             the resolved run config
    dataset.json            content hash, folder and size of the dataset the run was trained on
    optimizer.safetensors   Adam moments per optimizer, plus the torch RNG state
    optimizer.json          the optimizers' scalar state (param groups, steps)
    state.json              stage, epoch, step, seed, best metric, patience, history
    manifest.json           sha256 and size of every file above, written last

Every folder is written to a temporary sibling and renamed into place, so a kill at any moment leaves
either the previous checkpoint or the new one, never a mix. Readers check the manifest first, so a truncated
or corrupted file is reported by name instead of failing deep inside a tensor library.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir, read_json, sha256_file
from cllm4rec.data import Dataset
from cllm4rec.runs.catalog import Catalog
from cllm4rec.runs.config import RunConfig, config_from_dict, dump_config

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "cllm4rec-checkpoint"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class DatasetInfo:
    """The identity of the dataset a run was trained on."""

    content_hash: str
    path: str | None
    n_users: int
    n_items: int

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> DatasetInfo:
        path = str(Path(dataset.path).resolve()) if dataset.path else None
        return cls(dataset_hash(dataset), path, dataset.n_users, dataset.n_items)


def dataset_hash(dataset: Dataset) -> str:
    """The dataset's content hash (recorded in its folder, else computed)."""
    return dataset.meta.get("content_hash") or dataset.content_hash()


@dataclass
class RunRecord:
    """What every checkpoint records about its run besides weights: config, dataset identity, ID catalogue."""

    config: RunConfig
    dataset: DatasetInfo
    catalog: Catalog

    @classmethod
    def from_dataset(cls, config: RunConfig, dataset: Dataset) -> RunRecord:
        return cls(config, DatasetInfo.from_dataset(dataset), Catalog.from_dataset(dataset))

    def save(self, folder: Path) -> None:
        """Write config.yaml, dataset.json and catalog/ into ``folder``."""
        (folder / "config.yaml").write_text(dump_config(self.config), encoding="utf-8")
        (folder / "dataset.json").write_text(json.dumps(asdict(self.dataset), indent=2), encoding="utf-8")
        self.catalog.save(folder / "catalog")


def read_record(path: Path) -> RunRecord:
    """The run record of a verified checkpoint."""
    if not (path / "catalog").is_dir() or not (path / "dataset.json").is_file():
        raise CLLM4RecError(f"checkpoint {path} is incomplete (no catalog/ or dataset.json); train again")
    try:
        config = config_from_dict(yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {})
        info = DatasetInfo(**json.loads((path / "dataset.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise CLLM4RecError(f"cannot read the run record of checkpoint {path}: {exc}") from exc
    return RunRecord(config, info, Catalog.load(path / "catalog"))


def save_checkpoint(
    path: Path,
    model: Any,
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
    record: RunRecord,
) -> None:
    """Write a checkpoint folder atomically, replacing an older one at ``path``."""
    with atomic_dir(path, force=True) as tmp:
        model.save(tmp / "model")
        record.save(tmp)
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
        write_manifest(tmp)


def write_manifest(folder: Path) -> None:
    """Record the sha256 and size of every file in ``folder`` (the manifest itself excluded)."""
    files = {
        str(f.relative_to(folder)): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != MANIFEST
    }
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def verify_checkpoint(path: Path) -> None:
    """Check every file of a checkpoint against its manifest; a missing, truncated or altered file is an error."""
    file = path / MANIFEST
    if not file.is_file():
        raise CLLM4RecError(
            f"checkpoint {path} is damaged: its {MANIFEST} is missing, so its files cannot be verified; "
            "restore it from a copy or train again"
        )
    manifest = read_json(file)
    try:
        files = dict(manifest["files"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CLLM4RecError(f"checkpoint manifest {file} is unreadable: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        raise CLLM4RecError(f"{file}: unsupported checkpoint format {manifest.get('format')!r}")
    for rel, expected in files.items():
        member = path / rel
        if not member.is_file():
            raise CLLM4RecError(f"checkpoint file {member} is missing")
        size = member.stat().st_size
        if size != expected["bytes"]:
            raise CLLM4RecError(
                f"checkpoint file {member} is truncated or corrupted ({size} bytes, expected {expected['bytes']})"
            )
        if sha256_file(member) != expected["sha256"]:
            raise CLLM4RecError(f"checkpoint file {member} is corrupted (sha256 differs from {MANIFEST})")


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder atomically (``best/`` from ``last/``)."""
    with atomic_dir(dst, force=True) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(src, tmp)


def read_state(path: Path) -> dict[str, Any] | None:
    """The ``state.json`` of a checkpoint folder, or None when there is no complete checkpoint."""
    file = path / "state.json"
    if not file.is_file():
        return None
    return read_json(file)


def load_tables(model: torch.nn.Module, path: Path) -> None:
    """Copy the ID-embedding tables of the checkpoint at ``path`` into ``model`` (backbone untouched)."""
    verify_checkpoint(path)
    files = sorted((path / "model").glob("*.safetensors"))
    if not files:
        raise CLLM4RecError(f"checkpoint {path} holds no model weights")
    trainable = dict(model.named_parameters())
    loaded = 0
    for file in files:
        for key, value in load_file(str(file)).items():
            target = trainable.get(key, trainable.get(f"{key}.weight"))
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
    """Restore optimizer state and the torch RNG from a (verified) checkpoint folder."""
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
