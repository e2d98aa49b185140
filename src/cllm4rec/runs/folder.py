"""The run folder: config copy, dataset identity, per-stage checkpoints, logs and the curves plot.

::

    RUN/
      config.yaml            the resolved config (the run's single source of truth while it trains)
      run.json               dataset folder + content hash, seed, device
      pretrain/{last,best}/  self-contained checkpoints (see checkpoint.py) and pretrain/log.jsonl
      finetune/{last,best}/  likewise, with finetune/log.jsonl
      items/                 the final checkpoint with items added from their text (``add-items``), if any
      training_curves.png    losses and validation metrics, redrawn every epoch
      metrics.json           test metrics written by ``cllm4rec train``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import (
    atomic_dir,
    check_output_folder,
    read_json,
    remove_stale_temporaries,
    write_text_atomic,
)
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import copy_checkpoint, dataset_hash, read_state
from cllm4rec.runs.config import RunConfig, dump_config, load_config

STAGES = ("pretrain", "finetune")
MARKER, MARKER_KEY = "run.json", "dataset_hash"
"""What makes a folder a cllm4rec run folder, the only kind ``--force`` clears (a dataset has ``meta.json``)."""


@dataclass
class RunFolder:
    """Paths and bookkeeping of one run folder."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info_file(self) -> Path:
        return self.root / "run.json"

    @property
    def items(self) -> Path:
        """The checkpoint ``add-items`` writes: the final one plus new items; served in its place."""
        return self.root / "items"

    def last(self, stage: str) -> Path:
        return self.root / stage / "last"

    def best(self, stage: str) -> Path:
        return self.root / stage / "best"

    def log_file(self, stage: str) -> Path:
        return self.root / stage / "log.jsonl"

    @property
    def exists(self) -> bool:
        return self.info_file.is_file()

    def info(self) -> dict[str, Any]:
        if not self.exists:
            raise CLLM4RecError(f"{self.root} is not a cllm4rec run folder (no run.json)")
        return read_json(self.info_file)

    def config(self) -> RunConfig:
        if not self.config_file.is_file():
            raise CLLM4RecError(f"{self.root} has no config.yaml")
        return load_config(config_file=self.config_file)

    def create(self, config: RunConfig, dataset: Dataset, *, seed: int, device: str, force: bool) -> None:
        """Start a new run folder; an existing one is refused unless ``force`` (then it is cleared)."""
        check_output_folder(
            self.root, what="run", marker=MARKER, marker_key=MARKER_KEY, inputs=[dataset.path], force=force
        )
        if self.root.exists() and any(self.root.iterdir()) and not force:
            raise CLLM4RecError(
                f"run folder {self.root} already exists; use --resume to continue it or --force to start over"
            )
        with atomic_dir(self.root, force=True) as tmp:  # the new folder appears whole, replacing the old at once
            (tmp / self.config_file.name).write_text(dump_config(config), encoding="utf-8")
            info = {
                "dataset": str(Path(dataset.path).resolve()) if dataset.path else None,
                "dataset_hash": dataset_hash(dataset),
                "seed": seed,
                "device": device,
                "n_users": dataset.n_users,
                "n_items": dataset.n_items,
            }
            (tmp / self.info_file.name).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def check_dataset(self, dataset: Dataset) -> None:
        """Refuse to continue a run with a dataset other than the one it started with."""
        expected = self.info()["dataset_hash"]
        actual = dataset_hash(dataset)
        if expected != actual:
            raise CLLM4RecError(
                f"run folder {self.root} was trained on another dataset (hash {expected[:12]}, this one {actual[:12]})"
            )

    def update_config(self, config: RunConfig) -> None:
        write_text_atomic(self.config_file, dump_config(config))

    def write_log(self, stage: str, history: list[dict[str, Any]]) -> None:
        """Rewrite the stage's JSON-lines log from the checkpointed history (consistent after a resume)."""
        write_text_atomic(self.log_file(stage), "".join(json.dumps(row) + "\n" for row in history))

    def history(self, stage: str) -> list[dict[str, Any]]:
        file = self.log_file(stage)
        if not file.is_file():
            return []
        try:
            return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, ValueError) as exc:
            raise CLLM4RecError(f"cannot read {file}: {exc}") from exc

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    def finished(self) -> bool:
        """Whether ``cllm4rec train`` completed here: its test results are written (they come last)."""
        return self.exists and self.metrics_file.is_file()

    def trained_seconds(self) -> float:
        """Seconds of the epochs its checkpoints hold, over both stages: what earlier parts of a resumed run
        spent (an epoch a kill interrupted is redone and counted once)."""
        total = 0.0
        for stage in STAGES:
            state = read_state(self.last(stage)) or {}
            total += sum(float(row.get("seconds", 0.0)) for row in state.get("history", []))
        return total

    def best_mismatch(self, stage: str) -> str | None:
        """Why ``<stage>/best`` is not what ``<stage>/last`` says it should hold, or None when it is.

        ``last/state.json`` names the best epoch (or none, without validation: then best/ is the final
        epoch, written once the stage is complete); ``best/state.json`` says which epoch it holds."""
        last = read_state(self.last(stage))
        if last is None or (last.get("best_epoch") is None and not last.get("complete")):
            return None
        want = last.get("best_epoch")
        want = last.get("epoch") if want is None else want
        best = read_state(self.best(stage))
        if best is None:
            return f"{stage}/best is missing (last/ names epoch {want})"
        if best.get("stage", stage) != stage:
            return f"{stage}/best holds a {best.get('stage')} checkpoint"
        if best.get("epoch", -1) > last.get("epoch", 0) and not last.get("complete"):
            return None  # written just before a kill, ahead of last/: the resume redoes that epoch and writes it again
        if best.get("epoch") != want:
            return f"{stage}/best holds epoch {best.get('epoch')}, but last/ names epoch {want}"
        return None

    def targets(self) -> list[Path]:
        """Every file and folder the training commands write (atomically) in the run folder."""
        files = [self.config_file, self.info_file, self.metrics_file, self.root / "training_curves.png", self.items]
        for stage in STAGES:
            files += [self.last(stage), self.best(stage), self.log_file(stage)]
        return files

    def repair(self, config: RunConfig) -> list[str]:
        """Make each stage's ``best/`` what its ``last/`` names, where a kill between the two writes left them
        apart (folders written before the pair was ordered, or the end of an unvalidated stage), after
        removing what killed writers left beside its files; returns what it did. ``best/`` is a copy of
        ``last/`` there, except with finetuning's moving average (``finetune.ema``), whose averaged tables only
        the stage itself can write: that mismatch is an error."""
        repaired = []
        for target in self.targets():
            for path in remove_stale_temporaries(target):
                repaired.append(f"removed {path.name}, left by a killed writer")
        for stage in STAGES:
            problem = self.best_mismatch(stage)
            if problem is None:
                continue
            last = read_state(self.last(stage)) or {}
            want = last.get("best_epoch")
            averaged = stage == "finetune" and config.finetune.ema > 0
            if averaged or (want is not None and want != last.get("epoch")):
                raise CLLM4RecError(
                    f"run folder {self.root} is inconsistent: {problem}, and it cannot be rebuilt from last/; "
                    f"start the stage over (cllm4rec train --out {self.root} --force ...)"
                )
            copy_checkpoint(self.last(stage), self.best(stage))
            repaired.append(f"{problem}: copied last/ to best/")
        return repaired

    def final(self, *, trained: bool = False) -> tuple[Path, str]:
        """The checkpoint a finished run serves from, and its prompt style (``rec`` or pretrained ``lm``): the
        one with added items when there is one, unless ``trained`` asks for the last trained checkpoint."""
        if not self.exists:
            raise CLLM4RecError(f"{self.root} is not a cllm4rec run folder (no run.json)")
        added = read_state(self.items)
        if added is not None and not trained:
            return self.items, str(added.get("style", "rec"))
        for stage in STAGES:
            problem = self.best_mismatch(stage)
            if problem is not None:
                raise CLLM4RecError(
                    f"run folder {self.root} is inconsistent: {problem}; repair it with "
                    f"'cllm4rec train --out {self.root} --resume'"
                )
        if read_state(self.best("finetune")) is not None:
            return self.best("finetune"), "rec"
        if read_state(self.best("pretrain")) is not None:
            return self.best("pretrain"), "lm"
        raise CLLM4RecError(f"{self.root} holds no trained checkpoint yet")
