"""Typed, validated run configuration: one frozen dataclass per concern, loaded from YAML plus overrides.

A run config has three sections. ``model`` says what is built (backbone, context budget, precision; the
model's own config, ``model/config.py``),
``pretrain`` and ``finetune`` each configure one training stage. Defaults live here and only here; presets
in ``cllm4rec/presets/*.yaml`` override some of them; ``key=value`` overrides on the command line
(``pretrain.lr=3e-4``) come last. Unknown keys and ill-typed values are errors.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cllm4rec.core.coerce import coerce, parse_duration
from cllm4rec.core.defaults import COLLAB_TARGETS, READOUTS
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.evaluation.metrics import DEFAULT_SELECTION_KEYS
from cllm4rec.model.config import ModelConfig

SCALAR_KEYS = ("budget",)
"""Top-level settings of a run config that are values, not sections."""
REMOVED_KEYS: dict[str, str] = {
    "pretrain.collab_readout": "the prefix-mean read-out measured nothing",
    "pretrain.ema": "the moving average in pretraining measured nothing after finetuning",
    "pretrain.weight_decay": "it measured nothing",
    "pretrain.content": "use model.content",
    "finetune.refit_epochs": "its refit pass moved the test numbers by less than the noise; evaluation never trains",
    "finetune.weight_decay": "it measured nothing",
    "finetune.eval_batch_size": "it was never used",
    "finetune.content": "use model.content",
}
"""Keys earlier versions had, each with why it went (docs/BENCHMARKS.md keeps what they measured): a config that
sets one to anything but its inert value is an error naming it, never silently read."""
INERT_VALUES: dict[str, Any] = {
    "pretrain.collab_readout": "position",
    "pretrain.ema": 0.0,
    "pretrain.weight_decay": 0.0,
    "finetune.refit_epochs": 0,
    "finetune.weight_decay": 0.0,
}
"""Values of removed keys that did what the code now always does: a run folder saved before a key went lists
it with that value (every field is written), so such a run still loads and serves."""


@dataclass(frozen=True)
class PretrainConfig:
    """Soft+hard prompted pretraining with mutual regularization (docs/DESIGN.md §2-§3)."""

    warmup_epochs: int = 10
    """Content-only epochs before the alternating schedule (0 skips the warm-up)."""
    epochs: int = 100
    """Alternating epochs, each one L-pass (collaborative LM) then one C-pass (content LM)."""
    lr: float = 1e-3
    """Adam learning rate for the ID embeddings."""
    user_lr_scale: float = 1.0
    """Multiplier on ``lr`` for user embeddings (each user token is seen once per pass)."""
    batch_size: int = 20
    """Documents per step (the smallest batch: see ``max_steps``)."""
    max_steps: int = 0
    """At most this many L-steps per epoch: on a catalogue with more users the batch grows to
    ``ceil(users / max_steps)`` documents (the learning rate stays: measured better than scaling it), so the
    per-step costs stop growing with the users; 0 = always ``batch_size``. C-passes keep ``batch_size``."""
    lambda_c: float = 1.0
    """Mutual-regularization strength (0 turns the regularization off)."""
    content_fraction: float = 1.0
    """Share of the content documents sampled afresh for each C-pass (1.0 = all)."""
    content_max_docs: int = 0
    """At most this many content documents per C-pass (0 = no cap): a large catalogue's text then costs the
    same per epoch as a small one's."""
    reorder: bool = True
    """Shuffle item order in interaction documents every epoch (false = fixed order)."""
    collab_target: str = "next"
    """What each position of an interaction document predicts: ``next`` (the next item, the paper's LM loss)
    or ``rest`` (every item from there on: the next-item loss averaged over the shuffled order; §2)."""
    validate: bool = False
    """Evaluate next-item recommendation on validation after each alternating epoch."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Recommendation-oriented finetuning with the multinomial item head (docs/DESIGN.md §4)."""

    enabled: bool = True
    """False skips finetuning: the pretrained model is evaluated as is (the "no finetuning" ablation)."""
    epochs: int = 150
    """Maximum finetuning epochs."""
    lr: float = 1e-4
    """Adam learning rate for the ID embeddings."""
    user_lr_scale: float = 1.0
    """Multiplier on ``lr`` for user embeddings."""
    batch_size: int = 20
    """Users (recommendation documents) per step (the smallest batch: see ``max_steps``)."""
    max_steps: int = 0
    """At most this many recommendation steps per epoch, as ``pretrain.max_steps`` but with the learning rate
    grown with the square root of the batch (Adam's rule; what the Toys runs measured); 0 = always
    ``batch_size``."""
    mask_fraction: float = 0.2
    """Share of each user's train items held out as the target every epoch (at least one)."""
    target: str = "heldout"
    """``heldout``: predict the masked items (the paper); ``all``: predict all train items."""
    ema: float = 0.0
    """Decay of an exponential moving average of the ID tables, updated after every recommendation step;
    validation, the ``best/`` checkpoint and so serving use the average (docs/DESIGN.md §4). 0 = off."""
    lambda_c: float = 1.0
    """Mutual-regularization strength toward the content embeddings."""
    content_fraction: float = 1.0
    """Share of the content documents sampled for each content pass."""
    content_max_docs: int = 0
    """At most this many content documents per content pass, as ``pretrain.content_max_docs``."""
    patience: int = 10
    """Stop after this many epochs without a better validation selection score."""
    selection: tuple[str, ...] = DEFAULT_SELECTION_KEYS
    """Validation metrics summed to pick the best checkpoint."""


@dataclass(frozen=True)
class RunConfig:
    """The whole configuration of a training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    budget: str = ""
    """Wall-clock budget of ``cllm4rec train`` (``30m``, ``1.5h``, ``900s``; empty: none). The epochs of both
    stages are planned to fit it on the machine at hand (``training/budget.py``); ``--budget`` overrides."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists) for YAML/JSON."""
        return _plain(dataclasses.asdict(self))

    def validate(self) -> RunConfig:
        """Check value ranges once, at the edge; return self."""
        m, p, f = self.model, self.pretrain, self.finetune
        checks = [
            (m.init_scale > 0, "model.init_scale must be > 0"),
            (m.collab_layers >= 0, "model.collab_layers must be >= 0 (0 runs all of the backbone's layers)"),
            (m.max_length >= 16, "model.max_length must be >= 16"),
            (m.checkpoint_tokens >= 0, "model.checkpoint_tokens must be >= 0 (0 turns checkpointing off)"),
            (m.readout in READOUTS, f"model.readout must be one of {', '.join(READOUTS)}"),
            (m.item_init in ("random", "svd"), "model.item_init must be 'random' or 'svd'"),
            (m.content_init in ("random", "text"), "model.content_init must be 'random' or 'text'"),
            (p.collab_target in COLLAB_TARGETS, f"pretrain.collab_target must be one of {', '.join(COLLAB_TARGETS)}"),
            (p.warmup_epochs >= 0 and p.epochs >= 0, "pretrain epochs must be >= 0"),
            (p.lr > 0 and f.lr > 0, "learning rates must be > 0"),
            (p.user_lr_scale > 0 and f.user_lr_scale > 0, "user_lr_scale must be > 0"),
            (p.batch_size >= 1 and f.batch_size >= 1, "batch sizes must be >= 1"),
            (p.max_steps >= 0 and f.max_steps >= 0, "max_steps must be >= 0 (0: no cap)"),
            (p.content_max_docs >= 0 and f.content_max_docs >= 0, "content_max_docs must be >= 0 (0: no cap)"),
            (p.lambda_c >= 0 and f.lambda_c >= 0, "lambda_c must be >= 0"),
            (
                0 < p.content_fraction <= 1 and 0 < f.content_fraction <= 1,
                "content_fraction must be in (0, 1]",
            ),
            (0 < f.mask_fraction < 1, "finetune.mask_fraction must be in (0, 1)"),
            (f.target in ("heldout", "all"), "finetune.target must be 'heldout' or 'all'"),
            (0 <= f.ema < 1, "finetune.ema must be in [0, 1) (0 turns the average off)"),
            (f.epochs >= 0, "finetune.epochs must be >= 0"),
            (f.patience >= 1, "finetune.patience must be >= 1"),
            (len(f.selection) > 0, "finetune.selection must name at least one metric"),
        ]
        for ok, message in checks:
            if not ok:
                raise CLLM4RecError(f"invalid config: {message}")
        if self.budget:
            parse_duration(self.budget, "budget")
        for key in f.selection:
            kind, _, k = key.partition("@")
            if kind not in ("recall", "ndcg") or not k.isdigit():
                raise CLLM4RecError(f"invalid config: unknown selection metric {key!r} (use recall@K or ndcg@K)")
        return self


def available_presets() -> list[str]:
    """Names of the presets shipped in the package."""
    folder = resources.files("cllm4rec") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a shipped preset."""
    if name not in available_presets():
        raise CLLM4RecError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
    text = (resources.files("cllm4rec") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    base: RunConfig | None = None,
) -> RunConfig:
    """Build a validated config: defaults (or ``base``, such as a run's own config), then a preset, then a YAML
    file, then ``key=value`` overrides."""
    merged: dict[str, Any] = base.to_dict() if base is not None else {}
    if preset:
        _deep_update(merged, preset_dict(preset))
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise CLLM4RecError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CLLM4RecError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise CLLM4RecError(f"config file {path} must hold a mapping")
        _deep_update(merged, data)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLLM4RecError(f"override {item!r} is not of the form section.key=value")
        node = merged
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CLLM4RecError(f"override {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise CLLM4RecError(f"override {item!r}: the value is not valid YAML ({exc.problem})") from exc
    return config_from_dict(merged)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Strictly convert a nested mapping into a validated ``RunConfig``."""
    if not isinstance(data, dict):
        raise CLLM4RecError("config must be a mapping with sections model, pretrain, finetune")
    sections = {f.name: f.type for f in dataclasses.fields(RunConfig) if f.name not in SCALAR_KEYS}
    unknown = set(data) - set(sections) - set(SCALAR_KEYS)
    if unknown:
        raise CLLM4RecError(f"unknown config section(s): {', '.join(sorted(unknown))}; expected {', '.join(sections)}")
    hints = typing.get_type_hints(RunConfig)
    built: dict[str, Any] = {name: _build(hints[name], data.get(name) or {}, name) for name in sections}
    for name in SCALAR_KEYS:
        if data.get(name) is not None:
            built[name] = coerce(hints[name], data[name], f"config {name}")
    return RunConfig(**built).validate()


def _build(cls: type, values: Any, section: str) -> Any:
    if not isinstance(values, dict):
        raise CLLM4RecError(f"config section {section!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(values)
    for key in list(values):
        name = f"{section}.{key}"
        reason = REMOVED_KEYS.get(name)
        if reason is None:
            continue
        if name in INERT_VALUES and values[key] == INERT_VALUES[name]:
            del values[key]  # an old run's record of the behaviour that is now the only one
            continue
        raise CLLM4RecError(f"config key {name} was removed ({reason}); delete it from the config")
    unknown = set(values) - names
    if unknown:
        raise CLLM4RecError(
            f"unknown key(s) in {section}: {', '.join(sorted(unknown))}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {key: coerce(hints[key], value, f"config {section}.{key}") for key, value in values.items()}
    return cls(**kwargs)


def _deep_update(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def dump_config(config: RunConfig) -> str:
    """YAML text of a config (what a run folder keeps as ``config.yaml``)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
