"""The CLLM4Rec model: frozen backbone, ID embedding tables, heads, losses, save/load."""

from cllm4rec.model.cllm4rec import SIDES, CLLM4Rec, LMLoss, bf16_supported
from cllm4rec.tokenization.ids import build_id_tokenizer

__all__ = ["SIDES", "CLLM4Rec", "LMLoss", "bf16_supported", "build_id_tokenizer"]
