"""Foreach Loop enumerators: File, Item, From Variable and ADO (rows held in an Object variable).

Each enumerator yields one *item* per iteration: a list of values that the loop maps to
variables by ``ValueIndex``. Settings arrive by runtime name (``Directory``, ``FileSpec``,
``FileNameRetrievalType``, ``Recurse``, ``VarName``...) with property expressions already
applied by the executor.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any
from collections.abc import Callable, Iterator

from dtsx.engine.errors import ExecutionError
from dtsx.engine.expressions import Value, value_from_dotnet
from dtsx.engine.model import VARTYPE_TO_DOTNET, ForEachEnumerator, XmlNode, ssis_flag
from dtsx.engine.recordset import Recordset, Table
from dtsx.engine.variables import Scope

__all__ = ["enumerate_items", "file_items", "item_rows", "rows_of"]

Warn = Callable[[str], None]


def enumerate_items(
    enumerator: ForEachEnumerator,
    settings: dict[str, str],
    scope: Scope,
    local_path: Callable[[str], str],
    warn: Warn = lambda _m: None,
) -> Iterator[list[Any]]:
    """The items of one enumeration, by enumerator type."""
    key = (enumerator.type_key or enumerator.raw_type).lower()
    if "fileenumerator" in key and "adls" not in key and "hdfs" not in key:
        return iter(file_items(settings, local_path, warn))
    if "itemenumerator" in key:
        return iter(item_rows(enumerator.object_data))
    if "fromvar" in key:
        value = _variable(
            settings, scope, ("VariableName", "VarName", "Variable", "SourceVariable"), enumerator
        )
        return iter([[element] for element in _iterable(value, enumerator)])
    if "adoenumerator" in key and "schema" not in key:
        value = _variable(
            settings, scope, ("VarName", "VariableName", "SourceVariable"), enumerator
        )
        return iter(ado_items(value, settings.get("EnumType", ""), enumerator))
    raise ExecutionError(
        f"Foreach enumerator {enumerator.raw_type!r} ({enumerator.ref_id}) is not supported by "
        "dtsx; "
        "supported: File, Item, From Variable and ADO over an Object variable."
    )


def _flag(text: str | None) -> bool:
    return ssis_flag(text or "") is True


def file_items(
    settings: dict[str, str], local_path: Callable[[str], str], warn: Warn
) -> list[list[Any]]:
    directory = settings.get("Directory") or settings.get("Folder") or ""
    spec = settings.get("FileSpec") or "*.*"
    mode = (settings.get("FileNameRetrievalType") or "0").strip()
    recurse = _flag(settings.get("Recurse"))
    folder = local_path(directory) if directory else ""
    if not folder or not os.path.isdir(folder):
        hint = (
            " (a Windows path: map it with --path-map 'C:\\dir=/local/dir')"
            if folder == directory and "\\" in directory
            else ""
        )
        warn(f"The For Each File enumerator is empty: the folder {directory} does not exist{hint}.")
        return []
    pattern = "*" if spec.strip() in ("*.*", "*") else spec.strip().lower()
    found = sorted(_walk_files(folder, recurse), key=lambda p: p.lower())
    paths = [p for p in found if fnmatch.fnmatchcase(os.path.basename(p).lower(), pattern)]
    if not paths:
        warn(f"The For Each File enumerator is empty: no file in {directory} matches {spec}.")
    return [[_file_name(p, mode)] for p in paths]


def _walk_files(folder: str, recurse: bool) -> Iterator[str]:
    if not recurse:
        for entry in os.scandir(folder):
            if entry.is_file():
                yield entry.path
        return
    for root, _dirs, files in os.walk(folder):
        for name in files:
            yield os.path.join(root, name)


def _file_name(path: str, mode: str) -> str:
    if mode == "1":
        return os.path.basename(path)
    if mode == "2":
        return os.path.splitext(os.path.basename(path))[0]
    return os.path.abspath(path)


def item_rows(object_data: XmlNode | None) -> list[list[Any]]:
    """Rows of the Item enumerator: ``<FEIEItem><FEIEItemValue Type="8" Value="a"/>...``."""
    rows: list[list[Any]] = []
    if object_data is None:
        return rows
    for node in object_data.iter():
        if node.local_name.lower() != "feieitem":
            continue
        rows.append([_item_value(child) for child in node.children])
    return rows


def _item_value(node: XmlNode) -> Value:
    code = node.get("Type") or node.get("DataType") or "8"
    try:
        type_name = VARTYPE_TO_DOTNET.get(int(code), "String")
    except ValueError:
        type_name = "String"
    raw = node.get("Value")
    if raw is None:
        raw = node.text or ""
    return value_from_dotnet(type_name, raw)


def _variable(
    settings: dict[str, str], scope: Scope, keys: tuple[str, ...], enumerator: ForEachEnumerator
) -> Any:
    name = next((settings[k] for k in keys if settings.get(k)), None)
    if name is None:
        raise ExecutionError(
            f"Foreach enumerator {enumerator.ref_id!r} names no variable to enumerate."
        )
    return scope.get(name)


def _iterable(value: Any, enumerator: ForEachEnumerator) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return list(value) if isinstance(value, str) else [value]
    if isinstance(value, dict):
        return list(value.values())
    try:
        return list(value)
    except TypeError as exc:
        raise ExecutionError(
            f"Foreach enumerator {enumerator.ref_id!r}: the variable holds a "
            f"{type(value).__name__}, which cannot be enumerated."
        ) from exc


# EnumType of the Foreach ADO enumerator (FEEADO/@EnumType), by name or number (spec §2.6).
_ADO_MODES = {
    "enumeratetables": "tables",
    "0": "tables",
    "enumerateallrows": "all",
    "1": "all",
    "enumeraterowsinfirsttable": "first",
    "2": "first",
    "": "first",
}


def ado_items(value: Any, enum_type: str, enumerator: ForEachEnumerator) -> list[list[Any]]:
    """The Foreach ADO enumerator's items over an Object variable.

    A DataSet (ADO.NET) gives its first table's rows, all tables' rows, or each table (one item
    holding the :class:`Table`); an ADO Recordset has one table and gives its rows whatever the
    mode; a DataTable gives its rows and refuses EnumerateTables, as SSIS does. Anything else is
    read as rows (:func:`rows_of`)."""
    mode = _ADO_MODES.get(enum_type.strip().lower())
    if mode is None:
        raise ExecutionError(
            f"Foreach ADO enumerator {enumerator.ref_id!r}: EnumType {enum_type!r} is not one of "
            "EnumerateRowsInFirstTable, EnumerateAllRows, EnumerateTables."
        )
    if isinstance(value, Recordset):
        if value.forward_only or mode == "first":
            return [list(row) for row in value.first_table_rows()]
        if mode == "all":
            return [list(row) for row in value.all_rows()]
        return [[table] for table in value.all_tables()]
    if isinstance(value, Table):
        if mode == "tables":
            raise ExecutionError(
                f"Foreach ADO enumerator {enumerator.ref_id!r}: EnumerateTables needs a DataSet, "
                "but the variable holds one DataTable; use EnumerateRowsInFirstTable."
            )
        return [list(row) for row in value.rows]
    return rows_of(value)


def rows_of(value: Any) -> list[list[Any]]:
    """Rows of an Object variable: a list of tuples, lists or dicts (a dict's values in order)."""
    if value is None:
        return []
    rows: list[list[Any]] = []
    for row in value:
        if isinstance(row, dict):
            rows.append(list(row.values()))
        elif isinstance(row, (list, tuple)):
            rows.append(list(row))
        else:
            rows.append([row])
    return rows
