"""The Execute SQL task's checks before the run (spec §5: connection type, statement source,
marker style, bindings, DataType codes, result bindings).

Each check skips what a property expression sets, and what the planner cannot know (a variable
the ValidationContext does not describe is checked by name only).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dtsx.tasks.execute_sql_bindings import (
    Direction,
    ParameterBinding,
    SqlTaskProperties,
    code_space,
    family,
    marker_style,
)

if TYPE_CHECKING:
    from dtsx.tasks.base import ValidationContext

__all__ = ["problems"]

_DATABASE = ("OLEDB", "ADO.NET", "ODBC", "ADO")
_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}?$")
_OBJECT, _STRING = 13, 8  # VARTYPE codes of Object and String variables


def problems(props: SqlTaskProperties, vctx: ValidationContext) -> list[str]:
    """Every problem of the task visible before the run, one sentence each."""
    found: list[str] = []
    kind = _connection(props, vctx, found)
    found += _source(props, vctx)
    found += _parameters(props, vctx, kind)
    found += _results(props, vctx)
    if kind is not None:
        found += _dialect(props, vctx)
    if kind is not None and props.source_type.name == "DirectInput":
        if not vctx.is_dynamic("SqlStatementSource"):
            found += _markers(props, kind)
    return found


def _connection(props: SqlTaskProperties, vctx: ValidationContext, found: list[str]) -> str | None:
    """The connection family, or None (with a problem unless an expression sets it)."""
    if vctx.is_dynamic("Connection"):
        return None
    ref = props.connection.strip()
    if not ref:
        found.append("the Execute SQL task names no connection manager: set Connection.")
        return None
    creation = vctx.connection_type(ref)
    if creation is None and _GUID.match(ref):
        return None  # the planner reports a DTSID that names no manager (missing-connection)
    if creation is None:
        found.append(
            f"the Execute SQL task's Connection {ref} matches no connection manager in the "
            "package or project (0xC001000E)."
        )
        return None
    kind = family(creation)
    if kind == "EXCEL":
        found.append(
            f"the Execute SQL task's Connection {ref} is an EXCEL connection manager, and dtsx "
            "has no EXCEL (Jet/ACE) connection manager; export the workbook to a database and "
            "point the task at it, or disable the task."
        )
        return None
    if kind not in _DATABASE:
        found.append(
            f"the Execute SQL task's Connection {ref} is {_an(creation)} {creation} connection "
            "manager; it "
            "needs an OLE DB, ADO.NET, ODBC or ADO one."
        )
        return None
    return kind


def _dialect(props: SqlTaskProperties, vctx: ValidationContext) -> list[str]:
    """What only SQL Server gives: XML results (FOR XML) and procedure return values."""
    dialect = vctx.connection_dialect(props.connection.strip())
    if dialect in (None, "mssql") or vctx.is_dynamic("Connection"):
        return []
    found = []
    if props.result_type.name == "XML" and not vctx.is_dynamic("ResultSetType"):
        found.append(
            f"the Execute SQL task's ResultSetType is XML, which needs SQL Server's FOR XML, but "
            f"its connection opens {dialect}; use a full result set or a SingleRow text column."
        )
    returns = [b.name for b in props.parameters if b.direction is Direction.RETURN_VALUE]
    if returns:
        found.append(
            f"the parameter binding {returns[0]!r} is a ReturnValue, which dtsx reads only from "
            f"SQL Server, but the task's connection opens {dialect}; select the value and bind "
            "it as a SingleRow result instead."
        )
    return found


def _source(props: SqlTaskProperties, vctx: ValidationContext) -> list[str]:
    if vctx.is_dynamic("SqlStatementSource", "SqlStatementSourceType"):
        return []
    source = props.statement.strip()
    kind = props.source_type.name
    if kind == "DirectInput":
        return [] if source else ["the Execute SQL task has no SQL statement (SqlStatementSource)."]
    if not source:
        return [
            f"the Execute SQL task's SqlStmtSourceType is {kind} but SqlStatementSource is empty."
        ]
    if kind == "Variable":
        if not vctx.has_variable(source):
            return [
                f"the Execute SQL task's SqlStatementSource names the variable {source!r}, which "
                "is not in its scope."
            ]
        return []
    creation = vctx.connection_type(source)
    if creation is None or family(creation) not in ("FILE", "FLATFILE"):
        what = (
            "no connection manager"
            if creation is None
            else f"{_an(creation)} {creation} connection manager"
        )
        return [
            f"the Execute SQL task's SqlStatementSource {source!r} names {what}; with "
            "SqlStmtSourceType FileConnection it must name a FILE connection manager."
        ]
    return []


def _parameters(props: SqlTaskProperties, vctx: ValidationContext, kind: str | None) -> list[str]:
    found: list[str] = []
    space = code_space(kind) if kind else None
    for b in props.parameters:
        label = f"the parameter binding {b.name!r}"
        if b.size < -1:
            found.append(
                f'Parameter "{b.name}" cannot be negative. (-1) is used for the default value. '
                "(0xC002F429)"
            )
        if space is not None and b.data_type != -1 and b.data_type not in space[1]:
            examples = ", ".join(str(c) for c in sorted(space[1])[:8])
            found.append(
                f"{label} has DataType {b.data_type}, which is no code of the {space[0]} space "
                f"of {_an(kind or '')} {kind} connection (codes such as {examples}...)."
            )
        found += _variable(label, b.variable, vctx, writes=b.direction is not Direction.INPUT)
        if kind == "ODBC" and b.name.strip() == "0" and b.direction is not Direction.RETURN_VALUE:
            found.append(
                f"{label} is named 0, but ODBC parameter names count from 1 (the first ? is 1)."
            )
    return found


def _variable(label: str, name: str, vctx: ValidationContext, *, writes: bool) -> list[str]:
    if not name:
        return [f"{label} names no variable (DtsVariableName)."]
    if not vctx.has_variable(name):
        return [
            f"{label} names the variable {name!r}, which is not in the task's scope (0xC0010001)."
        ]
    declared = vctx.variable(name)
    if writes and declared is not None and declared.read_only:
        return [f"{label} writes the variable {name!r}, which is read-only (0xC0010003)."]
    return []


def _results(props: SqlTaskProperties, vctx: ValidationContext) -> list[str]:
    found: list[str] = []
    result = props.result_type.name
    for r in props.results:
        label = f"the result binding {r.name!r}"
        found += _variable(label, r.variable, vctx, writes=True)
        if result not in ("Full", "XML"):
            continue
        if r.name.strip() != "0":
            found.append(
                f"{label}: the result binding name must be set to zero for full result set and "
                "XML results."
            )
        declared = vctx.variable(r.variable)
        allowed = (_OBJECT,) if result == "Full" else (_OBJECT, _STRING)
        if declared is not None and declared.data_type not in allowed:
            what = "an Object" if result == "Full" else "a String or Object"
            found.append(
                f"{label}: a {'full' if result == 'Full' else 'XML'} result set goes into "
                f"{what} variable, but {r.variable} is a {declared.dotnet_type}."
            )
    if result in ("Full", "XML") and len(props.results) > 1:
        found.append(
            f"the Execute SQL task's {result} result set takes one result binding, named 0."
        )
    return found


def _markers(props: SqlTaskProperties, kind: str) -> list[str]:
    """Marker style vs connection type: ``?`` for OLE DB, ODBC and ADO, ``@name`` for ADO.NET."""
    from dtsx.engine.sqltext import SqlTextError, find_markers, split_batches

    params = list(props.parameters)
    if not params:
        return []
    try:
        batches = split_batches(props.statement)
    except SqlTextError as exc:
        return [f"the Execute SQL task's statement cannot be split into batches: {exc}"]
    style = marker_style(kind)
    names = {b.bare_name for b in params}
    found: list[str] = []
    for batch in batches:
        questions = find_markers(batch.text, "?")
        named = find_markers(batch.text, "@", names)
        if style == "@" and questions and not named:
            found.append(
                f"the Execute SQL task's statement uses ? markers (batch at line {batch.line}), "
                f"but an ADO.NET connection binds @name markers: write @{params[0].bare_name}."
            )
        elif style == "?" and named and not questions and _all_at_names(params):
            found.append(
                f"the Execute SQL task's statement uses @name markers (batch at line "
                f"{batch.line}), but {_an(kind)} {kind} connection binds ? markers in order: "
                "write ?."
            )
        elif style == "?" and questions:
            found += _numbering(params, len(questions), kind, batch.line)
    return found


def _all_at_names(params: list[ParameterBinding]) -> bool:
    return all(not b.name.strip().isdigit() for b in params)


def _numbering(params: list[ParameterBinding], count: int, kind: str, line: int) -> list[str]:
    """Numbered names must point at a marker: 0..n-1 for OLE DB, 1..n for ODBC."""
    if kind == "ADO" or not all(b.name.strip().isdigit() for b in params):
        return []
    first = 1 if kind == "ODBC" else 0
    beyond = [b.name for b in params if not first <= int(b.name) < count + first]
    if not beyond:
        return []
    return [
        f"the parameter binding(s) {', '.join(beyond)} point past the {count} ? marker(s) of the "
        f"batch at line {line} ({kind} numbers them from {first})."
    ]


def _an(word: str) -> str:
    """The article of a connection type as it is read aloud (an OLE DB, an SMTP, a FILE)."""
    return "an" if word[:1].upper() in "AEFHILMNORSX" else "a"
