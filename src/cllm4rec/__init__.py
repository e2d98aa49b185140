"""CLLM4Rec: a collaborative large language model for recommender systems.

Importing the package is cheap (no torch): it exposes only the version and the user-facing error type. The
pieces live in one package per layer (docs/DESIGN.md §8): ``core``, ``data``, ``tokenization``,
``backbone``, ``model``, ``evaluation``, ``runs``, ``training`` / ``serving`` / ``baselines``, ``cli``.
"""

from cllm4rec.core.errors import CLLM4RecError

__all__ = ["CLLM4RecError", "__version__"]
__version__ = "0.1.0"
