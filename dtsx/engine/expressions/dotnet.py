"""Conversions between SSIS variables (.NET value types) and expression values.

``value_from_dotnet`` reads a variable's value, from a Python value or from the text persisted in
a ``.dtsx`` file; ``value_to_dotnet`` converts an expression result to a variable's type the way
an assignment does; the two code tables map the persisted type codes to .NET type names.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dtsx.engine.errors import ExpressionError
from dtsx.engine.model import TYPECODE_TO_DOTNET, VARTYPE_TO_DOTNET, ssis_flag

from .casts import (
    ConversionFailure,
    check_exact,
    converter,
    is_legal_cast,
    number_from_text,
    parse_datetime_text,
)
from .datatypes import INT_RANGE, STRINGS, TypeSpec
from .values import DBNULL, OBJECT, Value, to_float32

__all__ = [
    "DOTNET_TO_DT",
    "AS_IS",
    "DT_TO_DOTNET",
    "value_from_dotnet",
    "value_to_dotnet",
    "dotnet_type_of_vartype",
    "dotnet_type_of_typecode",
    "convert_to_type",
    "as_decimal",
]

# spec §2.7 (Char → DT_UI2, Decimal → DT_DECIMAL, DateTime → DT_DATE are inferred there).
DOTNET_TO_DT: dict[str, str] = {
    "Boolean": "DT_BOOL",
    "Byte": "DT_UI1",
    "SByte": "DT_I1",
    "Char": "DT_UI2",
    "Int16": "DT_I2",
    "UInt16": "DT_UI2",
    "Int32": "DT_I4",
    "UInt32": "DT_UI4",
    "Int64": "DT_I8",
    "UInt64": "DT_UI8",
    "Single": "DT_R4",
    "Double": "DT_R8",
    "Decimal": "DT_DECIMAL",
    "Currency": "DT_CY",
    "String": "DT_WSTR",
    "DateTime": "DT_DATE",
    "Object": OBJECT,
    "DBNull": DBNULL,
    "Empty": DBNULL,
}
DT_TO_DOTNET: dict[str, str] = {
    "DT_BOOL": "Boolean",
    "DT_UI1": "Byte",
    "DT_I1": "SByte",
    "DT_UI2": "UInt16",
    "DT_I2": "Int16",
    "DT_I4": "Int32",
    "DT_UI4": "UInt32",
    "DT_I8": "Int64",
    "DT_UI8": "UInt64",
    "DT_R4": "Single",
    "DT_R8": "Double",
    "DT_DECIMAL": "Decimal",
    "DT_NUMERIC": "Decimal",
    "DT_CY": "Decimal",
    "DT_WSTR": "String",
    "DT_STR": "String",
    "DT_DATE": "DateTime",
    OBJECT: "Object",
    DBNULL: "DBNull",
}

# The code tables live with the package model, which the loader fills from them.
_VARTYPES = VARTYPE_TO_DOTNET
_TYPECODES = TYPECODE_TO_DOTNET


def _fail(message: str) -> ExpressionError:
    return ExpressionError(message)


def dotnet_type_of_vartype(code: int) -> str:
    """``DTS:DataType`` (COM VARTYPE) code → .NET type name (ssis-runtime §4.3; 6 currency →
    Decimal)."""
    try:
        return _VARTYPES[int(code)]
    except (KeyError, ValueError, TypeError):
        raise _fail(f"the variable data type code {code!r} is not a known VARTYPE") from None


def dotnet_type_of_typecode(code: int) -> str:
    """``Project.params`` System.TypeCode → .NET type name (ssis-runtime §5)."""
    try:
        return _TYPECODES[int(code)]
    except (KeyError, ValueError, TypeError):
        raise _fail(
            f"the parameter data type code {code!r} is not a known System.TypeCode"
        ) from None


def _dt_of(type_name: str) -> str:
    dt = DOTNET_TO_DT.get(type_name)
    if dt is not None:  # Speed: the usual short name, without splitting it (every assignment)
        return dt
    short = type_name.rsplit(".", 1)[-1]  # accept "System.Int32"
    if short not in DOTNET_TO_DT:
        raise _fail(f"the .NET type {type_name!r} is not a supported variable type")
    return DOTNET_TO_DT[short]


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float, Decimal)):
        return raw != 0
    flag = ssis_flag(str(raw))
    if flag is None:
        raise ConversionFailure("it is not a Boolean (True/False/-1/0)")
    return flag


def _parse_datetime(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    text = str(raw).strip()
    if not text:
        return datetime(1899, 12, 30)
    if text.endswith(("Z", "z")):
        text = text[:-1] + " +00:00"
    moment, _tick, offset, _has_date = parse_datetime_text(text.replace("T", " ", 1))
    # An offset in persisted text is dropped: a DateTime variable holds local time (DT_DATE).
    return moment


# .NET's white space (the only kind its number parsing skips); an empty value reads as 0.
_NET_SPACE = "\t\n\v\f\r "
# What .NET's Double.Parse and Single.Parse accept besides numbers (the invariant culture's
# symbols, compared exactly), and what SSIS persists for such a value: see _parse_real.
_REAL_SYMBOLS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number_text(raw: str) -> int | Decimal:
    """The number in persisted text, read as a cast reads it (casts.number_from_text): ASCII
    digits only, no ``1_0``, no other scripts' digits, no NaN; any length or exponent."""
    if not raw.strip(_NET_SPACE):
        return 0
    try:
        return number_from_text(raw)
    except ConversionFailure:
        raise ConversionFailure(
            "it is not a number; write ASCII digits, with an optional sign, "
            "decimal point and exponent"
        ) from None


def _parse_integer(raw: Any, dt: str) -> int:
    if isinstance(raw, bool):
        number: Any = -1 if raw else 0
    elif isinstance(raw, str) and dt == "DT_UI2" and len(raw) == 1 and not ("0" <= raw <= "9"):
        number = ord(raw)  # a Char variable persisted as its character
    elif isinstance(raw, str):
        number = _number_text(raw)
    else:
        number = raw
    low, high = INT_RANGE[dt]
    if isinstance(number, (float, Decimal)):
        exact = Decimal(repr(number)) if isinstance(number, float) else number
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise ConversionFailure("it is not an integer")
        # Compared as a Decimal first: int() of 1E+99999999999 would build that integer.
        if not low <= exact <= high:
            raise _out_of_range(dt)
        number = int(exact)
    if not low <= number <= high:
        raise _out_of_range(dt)
    return int(number)


def _out_of_range(dt: str) -> ConversionFailure:
    low, high = INT_RANGE[dt]
    return ConversionFailure(f"it does not fit into {DT_TO_DOTNET.get(dt, dt)} ({low} to {high})")


def _parse_real(raw: Any, dt: str) -> float:
    """A Double or Single value. Text follows .NET Framework's Double.Parse, which SSIS runs on:
    the exact symbols NaN, Infinity and -Infinity are values (SSIS persists such a value so), but
    a finite number beyond the type's range is an overflow, not infinity; Python's own spellings
    (``nan``, ``inf``, ``1_0``) are not numbers."""
    if isinstance(raw, str):
        text = raw.strip(_NET_SPACE)
        if text in _REAL_SYMBOLS:
            return _REAL_SYMBOLS[text]
        number = float(_number_text(text))  # a Decimal too large for a float gives inf here
    elif isinstance(raw, float):
        number = raw  # NaN and infinities included: a .NET Double can hold them
        if not math.isfinite(number):
            return number
    else:
        try:
            number = float(raw)  # an int, a Decimal, a bool
        except OverflowError:
            number = math.inf
    result = to_float32(number) if dt == "DT_R4" else number
    if not math.isfinite(result):
        raise ConversionFailure(f"it does not fit into {DT_TO_DOTNET.get(dt, dt)}")
    return result


def _parse_exact(raw: Any, dt: str) -> Decimal:
    if isinstance(raw, str):
        number = Decimal(_number_text(raw))
    else:
        number = Decimal(repr(raw) if isinstance(raw, float) else raw)
    if not number.is_finite():
        raise ConversionFailure("it is not a decimal number")
    try:
        return check_exact(number, dt)
    except ConversionFailure:  # its sentence quotes the number, which may be megabytes long
        raise ConversionFailure(f"it does not fit into {_EXACT_LIMITS[dt]}") from None


_EXACT_LIMITS = {
    "DT_DECIMAL": "DT_DECIMAL (at most 29 digits)",
    "DT_CY": "DT_CY (at most 922337203685477.5807)",
}


def _parse_raw(dt: str, raw: Any, type_name: str) -> Any:
    if dt == OBJECT:
        return raw
    if dt == DBNULL:
        return None
    if dt == "DT_BOOL":
        return _parse_bool(raw)
    if dt in INT_RANGE:
        return _parse_integer(raw, dt)
    if dt in ("DT_R4", "DT_R8"):
        return _parse_real(raw, dt)
    if dt in ("DT_DECIMAL", "DT_CY"):
        return _parse_exact(raw, dt)
    if dt == "DT_WSTR":
        return raw if isinstance(raw, str) else str(raw)
    return _parse_datetime(raw)


def value_from_dotnet(type_name: str, raw: object) -> Value:
    """A variable value of .NET type ``type_name`` (``Int32``, ``String``…) from ``raw``.

    ``raw`` may be a Python value or the text persisted in a ``.dtsx`` file. ``None`` gives the
    type's default (variables can never be null): False, 0, "" or 1899-12-30.
    """
    dt = _dt_of(type_name)
    if raw is None and dt not in (OBJECT, DBNULL):
        raw = "" if dt in ("DT_WSTR", "DT_DATE") else 0
    try:
        return Value(dt, _parse_raw(dt, raw, type_name))
    except (ConversionFailure, ValueError, InvalidOperation, TypeError, OverflowError) as exc:
        detail = str(exc) if isinstance(exc, ConversionFailure) else "it is not valid"
        article = "an" if type_name.rsplit(".", 1)[-1][:1] in "AEIOU" else "a"
        raise _fail(f"cannot read {article} {type_name} variable value: {detail}") from None


def as_decimal(source: str, raw: Any) -> Decimal:
    """A DT_DECIMAL variable keeps the value's own scale (no fixed scale to cast to)."""
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Decimal(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return Decimal(repr(raw))
    number: Decimal = converter(source, TypeSpec("DT_NUMERIC", precision=38, scale=10))(raw)
    return number.normalize() if number == number.to_integral_value() else number


# Speed: .NET type name -> the expression type whose non-NULL values a variable of that type
# takes unchanged (value_to_dotnet would only rebuild an equal Value): every assignment of a
# variable's own type (a loop counter, a copy) skips the conversion. DBNull takes none.
AS_IS: dict[str, str] = {name: dt for name, dt in DOTNET_TO_DT.items() if dt != DBNULL}


def convert_to_type(value: Value, dt: str) -> Any:
    """The Python value of ``value`` converted to expression type ``dt`` (assignment rules)."""
    source, raw = value.type, value.value
    if raw is None or source == dt or dt == OBJECT:
        return raw
    if source in STRINGS and dt in STRINGS:
        return raw
    if source in (OBJECT, DBNULL):
        raise ConversionFailure(f"a {source} value cannot be converted to {dt}")
    if not is_legal_cast(source, dt):
        raise ConversionFailure(
            f"a {source} value cannot be converted to {DT_TO_DOTNET.get(dt, dt)}"
        )
    if dt == "DT_DECIMAL":
        return check_exact(as_decimal(source, raw), "DT_DECIMAL")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ConversionFailure(f"{raw} cannot be converted to {dt}")
    return converter(source, TypeSpec(dt, scale=7 if dt.startswith("DT_DBTIME") else None))(raw)


def value_to_dotnet(value: Value, type_name: str) -> Value:
    """Convert an expression result to a variable of .NET type ``type_name`` as SSIS assigns."""
    if value[1] is not None and AS_IS.get(type_name) == value[0]:
        return value  # Speed: see AS_IS
    dt = _dt_of(type_name)
    if dt == DBNULL:
        raise _fail("a value cannot be assigned to a DBNull variable")
    if value.value is None and dt != OBJECT:
        raise _fail(
            f"a NULL ({value.type}) cannot be stored in a {type_name} variable; "
            "variables can never hold NULL"
        )
    try:
        return Value(dt, convert_to_type(value, dt))
    except ConversionFailure as exc:
        raise _fail(
            f"cannot assign the {value.type} result to a {type_name} variable: {exc}"
        ) from None
