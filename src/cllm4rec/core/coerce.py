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
