"""Every row of the shared vector table (spec §14) as one parametrized test."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import Value, evaluate

from ._vectors import Vector, load_vectors

VECTORS = load_vectors()

# Rows we believe are wrong: id -> reason (each is also listed in the report).
XFAIL: dict[str, str] = {}


def _params() -> list[Any]:
    if not VECTORS:
        return [
            pytest.param(None, marks=pytest.mark.skip(reason="vectors/expressions.tsv not found"))
        ]
    out = []
    for vector in VECTORS:
        marks = (
            [pytest.mark.xfail(reason=XFAIL[vector.id], strict=True)] if vector.id in XFAIL else []
        )
        out.append(pytest.param(vector, id=vector.id, marks=marks))
    return out


def _run(vector: Vector) -> Value:
    assignment = vector.id.startswith("FORLOOP")
    variables = {key: tuple(spec) for key, spec in vector.variables.items()}
    return evaluate(vector.expression, variables, assignment=assignment)


def _close(actual: Any, expected: Any, type_name: str) -> bool:
    tolerance = 1e-6 if type_name == "DT_R4" else 1e-12
    return math.isclose(float(actual), float(expected), rel_tol=tolerance, abs_tol=1e-300)


@pytest.mark.parametrize("vector", _params())
def test_vector(vector: Vector) -> None:
    if vector.sentinel == "ERROR":
        with pytest.raises(ExpressionError):
            _run(vector)
        return
    result = _run(vector)
    assert result.type == vector.expected_type
    if vector.sentinel == "TYPE_ONLY":
        return
    actual = result.to_json()
    expected = vector.expected
    if expected is None or isinstance(expected, (bool, str)):
        assert actual == expected
    elif vector.expected_type in ("DT_R4", "DT_R8"):
        assert _close(actual, expected, vector.expected_type)
    else:
        assert isinstance(actual, (int, Decimal)) and not isinstance(actual, bool)
        assert Decimal(actual) == Decimal(expected)
