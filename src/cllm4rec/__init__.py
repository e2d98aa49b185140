"""CLLM4Rec: a collaborative large language model for recommender systems.

The public API is re-exported lazily so that ``import cllm4rec`` stays cheap (no torch import).
"""

from cllm4rec.core.errors import CLLM4RecError

__all__ = ["CLLM4RecError", "__version__"]
__version__ = "0.1.0"
