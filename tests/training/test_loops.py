"""The two training loops on a tiny random backbone: learning, golden losses, regularization, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.model import cllm4rec as model_module
from cllm4rec.runs.config import load_config
from cllm4rec.training.averaging import EMA_KEY
from cllm4rec.training.epoch import StageState
from cllm4rec.training.runner import RunOptions, run_finetune_stage, run_pretrain_stage, run_train

TINY = [
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=64",
    "model.init_scale=1.0",
    "pretrain.batch_size=8",
    "finetune.batch_size=8",
]


def _config(*extra: str):
    return load_config(overrides=TINY + list(extra))


def _opts(**kw) -> RunOptions:
    return RunOptions(seed=7, device="cpu", progress=False, **kw)


def _history(run: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run / stage / "log.jsonl").read_text().splitlines()]


def test_pretraining_losses_decrease(tiny_data_dir: Path, tmp_path: Path) -> None:
    config = _config("pretrain.warmup_epochs=1", "pretrain.epochs=6", "pretrain.lr=1e-2")
    state = run_pretrain_stage(tmp_path / "run", tiny_data_dir, config, _opts())
    rows = state.history
    assert rows[0]["phase"] == "warmup" and "collab_loss" not in rows[0]
    collab = [r["collab_loss"] for r in rows[1:]]
    content = [r["content_loss"] for r in rows]
    assert collab[-1] < collab[0] * 0.95
    # words are predicted by the frozen head: only the ID-token prompt can adapt, so the gain is smaller
    assert content[-1] < content[0] - 0.1
    assert (tmp_path / "run" / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "run" / "pretrain" / "best" / "state.json").is_file()
    # every pass logs its smoothed loss every few steps, ending at the pass's end, for the curves
    for r in rows[1:]:
        trace = r["trace"]["collab_loss"]
        assert len(trace) >= 2 and trace[-1][0] == 1.0
        assert [x for x, _ in trace] == sorted(x for x, _ in trace)
        assert all(math.isfinite(y) and y > 0 for _, y in trace)
    assert set(rows[0]["trace"]) == {"content_loss"}


def test_quality_levers_train_end_to_end(tiny_data_dir: Path, tmp_path: Path) -> None:
    """Item bias + mean read-out + rest-of-set target: trains, saves the bias, and serves from it."""
    levers = ("model.item_bias=true", "model.center_head=true", "model.readout=mean", "pretrain.collab_target=rest")
    config = _config("pretrain.warmup_epochs=0", "pretrain.epochs=2", "finetune.epochs=1", *levers)
    result = run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    assert all(math.isfinite(v) for v in result["metrics"].values())
    dataset = Dataset.load(tiny_data_dir)
    tables = load_file(str(tmp_path / "run" / "pretrain" / "last" / "model" / "id_embeddings.safetensors"))
    log_pop = torch.log1p(torch.as_tensor(dataset.train.sum(axis=0), dtype=torch.float32).ravel())
    start = log_pop - log_pop.mean()
    assert tables["item_bias"].shape == start.shape
    assert not torch.allclose(tables["item_bias"], start)  # it started there and trained
    assert all(math.isfinite(r["collab_loss"]) for r in _history(tmp_path / "run", "pretrain"))
    assert tables["head_center"].abs().sum() > 0  # set from the backbone's hidden states before training


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_golden_losses_first_epochs(
    tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Pinned losses of each stage with a fixed seed (fp32): any change to the maths shows up here. ``chunked``:
    the same values when the logit budget is so small that every item loss takes the chunked log-sum-exp
    path, a few items per chunk (docs/DESIGN.md §2)."""
    if chunked:
        monkeypatch.setattr(model_module, "LOGIT_BUDGET", 64)
    config = _config("pretrain.warmup_epochs=1", "pretrain.epochs=1", "finetune.epochs=1")
    run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    pre, fine = _history(tmp_path / "run", "pretrain"), _history(tmp_path / "run", "finetune")
    got = {
        "warmup_content": pre[0]["content_loss"],
        "collab": pre[1]["collab_loss"],
        "collab_reg": pre[1]["collab_reg"],
        "content": pre[1]["content_loss"],
        "rec": fine[1]["rec_loss"],
        "rec_reg": fine[1]["rec_reg"],
    }
    print(json.dumps(got))
    golden = json.loads((Path(__file__).parent / "golden_losses.json").read_text())
    for key, value in golden.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-4), key


def test_no_regularization_toward_an_untrained_side(tiny_data_dir: Path, tmp_path: Path) -> None:
    """The first pass of each side pulls toward nothing random; finetuning inherits pretraining's record."""
    config = _config("pretrain.warmup_epochs=0", "pretrain.epochs=2", "finetune.epochs=1")
    run_train(tmp_path / "cold", tiny_data_dir, config, _opts())
    pre, fine = _history(tmp_path / "cold", "pretrain"), _history(tmp_path / "cold", "finetune")
    assert pre[0]["collab_reg"] == 0.0 and pre[0]["content_reg"] > 0  # content still random at the first L-pass
    assert pre[1]["collab_reg"] > 0 and fine[1]["rec_reg"] > 0 and fine[1]["content_reg"] > 0
    for stage in ("pretrain", "finetune"):
        saved = json.loads((tmp_path / "cold" / stage / "last" / "state.json").read_text())
        assert saved["trained_sides"] == ["collab", "content"]

    config = _config("pretrain.warmup_epochs=2", "pretrain.epochs=1", "finetune.enabled=false")
    run_train(tmp_path / "warm", tiny_data_dir, config, _opts())
    pre = _history(tmp_path / "warm", "pretrain")
    assert [r["content_reg"] for r in pre[:2]] == [0.0, 0.0]  # warm-up: the collaborative tables are random
    assert pre[2]["collab_reg"] > 0 and pre[2]["content_reg"] > 0


def test_resume_keeps_the_record_of_trained_sides(
    tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after its content warm-up, a resumed run regularises exactly like an uninterrupted one."""
    import cllm4rec.training.pretrain as pretrain_loop

    config = _config("pretrain.warmup_epochs=1", "pretrain.epochs=1")
    full = run_pretrain_stage(tmp_path / "full", tiny_data_dir, config, _opts())

    def close_then_stop(*args, **kwargs) -> None:
        close_epoch(*args, **kwargs)
        raise KeyboardInterrupt

    close_epoch = pretrain_loop.close_epoch
    monkeypatch.setattr(pretrain_loop, "close_epoch", close_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain_stage(tmp_path / "cut", tiny_data_dir, config, _opts())
    saved = json.loads((tmp_path / "cut" / "pretrain" / "last" / "state.json").read_text())
    assert saved["epoch"] == 1 and saved["trained_sides"] == ["content"]
    monkeypatch.setattr(pretrain_loop, "close_epoch", close_epoch)
    resumed = run_pretrain_stage(tmp_path / "cut", tiny_data_dir, None, _opts(resume=True))
    assert resumed.trained_sides == full.trained_sides == ["collab", "content"]
    for key in ("collab_reg", "content_reg", "collab_loss"):
        assert resumed.history[1][key] == full.history[1][key] > 0, key


def test_old_state_json_infers_trained_sides_from_its_log() -> None:
    old = {"stage": "pretrain", "seed": 1, "history": [{"epoch": 1, "content_loss": 9.0, "content_reg": 1.0}]}
    assert StageState.from_dict(old).trained_sides == ["content"]
    old["history"].append({"epoch": 2, "collab_loss": 5.0, "content_loss": 8.0})
    assert StageState.from_dict(old).trained_sides == ["collab", "content"]
    assert StageState.from_dict({**old, "trained_sides": []}).trained_sides == []


def test_mutual_regularization_pulls_embeddings_together(tiny_data_dir: Path, tmp_path: Path) -> None:
    def distance(lambda_c: float, name: str) -> float:
        config = _config(
            "pretrain.warmup_epochs=0",
            "pretrain.epochs=3",
            f"pretrain.lambda_c={lambda_c}",
            "pretrain.lr=5e-2",  # row-sparse Adam moves a user row once per epoch: a larger step shows the pull
        )
        run_pretrain_stage(tmp_path / name, tiny_data_dir, config, _opts())
        tables = load_file(str(tmp_path / name / "pretrain" / "last" / "model" / "id_embeddings.safetensors"))
        keys = {k.split(".")[0]: k for k in tables}
        return sum(
            float((tables[keys[f"{s}_collab"]] - tables[keys[f"{s}_content"]]).pow(2).sum()) for s in ("user", "item")
        )

    assert distance(50.0, "strong") < 0.5 * distance(0.0, "none")


def test_no_text_dataset_trains_collaborative_only(tmp_path: Path, capsys, make_dataset) -> None:
    make_dataset(text=False).save(tmp_path / "data")
    config = _config("pretrain.epochs=1", "finetune.epochs=1")
    result = run_train(tmp_path / "run", tmp_path / "data", config, _opts())
    assert "no text" in capsys.readouterr().out
    rows = _history(tmp_path / "run", "pretrain")
    assert "content_loss" not in rows[0] and rows[0]["collab_loss"] > 0
    assert result["metrics"]["n_users"] == 24 and result["prompt_style"] == "rec"


def test_content_switch_turns_the_content_side_off_in_both_stages(tiny_data_dir: Path, tmp_path: Path) -> None:
    """model.content=false: no content pass and no regularization anywhere, although lambda_c stays 1."""
    config = _config("model.content=false", "pretrain.warmup_epochs=1", "pretrain.epochs=2", "finetune.epochs=2")
    assert config.pretrain.lambda_c > 0 and config.finetune.lambda_c > 0
    run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    pre, fine = _history(tmp_path / "run", "pretrain"), _history(tmp_path / "run", "finetune")
    assert [r["phase"] for r in pre] == ["alternating", "alternating"]  # no content warm-up either
    assert not any("content_loss" in r for r in pre + fine)
    assert [r["collab_reg"] for r in pre] == [0.0, 0.0]
    assert [r["rec_reg"] for r in fine[1:]] == [0.0, 0.0]


def test_text_naming_ids_trains_end_to_end(tmp_path: Path, id_mention_dataset: Dataset) -> None:
    """Reviews and titles that mention ``item_5`` / ``user_12`` are words: both stages train on them."""
    id_mention_dataset.save(tmp_path / "data")
    config = _config("pretrain.warmup_epochs=1", "pretrain.epochs=1", "finetune.epochs=1")
    run_train(tmp_path / "run", tmp_path / "data", config, _opts())
    rows = _history(tmp_path / "run", "pretrain") + _history(tmp_path / "run", "finetune")[1:]
    assert all(math.isfinite(r["content_loss"]) for r in rows)


def test_finetune_keeps_best_and_metrics_json(tiny_data_dir: Path, tmp_path: Path) -> None:
    config = _config("pretrain.epochs=2", "finetune.epochs=3", "finetune.lr=1e-2")
    result = run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    rows = _history(tmp_path / "run", "finetune")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    best = max(rows, key=lambda r: r["valid_score"])
    state = json.loads((tmp_path / "run" / "finetune" / "best" / "state.json").read_text())
    assert state["epoch"] == best["epoch"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["checkpoint"] == "finetune/best" and saved["prompt_style"] == "rec"
    assert best["valid_score"] >= rows[0]["valid_score"]  # epoch 0 is the pretrained model: never worse


def test_no_finetuning_ablation_scores_with_the_pretrained_lm(tiny_data_dir: Path, tmp_path: Path) -> None:
    config = _config("pretrain.epochs=1", "finetune.enabled=false")
    result = run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    assert result["checkpoint"] == "pretrain/best" and result["prompt_style"] == "lm"
    assert not (tmp_path / "run" / "finetune").exists()


def test_run_folder_guards(tiny_data_dir: Path, tmp_path: Path, make_dataset) -> None:
    config = _config("pretrain.epochs=1")
    run_pretrain_stage(tmp_path / "run", tiny_data_dir, config, _opts())
    with pytest.raises(CLLM4RecError, match="already exists"):
        run_pretrain_stage(tmp_path / "run", tiny_data_dir, config, _opts())
    make_dataset(seed=5).save(tmp_path / "other")
    with pytest.raises(CLLM4RecError, match="another dataset"):
        run_pretrain_stage(tmp_path / "run", tmp_path / "other", None, _opts(resume=True))
    with pytest.raises(CLLM4RecError, match="not a run folder"):
        run_finetune_stage(tmp_path / "nothing", None, _opts())
    assert Dataset.load(tiny_data_dir).n_users == 24


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cllm4rec", *args]


def test_kill_and_resume_equals_uninterrupted(tiny_data_dir: Path, tmp_path: Path) -> None:
    """Run the CLI, kill -9 it after an epoch, resume, and compare with an uninterrupted run."""
    args = [
        "--data",
        str(tiny_data_dir),
        "--seed",
        "3",
        "--device",
        "cpu",
        "--no-progress",
        *TINY,
        "pretrain.warmup_epochs=1",
        "pretrain.epochs=12",
        "finetune.epochs=2",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full = subprocess.run(
        _cli("train", "--out", str(tmp_path / "full"), *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert full.returncode == 0, full.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli("train", "--out", str(killed), *args),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_file = killed / "pretrain" / "last" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 2:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = json.loads(state_file.read_text())["epoch"]
    assert stopped_at < 13, "the run finished before it could be killed"
    resumed = subprocess.run(
        _cli("train", "--out", str(killed), "--resume", "--device", "cpu", "--no-progress"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr

    for stage in ("pretrain", "finetune"):
        a = load_file(str(tmp_path / "full" / stage / "last" / "model" / "id_embeddings.safetensors"))
        b = load_file(str(killed / stage / "last" / "model" / "id_embeddings.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (stage, key)
        assert _history(tmp_path / "full", stage)[-1]["epoch"] == _history(killed, stage)[-1]["epoch"]
    ma = json.loads((tmp_path / "full" / "metrics.json").read_text())["metrics"]
    mb = json.loads((killed / "metrics.json").read_text())["metrics"]
    assert ma == mb


@pytest.mark.parametrize(("tokens", "expected"), [(0, math.inf), (64, 64)])
def test_checkpoint_tokens_reaches_the_model(tiny_data_dir: Path, tokens: int, expected: float) -> None:
    """``model.checkpoint_tokens`` sets the model's recompute threshold; 0 means never recompute."""
    from cllm4rec.training.engine import build_context

    config = _config(f"model.checkpoint_tokens={tokens}")
    ctx = build_context(Dataset.load(tiny_data_dir), config, seed=7, device="cpu", progress=False)
    assert ctx.model.checkpoint_tokens == expected


def test_finetuning_with_ema_validates_and_keeps_the_average(tiny_data_dir: Path, tmp_path: Path) -> None:
    """best/ holds the averaged tables (what was validated), last/ the raw ones plus the average to resume."""
    config = _config(
        "pretrain.warmup_epochs=0", "pretrain.epochs=1", "finetune.epochs=2", "finetune.lr=1e-2", "finetune.ema=0.5"
    )
    result = run_train(tmp_path / "run", tiny_data_dir, config, _opts())
    folder = tmp_path / "run" / "finetune"
    assert json.loads((folder / "best" / "state.json").read_text())["epoch"] == 2  # the last epoch won here
    raw = load_file(str(folder / "last" / "model" / "id_embeddings.safetensors"))
    best = load_file(str(folder / "best" / "model" / "id_embeddings.safetensors"))
    saved = load_file(str(folder / "last" / "optimizer.safetensors"))
    averages = {k: v for k, v in saved.items() if k.endswith(EMA_KEY)}
    assert len(averages) == 2  # the user and the item table of the recommendation side
    changed = [k for k in raw if not torch.equal(raw[k], best[k])]
    assert len(changed) == 2  # only the two averaged tables differ; the content side is the same
    for key in changed:
        assert any(torch.equal(best[key], v) for v in averages.values()), key
    assert all(v == v for v in result["metrics"].values())
