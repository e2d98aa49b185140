"""The CLLM4Rec model: frozen backbone, ID embedding tables, heads, losses, save/load."""

from cllm4rec.model.cllm4rec import SIDES, CLLM4Rec, LMLoss
from cllm4rec.model.device import bf16_supported, resolve_device

__all__ = ["SIDES", "CLLM4Rec", "LMLoss", "bf16_supported", "resolve_device"]
