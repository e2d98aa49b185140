"""Backbone loading: tiny aliases, freezing, random re-initialisation, folders, refusals, references."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cllm4rec.backbone import BackboneRef, LoadedBackbone, backbone_ref_load, load_backbone
from cllm4rec.backbone.tiny import _tiny_tokenizer_json
from cllm4rec.core.errors import CLLM4RecError


def _weights(loaded: LoadedBackbone) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loaded.model.state_dict().items()}


def test_tiny_backbones_are_small_frozen_and_identical(tiny_backbone: LoadedBackbone) -> None:
    model = tiny_backbone.model
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    info = tiny_backbone.describe()
    assert 32 <= info["hidden_size"] <= 64 and info["num_layers"] == 2 and info["num_heads"] == 4
    assert 256 <= info["vocab_size"] <= 512 and info["tokenizer_size"] <= info["vocab_size"]
    assert info["attn_implementation"] == "sdpa"
    assert tiny_backbone.ref == BackboneRef(tiny_backbone.ref.name, "tiny", None)
    again = load_backbone(tiny_backbone.ref.name)
    a, b = _weights(tiny_backbone), _weights(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tok = tiny_backbone.tokenizer
    assert tok.eos_token_id is not None and tok.pad_token_id is not None
    assert tok.decode(tok.encode(" has interacted with", add_special_tokens=False)) == " has interacted with"


def test_tiny_tokenizer_is_identical_across_processes() -> None:
    code = "from cllm4rec.backbone.tiny import _tiny_tokenizer_json as f; print(f(), end='')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == _tiny_tokenizer_json()


def test_random_init_changes_weights_deterministically() -> None:
    base = _weights(load_backbone("tiny-llama"))
    r1 = load_backbone("tiny-llama", random_init=True, seed=5)
    r2 = _weights(load_backbone("tiny-llama", random_init=True, seed=5))
    r3 = _weights(load_backbone("tiny-llama", random_init=True, seed=6))
    w1 = _weights(r1)
    key = "model.embed_tokens.weight"
    assert torch.equal(w1[key], r2[key]) and not torch.equal(w1[key], r3[key])
    assert not torch.equal(w1[key], base[key])
    assert r1.ref.random_init and r1.ref.seed == 5
    assert all(not p.requires_grad for p in r1.model.parameters())


def test_random_init_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_backbone("tiny-gpt2", random_init=True, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_folder_round_trip_and_reference(tmp_path: Path) -> None:
    tiny = load_backbone("tiny-gpt2")
    folder = tmp_path / "gpt2-folder"
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    loaded = load_backbone(str(folder))
    assert loaded.ref.kind == "folder" and loaded.ref.name == str(folder.resolve())
    assert loaded.source == str(folder.resolve())
    a, b = _weights(tiny), _weights(loaded)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not p.requires_grad for p in loaded.model.parameters())
    assert loaded.model.config._attn_implementation == "sdpa"
    again = backbone_ref_load(loaded.ref)
    assert again.ref == loaded.ref
    rand = backbone_ref_load(BackboneRef(str(folder), "folder", None, random_init=True, seed=3))
    assert not torch.equal(_weights(rand)["transformer.wte.weight"], a["transformer.wte.weight"])


def test_non_causal_lm_folder_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path / "bert"
    cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(cfg).save_pretrained(folder)
    with pytest.raises(CLLM4RecError, match="not a causal language model"):
        load_backbone(str(folder))
    # even without the architectures entry, a bidirectional encoder is refused
    config = json.loads((folder / "config.json").read_text())
    config.pop("architectures", None)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CLLM4RecError, match="not a causal language model"):
        load_backbone(str(folder))


def test_encoder_decoder_is_refused(tmp_path: Path) -> None:
    from transformers import T5Config

    folder = tmp_path / "t5"
    T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=64).save_pretrained(folder)
    with pytest.raises(CLLM4RecError, match="not a causal language model"):
        load_backbone(str(folder))


def test_missing_and_invalid_names(tmp_path: Path) -> None:
    with pytest.raises(CLLM4RecError, match="not found"):
        load_backbone(str(tmp_path / "nope.gguf"))
    with pytest.raises(CLLM4RecError, match="not found"):
        load_backbone("./no/such/folder")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(CLLM4RecError, match="not a .gguf"):
        load_backbone(str(tmp_path / "weights.bin"))
    with pytest.raises(CLLM4RecError, match="config"):
        load_backbone(str(tmp_path))  # a folder without config.json
    with pytest.raises(CLLM4RecError):
        load_backbone("")


def test_reference_dict_round_trip_and_validation() -> None:
    ref = BackboneRef("smollm2-135m", "alias", "ab" * 32, random_init=True, seed=4)
    assert BackboneRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    with pytest.raises(CLLM4RecError):
        BackboneRef.from_dict({"name": "x", "kind": "weird", "sha256": None})
    with pytest.raises(CLLM4RecError):
        BackboneRef.from_dict({"name": "x", "kind": "tiny", "sha256": None, "extra": 1})
    with pytest.raises(CLLM4RecError, match="was saved as"):
        backbone_ref_load(BackboneRef("tiny-gpt2", "alias", None))
