"""The Python API: what ``import cllm4rec`` exposes, as thin wrappers over the functions the CLI calls.

::

    data = cllm4rec.prepare_dataset("movielens", "ml-100k", out="data/ml100k")
    result = cllm4rec.train(data, "quick", out="runs/ml100k", pretrain__epochs=2)
    run = cllm4rec.load_run(result.run_dir)
    cllm4rec.recommend(run, [cllm4rec.Query(user="196")], k=10)

Nothing here trains, scores or serves by itself: :func:`train` is ``training.runner.run_train``,
:func:`load_config` is ``runs.config.load_config`` with dict or keyword overrides, :func:`evaluate` is the
one evaluation harness. :class:`CLLM4Rec` puts a whole training run behind the ``fit``/``score`` contract
the baselines follow, so CLLM4Rec and EASE can share one loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset, PrepareOptions, ReaderOptions
from cllm4rec.data import prepare_dataset as _prepare_dataset
from cllm4rec.runs.config import RunConfig, config_from_dict
from cllm4rec.runs.config import load_config as _load_config

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

    from cllm4rec.evaluation import Evaluation, Recommender
    from cllm4rec.serving import LoadedRun

__all__ = ["CLLM4Rec", "TrainResult", "evaluate", "load_config", "load_dataset", "prepare_dataset", "train"]

PathLike = str | os.PathLike[str]


# ----- data ------------------------------------------------------------------------------------------------
def prepare_dataset(
    fmt: str,
    input: PathLike,
    meta: PathLike | None = None,
    *,
    out: PathLike | None = None,
    force: bool = False,
    reader_options: ReaderOptions | None = None,
    **options: Any,
) -> Dataset:
    """Read ``input`` in format ``fmt`` (movielens, recbole, amazon, csv), preprocess and split it; with
    ``out``, also save the folder (what ``cllm4rec data prepare`` writes). ``options`` are
    :class:`~cllm4rec.data.PrepareOptions` fields (``min_rating``, ``kcore``, ``split``, ``seed``, ``cold_items``)."""
    dataset = _prepare_dataset(fmt, input, meta, PrepareOptions(**options), reader_options)
    if out is not None:
        dataset.save(out, force=force)
    return dataset


def load_dataset(path: PathLike) -> Dataset:
    """A prepared dataset folder."""
    return Dataset.load(path)


# ----- config ----------------------------------------------------------------------------------------------
def load_config(
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    file: PathLike | None = None,
    base: RunConfig | None = None,
    **keywords: Any,
) -> RunConfig:
    """A validated :class:`RunConfig`: defaults (or ``base``), then ``preset``, then ``file``, then overrides.

    Overrides are a nested dict (``{"pretrain": {"epochs": 2}}``), a dict of dotted keys
    (``{"pretrain.epochs": 2}``), or keywords with ``__`` for the dot (``pretrain__epochs=2``); keywords come
    last. Values are typed Python values, not strings; unknown keys are errors, as on the command line.
    """
    config = _load_config(preset, file, base=base)
    nested: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        _set(nested, str(key).split("."), value)
    for key, value in keywords.items():
        _set(nested, key.split("__"), value)
    if not nested:
        return config
    merged = config.to_dict()
    _merge(merged, nested)
    return config_from_dict(merged)


def _set(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    """Put ``value`` at ``parts`` in ``tree``; a dict value is merged key by key."""
    if any(not part for part in parts):
        raise CLLM4RecError(f"config override {'.'.join(parts)!r} has an empty key")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CLLM4RecError(f"config override {'.'.join(parts)!r}: {part} is not a section")
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _set(node, [parts[-1], *str(key).split(".")], inner)
    else:
        node[parts[-1]] = list(value) if isinstance(value, tuple) else value


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _as_config(config: RunConfig | str | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> RunConfig:
    if isinstance(config, RunConfig):
        return load_config(base=config, **overrides) if overrides else config
    if config is None or isinstance(config, str):
        return load_config(config, **overrides)
    if isinstance(config, Mapping):
        return load_config(None, config, **overrides)
    raise CLLM4RecError(f"config must be a RunConfig, a preset name or a dict, not {type(config).__name__}")


# ----- training --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: where the run is and its test metrics (also in ``run_dir/metrics.json``)."""

    run_dir: Path
    """The run folder: config, checkpoints, logs, curves (docs/DESIGN.md §10)."""
    metrics: dict[str, float]
    """Test-split metrics of the final checkpoint (``recall@20``, ``ndcg@100``, ...)."""
    checkpoint: str
    """The checkpoint that was scored, relative to ``run_dir`` (``finetune/best`` after finetuning)."""
    prompt_style: str
    """``rec`` for a finetuned run, ``lm`` for a pretrained-only one."""
    train_seconds: float
    score_seconds_per_1k_users: float
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else ``metrics.json`` holds."""

    @classmethod
    def from_dict(cls, run_dir: Path, result: Mapping[str, Any]) -> TrainResult:
        known = ("metrics", "checkpoint", "prompt_style", "train_seconds", "score_seconds_per_1k_users")
        return cls(
            run_dir=run_dir,
            metrics=dict(result["metrics"]),
            checkpoint=str(result["checkpoint"]),
            prompt_style=str(result["prompt_style"]),
            train_seconds=float(result["train_seconds"]),
            score_seconds_per_1k_users=float(result["score_seconds_per_1k_users"]),
            extra={k: v for k, v in result.items() if k not in (*known, "split")},
        )


def train(
    data: Dataset | PathLike,
    config: RunConfig | str | Mapping[str, Any] | None = None,
    *,
    out: PathLike,
    seed: int | None = None,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    budget: float | None = None,
    **overrides: Any,
) -> TrainResult:
    """``cllm4rec train`` from Python: pretrain, finetune, evaluate on test; return the run and its metrics.

    ``data`` is a prepared dataset folder or a :class:`Dataset` saved to one (``prepare_dataset(..., out=)``);
    ``config`` a :class:`RunConfig`, a preset name or an override dict, and keyword ``overrides``
    (``pretrain__epochs=2``) apply on top. ``budget`` is wall-clock seconds for the whole run (``--budget``).
    ``resume`` continues an interrupted run with its saved config; a finished one is returned as it is.
    """
    from cllm4rec.core.defaults import DEFAULT_SEED
    from cllm4rec.core.files import folder_lock, read_json, write_json_atomic
    from cllm4rec.runs.folder import RunFolder
    from cllm4rec.training.runner import RunOptions, run_train

    run_dir = Path(out)
    path = _dataset_path(data)
    run = RunFolder(run_dir)
    if resume and (config is not None or overrides):
        raise CLLM4RecError("resume continues a run with its saved config; give no config or overrides")
    options = RunOptions(
        seed=DEFAULT_SEED if seed is None else seed,
        device=device,
        resume=resume,
        force=force,
        progress=progress,
        budget=budget,
    )
    with folder_lock(run_dir, "run folder"):
        if resume and run.finished():
            return TrainResult.from_dict(run_dir, read_json(run.metrics_file))
        earlier = run.trained_seconds() if resume and run.exists else 0.0
        result = run_train(run_dir, path, None if resume else _as_config(config, overrides), options)
        if earlier:  # the whole run's time, as ``cllm4rec train --resume`` records it
            result["train_seconds"] = round(earlier + result["train_seconds"], 1)
            write_json_atomic(run.metrics_file, result)
    return TrainResult.from_dict(run_dir, result)


def _dataset_path(data: Dataset | PathLike | None) -> Path | None:
    if data is None or not isinstance(data, Dataset):
        return None if data is None else Path(data)
    if data.path is None:
        raise CLLM4RecError("training reads a dataset folder: save the dataset first (dataset.save(folder))")
    return Path(data.path)


# ----- evaluation ------------------------------------------------------------------------------------------
def evaluate(
    model: Recommender | LoadedRun | TrainResult | PathLike,
    data: Dataset | PathLike | None = None,
    split: str = "test",
    *,
    device: str = "auto",
    progress: bool = False,
) -> Evaluation:
    """Full-ranking metrics of ``model`` on ``split`` (known items excluded): ``.metrics``, ``.per_user()``.

    ``model`` is any fitted recommender (a baseline, :class:`CLLM4Rec`), a loaded run, a :class:`TrainResult`
    or a run folder; ``data`` defaults to the dataset a run was trained on (a recommender needs it).
    """
    from cllm4rec.evaluation import evaluate as _evaluate
    from cllm4rec.serving import LoadedRun, load_run

    if isinstance(model, TrainResult):
        model = model.run_dir
    if isinstance(model, str | os.PathLike):
        model = load_run(model, device=device, progress=progress)
    if isinstance(model, CLLM4Rec):
        model = model.loaded
    if isinstance(model, LoadedRun):
        if isinstance(data, Dataset):
            model.recommender.fit(data)  # refuses a dataset the run was not trained on
            return _evaluate(model.recommender, data, split, progress=progress)
        return _evaluate(model.recommender, model.dataset(data), split, progress=progress)
    if data is None:
        raise CLLM4RecError("evaluating a recommender needs the dataset (data=...)")
    dataset = data if isinstance(data, Dataset) else Dataset.load(data)
    return _evaluate(model, dataset, split, progress=progress)


# ----- CLLM4Rec behind the recommender contract ------------------------------------------------------------
class CLLM4Rec:
    """CLLM4Rec as a recommender like the baselines: ``fit`` trains a run folder, ``score`` ranks with it.

    ``CLLM4Rec("quick", out="runs/x").fit(dataset)`` is :func:`train` then :func:`load_run`. Training always
    learns from the train split and selects checkpoints on validation, so ``fit`` gives the same model for
    either ``split``; evaluate it on test. (The ``nn.Module`` of the same name is ``cllm4rec.model.CLLM4Rec``.)
    """

    name = "cllm4rec"

    def __init__(
        self,
        config: RunConfig | str | Mapping[str, Any] | None = "quick",
        *,
        out: PathLike,
        seed: int | None = None,
        device: str = "auto",
        force: bool = False,
        progress: bool = False,
        **overrides: Any,
    ) -> None:
        self.config = _as_config(config, overrides)
        self.out = Path(out)
        self.seed, self.device, self.force, self.progress = seed, device, force, progress
        self.result: TrainResult | None = None
        self._loaded: LoadedRun | None = None

    @property
    def loaded(self) -> LoadedRun:
        if self._loaded is None:
            raise CLLM4RecError("the model is not fitted yet: call fit() first")
        return self._loaded

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> CLLM4Rec:
        """Train a run folder on ``dataset`` (which must be saved to a folder), then load its final checkpoint."""
        from cllm4rec.data.dataset import evaluation_split
        from cllm4rec.serving import load_run

        evaluation_split(split, "fitting a recommender")
        self.result = train(
            dataset,
            self.config,
            out=self.out,
            seed=self.seed,
            device=self.device,
            force=self.force,
            progress=self.progress or progress,
        )
        self._loaded = load_run(self.out, device=self.device)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """(B, J) scores, as :meth:`CLLM4RecRecommender.score`."""
        return self.loaded.recommender.score(users, history)
