"""``cllm4rec finetune --run``: what key=value overrides change in the run's own config."""

from __future__ import annotations

from pathlib import Path

import yaml

from cllm4rec.cli.main import main
from cllm4rec.runs.config import load_config

PRETRAIN_OVERRIDES = [
    "finetune.lambda_c=0.3",
    "finetune.user_lr_scale=5",
    "finetune.mask_fraction=0.4",
    "finetune.patience=4",
]


def test_finetune_overrides_change_only_their_keys_of_the_run_config(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str]
) -> None:
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tiny_data_dir), "--out", str(run), *tiny_cli_args, *PRETRAIN_OVERRIDES]) == 0
    code = main(["finetune", "--run", str(run), "--device", "cpu", "--no-progress", "finetune.epochs=1"])
    assert code == 0
    finetune = yaml.safe_load((run / "config.yaml").read_text())["finetune"]
    assert finetune["epochs"] == 1
    # the run's own finetuning settings stay; before, they fell back to the library defaults (1.0, 1.0, 0.2)
    assert (finetune["lambda_c"], finetune["user_lr_scale"], finetune["mask_fraction"]) == (0.3, 5.0, 0.4)
    assert (run / "finetune" / "best").is_dir()


def test_finetune_with_a_preset_takes_the_presets_settings(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str]
) -> None:
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tiny_data_dir), "--out", str(run), *tiny_cli_args, *PRETRAIN_OVERRIDES]) == 0
    code = main(["finetune", "--run", str(run), "--preset", "quick", "--device", "cpu", "--no-progress"])
    assert code == 0
    finetune = yaml.safe_load((run / "config.yaml").read_text())["finetune"]
    quick = load_config("quick").finetune
    assert (finetune["lambda_c"], finetune["user_lr_scale"], finetune["patience"]) == (
        quick.lambda_c,
        quick.user_lr_scale,
        quick.patience,
    )
    assert finetune["patience"] != 4
