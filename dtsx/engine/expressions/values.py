"""Runtime values: the immutable ``Value`` pair and the date/time helpers every module shares.

Python representation of each SSIS type (``None`` is a typed NULL):

=========================  ==========================================================
integers (DT_I1..DT_UI8)   int
DT_R4 / DT_R8              float (DT_R4 rounded to single precision after every step)
DT_CY / DT_DECIMAL /       decimal.Decimal, whose exponent is the scale
DT_NUMERIC
DT_WSTR / DT_STR / TEXT    str
DT_BOOL                    bool
DT_DATE, DT_DBTIMESTAMP,   datetime.datetime (naive)
DT_FILETIME
DT_DBTIMESTAMP2            DateTime7 (a datetime carrying the 7th fractional digit)
DT_DBTIMESTAMPOFFSET       DateTime7 with a fixed-offset tzinfo
DT_DBDATE                  datetime.date
DT_DBTIME / DT_DBTIME2     datetime.time / Time7
DT_GUID                    uuid.UUID
DT_BYTES / DT_IMAGE        bytes
Object (variables only)    any Python object
=========================  ==========================================================
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

__all__ = [
    "Value",
    "DateTime7",
    "Time7",
    "make_dt7",
    "make_time7",
    "tick_of",
    "datetime_ticks",
    "time_ticks",
    "to_float32",
    "canonical_string",
    "format_value_for_display",
    "OBJECT",
    "DBNULL",
]

OBJECT = "Object"
DBNULL = "DT_NULL"


class Value(tuple):  # type: ignore[type-arg]
    """An SSIS value: ``.type`` (``"DT_I4"``…) and ``.value`` (Python value, ``None`` for NULL).

    A tuple subclass so that building one costs a single allocation on the hot path.
    """

    __slots__ = ()

    def __new__(cls, type: str, value: Any) -> Value:  # noqa: A002 - the SSIS word
        return tuple.__new__(cls, (type, value))

    def __getnewargs__(self) -> tuple[str, Any]:  # pickle and copy
        return (self[0], self[1])

    type = property(itemgetter(0), doc="The DT_ type name.")
    value = property(itemgetter(1), doc="The Python value; None for NULL.")

    @property
    def is_null(self) -> bool:
        return self[1] is None

    def to_json(self) -> Any:
        """JSON form (spec §14): dates as canonical strings, decimals as ``Decimal`` (keeps
        scale)."""
        return _json_form(self[0], self[1])

    def json_text(self) -> str:
        """The JSON text of ``to_json()``, numbers written with their scale (``124.00``)."""
        form = self.to_json()
        if isinstance(form, Decimal):
            return _decimal_text(form)
        return json.dumps(form, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"Value({self[0]!r}, {self[1]!r})"


class DateTime7(datetime):
    """A datetime that also carries the 7th fractional digit (100 ns) SSIS date types keep."""

    __slots__ = ("tick",)
    tick: int


class Time7(time):
    """A time that also carries the 7th fractional digit (100 ns)."""

    __slots__ = ("tick",)
    tick: int


def make_dt7(value: datetime, tick: int = 0) -> DateTime7:
    out = DateTime7(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.tzinfo,
    )
    out.tick = tick
    return out


def make_time7(value: time, tick: int = 0) -> Time7:
    out = Time7(value.hour, value.minute, value.second, value.microsecond)
    out.tick = tick
    return out


def tick_of(value: object) -> int:
    return getattr(value, "tick", 0)


def datetime_ticks(value: datetime | date) -> int:
    """100-ns ticks since 0001-01-01, converted to UTC when the value has an offset."""
    if not isinstance(value, datetime):
        return value.toordinal() * 864_000_000_000
    seconds = value.toordinal() * 86400 + value.hour * 3600 + value.minute * 60 + value.second
    ticks = seconds * 10_000_000 + value.microsecond * 10 + tick_of(value)
    offset = value.utcoffset()
    if offset is not None:
        ticks -= int(offset.total_seconds()) * 10_000_000
    return ticks


def time_ticks(value: time) -> int:
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return seconds * 10_000_000 + value.microsecond * 10 + tick_of(value)


_F32 = struct.Struct("<f")


def to_float32(number: float) -> float:
    """Round to single precision; overflow to infinity is left to the caller to report."""
    try:
        single: float = _F32.unpack(_F32.pack(number))[0]
        return single
    except OverflowError:
        return math.copysign(math.inf, number)


def _fraction7(value: datetime | time) -> str:
    digits = f"{value.microsecond:06d}{tick_of(value)}".rstrip("0")
    return "." + digits if digits else ""


def _fraction3(value: datetime | time, sep: str = ".") -> str:
    ms = value.microsecond // 1000
    return f"{sep}{ms:03d}" if ms else ""


def _offset_text(value: datetime) -> str:
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f" {sign}{minutes // 60:02d}:{minutes % 60:02d}"


def canonical_string(type_name: str, value: Any) -> str:
    """The canonical string of a date/time value (spec §8.2; zero fractions omitted)."""
    if type_name == "DT_DBDATE":
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if type_name in ("DT_DBTIME", "DT_DBTIME2"):
        base = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        return base + (_fraction7(value) if type_name == "DT_DBTIME2" else "")
    base = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if type_name == "DT_DBTIMESTAMP2":
        return base + _fraction7(value)
    if type_name == "DT_DBTIMESTAMPOFFSET":
        return base + _fraction7(value) + _offset_text(value)
    if type_name == "DT_FILETIME":
        return base + _fraction3(value, ":")
    return base + _fraction3(value)


def _decimal_text(number: Decimal) -> str:
    text = format(number, "f")
    return "0" if text in ("-0", "") else text


def _json_form(type_name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (int, str, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (datetime, date, time)):
        return canonical_string(type_name, value)
    if isinstance(value, uuid.UUID):
        return "{" + str(value).upper() + "}"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    return repr(value)


def format_value_for_display(v: Value) -> str:
    """A short human form: ``NULL`` for nulls, canonical strings for dates, ``True``/``False``."""
    if v.value is None:
        return f"NULL({v.type})"
    if v.type == "DT_BOOL":
        return "True" if v.value else "False"
    form = _json_form(v.type, v.value)
    if isinstance(form, Decimal):
        return _decimal_text(form)
    return str(form)
