"""``model.collab_layers``: the collaborative side runs a view of the backbone's first blocks (shared weights)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model import CLLM4Rec
from cllm4rec.model.checkpointing import decoder_layers
from cllm4rec.model.truncation import backbone_depth
from cllm4rec.runs.config import load_config
from cllm4rec.tokenization import collate

N_USERS, N_ITEMS = 4, 9


def _batch(backbone: LoadedBackbone):
    tok = backbone.id_tokenizer(N_USERS, N_ITEMS)
    return collate([(tok.encode("user_1 has interacted with item_2 item_5 item_7"), [])], tok.pad_id)


def _reference_cut(backbone: LoadedBackbone, layers: int) -> torch.nn.Module:
    """An independent deep copy of the backbone's decoder with its layer list sliced."""
    decoder = copy.deepcopy(backbone.model.base_model)
    stack = decoder_layers(decoder)
    name = next(key for key, child in decoder.named_children() if child is stack)
    setattr(decoder, name, torch.nn.ModuleList(list(stack)[:layers]))
    decoder.config.num_hidden_layers = layers
    return decoder


def test_collab_side_runs_the_first_blocks_and_the_rest_stays_whole(tiny_backbone: LoadedBackbone) -> None:
    depth = backbone_depth(tiny_backbone.model)
    assert depth >= 2
    full = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0)
    cut = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0, collab_layers=1)
    for m in (full, cut):
        m.autocast = False
    batch = _batch(tiny_backbone)
    embeds = cut.embed(batch.input_ids, "collab")
    expected = _reference_cut(tiny_backbone, 1)(inputs_embeds=embeds).last_hidden_state
    assert torch.allclose(cut.hidden_states(batch, "collab"), expected, atol=1e-5)
    assert not torch.allclose(full.hidden_states(batch, "collab"), expected, atol=1e-3)
    # the content side (text LM, explanations) keeps every block
    assert torch.allclose(cut.hidden_states(batch, "content"), full.hidden_states(batch, "content"), atol=1e-6)
    assert cut.backbone is tiny_backbone.model
    # the loaded backbone (shared, cached) keeps all its blocks and its config
    assert backbone_depth(tiny_backbone.model) == depth
    assert tiny_backbone.model.config.num_hidden_layers == depth
    assert backbone_depth(cut.collab_backbone) == 1 and cut.decoder is cut.collab_backbone.base_model
    # no weight is copied: the view's first block is the loaded backbone's first block
    assert decoder_layers(cut.collab_backbone.base_model)[0] is decoder_layers(tiny_backbone.model.base_model)[0]
    # the whole depth is the same as no cut
    assert CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0, collab_layers=depth).collab_layers == 0
    with pytest.raises(CLLM4RecError, match="model.collab_layers must be in"):
        CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, collab_layers=depth + 1)


def test_cut_view_generates_and_survives_save_and_load(tiny_backbone: LoadedBackbone, tmp_path: Path) -> None:
    cut = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0, collab_layers=1)
    cut.autocast = False
    batch = _batch(tiny_backbone)
    out = cut.collab_backbone.generate(  # the view is a whole causal LM of the backbone's class
        inputs_embeds=cut.embed(batch.input_ids, "collab"),
        attention_mask=batch.attention_mask,
        max_new_tokens=4,
        do_sample=False,
        pad_token_id=0,
    )
    assert out.shape == (1, 4)
    cut.save(tmp_path / "m")
    again = CLLM4Rec.load(tmp_path / "m", backbone=tiny_backbone)
    again.autocast = False
    assert again.collab_layers == 1
    assert torch.allclose(again.rec_scores(batch), cut.rec_scores(batch), atol=1e-5)


def test_config_refuses_negative_layers() -> None:
    assert load_config(overrides=["model.collab_layers=8"]).model.collab_layers == 8
    with pytest.raises(CLLM4RecError, match="model.collab_layers must be >= 0"):
        load_config(overrides=["model.collab_layers=-1"])
