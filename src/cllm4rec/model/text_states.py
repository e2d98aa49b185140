"""Text to vectors with the frozen backbone: mean-pooled final hidden states (docs/DESIGN.md §11).

The encoder of the LLM-embedding kNN baseline and one of the text features a new item can be placed from.
Texts are read in batches of similar length (little padding), under bf16 autocast where bf16 is fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from cllm4rec.model.device import bf16_supported

if TYPE_CHECKING:
    from cllm4rec.backbone import LoadedBackbone


@torch.inference_mode()
def mean_pooled_states(
    backbone: LoadedBackbone, texts: list[str], *, max_length: int = 64, batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """(N, d) float32: each text's final hidden states (after the final norm) averaged over its tokens; an
    empty text gives a zero row."""
    model, tokenizer = backbone.model, backbone.tokenizer
    decoder = model.base_model
    device = model.get_input_embeddings().weight.device
    d = int(model.get_input_embeddings().weight.shape[1])
    ids = [
        tokenizer(" " + t.strip(), add_special_tokens=False)["input_ids"][:max_length] if t.strip() else []
        for t in texts
    ]
    out = np.zeros((len(texts), d), dtype=np.float32)
    order = np.argsort([len(x) for x in ids], kind="stable")
    order = order[[len(ids[i]) > 0 for i in order]]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16_supported(device))
    for idx in tqdm(chunks, desc="encode texts", disable=not progress, leave=False, dynamic_ncols=True):
        width = max(len(ids[i]) for i in idx)
        batch = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            batch[row, : len(ids[i])] = torch.as_tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        with autocast:
            h = decoder(input_ids=batch.to(device), attention_mask=mask.to(device)).last_hidden_state.float()
        m = mask.to(h.device).unsqueeze(-1).float()
        out[idx] = ((h * m).sum(1) / m.sum(1)).cpu().numpy()
    return out
