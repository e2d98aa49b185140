"""The golden losses of the training loops hold when every item loss goes through item chunks (DESIGN §2).

Same run as ``test_loops.py::test_golden_losses_first_epochs`` (same pinned values and tolerance), with the
model's logit budget shrunk so that the next-item, rest-of-set and recommendation losses all take the chunked
log-sum-exp path with a few items per chunk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cllm4rec.model import cllm4rec as model_module
from cllm4rec.runs.config import load_config
from cllm4rec.training.runner import RunOptions, run_train

TINY = [
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=64",
    "model.init_scale=1.0",
    "pretrain.batch_size=8",
    "finetune.batch_size=8",
]


def _history(run: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run / stage / "log.jsonl").read_text().splitlines()]


def test_golden_losses_with_the_chunked_head(
    tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_module, "LOGIT_BUDGET", 64)  # every batch is past it: chunks of a few items
    config = load_config(overrides=[*TINY, "pretrain.warmup_epochs=1", "pretrain.epochs=1", "finetune.epochs=1"])
    run_train(tmp_path / "run", tiny_data_dir, config, RunOptions(seed=7, device="cpu", progress=False))
    pre, fine = _history(tmp_path / "run", "pretrain"), _history(tmp_path / "run", "finetune")
    got = {
        "warmup_content": pre[0]["content_loss"],
        "collab": pre[1]["collab_loss"],
        "collab_reg": pre[1]["collab_reg"],
        "content": pre[1]["content_loss"],
        "rec": fine[1]["rec_loss"],
        "rec_reg": fine[1]["rec_reg"],
    }
    golden = json.loads((Path(__file__).parent / "golden_losses.json").read_text())
    for key, value in golden.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-4), key
