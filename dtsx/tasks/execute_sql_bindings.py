"""Execute SQL properties and bindings: the task's properties model, parameter and result
bindings, DataType code spaces, value conversions.

A ParameterBinding's ``DataType`` is a number in the *connection type's* code space (spec §2.4:
OLE DB ``DBTYPE``, ADO.NET ``DbType``, ODBC SQL types, ADO ``DataTypeEnum``): 11 is VARIANT_BOOL
for OLE DB and Int32 for ADO.NET. Each code maps to a :data:`Kind` of Python value (§4.6) that an
input is converted to before it is bound. Results and outputs go back into variables under the
task's TypeConversionMode (§2.5): NULL only into Object, text never into a number.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field

from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.base import SsisBool, SsisInt, TaskProperties

__all__ = [
    "SqlTaskProperties",
    "SourceType",
    "ResultType",
    "Direction",
    "ParameterBinding",
    "ResultBinding",
    "Kind",
    "code_space",
    "kind_of",
    "input_value",
    "driver_value",
    "result_value",
    "tsql_type",
    "marker_style",
    "family",
]

Kind = Literal[
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float", "decimal", "bool", "str", "bytes", "datetime", "date", "time", "guid", "any",
]  # fmt: skip


class Direction(Enum):
    """ParameterDirection: the names SSIS writes (flags 1/2/4)."""

    INPUT = "Input"
    OUTPUT = "Output"
    RETURN_VALUE = "ReturnValue"

    @classmethod
    def parse(cls, text: str) -> Direction:
        wanted = text.strip().lower()
        for d in cls:
            if wanted in (d.value.lower(), str(_DIRECTION_FLAGS[d])):
                return d
        raise ValueError(f"ParameterDirection {text!r} is not Input, Output or ReturnValue")


_DIRECTION_FLAGS = {Direction.INPUT: 1, Direction.OUTPUT: 2, Direction.RETURN_VALUE: 4}


@dataclass(frozen=True)
class ParameterBinding:
    """``<SQLTask:ParameterBinding>``: a marker's name, its variable, direction, type and size."""

    name: str
    variable: str
    direction: Direction = Direction.INPUT
    data_type: int = -1  # -1: not given (the persisted attribute is always written in practice)
    size: int = -1

    @property
    def bare_name(self) -> str:
        """The name compared with ``@name`` markers: one ``@`` stripped, lower-cased."""
        text = self.name.strip()
        return (text[1:] if text.startswith("@") else text).lower()


@dataclass(frozen=True)
class ResultBinding:
    """``<SQLTask:ResultBinding>``: a column name or 0-based ordinal, and its variable."""

    name: str
    variable: str


# -- connection types -----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def family(connection_type: str) -> str:
    """The SSIS connection family of a CreationName: OLEDB, ADO.NET, ODBC, ADO, EXCEL, or the
    upper-cased name itself."""
    text = connection_type.strip().upper()
    for name in ("ADO.NET", "OLEDB", "ODBC", "EXCEL", "SQLMOBILE"):
        if text.startswith(name):
            return name
    return "ADO" if text.startswith("ADO") else text


def marker_style(connection_type: str) -> Literal["?", "@"]:
    """``@name`` markers for ADO.NET (and SQL Mobile), ``?`` for the native connections."""
    return "@" if family(connection_type) in ("ADO.NET", "SQLMOBILE") else "?"


# -- DataType code spaces (spec §2.4) --------------------------------------------------------------

_OLEDB: Mapping[int, Kind] = {
    2: "int16", 3: "int32", 4: "float", 5: "float", 6: "decimal", 7: "datetime", 11: "bool",
    12: "any", 14: "decimal", 16: "int8", 17: "uint8", 18: "uint16", 19: "uint32", 20: "int64",
    21: "uint64", 64: "datetime", 72: "guid", 128: "bytes", 129: "str", 130: "str",
    131: "decimal", 133: "date", 134: "time", 135: "datetime", 145: "time", 146: "str",
}  # fmt: skip
_DBTYPE: Mapping[int, Kind] = {
    0: "str", 1: "bytes", 2: "uint8", 3: "bool", 4: "decimal", 5: "date", 6: "datetime",
    7: "decimal", 8: "float", 9: "guid", 10: "int16", 11: "int32", 12: "int64", 13: "any",
    14: "int8", 15: "float", 16: "str", 17: "str", 18: "uint16", 19: "uint32", 20: "uint64",
    21: "decimal", 22: "str", 23: "str", 25: "str", 26: "datetime", 27: "str",
}  # fmt: skip
_ODBC: Mapping[int, Kind] = {
    1: "str", 2: "decimal", 3: "decimal", 4: "int32", 5: "int16", 6: "float", 7: "float",
    8: "float", 9: "date", 10: "time", 11: "datetime", 12: "str", -1: "str", -2: "bytes",
    -3: "bytes", -4: "bytes", -5: "int64", -6: "uint8", -7: "bool", -8: "str", -9: "str",
    -10: "str", -11: "guid", 91: "date", 92: "time", 93: "datetime", -154: "time", -155: "str",
}  # fmt: skip
_ADO: Mapping[int, Kind] = {
    2: "int16", 3: "int32", 4: "float", 5: "float", 6: "decimal", 7: "datetime", 11: "bool",
    12: "any", 14: "decimal", 16: "int8", 17: "uint8", 18: "uint16", 19: "uint32", 20: "int64",
    21: "uint64", 72: "guid", 128: "bytes", 129: "str", 130: "str", 131: "decimal", 133: "date",
    134: "time", 135: "datetime", 200: "str", 201: "str", 202: "str", 203: "str", 204: "bytes",
    205: "bytes",
}  # fmt: skip
_SPACES: Mapping[str, tuple[str, Mapping[int, Kind]]] = {
    "OLEDB": ("OLE DB DBTYPE", _OLEDB),
    "EXCEL": ("OLE DB DBTYPE", _OLEDB),
    "ADO.NET": ("System.Data.DbType", _DBTYPE),
    "SQLMOBILE": ("System.Data.DbType", _DBTYPE),
    "ODBC": ("ODBC SQL type", _ODBC),
    "ADO": ("ADO DataTypeEnum", _ADO),
}


def code_space(connection_type: str) -> tuple[str, Mapping[int, Kind]] | None:
    """The name and codes of a connection type's DataType space, or None for other types."""
    return _SPACES.get(family(connection_type))


@lru_cache(maxsize=256)
def kind_of(connection_type: str, code: int) -> Kind:
    """The Python kind a DataType code means for this connection type ("any" when unknown: the
    validation reports unknown codes, and the value then goes to the driver as it is)."""
    space = code_space(connection_type)
    return space[1].get(code, "any") if space else "any"


# T-SQL types of the local variables that carry Output and ReturnValue parameters on SQL Server.
_TSQL_TYPES: Mapping[str, str] = {
    "int8": "smallint", "uint8": "tinyint", "int16": "smallint", "uint16": "int",
    "int32": "int", "uint32": "bigint", "int64": "bigint", "uint64": "decimal(20, 0)",
    "float": "float", "decimal": "decimal(38, 10)", "bool": "bit", "bytes": "varbinary(max)",
    "datetime": "datetime2", "date": "date", "time": "time", "guid": "uniqueidentifier",
    "any": "sql_variant",
}  # fmt: skip


def tsql_type(kind: Kind, size: int) -> str:
    """The T-SQL type of a variable holding a parameter of this kind (ParameterSize for text;
    NVARCHAR(4000) for the default -1, as spec §4.3 advises)."""
    if kind == "str":
        return f"nvarchar({size})" if 0 < size <= 4000 else "nvarchar(4000)"
    return _TSQL_TYPES[kind]


# -- inputs ---------------------------------------------------------------------------------------

_RANGES: Mapping[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def input_value(value: Any, kind: Kind) -> Any:
    """A variable's value as the DataType asks; ValueError says why it cannot be."""
    if value is None or kind == "any":
        return value
    if kind in _RANGES:
        number = _integer(value)
        low, high = _RANGES[kind]
        if not low <= number <= high:
            raise ValueError(f"{number} is out of the range of {kind} ({low} to {high})")
        return number
    return _CONVERT[kind](value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (float, decimal.Decimal)) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError(f"{value!r} is not a whole number")


def _text(value: Any) -> str:
    if value.__class__ is str:
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bool):
        return "True" if value else "False"  # as .NET's Boolean.ToString
    return str(value)


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.strip())
    raise ValueError(f"{value!r} is not a date and time")


def _time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        return dt.time.fromisoformat(value.strip())
    return _datetime(value).time()


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ValueError(f"{type(value).__name__} is not binary data")


_CONVERT: Mapping[str, Any] = {
    "float": float,
    "decimal": lambda v: v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v)),
    "bool": bool,
    "str": _text,
    "guid": lambda v: str(v).strip(),
    "bytes": _bytes,
    "datetime": _datetime,
    "date": lambda v: _datetime(v).date(),
    "time": _time,
}


def driver_value(value: Any, dialect: str) -> Any:
    """A value in the form the dialect's driver binds. sqlite3 has no Decimal and (from Python
    3.12) no date adapters: they go as exact ISO text, which SQLite's date functions read."""
    if dialect != "sqlite":
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


# -- results and outputs (spec §2.5, §4.6) -------------------------------------------------

_NUMERIC_TYPES = frozenset(
    {"Int16", "Int32", "Int64", "UInt16", "UInt32", "UInt64", "Byte", "SByte", "Single",
     "Double", "Decimal"}
)  # fmt: skip


def result_value(value: Any, type_name: str | None, variable: str, *, convert: bool) -> Any:
    """``value`` (from the driver) checked for the variable of .NET type ``type_name`` (None:
    not known), ready for ``variables.set``; TaskFailedError in SSIS's 0xC002F309 words.

    NULL goes only into Object; text never into a number; under TypeConversionMode None
    (``convert=False``) a String variable takes only text."""
    if type_name == "Object":
        return value
    if value is None:
        raise _assign_error(variable, "the value is NULL, which only an Object variable holds")
    if isinstance(value, memoryview):
        value = bytes(value)
    if type_name in _NUMERIC_TYPES and isinstance(value, (str, bytes)):
        raise _assign_error(variable, f"the text {_short(value)} cannot go into a {type_name}")
    if type_name == "String" and not isinstance(value, str):
        if not convert:
            raise _assign_error(
                variable,
                f"a {type(value).__name__} value does not go into a String under "
                "TypeConversionMode None",
            )
        return _text(value)
    if (
        type_name == "DateTime"
        and isinstance(value, dt.date)
        and not isinstance(value, dt.datetime)
    ):
        return _datetime(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _assign_error(variable: str, why: str) -> TaskFailedError:
    return TaskFailedError(
        f'An error occurred while assigning a value to variable "{variable}": "{why}." (0xC002F309)'
    )


def assign_error(variable: str, why: str) -> TaskFailedError:
    """The 0xC002F309 error for ``variable``, saying ``why``."""
    return _assign_error(variable, why)


# -- the task's properties (spec §1.2) ----------------------------------------------------------


class SourceType(IntEnum):
    """SqlStatementSourceType (XML ``SqlStmtSourceType``)."""

    DirectInput = 1
    FileConnection = 2
    Variable = 3


class ResultType(IntEnum):
    """ResultSetType (XML ``ResultType``: ``ResultSetType_None``, ``_SingleRow``, ``_Rowset``,
    ``_XML``)."""

    None_ = 1
    SingleRow = 2
    Full = 3
    XML = 4


_SOURCE_NAMES = {m.name.lower(): m for m in SourceType}
_RESULT_NAMES = {
    "none": ResultType.None_,
    "singlerow": ResultType.SingleRow,
    "rowset": ResultType.Full,
    "full": ResultType.Full,
    "fullresultset": ResultType.Full,
    "xml": ResultType.XML,
}


def _enum_value(value: Any, enum: type[IntEnum], names: Mapping[str, IntEnum], why: str) -> Any:
    """An SSIS enum property: its member, its number, or one of ``names`` (lower-cased)."""
    if isinstance(value, enum) or not isinstance(value, (str, int)):
        return value
    text = str(value).strip()
    if text.isdigit():
        return enum(int(text))
    key = text.lower().removeprefix("resultsettype_").replace(" ", "")
    if key in names:
        return names[key]
    raise ValueError(why)


def _source_type(value: Any) -> Any:
    names = {m.name.lower(): m for m in SourceType}
    return _enum_value(
        value, SourceType, names, "it must be DirectInput, FileConnection or Variable"
    )


def _result_type(value: Any) -> Any:
    why = "it must be ResultSetType_None, _SingleRow, _Rowset or _XML"
    return _enum_value(value, ResultType, _RESULT_NAMES, why)


def _conversion_mode(value: Any) -> Any:
    text = str(value).strip()
    for name in ("Allowed", "None"):
        if text.lower() in (name.lower(), str(("None", "Allowed").index(name))):
            return name
    raise ValueError("it must be Allowed or None")


class SqlTaskProperties(TaskProperties):
    """SqlTaskData: XML names and API names as aliases (spec §1.2), defaults for absent ones."""

    connection: str = Field("", validation_alias=AliasChoices("Connection", "connection"))
    source_type: Annotated[SourceType, BeforeValidator(_source_type)] = Field(
        SourceType.DirectInput,
        validation_alias=AliasChoices("SqlStmtSourceType", "SqlStatementSourceType", "source_type"),
    )
    statement: str = Field("", validation_alias=AliasChoices("SqlStatementSource", "statement"))
    result_type: Annotated[ResultType, BeforeValidator(_result_type)] = Field(
        ResultType.None_,
        validation_alias=AliasChoices("ResultType", "ResultSetType", "result_type"),
    )
    timeout: SsisInt = Field(0, ge=0, validation_alias=AliasChoices("TimeOut", "timeout"))
    is_stored_procedure: SsisBool = Field(
        False,
        validation_alias=AliasChoices(
            "IsStoredProc", "IsStoredProcedure", "IsQueryStoredProcedure"
        ),
    )
    bypass_prepare: SsisBool = Field(True, validation_alias=AliasChoices("BypassPrepare"))
    # The machine's ANSI code page when absent; a Linux machine has none: Windows-1252.
    code_page: SsisInt = Field(1252, validation_alias=AliasChoices("CodePage", "code_page"))
    type_conversion_mode: Annotated[str, BeforeValidator(_conversion_mode)] = Field(
        "Allowed", validation_alias=AliasChoices("TypeConversionMode")
    )
    parameters: tuple[ParameterBinding, ...] = Field(
        (), validation_alias=AliasChoices("ParameterBindings", "parameters")
    )
    results: tuple[ResultBinding, ...] = Field(
        (), validation_alias=AliasChoices("ResultSetBindings", "results")
    )
