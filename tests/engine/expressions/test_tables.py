"""The promotion table (binary-result-types.tsv) and the legal-cast chart (cast-matrix.tsv)."""

from __future__ import annotations

import csv
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import Value, evaluate
from dtsx.engine.expressions.casts import is_legal_cast
from dtsx.engine.expressions.datatypes import DATES, STRINGS, promote
from dtsx.engine.expressions.values import make_dt7, make_time7

from tests._shared import require_shared

_LITERAL = {
    "DT_DECIMAL": "(DT_DECIMAL,0)1",
    "DT_NUMERIC": "(DT_NUMERIC,5,0)1",
}


def _numeric(type_name: str) -> str:
    return _LITERAL.get(type_name, f"({type_name})1")


def _table(name: str) -> list[list[str]]:
    path = require_shared("vectors", name)
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t"))


def _promotion_cases() -> list[tuple[str, str, str]]:
    rows = _table("binary-result-types.tsv")
    header = rows[0][1:]
    return [
        (row[0], right, result)
        for row in rows[1:]
        for right, result in zip(header, row[1:], strict=True)
    ]


def test_promotion_table_matches_file() -> None:
    for left, right, result in _promotion_cases():
        assert promote(left, right) == (None if result == "DT_NULL" else result), (left, right)


@pytest.mark.parametrize("operator", ["+", "-", "*", "/"])
def test_promotion_through_the_evaluator(operator: str) -> None:
    for left, right, result in _promotion_cases():
        text = f"{_numeric(left)} {operator} {_numeric(right)}"
        if result == "DT_NULL":
            with pytest.raises(ExpressionError, match="no implicit common type"):
                evaluate(text)
        else:
            assert evaluate(text).type == result, text


def test_conditional_uses_the_promotion_table() -> None:
    for left, right, result in _promotion_cases():
        text = f"FALSE ? {_numeric(left)} : {_numeric(right)}"
        if result == "DT_NULL":
            with pytest.raises(ExpressionError):
                evaluate(text)
        else:
            value = evaluate(text)
            assert value.type == result and value.value == 1, text


# --- casts -----------------------------------------------------------------------------------

_GUID = uuid.UUID("00000000-0000-0000-0000-000000000001")
_SOURCE: dict[str, Any] = {
    "DT_DATE": datetime(2003, 1, 1, 10, 0, 0),
    "DT_BOOL": True,
    "DT_CY": Decimal("1.0000"),
    "DT_NUMERIC": Decimal("1"),
    "DT_DECIMAL": Decimal("1"),
    "DT_R4": 1.0,
    "DT_R8": 1.0,
    "DT_GUID": _GUID,
    "DT_BYTES": _GUID.bytes_le,
    "DT_IMAGE": b"\x01\x00\x00\x00",
    "DT_STR": "1",
    "DT_WSTR": "1",
    "DT_TEXT": "1",
    "DT_NTEXT": "1",
    "DT_DBDATE": date(2003, 1, 1),
    "DT_DBTIME": time(10, 0, 0),
    "DT_DBTIME2": make_time7(time(10, 0, 0)),
    "DT_DBTIMESTAMP": datetime(2003, 1, 1, 10, 0, 0),
    "DT_DBTIMESTAMP2": make_dt7(datetime(2003, 1, 1, 10, 0, 0)),
    "DT_DBTIMESTAMPOFFSET": make_dt7(datetime(2003, 1, 1, 10, 0, 0, tzinfo=None)),
    "DT_FILETIME": datetime(2003, 1, 1, 10, 0, 0),
}
_TARGET = {
    "DT_STR": "DT_STR,10,1252",
    "DT_WSTR": "DT_WSTR,40",
    "DT_BYTES": "DT_BYTES,16",
    "DT_DECIMAL": "DT_DECIMAL,2",
    "DT_NUMERIC": "DT_NUMERIC,10,2",
    "DT_TEXT": "DT_TEXT,1252",
    "DT_DBTIME2": "DT_DBTIME2,3",
    "DT_DBTIMESTAMP2": "DT_DBTIMESTAMP2,3",
    "DT_DBTIMESTAMPOFFSET": "DT_DBTIMESTAMPOFFSET,3",
}


def _cast_cases() -> list[tuple[str, str, str]]:
    rows = _table("cast-matrix.tsv")
    header = ["DT_" + name for name in rows[0][1:]]
    return [
        ("DT_" + row[0], target, mark)
        for row in rows[1:]
        for target, mark in zip(header, row[1:], strict=True)
    ]


def _documented_deviation(source: str, target: str) -> bool:
    """expressions-notes B6: string <-> every date/time type is legal despite the chart."""
    return (source in STRINGS and target in DATES) or (source in DATES and target in STRINGS)


def test_cast_chart_matches_file() -> None:
    for source, target, mark in _cast_cases():
        expected = mark in "Y." or _documented_deviation(source, target)
        assert is_legal_cast(source, target) == expected, (source, target)


def test_every_cast_through_the_evaluator() -> None:
    checked = 0
    for source, target, mark in _cast_cases():
        raw = _SOURCE.get(source, 1)
        text = f"({_TARGET.get(target, target)})@v"
        legal = mark in "Y." or _documented_deviation(source, target)
        try:
            result = evaluate(text, {"User::v": Value(source, raw)})
        except ExpressionError as exc:
            assert not legal or "not supported" not in str(exc), (source, target, str(exc))
            assert legal or "not supported" in str(exc), (source, target, str(exc))
        else:
            assert legal, (source, target)
            assert result.type in (target, "DT_WSTR") and result.value is not None
        checked += 1
    assert checked == 29 * 29


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(DT_I4)3.57", 4),
        ("(DT_I4)-3.5", -4),
        ("(DT_UI1)255", 255),
        ('(DT_I2)"  12 "', 12),
        ("(DT_NUMERIC,5,2)3.14159", Decimal("3.14")),
        ("(DT_CY)3.14159", Decimal("3.1416")),
        ('(DT_DECIMAL,1)"2.25"', Decimal("2.3")),
        ("(DT_R8)TRUE", -1.0),
        ('(DT_WSTR,3)"abcdef"', "abc"),
        ("(DT_WSTR,10)(DT_R8)0.5", "0.5"),
        ("(DT_WSTR,10)(DT_NUMERIC,6,3)1.5", "1.500"),
        ("(DT_WSTR,10)FALSE", "False"),
        ('(DT_I8)(DT_FILETIME)"1601-01-01 00:00:01"', 10_000_000),
    ],
)
def test_cast_values(text: str, expected: Any) -> None:
    assert evaluate(text).value == expected


@pytest.mark.parametrize(
    "text",
    [
        "(DT_UI1)256",
        "(DT_I1)-129",
        "(DT_NUMERIC,3,2)10",
        '(DT_I4)"1x"',
        '(DT_DBDATE)"2003-02-30"',
        '(DT_WSTR,0)"a"',
        "(DT_DECIMAL,29)1",
        "(DT_NUMERIC,5,6)1",
        '(DT_DBTIME2,8)"10:00:00"',
        '(DT_GUID)"not a guid"',
        '(DT_WSTR)"a"',
        "(DT_I4,5)1",
        "(DT_NOPE)1",
    ],
)
def test_cast_errors(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(text)
