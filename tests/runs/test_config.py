"""Config loading: presets validate, overrides apply, bad keys and values are refused."""

from __future__ import annotations

import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.config import (
    INERT_VALUES,
    REMOVED_KEYS,
    RunConfig,
    available_presets,
    config_from_dict,
    dump_config,
    load_config,
)


@pytest.mark.parametrize("name", available_presets())
def test_every_shipped_preset_validates(name: str) -> None:
    config = load_config(name)
    assert isinstance(config, RunConfig)
    assert config_from_dict(config.to_dict()) == config


def test_presets_include_paper_quick_and_standard() -> None:
    assert {"paper", "quick", "standard"} <= set(available_presets())
    paper = load_config("paper")
    assert (paper.pretrain.lr, paper.finetune.lr) == (1e-3, 1e-4)
    assert (paper.pretrain.batch_size, paper.pretrain.warmup_epochs, paper.pretrain.epochs) == (20, 10, 100)
    assert paper.finetune.epochs == 150 and paper.pretrain.lambda_c == 1.0


def test_overrides_are_typed_and_applied() -> None:
    config = load_config("quick", overrides=["pretrain.lr=3e-4", "finetune.enabled=false", "model.max_length=64"])
    assert config.pretrain.lr == 3e-4
    assert config.finetune.enabled is False
    assert config.model.max_length == 64


def test_selection_override_from_comma_list() -> None:
    config = load_config(overrides=["finetune.selection=recall@20,ndcg@20"])
    assert config.finetune.selection == ("recall@20", "ndcg@20")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pretrain.lrr=1", "unknown key"),
        ("training.lr=1", "unknown config section"),
        ("pretrain.epochs=two", "must be an integer"),
        ("pretrain.lr=-1", "learning rates must be > 0"),
        ("finetune.target=some", "finetune.target"),
        ("finetune.selection=map@10", "unknown selection metric"),
        ("model.bf16=maybe", "true or false"),
        ("model.readout=max", "model.readout must be one of last, mean"),
        ("pretrain.collab_target=all", "pretrain.collab_target must be one of next, rest"),
        ("model.checkpoint_tokens=-1", "model.checkpoint_tokens must be >= 0"),
        ("pretrain", "section.key=value"),
    ],
)
def test_bad_config_is_a_clear_error(override: str, message: str) -> None:
    with pytest.raises(CLLM4RecError, match=message):
        load_config(overrides=[override])


def test_unknown_preset_and_missing_file(tmp_path) -> None:
    with pytest.raises(CLLM4RecError, match="unknown preset"):
        load_config("nope")
    with pytest.raises(CLLM4RecError, match="does not exist"):
        load_config(config_file=tmp_path / "missing.yaml")


def test_yaml_file_roundtrip(tmp_path) -> None:
    config = load_config("quick", overrides=["pretrain.epochs=7"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    assert load_config(config_file=path) == config


@pytest.mark.parametrize("key", sorted(REMOVED_KEYS))
def test_a_removed_key_is_a_one_line_error_naming_it(key: str, tmp_path) -> None:
    with pytest.raises(CLLM4RecError, match=rf"^config key {key} was removed \(.+\); delete it from the config$"):
        load_config(overrides=[f"{key}=7"])
    section, _, name = key.partition(".")
    path = tmp_path / "old.yaml"
    path.write_text(f"{section}:\n  {name}: 7\n")
    with pytest.raises(CLLM4RecError, match=f"config key {key} was removed"):
        load_config(config_file=path)


def test_a_saved_run_config_with_removed_keys_at_their_inert_values_still_loads(tmp_path) -> None:
    path = tmp_path / "saved.yaml"
    lines = {"pretrain": [], "finetune": []}
    for key, value in INERT_VALUES.items():
        section, _, name = key.partition(".")
        lines[section].append(f"  {name}: {value!r}".replace("'", ""))
    path.write_text("".join(f"{sec}:\n" + "\n".join(rows) + "\n" for sec, rows in lines.items()))
    assert load_config(config_file=path) == load_config()


def test_one_content_switch() -> None:
    off = load_config(overrides=["model.content=false"])
    assert off.model.content is False and load_config().model.content is True
    assert not hasattr(off.pretrain, "content") and not hasattr(off.finetune, "content")
