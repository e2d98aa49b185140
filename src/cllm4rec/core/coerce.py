"""Turn a value from YAML or the command line into a typed dataclass field, with one clear error on failure.

Used by the run config (``section.key=value`` overrides) and by the baselines' ``--param KEY=VALUE``.
"""

from __future__ import annotations

import typing
from typing import Any

from cllm4rec.core.errors import CLLM4RecError

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def coerce(hint: Any, value: Any, where: str) -> Any:
    """``value`` as a ``bool``, ``int``, ``float``, ``str`` or ``tuple[str, ...]`` (the types our configs use).

    Strings are parsed (``"true"``, ``"50"``, ``"3e-4"``, ``"a,b"``); a bool is never taken for a number.
    ``where`` names the field in the error message.
    """
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise CLLM4RecError(f"{where} must be a list, got {value!r}")
        return tuple(coerce(str, v, where) for v in value)
    if hint is bool:
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, bool):
            return value
        raise CLLM4RecError(f"{where} must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise CLLM4RecError(f"{where} must be {_describe(hint)}, got {value!r}")
    if hint is int:
        number = _number(value)
        if isinstance(number, int) or (isinstance(number, float) and number.is_integer()):
            return int(number)
        raise CLLM4RecError(f"{where} must be an integer, got {value!r}")
    if hint is float:
        number = _number(value)
        if number is not None:
            return float(number)
        raise CLLM4RecError(f"{where} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise CLLM4RecError(f"{where} must be a string, got {value!r}")
    raise CLLM4RecError(f"{where}: unsupported type {hint!r}")


def _number(value: Any) -> int | float | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                continue
    return None


def _describe(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str = "--budget") -> float:
    """Seconds in a duration such as ``90s``, ``30m``, ``1.5h`` (a bare number is seconds); more than 0."""
    import math
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", str(text).lower())
    if not match:
        raise CLLM4RecError(f"{what} {text!r} is not a duration: use e.g. 90s, 30m or 1.5h")
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
    if not seconds > 0 or not math.isfinite(seconds):
        raise CLLM4RecError(f"{what} must be more than 0 (got {text!r})")
    return seconds
