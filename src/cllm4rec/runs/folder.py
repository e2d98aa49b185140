"""The run folder: config copy, dataset identity, per-stage checkpoints, logs and the curves plot.

::

    RUN/
      config.yaml            the resolved config (the run's single source of truth while it trains)
      run.json               dataset folder + content hash, seed, device
      pretrain/{last,best}/  self-contained checkpoints (see checkpoint.py) and pretrain/log.jsonl
      finetune/{last,best}/  likewise, with finetune/log.jsonl
      training_curves.png    losses and validation metrics, redrawn every epoch
      metrics.json           test metrics written by ``cllm4rec train``
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import read_json, write_json_atomic, write_text_atomic
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import dataset_hash, read_state
from cllm4rec.runs.config import RunConfig, dump_config, load_config

STAGES = ("pretrain", "finetune")


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
        if self.root.exists() and any(self.root.iterdir()):
            if not force:
                raise CLLM4RecError(
                    f"run folder {self.root} already exists; use --resume to continue it or --force to start over"
                )
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.config_file, dump_config(config))
        write_json_atomic(
            self.info_file,
            {
                "dataset": str(Path(dataset.path).resolve()) if dataset.path else None,
                "dataset_hash": dataset_hash(dataset),
                "seed": seed,
                "device": device,
                "n_users": dataset.n_users,
                "n_items": dataset.n_items,
            },
        )

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

    def final(self) -> tuple[Path, str]:
        """The checkpoint a finished run serves from, and its prompt style (``rec`` or pretrained ``lm``)."""
        if not self.exists:
            raise CLLM4RecError(f"{self.root} is not a cllm4rec run folder (no run.json)")
        if read_state(self.best("finetune")) is not None:
            return self.best("finetune"), "rec"
        if read_state(self.best("pretrain")) is not None:
            return self.best("pretrain"), "lm"
        raise CLLM4RecError(f"{self.root} holds no trained checkpoint yet")
