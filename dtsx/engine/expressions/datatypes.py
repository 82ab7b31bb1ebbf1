"""SSIS data-type names, their families, value ranges and the binary-operator promotion table.

Types are plain strings (``"DT_I4"``); a static type of ``None`` means "not known until run time"
(a variable whose type was not given to ``compile``). A cast or ``NULL()`` carries a ``TypeSpec``
with its parameters (length, precision, scale, code page).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "TypeSpec",
    "SIGNED",
    "UNSIGNED",
    "INTEGERS",
    "REALS",
    "EXACT",
    "NUMERICS",
    "STRINGS",
    "DATES",
    "TIMES",
    "BLOBS",
    "ALL_TYPES",
    "INT_RANGE",
    "CY_LIMIT",
    "promote",
    "is_numeric",
]

SIGNED = frozenset({"DT_I1", "DT_I2", "DT_I4", "DT_I8"})
UNSIGNED = frozenset({"DT_UI1", "DT_UI2", "DT_UI4", "DT_UI8"})
INTEGERS = SIGNED | UNSIGNED
REALS = frozenset({"DT_R4", "DT_R8"})
EXACT = frozenset({"DT_CY", "DT_DECIMAL", "DT_NUMERIC"})
NUMERICS = INTEGERS | REALS | EXACT
STRINGS = frozenset({"DT_WSTR", "DT_STR"})
TIMES = frozenset({"DT_DBTIME", "DT_DBTIME2"})
DATES = (
    frozenset(
        {
            "DT_DATE",
            "DT_DBDATE",
            "DT_DBTIMESTAMP",
            "DT_DBTIMESTAMP2",
            "DT_DBTIMESTAMPOFFSET",
            "DT_FILETIME",
        }
    )
    | TIMES
)
BLOBS = frozenset({"DT_TEXT", "DT_NTEXT", "DT_IMAGE"})
ALL_TYPES = NUMERICS | STRINGS | DATES | BLOBS | frozenset({"DT_BOOL", "DT_GUID", "DT_BYTES"})

INT_RANGE: dict[str, tuple[int, int]] = {
    "DT_I1": (-(2**7), 2**7 - 1),
    "DT_I2": (-(2**15), 2**15 - 1),
    "DT_I4": (-(2**31), 2**31 - 1),
    "DT_I8": (-(2**63), 2**63 - 1),
    "DT_UI1": (0, 2**8 - 1),
    "DT_UI2": (0, 2**16 - 1),
    "DT_UI4": (0, 2**32 - 1),
    "DT_UI8": (0, 2**64 - 1),
}
# DT_CY is an 8-byte integer scaled by 10^4.
CY_LIMIT = (2**63 - 1) / 10**4

_ORDER = [
    "I1",
    "I2",
    "I4",
    "I8",
    "UI1",
    "UI2",
    "UI4",
    "UI8",
    "R4",
    "R8",
    "CY",
    "DECIMAL",
    "NUMERIC",
]
# Rows of the documented promotion image (spec §6); "NULL" = no implicit type.
_TABLE = """
I1 I2 I4 I8 I2 I4 I8 NULL R4 R8 NUMERIC NUMERIC NUMERIC
I2 I2 I4 I8 I2 I4 I8 NULL R4 R8 NUMERIC NUMERIC NUMERIC
I4 I4 I4 I8 I4 I4 I8 NULL R4 R8 NUMERIC NUMERIC NUMERIC
I8 I8 I8 I8 I8 I8 I8 NULL R4 R8 NUMERIC NUMERIC NUMERIC
I2 I2 I4 I8 UI1 UI2 UI4 UI8 R4 R8 NUMERIC NUMERIC NUMERIC
I4 I4 I4 I8 UI2 UI2 UI4 UI8 R4 R8 NUMERIC NUMERIC NUMERIC
I8 I8 I8 I8 UI4 UI4 UI4 UI8 R4 R8 NUMERIC NUMERIC NUMERIC
NULL NULL NULL NULL UI8 UI8 UI8 UI8 R4 R8 NUMERIC NUMERIC NUMERIC
R4 R4 R4 R4 R4 R4 R4 R4 R4 R8 R4 R4 R4
R8 R8 R8 R8 R8 R8 R8 R8 R8 R8 R8 R8 R8
NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC R4 R8 CY NUMERIC NUMERIC
NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC R4 R8 NUMERIC NUMERIC NUMERIC
NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC NUMERIC R4 R8 NUMERIC NUMERIC NUMERIC
"""


def _build_table() -> dict[tuple[str, str], str | None]:
    table: dict[tuple[str, str], str | None] = {}
    for left, row in zip(_ORDER, _TABLE.split("\n")[1:-1], strict=True):
        for right, result in zip(_ORDER, row.split(), strict=True):
            table[("DT_" + left, "DT_" + right)] = None if result == "NULL" else "DT_" + result
    return table


_PROMOTION = _build_table()


def promote(left: str, right: str) -> str | None:
    """Result type of a binary numeric operation; ``None`` when SSIS has no implicit type."""
    return _PROMOTION[(left, right)]


def is_numeric(type_name: str | None) -> bool:
    return type_name in NUMERICS


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A type as written in a cast or ``NULL()``: ``(DT_NUMERIC,10,2)`` etc."""

    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    codepage: int | None = None

    def __str__(self) -> str:
        params = [
            p for p in (self.length, self.precision, self.scale, self.codepage) if p is not None
        ]
        if not params:
            return self.name
        return f"{self.name},{','.join(str(p) for p in params)}"
