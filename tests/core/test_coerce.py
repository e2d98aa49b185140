"""One coercer for config values and baseline parameters."""

from __future__ import annotations

import pytest

from cllm4rec.core.coerce import coerce
from cllm4rec.core.errors import CLLM4RecError


@pytest.mark.parametrize(
    ("hint", "value", "expected"),
    [
        (bool, True, True),
        (bool, "yes", True),
        (bool, "False", False),
        (int, 3, 3),
        (int, "50", 50),
        (int, "1e3", 1000),
        (int, 4.0, 4),
        (float, "3e-4", 3e-4),
        (float, 2, 2.0),
        (str, "ease", "ease"),
        (tuple[str, ...], "recall@20, ndcg@100", ("recall@20", "ndcg@100")),
        (tuple[str, ...], ["a"], ("a",)),
    ],
)
def test_coerces(hint, value, expected) -> None:
    got = coerce(hint, value, "x")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("hint", "value", "message"),
    [
        (bool, "maybe", "x must be true or false"),
        (int, "two", "x must be an integer"),
        (int, 2.5, "x must be an integer"),
        (int, True, "x must be an integer"),
        (float, "big", "x must be a number"),
        (float, False, "x must be a number"),
        (str, 3, "x must be a string"),
        (tuple[str, ...], 3, "x must be a list"),
    ],
)
def test_refuses_with_the_field_name(hint, value, message: str) -> None:
    with pytest.raises(CLLM4RecError, match=message):
        coerce(hint, value, "x")
