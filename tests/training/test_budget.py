"""``--budget``: parsing, the plan, and a run that stops within it (tiny backbone)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from cllm4rec.cli.main import main
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.config import load_config
from cllm4rec.training.budget import Budget, EpochCosts, parse_budget, plan

TOLERANCE = 1.25
"""A budgeted run may end up to 25% past its budget on a tiny model: a run of a few seconds is mostly set-up
and test scoring, which the plan estimates from one batch."""


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1.5h", 5400), ("45", 45), (" 2M ", 120)])
def test_budget_parses_durations(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "0m", "abc", "-5m", "10 minutes", "", "1e9999"])
def test_budget_refuses_nonsense(text: str) -> None:
    with pytest.raises(CLLM4RecError, match="--budget"):
        parse_budget(text)


def test_plan_cuts_pretraining_first_then_both_stages() -> None:
    config = load_config("quick")  # 12 pretraining + 15 finetuning epochs
    costs = EpochCosts(pretrain=10.0, finetune=5.0, validation=1.0)
    budget = Budget(seconds=300, started=time.perf_counter())  # 12*10 + 15*5 + 1 = 196 s fits in 285
    same, _ = plan(config, costs, budget)
    assert (same.pretrain.epochs, same.finetune.epochs) == (12, 15)
    budget = Budget(seconds=160, started=time.perf_counter())  # 152 s left: pretraining gives up epochs
    cut, text = plan(config, costs, budget)
    assert (cut.pretrain.epochs, cut.finetune.epochs) == (7, 15)
    assert "7 pretraining epochs (preset 12) and 15 finetuning epochs (preset 15)" in text
    assert budget.finetune_seconds == 15 * 5.0 + 1.0
    budget = Budget(seconds=80, started=time.perf_counter())  # below a third of pretraining + all finetuning
    both, _ = plan(config, costs, budget)
    assert (both.pretrain.epochs, both.finetune.epochs) == (2, 9)  # (4, 15) x 0.65, rounded down
    with pytest.raises(CLLM4RecError, match="too small"):
        plan(config, costs, Budget(seconds=12, started=time.perf_counter()))


def test_the_config_carries_a_budget_and_checks_it() -> None:
    assert load_config(overrides=["budget=30m"]).budget == "30m"
    assert load_config().budget == ""
    with pytest.raises(CLLM4RecError, match="budget"):
        load_config(overrides=["budget=soon"])


def test_a_budgeted_run_plans_prints_and_ends_in_time(
    tiny_data_dir: Path, tmp_path: Path, tiny_cli_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = [*tiny_cli_args, "pretrain.warmup_epochs=0", "pretrain.epochs=5000", "finetune.epochs=5000"]
    args += ["finetune.patience=1000"]
    started = time.perf_counter()
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(run), "--budget", "60s", *args]) == 0
    wall = time.perf_counter() - started
    out = capsys.readouterr().out
    assert "budget 60s" in out and "Plan:" in out
    assert wall <= 60 * TOLERANCE, wall
    config = yaml.safe_load((run / "config.yaml").read_text())
    pre, fine = config["pretrain"]["epochs"], config["finetune"]["epochs"]
    assert 1 <= pre < 5000 and 1 <= fine < 5000  # the plan cut both stages and recorded it
    assert json.loads((run / "metrics.json").read_text())["metrics"]["n_users"] > 0


def test_cli_refuses_a_zero_budget(tiny_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tiny_data_dir), "--out", str(tmp_path / "r"), "--budget", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--budget must be more than 0" in err[0]
    assert not (tmp_path / "r").exists()
