"""``cllm4rec backbone info`` and ``cllm4rec tokenize`` on the tiny backbones."""

from __future__ import annotations

import json

import pytest

from cllm4rec.cli.main import main


def test_backbone_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backbone", "info", "tiny-llama", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "LlamaForCausalLM" and info["vocab_size"] == 384
    assert info["hidden_size"] == 64 and info["num_layers"] == 2 and info["parameters"] > 0
    assert info["source"].startswith("built in-process") and info["load_seconds"] >= 0


def test_backbone_info_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backbone", "info", "tiny-gpt2", "--random-init", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "GPT2LMHeadModel" in out and "random_init          True" in out and "parameters" in out


def test_backbone_info_refuses_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backbone", "info", "./no/such/model"]) == 2
    assert "not found" in capsys.readouterr().err


def test_tokenize(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tokenize", "--backbone", "tiny-gpt2", "--users", "20", "--items", "10"]
    assert main([*args, "user_12 has interacted with item_3 item_9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["0", str(384 + 12), "id", "user_12"]
    assert lines[-2].split()[-1] == "item_9" and lines[-1].startswith(f"{len(lines) - 1} tokens")
    assert main([*args, "--json", "user_1 has interacted with item_3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ids"][0] == 385 and out["tokens"][-1] == "item_3"
    assert out["decoded"] == "user_1 has interacted with item_3"
    assert main([*args, "user_20 x"]) == 2
    assert "user index 20 out of range" in capsys.readouterr().err
