"""A tiny trained run (tiny random backbone, synthetic data) shared by the serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cllm4rec.training.config import load_config
from cllm4rec.training.runner import RunOptions, run_train


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "_train_conftest", Path(__file__).parents[1] / "training" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["_train_conftest"] = module
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("served")
    module.make_dataset().save(root / "data")
    config = load_config(
        overrides=[
            "model.backbone=tiny-llama",
            "model.bf16=false",
            "model.max_length=64",
            "pretrain.warmup_epochs=0",
            "pretrain.epochs=2",
            "finetune.epochs=1",
            "pretrain.batch_size=8",
            "finetune.batch_size=8",
        ]
    )
    run_train(root / "run", root / "data", config, RunOptions(seed=1, device="cpu", progress=False))
    return root / "run"
