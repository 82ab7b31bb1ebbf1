"""Casts: which conversions the documented chart allows, and how each one converts a value.

``converter(source_type, spec)`` returns a function from a non-NULL Python value of
``source_type`` to the Python value of ``spec.name``; it raises ``ConversionFailure`` (a plain
message, turned into an ExpressionError with the cast's offset by the evaluator).
"""

from __future__ import annotations

import math
import re
import struct
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any
from collections.abc import Callable

from .datatypes import DATES, EXACT, INT_RANGE, INTEGERS, REALS, STRINGS, TIMES, TypeSpec
from .values import (
    canonical_string,
    make_dt7,
    make_time7,
    tick_of,
    to_float32,
)

__all__ = [
    "ConversionFailure",
    "number_from_text",
    "is_legal_cast",
    "converter",
    "to_string",
    "parse_datetime_text",
    "ole_to_datetime",
    "datetime_to_ole",
    "round_half_away",
    "check_exact",
]

Converter = Callable[[Any], Any]


class ConversionFailure(Exception):
    """A value could not be converted; the message is one sentence without the expression."""


_SHORT = (
    "I1 I2 I4 R4 R8 CY DATE BOOL NUMERIC DECIMAL UI1 UI2 UI4 I8 UI8 GUID BYTES STR WSTR DBDATE "
    "DBTIME DBTIME2 DBTIMESTAMP DBTIMESTAMP2 DBTIMESTAMPOFFSET FILETIME IMAGE TEXT NTEXT"
).split()
# The documented legal-cast chart, one row per source type in _SHORT order (Y legal, n not,
# . same type). Transcribed from the chart image (spec §8.1).
_CHART = """
.YYYYYYYYYYYYYYnnYYYYnYnnnnnn
Y.YYYYYYYYYYYYYnnYYYYnYnnnnnn
YY.YYYYYYYYYYYYnYYYYYnYnnnnnn
YYY.YYYYYYYYYYYnnYYYYnYnnnnnn
YYYY.YYYYYYYYYYnnYYYYnYnnnnnn
YYYYY.nYYYYYYYYnnYYnnnnnnnnnn
YYYYYn.YYnYYYYYnnYYYYYYYYnnnn
YYYYYYY.YYYYYYYnnYYnnnnnnnnnn
YYYYYYYY.YYYYYYnnYYnnnnnnnnnn
YYYYYYnYY.YYYYYnnYYYYnYnnnnnn
YYYYYYYYYY.YYYYnnYYYYnYnnnnnn
YYYYYYYYYYY.YYYnnYYYYnYnnnnnn
YYYYYYYYYYYY.YYnYYYYYnYnnnnnn
YYYYYYnYYYYYY.YnYYYnnnnnnYnnn
YYYYYYnYYYYYYY.nYYYnnnnnnYnnn
nnnnnnnnnnnnnnn.YYYnnnnnnnnnn
nnnYnnnnnnnnYYYY.YYnnnnnnnYYY
YYYYYYYYYYYYYYYYY.YYYnYnnYYYY
YYYYYYYYYYYYYYYYYY.YYnYnnYYYY
nnnnnnYnnnnnnnnnnYY.YYYYYYnnn
nnnnnnYnnnnnnnnnnYYY.YYYYYnnn
nnnnnnYnnnnnnnnnnnnYY.YYYYnnn
nnnnnnYnnnnnnnnnnYYYYY.YYYnnn
nnnnnnYnnnnnnnnnnnnYYYY.YYnnn
nnnnnnYnnnnnnnnnnnnYYYYY.Ynnn
nnnnnnYnnnnnnYYnnYYYYYYYY.nnn
nnnnnnnnnnnnnnnnYnnnnnnnnn.YY
nnnnnnnnnnnnnnnnnYnnnnnnnnY.Y
nnnnnnnnnnnnnnnnnnYnnnnnnnYY.
"""


def _build_chart() -> frozenset[tuple[str, str]]:
    legal: set[tuple[str, str]] = set()
    for source, row in zip(_SHORT, _CHART.split(), strict=True):
        for target, mark in zip(_SHORT, row, strict=True):
            if mark in "Y.":
                legal.add(("DT_" + source, "DT_" + target))
    # expressions-notes B6: the Cast page converts strings to and from every date/time type.
    for text_type in STRINGS:
        for date_type in DATES:
            legal.add((text_type, date_type))
            legal.add((date_type, text_type))
    return frozenset(legal)


LEGAL_CASTS = _build_chart()


def is_legal_cast(source: str, target: str) -> bool:
    return source == target or (source, target) in LEGAL_CASTS


# --- numbers ---------------------------------------------------------------------------------

_OLE_EPOCH = datetime(1899, 12, 30)
_WIDE = Context(prec=80)


def round_half_away(number: float | Decimal) -> int:
    """Round to the nearest integer, ties away from zero (expressions-notes C1: SSIS rounds)."""
    if isinstance(number, Decimal):
        if number.adjusted() < -1:  # under 0.1: zero, and no context need reach its exponent
            return 0
        return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_WIDE))
    if not math.isfinite(number):
        raise ConversionFailure(f"the value {number} cannot be converted to an integer")
    rounded = math.floor(abs(number) + 0.5)
    return int(rounded) if number >= 0 else -int(rounded)


def datetime_to_ole(value: datetime) -> float:
    delta = value.replace(tzinfo=None) - _OLE_EPOCH
    return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400.0


def ole_to_datetime(days: float) -> datetime:
    if not math.isfinite(days):
        raise ConversionFailure(f"the number {days} is not a valid date")
    try:
        return _OLE_EPOCH + timedelta(days=days)
    except OverflowError:
        raise ConversionFailure(f"the number {days} is outside the range of dates") from None


# The number text a cast reads, as .NET parses it: ASCII digits only, an optional sign, point
# and exponent, and only .NET's white space (U+0009-U+000D, U+0020) around it. No NaN, Infinity,
# Python's 1_000 or other scripts' digits.
_NUMBER_TEXT = re.compile(
    r"[\t\n\v\f\r ]*([+-]?(?=\.?[0-9])([0-9]*)(\.[0-9]*)?([eE][+-]?[0-9]+)?)[\t\n\v\f\r ]*"
)
_SHORT_INTEGER = 18  # digits int() reads exactly and fast; longer text goes through Decimal
# Beyond 10**39 no integer or exact type can hold a value, and no arithmetic context need reach.
_MAX_EXPONENT = 39
_EXPONENT_DIGITS = 15


def number_from_text(text: str) -> int | Decimal:
    """The exact number in cast text; ConversionFailure names the text when it is not one."""
    if len(text) <= _SHORT_INTEGER and text.isascii() and text.isdigit():
        return int(text)  # the common case, without the pattern
    match = _NUMBER_TEXT.fullmatch(text)
    if match is None:
        raise ConversionFailure(f"the string {_show(text)} is not a number")
    number, whole, fraction, exponent = match.groups()
    if fraction is None and exponent is None and len(whole) <= _SHORT_INTEGER:
        return int(number)
    if exponent is not None and len(exponent.lstrip("eE+-0")) > _EXPONENT_DIGITS:
        # Decimal refuses such exponents; any of them over- or underflows every type alike.
        sign = "-" if "-" in exponent else ""
        number = f"{number[: len(number) - len(exponent)]}e{sign}{'9' * _EXPONENT_DIGITS}"
    return Decimal(number)  # exact whatever its length; callers bound it before rounding


def _bounded(number: int | float | Decimal, value: Any, target: str) -> None:
    """Refuse a number too large for ``target`` before any rounding context sees it."""
    if isinstance(number, Decimal) and number and number.adjusted() >= _MAX_EXPONENT:
        raise ConversionFailure(f"the value {_show(value)} does not fit into {target}")


def _as_number(value: Any, source: str) -> int | float | Decimal:
    """Any legal numeric-cast source as int, float or Decimal."""
    if isinstance(value, bool):
        return -1 if value else 0
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, str):
        return number_from_text(value)
    if isinstance(value, datetime) and source == "DT_FILETIME":
        return datetime_ticks_since_1601(value)
    if isinstance(value, datetime):
        return datetime_to_ole(value)
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 4 and source == "DT_BYTES":
            return int.from_bytes(value, "little")
        return int.from_bytes(bytes(value)[:8].ljust(8, b"\0"), "little")
    raise ConversionFailure(f"a {source} value cannot be converted to a number")


def datetime_ticks_since_1601(value: datetime) -> int:
    delta = value.replace(tzinfo=None) - datetime(1601, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _to_integer(target: str, source: str) -> Converter:
    low, high = INT_RANGE[target]

    def convert(value: Any) -> int:
        number = _as_number(value, source)
        _bounded(number, value, target)
        result = number if isinstance(number, int) else round_half_away(number)
        if not low <= result <= high:
            raise ConversionFailure(f"the value {_show(value)} does not fit into {target}")
        return result

    return convert


def _to_real(target: str, source: str) -> Converter:
    def convert(value: Any) -> float:
        if source == "DT_BYTES" and isinstance(value, (bytes, bytearray)) and len(value) == 4:
            single: float = struct.unpack("<f", bytes(value))[0]
            return single
        number = _as_number(value, source)
        try:
            result = float(number)
        except OverflowError:
            result = math.inf
        if target == "DT_R4":
            result = to_float32(result)
        if not math.isfinite(result):
            raise ConversionFailure(f"the value {_show(value)} does not fit into {target}")
        return result

    return convert


def check_exact(number: Decimal, target: str, precision: int = 38) -> Decimal:
    """Check that an exact value fits its type (CY range, DECIMAL 29 digits, NUMERIC precision)."""
    scale = max(0, -number.as_tuple().exponent)  # type: ignore[operator]
    # adjusted() is the exponent of the leading digit: 1E+400 has 401 integer digits, not one.
    integer_digits = max(0, number.adjusted() + 1) if number else 0
    if target == "DT_CY":
        if abs(number) > Decimal("922337203685477.5807"):
            raise ConversionFailure(f"the value {number} does not fit into DT_CY")
    elif target == "DT_DECIMAL":
        if integer_digits + scale > 29:
            raise ConversionFailure(f"the value {number} does not fit into DT_DECIMAL")
    elif integer_digits > precision - scale:
        raise ConversionFailure(f"the value {number} does not fit into DT_NUMERIC({precision})")
    return number


def _to_exact(spec: TypeSpec, source: str) -> Converter:
    target = spec.name
    scale = 4 if target == "DT_CY" else (spec.scale if spec.scale is not None else 0)
    precision = spec.precision or 38
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        number = _as_number(value, source)
        if isinstance(number, float):
            if not math.isfinite(number):
                raise ConversionFailure(f"the value {number} does not fit into {target}")
            number = Decimal(repr(number))
        _bounded(number, value, target)
        if isinstance(number, Decimal) and number.adjusted() < -scale - 1:
            number = Decimal(
                0
            )  # under half the last digit: rounds to zero at any exponent, however small
        exact = Decimal(number).quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE)
        return check_exact(exact, target, precision)

    return convert


def _to_bool(source: str) -> Converter:
    def convert(value: Any) -> bool:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("true", "false"):
                return word == "true"
            try:
                return number_from_text(value) != 0
            except ConversionFailure:
                raise ConversionFailure(
                    f"the string {_show(value)} is not a Boolean (True, False or a number)"
                ) from None
        return _as_number(value, source) != 0

    return convert


# --- strings ---------------------------------------------------------------------------------


def _float_text(number: float, single: bool) -> str:
    if single:
        text = repr(number)
        for digits in range(6, 10):
            candidate = f"{number:.{digits}g}"
            if to_float32(float(candidate)) == number:
                text = candidate
                break
    else:
        text = repr(number)
    if "e" in text or "E" in text:
        mantissa, exponent = text.lower().split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa.removesuffix('.0')}E{sign}{abs(int(exponent)):02d}"
    return text.removesuffix(".0")


def _us_datetime(value: datetime) -> str:
    """en-US text of a DT_DATE (an OLE date), as the OLE conversion writes it.

    As in the persisted DateTime values of real packages (``1/1/2009``), a midnight time is
    left out, and so is the date of a pure time (day zero, 1899-12-30).
    """
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    day = f"{value.month}/{value.day}/{value.year}"
    clock = f"{hour}:{value.minute:02d}:{value.second:02d} {suffix}"
    if value.time() == time(0):
        return day
    if value.date() == _OLE_EPOCH.date():
        return clock
    return f"{day} {clock}"


def to_string(value: Any, source: str) -> str:
    """The text SSIS produces when casting a value of ``source`` type to DT_WSTR/DT_STR."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value, source == "DT_R4")
    if isinstance(value, Decimal):
        text = format(value, "f")
        return "0" if text == "-0" else text
    if source == "DT_DATE":
        return _us_datetime(value)  # expressions-notes B7: locale (en-US) format
    if source == "DT_DBTIMESTAMP":
        return canonical_string("DT_DBTIMESTAMP", value)[:19] + f".{value.microsecond:06d}000"
    if source in DATES:
        return canonical_string(source, value)
    if isinstance(value, uuid.UUID):
        return "{" + str(value).upper() + "}"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    raise ConversionFailure(f"a {source} value cannot be converted to a string")


def _to_text(spec: TypeSpec, source: str) -> Converter:
    length = spec.length

    def convert(value: Any) -> str:
        text = to_string(value, source)
        # Data Truncation page: an explicit cast to a shorter string truncates silently at run time.
        return text[:length] if length is not None and len(text) > length else text

    return convert


# --- dates -----------------------------------------------------------------------------------

_ISO = re.compile(
    r"\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[ T]+([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:[.:]([0-9]{1,9}))?)?)?"
    r"\s*(?:([+-])\s*([0-9]{1,2}):([0-9]{2}))?\s*$"
)
_US = re.compile(
    r"\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})"
    r"(?:\s+([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:\.([0-9]{1,9}))?)?\s*([AaPp][Mm])?)?\s*$"
)
_TIME = re.compile(
    r"\s*([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:\.([0-9]{1,9}))?)?\s*([AaPp][Mm])?\s*$"
)


def _hour12(hour: int, marker: str | None) -> int:
    if not marker:
        return hour
    if not 1 <= hour <= 12:
        raise ValueError("hour")
    return hour % 12 + (12 if marker.upper() == "PM" else 0)


def _fraction(digits: str | None) -> tuple[int, int]:
    padded = (digits or "").ljust(7, "0")[:7]
    return int(padded[:6]), int(padded[6])


def parse_datetime_text(text: str) -> tuple[datetime, int, int | None, bool]:
    """Parse ISO (``yyyy-mm-dd hh:mm:ss.fffffff [+hh:mm]``), en-US or time-only text.

    Returns (naive datetime, 7th fractional digit, offset minutes or None, has_date).
    """
    try:
        match = _ISO.match(text)
        if match:
            y, mo, d, h, mi, s, frac, sign, oh, om = match.groups()
            micro, tick = _fraction(frac)
            value = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
            offset = None
            if sign:
                if int(oh) > 14 or int(om) > 59:
                    raise ValueError("offset")
                offset = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
            return value, tick, offset, True
        match = _US.match(text)
        if match:
            mo, d, y, h, mi, s, frac, marker = match.groups()
            micro, tick = _fraction(frac)
            hour = _hour12(int(h or 0), marker) if h else 0
            value = datetime(int(y), int(mo), int(d), hour, int(mi or 0), int(s or 0), micro)
            return value, tick, None, True
        match = _TIME.match(text)
        if match:
            h, mi, s, frac, marker = match.groups()
            micro, tick = _fraction(frac)
            value = datetime(1899, 12, 30, _hour12(int(h), marker), int(mi), int(s or 0), micro)
            return value, tick, None, False
    except ValueError:
        pass
    raise ConversionFailure(f"the string {_show(text)} is not a valid date/time")


def _truncate(value: datetime, tick: int, scale: int) -> tuple[datetime, int]:
    """Drop fractional digits beyond ``scale`` (spec: extra fractional digits are dropped)."""
    if scale >= 7:
        return value, tick
    micro = value.microsecond
    if scale < 6:
        step = 10 ** (6 - scale)
        micro -= micro % step
    return value.replace(microsecond=micro), 0


def _normalise(value: Any, source: str) -> tuple[datetime, int, int | None]:
    """Any date/time source (or text or number) as (naive local datetime, tick, offset minutes)."""
    if source in STRINGS or isinstance(value, str):
        parsed, tick, offset, has_date = parse_datetime_text(value)
        if not has_date:
            parsed = datetime.combine(date.today(), parsed.time())
        return parsed, tick, offset
    if isinstance(value, datetime):
        delta = value.utcoffset()
        minutes = None if delta is None else int(delta.total_seconds()) // 60
        plain = datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )
        return plain, tick_of(value), minutes
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day), 0, None
    if isinstance(value, time):
        # spec §8.2: a time converted to a type with a date uses the current date.
        return datetime.combine(date.today(), value.replace(tzinfo=None)), tick_of(value), None
    if source == "DT_I8" or source == "DT_UI8":
        return (
            datetime(1601, 1, 1) + timedelta(microseconds=int(value) // 10),
            int(value) % 10,
            None,
        )
    return ole_to_datetime(float(_as_number(value, source))), 0, None


def _to_utc(value: datetime, offset: int | None) -> datetime:
    return value if offset is None else value - timedelta(minutes=offset)


def _to_date_type(spec: TypeSpec, source: str) -> Converter:
    target = spec.name
    scale = spec.scale if spec.scale is not None else 7

    def convert(value: Any) -> Any:
        if source in STRINGS and target in TIMES:
            parsed, tick, _offset, _has_date = parse_datetime_text(value)
            moment, offset = parsed, None
        else:
            moment, tick, offset = _normalise(value, source)
        if target != "DT_DBTIMESTAMPOFFSET":
            moment = _to_utc(moment, offset)
        return _finish_date(target, moment, tick, offset, scale)

    return convert


def _finish_date(target: str, moment: datetime, tick: int, offset: int | None, scale: int) -> Any:
    if target == "DT_DBDATE":
        return moment.date()
    if target == "DT_DBTIME":
        return moment.time().replace(microsecond=0)
    if target == "DT_DBTIME2":
        moment, tick = _truncate(moment, tick, scale)
        return make_time7(moment.time(), tick)
    if target in ("DT_DBTIMESTAMP", "DT_DATE", "DT_FILETIME"):
        return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
    moment, tick = _truncate(moment, tick, scale)
    if target == "DT_DBTIMESTAMPOFFSET":
        zone = timezone(timedelta(minutes=offset or 0))
        return make_dt7(moment.replace(tzinfo=zone), tick)
    return make_dt7(moment, tick)


# --- GUID and bytes --------------------------------------------------------------------------


def _to_guid(source: str) -> Converter:
    def convert(value: Any) -> uuid.UUID:
        try:
            if isinstance(value, (bytes, bytearray)):
                return uuid.UUID(bytes_le=bytes(value))
            return uuid.UUID(str(value).strip())
        except ValueError:
            raise ConversionFailure(f"the value {_show(value)} is not a valid GUID") from None

    return convert


def _to_bytes(spec: TypeSpec, source: str) -> Converter:
    width = {"DT_I4": 4, "DT_UI4": 4, "DT_I8": 8, "DT_UI8": 8}

    def convert(value: Any) -> bytes:
        if isinstance(value, uuid.UUID):
            data = value.bytes_le
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            data = value.encode("utf-16-le")
        elif isinstance(value, int) and source in width:
            data = value.to_bytes(width[source], "little", signed=source.startswith("DT_I"))
        else:
            raise ConversionFailure(f"a {source} value cannot be converted to bytes")
        return data[: spec.length] if spec.length else data

    return convert


_SHOWN = 60  # characters of a value an error message quotes


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return (
        text
        if len(text) <= _SHOWN
        else f"{text[: _SHOWN - 10]}...{text[-7:]} ({len(text)} characters)"
    )


def converter(source: str, spec: TypeSpec) -> Converter:
    """The conversion function for a legal cast (check ``is_legal_cast`` first)."""
    target = spec.name
    if target in INTEGERS:
        return _to_integer(target, source)
    if target in REALS:
        return _to_real(target, source)
    if target in EXACT:
        return _to_exact(spec, source)
    if target == "DT_BOOL":
        return _to_bool(source)
    if target in STRINGS or target in ("DT_TEXT", "DT_NTEXT"):
        return _to_text(spec, source)
    if target in DATES:
        return _to_date_type(spec, source)
    if target == "DT_GUID":
        return _to_guid(source)
    return _to_bytes(spec, source)
