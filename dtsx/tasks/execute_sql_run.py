"""Running an Execute SQL statement on a raw DB-API connection: batches, binding, results.

One :class:`BatchRunner` per task execution. Batches run in order on one cursor and stop at the
first failure (what earlier batches did stays done). Each batch is translated first when the
operator opted in, cut into statements for engines that run one statement per call or would
otherwise run the batch as one transaction (SQLite, PostgreSQL, DuckDB: spec §4.3; each statement
then commits on its own, as on SQL Server), and its markers rewritten to the
driver's paramstyle with one value per marker. Results are walked with ``nextset()``, sets
without columns skipped (§4.4); the variables are written once, at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dtsx.engine.errors import DtsxError, TaskFailedError
from dtsx.engine.recordset import Column, Recordset, Table
from dtsx.tasks.execute_sql_bindings import (
    Direction,
    Kind,
    ParameterBinding,
    ResultBinding,
    assign_error,
    driver_value,
    family,
    input_value,
    kind_of,
    marker_style,
    result_value,
    tsql_type,
)

if TYPE_CHECKING:
    from dtsx.connections.base import DatabaseLease, DatabaseSession
    from dtsx.engine.sqltext import Batch, BoundSql, Marker
    from dtsx.tasks.base import EventSink, VariableAccess

__all__ = ["BatchRunner", "SqlFailure", "driver_text", "first_line"]

# Engines whose batches run one statement per execute() call. sqlite3 takes no more; psycopg
# takes no more with bound values, and without them runs a multi-statement string as ONE implicit
# transaction (a failing second statement would undo the first, which SQL Server keeps) and
# reports no error after the first result set separately (which OLE DB ignores).
_ONE_STATEMENT = frozenset({"sqlite", "postgresql", "duckdb"})
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


class SqlFailure(TaskFailedError):
    """A statement the driver refused (0xC002F210); ``first_line`` is the statement's first
    line, for the cancel message."""

    def __init__(self, message: str, first_line: str) -> None:
        self.first_line = first_line
        super().__init__(message)


def first_line(sql: str) -> str:
    """The first line of a statement that is not blank, shortened for a message."""
    line = next((ln.strip() for ln in sql.splitlines() if ln.strip()), "")
    return line if len(line) <= 100 else line[:97] + "..."


def driver_text(exc: BaseException) -> str:
    """The driver's SQLSTATE (where it gives one) and the first line of its message."""
    state = getattr(exc, "sqlstate", None)  # psycopg
    message = str(exc)
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if state is None and len(args) >= 2 and isinstance(args[0], str):
        if _SQLSTATE.fullmatch(args[0]):  # pyodbc: (sqlstate, message)
            state, message = args[0], str(args[1])
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return f"SQLSTATE {state}: {text}" if state else text


@dataclass
class _Results:
    """What the statements returned, as far as the task needs it."""

    tables: list[Table] = field(default_factory=list)
    last: Table | None = None  # the last set with columns (Output values come from it)
    rowcount: int = 0


class BatchRunner:
    """Runs one task execution's statement on a DB-API connection and stores its results."""

    def __init__(
        self,
        session: DatabaseSession,
        text: str,
        parameters: Sequence[ParameterBinding],
        results: Sequence[ResultBinding],
        *,
        result_type: str,
        connection: str,
        variables: VariableAccess,
        events: EventSink,
        convert: bool,
        cancelled: Callable[[], bool],
    ) -> None:
        self.session = session
        self.text = text
        self.parameters = tuple(parameters)
        self.results = tuple(results)
        self.result_type = result_type  # "None", "SingleRow", "Full", "XML"
        self.connection = connection
        self.variables = variables
        self.events = events
        self.convert = convert
        self.cancelled = cancelled
        kind = family(session.connection_type)
        self.family = kind
        self.dataset = kind == "ADO.NET"  # ADO.NET fills a DataSet: every set is a table
        # OLE DB and ADO stop reporting after the first result set (spec §2.5).
        self.late_errors_ignored = kind in ("OLEDB", "ADO", "EXCEL") and result_type != "None"
        self.outputs: list[ParameterBinding] = []  # the last batch's, in marker order
        self.found = _Results()
        self.timeout = 0
        self.lease: DatabaseLease | None = None

    # ---- the statement -------------------------------------------------------------------------

    def run(self, lease: DatabaseLease, timeout: int = 0) -> int:
        """Run every batch; store results and outputs; the rows affected (ExecutionValue).

        ``timeout`` > 0 is set before each statement: a statement timeout, and SQLite's deadline
        counts from the call."""
        from dtsx.engine.sqltext import split_batches

        batches = split_batches(self.text)
        if self.result_type == "XML" and self.session.dialect != "mssql":
            raise TaskFailedError(
                f"the Execute SQL task's ResultSetType is XML, which needs SQL Server's FOR XML, "
                f"but connection {self.connection!r} is {self.session.dialect}; use a full "
                "result set or a SingleRow text column."
            )
        self.timeout = timeout
        self.lease = lease
        if timeout > 0:  # before the cursor: pyodbc applies it to cursors made after
            lease.set_timeout(timeout)
        cursor = lease.dbapi.cursor()
        try:
            for batch in batches:
                sql = self._translated(batch)
                for _ in range(batch.repeat):
                    self._run_batch(cursor, sql, batch)
        finally:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001, S110 - a failed close must not hide the outcome
                pass
        self._store()
        return self.found.rowcount

    def _translated(self, batch: Batch) -> str:
        translate = self.session.translate
        if translate is None:
            return batch.text
        try:
            return translate(batch.text)
        except DtsxError as exc:
            raise TaskFailedError(
                f"the batch at line {batch.line} of the Execute SQL task's statement does not "
                f"translate from T-SQL for connection {self.connection!r}: {exc}"
            ) from exc

    def _parts(self, sql: str) -> list[tuple[str, str, Any]]:
        """(statement text, SQL for the driver, its arguments) for each execute() call."""
        session = self.session
        calls = _calls(sql, session.dialect, session.paramstyle, self.family, self.parameters)
        parts: list[tuple[str, str, Any]] = []
        self.outputs = []
        for call in calls:
            self.outputs.extend(call.outputs)
            if call.bound is None:
                parts.append((call.text, call.text, None))
                continue
            values = [self._input(b, k) for b, k in zip(call.bindings, call.kinds, strict=True)]
            parts.append((call.text, call.bound.sql, call.bound.arguments(values)))
        return parts

    def _run_batch(self, cursor: Any, sql: str, batch: Batch) -> None:
        for text, driver_sql, args in self._parts(sql):
            if self.cancelled():
                raise SqlFailure("the Execute SQL task was canceled.", first_line(text))
            if self.timeout > 0 and self.lease is not None:
                self.lease.set_timeout(self.timeout)
            try:
                if args is None:
                    cursor.execute(driver_sql)
                else:
                    cursor.execute(driver_sql, args)
                self._consume(cursor)
            except DtsxError:
                raise
            except Exception as exc:  # noqa: BLE001 - every DB-API driver has its own Error tree
                # Asked now, not before execute(): a driver that sends the whole batch (SQL
                # Server) reports a later statement's error from nextset(), after the first set.
                if self.late_errors_ignored and self.found.tables and not self.cancelled():
                    # SSIS's OLE DB and ADO connections never report these; say so quietly.
                    self.events.information(
                        f"an error after the first result set was ignored, as {self.family} "
                        f"does: {driver_text(exc)}"
                    )
                    continue
                raise self._failure(text, batch, exc) from exc

    def _failure(self, text: str, batch: Batch, exc: BaseException) -> SqlFailure:
        line = first_line(text)
        where = f" (batch at line {batch.line})" if batch.line > 1 else ""
        return SqlFailure(
            f'Executing the query "{line}"{where} on connection {self.connection!r} '
            f'({self.session.server}) failed with the following error: "{driver_text(exc)}" '
            "(0xC002F210); check the query, its parameters and ResultSetType.",
            line,
        )

    # ---- parameters ----------------------------------------------------------------------------

    def _input(self, binding: ParameterBinding, kind: Kind) -> Any:
        """The value sent for a binding (an Output's too: its variable's value goes in)."""
        if binding.direction is Direction.RETURN_VALUE:
            raise TaskFailedError(
                f"the parameter binding {binding.name!r} is a ReturnValue, which dtsx reads only "
                f"from SQL Server, not through the {self.session.dialect} driver; select the "
                "value and bind it as a SingleRow result instead."
            )
        value = self.variables.get(binding.variable)
        try:
            typed = input_value(value, kind)
        except (ValueError, ArithmeticError) as exc:
            if binding.direction is Direction.OUTPUT:
                # What goes in matters only to a procedure that reads it (INOUT); a value that
                # does not fit the parameter's type (a String variable's "" for a LONG) is NULL.
                return None
            raise TaskFailedError(
                f"the parameter {binding.name!r} (variable {binding.variable}) cannot be sent "
                f"with DataType {binding.data_type}: {exc}."
            ) from exc
        return driver_value(typed, self.session.dialect)

    # ---- results -------------------------------------------------------------------------------

    def _consume(self, cursor: Any) -> None:
        found = self.found
        while True:
            if cursor.description is not None:
                self._take_set(cursor)
            count = getattr(cursor, "rowcount", -1)
            if isinstance(count, int) and count > 0 and cursor.description is None:
                found.rowcount += count
            nextset = getattr(cursor, "nextset", None)  # sqlite3 has none: one set per call
            if nextset is None or not nextset():
                return

    def _take_set(self, cursor: Any) -> None:
        found = self.found
        wanted = self.result_type != "None" and (not found.tables or self.dataset)
        if not wanted and not self.outputs:
            return  # ResultSetType None: rows ignored
        columns = [Column(str(d[0] or ""), d[1]) for d in cursor.description]
        if wanted and self.result_type != "SingleRow":
            rows = cursor.fetchall()
        else:
            row = cursor.fetchone()
            rows = [] if row is None else [row]
        name = "Table" if not found.tables else f"Table{len(found.tables)}"
        table = Table(columns, rows, name)
        if wanted:
            found.tables.append(table)
        found.last = table

    def _store(self) -> None:
        names = [b.variable for b in self.results] + [b.variable for b in self.outputs]
        if not names and self.result_type != "SingleRow":
            return
        with self.variables.locked(*dict.fromkeys(names)):
            if self.result_type == "SingleRow":
                self._store_single_row()
            elif self.result_type in ("Full", "XML") and self.results:
                self._store_whole()
            if self.outputs:
                self._store_outputs()

    def _set(self, variable: str, value: Any) -> None:
        checked = result_value(value, declared_type(self.variables, variable), variable,
                               convert=self.convert)  # fmt: skip
        try:
            self.variables.set(variable, checked)
        except DtsxError as exc:
            raise assign_error(variable, str(exc).rstrip(".")) from exc

    def _store_single_row(self) -> None:
        table = self.found.tables[0] if self.found.tables else None
        if table is None or not table.rows:
            target = self.results[0].variable if self.results else "(none)"
            raise assign_error(
                target, "Single Row result set is specified, but no rows were returned"
            )
        row = table.rows[0]
        for binding in self.results:
            name = binding.name.strip()
            index = int(name) if name.isdigit() else table.column_index(name)
            if index is None or index >= len(row):
                raise assign_error(
                    binding.variable,
                    f"the result has no column {name!r} (its columns: "
                    f"{', '.join(repr(c) for c in table.column_names)})",
                )
            self._set(binding.variable, row[index])

    def _store_whole(self) -> None:
        variable = self.results[0].variable
        if self.result_type == "XML":
            rows = self.found.tables[0].rows if self.found.tables else []
            self._set(variable, "".join("" if r[0] is None else str(r[0]) for r in rows))
            return
        if self.dataset:
            value = Recordset.dataset(self.found.tables)
        elif self.found.tables:
            first = self.found.tables[0]
            value = Recordset.recordset(first.columns, first.rows)
        else:
            value = Recordset.recordset([], [])
        type_name = declared_type(self.variables, variable)
        if type_name not in (None, "Object"):
            raise assign_error(
                variable, f"a full result set goes only into an Object variable, not a {type_name}"
            )
        self.variables.set(variable, value)

    def _store_outputs(self) -> None:
        last = self.found.last
        if last is None or not last.rows:
            raise assign_error(
                self.outputs[0].variable,
                "the statement returned no values for its Output parameters (dtsx reads them "
                "from the first row of the last result set, e.g. a procedure's INOUT "
                "parameters)",
            )
        row = last.rows[0]
        for i, binding in enumerate(self.outputs):
            if i >= len(row):
                raise assign_error(binding.variable, f"the last result set has no column {i}")
            self._set(binding.variable, row[i])


def declared_type(variables: Any, name: str) -> str | None:
    """The .NET type of a variable at run time, where the runner can tell (the engine's scope
    finds its slot; other VariableAccess implementations say nothing, and then no check)."""
    find = getattr(variables, "find", None)
    slot = find(name) if callable(find) else None
    type_name = getattr(slot, "type_name", None)
    return type_name if isinstance(type_name, str) else None


_ODBC_CALL = re.compile(
    r"^\s*\{\s*(?P<ret>\?\s*=\s*)?call\s+(?P<name>[^\s(}]+)\s*(?:\((?P<args>.*)\))?\s*\}\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def odbc_call_as_exec(text: str) -> str:
    """ODBC's call escape ``{? = call p(?, ?)}`` as T-SQL's ``EXEC ? = p ?, ?`` (spec §2.3), so
    its markers can become variables like any EXEC's; other text is returned as it is."""
    match = _ODBC_CALL.match(text)
    if match is None:
        return text
    ret = "? = " if match.group("ret") else ""
    args = (match.group("args") or "").strip()
    return f"EXEC {ret}{match.group('name')}{' ' + args if args else ''}"


def sql_server_outputs(
    text: str, markers: Sequence[Marker], bindings: Sequence[ParameterBinding], family: str
) -> tuple[str, list[ParameterBinding], list[ParameterBinding]]:
    """A SQL Server batch whose Output and ReturnValue markers become local variables, read by a
    final SELECT (spec §4.3: the drivers cannot return output parameters of a procedure that also
    returns rows): ``EXEC p ?, ? OUTPUT`` becomes ``DECLARE @dtsx_p1 int = ?; EXEC p ?,
    @dtsx_p1 OUTPUT; SELECT @dtsx_p1``.

    Returns the text, the bindings in the order of its markers, and the Output/ReturnValue
    bindings in the order of the final SELECT's columns."""
    declared: list[str] = []
    ahead: list[ParameterBinding] = []  # the DECLAREs' markers come first
    rest: list[ParameterBinding] = []
    outputs: list[ParameterBinding] = []
    pieces: list[str] = []
    pos = 0
    for marker, binding in zip(markers, bindings, strict=True):
        if binding.direction is Direction.INPUT:
            rest.append(binding)
            continue
        local = f"@dtsx_p{len(outputs) + 1}"
        sql_type = tsql_type(kind_of(family, binding.data_type), binding.size)
        if binding.direction is Direction.OUTPUT:
            declared.append(f"DECLARE {local} {sql_type} = {text[marker.start : marker.end]};")
            ahead.append(binding)
        else:
            declared.append(f"DECLARE {local} {sql_type};")
        # EXEC needs OUTPUT after an output argument; ODBC's {call p(?)} never writes it.
        tail = " OUTPUT" if binding.direction is Direction.OUTPUT and not marker.output else ""
        pieces += [text[pos : marker.start], local + tail]
        pos = marker.end
        outputs.append(binding)
    pieces.append(text[pos:])
    body = "".join(pieces).rstrip().rstrip(";")
    select = ", ".join(f"@dtsx_p{i}" for i in range(1, len(outputs) + 1))
    rewritten = "\n".join([*declared, body + ";", f"SELECT {select};"])
    return rewritten, ahead + rest, outputs


@dataclass(frozen=True)
class _Call:
    """One execute() call of a batch, worked out once per text (a task in a loop repeats it):
    ``bound`` is None when nothing is bound (the SQL goes as it is, with no arguments)."""

    text: str
    bound: BoundSql | None
    bindings: tuple[ParameterBinding, ...]  # one per placeholder of ``bound``, in order
    kinds: tuple[Kind, ...]  # the Python kind each binding's DataType asks for
    outputs: tuple[ParameterBinding, ...]  # Output/ReturnValue bindings, in result column order


@lru_cache(maxsize=512)
def _calls(
    sql: str, dialect: str, paramstyle: str, family: str, parameters: tuple[ParameterBinding, ...]
) -> tuple[_Call, ...]:
    from dtsx.engine.sqltext import bind_markers, find_markers, statements

    texts = [s.text for s in statements(sql, dialect)] if dialect in _ONE_STATEMENT else [sql]
    if not parameters:
        return tuple(_Call(t, None, (), (), ()) for t in texts)
    style = marker_style(family)
    names = frozenset(b.bare_name for b in parameters) if style == "@" else None
    calls, offset = [], 0
    for text in texts:
        if dialect == "mssql":
            text = odbc_call_as_exec(text)
        markers = find_markers(text, style, names, dialect)
        bindings = [_binding(m, offset, parameters, family) for m in markers]
        if style == "?":
            offset += len(markers)
        rewritten, order = text, bindings
        outputs = [b for b in bindings if b.direction is Direction.OUTPUT]
        if dialect == "mssql" and any(b.direction is not Direction.INPUT for b in bindings):
            rewritten, order, outputs = sql_server_outputs(text, markers, bindings, family)
        bound = bind_markers(rewritten, style, paramstyle, names, dialect)
        if style == "@":  # a rewritten text may repeat or reorder names
            order = [_binding(m, 0, parameters, family) for m in bound.markers]
        kinds = tuple(kind_of(family, b.data_type) for b in order)
        calls.append(_Call(text, bound, tuple(order), kinds, tuple(outputs)))
    return tuple(calls)


def _binding(
    marker: Marker, offset: int, parameters: tuple[ParameterBinding, ...], family: str
) -> ParameterBinding:
    """The binding of a marker: by name for ``@name``; for ``?`` by number (OLE DB from 0, ODBC
    from 1) or, for ADO and names that are no numbers, by the binding list's order (§2.3)."""
    if isinstance(marker.name, str):
        wanted = marker.name.lower()
        found = next((b for b in parameters if b.bare_name == wanted), None)
        if found is None:  # bind_markers only rewrites bound names
            raise TaskFailedError(f"the marker @{marker.name} has no parameter binding.")
        return found
    ordinal = marker.name + offset
    numbered = all(b.name.strip().isdigit() for b in parameters)
    if numbered and family != "ADO":
        wanted_name = ordinal + (1 if family == "ODBC" else 0)
        found = next((b for b in parameters if int(b.name) == wanted_name), None)
    else:
        found = parameters[ordinal] if ordinal < len(parameters) else None
    if found is None:
        first = 1 if family == "ODBC" else 0
        raise TaskFailedError(
            "the Execute SQL task's statement has a parameter marker ? number "
            f"{ordinal + first} (counting from {first}, as {family} does) with no "
            f"parameter binding; add a ParameterBinding named {ordinal + first}."
        )
    return found
