"""The CLLM4Rec model: frozen backbone, ID embedding tables, heads (``cllm4rec.py``), its losses
(``losses.py``), save/load (``serialization.py``) and its config (``config.py``).

Names are imported on first use (PEP 562), so ``from cllm4rec.model.config import ModelConfig`` (what every
run config holds) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cllm4rec.model.cllm4rec import SIDES, CLLM4Rec
    from cllm4rec.model.config import ModelConfig
    from cllm4rec.model.device import bf16_supported, resolve_device
    from cllm4rec.model.losses import LMLoss

_LAZY = {
    "SIDES": "cllm4rec.model.cllm4rec",
    "CLLM4Rec": "cllm4rec.model.cllm4rec",
    "LMLoss": "cllm4rec.model.losses",
    "ModelConfig": "cllm4rec.model.config",
    "bf16_supported": "cllm4rec.model.device",
    "resolve_device": "cllm4rec.model.device",
}

__all__ = ["SIDES", "CLLM4Rec", "LMLoss", "ModelConfig", "bf16_supported", "resolve_device"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
