"""The Execute SQL task: run SQL on a database connection, with bound parameters and results.

Properties come from ``SQLTask:SqlTaskData`` (spec execute-sql.md §1.2: the XML names are not the
API names; v6/v8 write only non-defaults). The statement (typed in, a FILE connection's file or a
variable) is cut into ``GO`` batches by :mod:`dtsx.engine.sqltext`; each batch, translated from
T-SQL when the operator opted in, has its markers (``?`` or ``@name``, by connection type)
rewritten to the driver's paramstyle: values are always bound, never spliced. The task talks to a
:class:`~dtsx.connections.base.DatabaseSession` only, on a raw DB-API cursor (it needs
``nextset`` and ``description``), and walks the results per ResultSetType (§2.5, §4.4):
None, SingleRow, Full (a :class:`~dtsx.engine.recordset.Recordset` in an Object variable) and XML.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dtsx.engine.errors import TaskFailedError
from dtsx.engine.files import decode_marked_or_utf8, open_regular
from dtsx.engine.model import XmlNode
from dtsx.tasks.base import Task, TaskContext, TaskProperties, register_task
from dtsx.tasks.execute_sql_bindings import (
    Direction,
    ParameterBinding,
    ResultBinding,
    ResultType,
    SourceType,
    SqlTaskProperties,
    family,
    marker_style,
)
from dtsx.tasks.execute_sql_run import BatchRunner, SqlFailure

if TYPE_CHECKING:
    from dtsx.connections.base import DatabaseLease, DatabaseSession
    from dtsx.tasks.base import ValidationContext

__all__ = ["ExecuteSqlTask", "SourceType", "ResultType"]

_MAX_STATEMENT_FILE = 64 * 1024 * 1024  # a statement file larger than this is not SQL


@register_task("Microsoft.ExecuteSQLTask")
class ExecuteSqlTask(Task):
    """Runs SQL on an OLE DB, ADO.NET, ODBC or ADO connection manager."""

    Properties = SqlTaskProperties

    props: SqlTaskProperties

    def __init__(self, props: TaskProperties) -> None:
        super().__init__(props)
        self.execution_value: int | None = None
        self._lease: DatabaseLease | None = None
        self._canceled = False  # set by cancel() from another thread; read between statements

    # ---- reading the task's data -------------------------------------------------------------

    @classmethod
    def properties_from_node(cls, node: XmlNode | None) -> dict[str, Any]:
        """The SqlTaskData attributes, plus its ParameterBinding and ResultBinding children (in
        any order: bindings follow their own list order, spec §1.3)."""
        data = super().properties_from_node(node)
        inner = node.children[0] if node is not None and node.children else None
        if inner is None or not inner.children:
            return data
        params, results = [], []
        for child in inner.children:
            kind = child.local_name
            if kind == "ParameterBinding":
                params.append(_parameter(child))
            elif kind == "ResultBinding":
                results.append(ResultBinding(child.get("ResultName") or "", _var(child)))
        data["ParameterBindings"] = tuple(params)
        data["ResultSetBindings"] = tuple(results)
        return data

    def sql_source(self) -> tuple[str, str, str]:
        """(SqlStatementSourceType name, SqlStatementSource as stored, Connection as stored), for
        ``dtsx sql-check``."""
        p = self.props
        return p.source_type.name, p.statement, p.connection

    # ---- validation --------------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        from dtsx.tasks.execute_sql_checks import problems

        return problems(self.props, vctx)

    # ---- running -----------------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        p = self.props
        ref = p.connection.strip()
        if not ref:
            raise TaskFailedError("the Execute SQL task names no connection manager (Connection).")
        session = ctx.database_session(ref)
        text = self._statement_text(ctx)
        # Messages name the manager as the designer shows it, not the DTSID the task stores.
        name = session.name or ref
        runner = BatchRunner(
            session,
            self._statement(text, session),
            p.parameters,
            p.results,
            result_type=p.result_type.name.rstrip("_"),
            connection=name,
            variables=ctx.variables,
            events=ctx.events,
            convert=p.type_conversion_mode == "Allowed",
            cancelled=self._was_canceled,
        )
        with session.lease(ctx.transaction) as lease:
            self._lease = lease
            try:
                if self._canceled:  # canceled while the connection was being made
                    raise TaskFailedError("the Execute SQL task was canceled before it ran.")
                self.execution_value = runner.run(lease, p.timeout)
            except SqlFailure as exc:
                if self._canceled or ctx.cancelled:
                    raise TaskFailedError(
                        f"the Execute SQL task was canceled while running {exc.first_line!r} "
                        f"on connection {name!r} ({session.server})."
                    ) from exc
                raise
            finally:
                self._lease = None
                if p.timeout > 0:
                    lease.set_timeout(0)

    def _was_canceled(self) -> bool:
        return self._canceled

    def cancel(self) -> None:
        """From another thread: stop before the next statement and interrupt the running one."""
        self._canceled = True
        lease = self._lease
        if lease is not None:
            lease.cancel()

    def _statement(self, text: str, session: DatabaseSession) -> str:
        """IsStoredProcedure (ADO, ADO.NET): the statement is a procedure name; call it with one
        marker per input/output binding, in the binding list's order."""
        p = self.props
        if not p.is_stored_procedure or family(session.connection_type) not in ("ADO", "ADO.NET"):
            return text
        style = marker_style(session.connection_type)
        args = []
        for b in p.parameters:
            if b.direction is Direction.RETURN_VALUE:
                continue
            marker = "?" if style == "?" else f"@{b.bare_name}"
            output = b.direction is Direction.OUTPUT and session.dialect == "mssql"
            args.append(f"{marker} OUTPUT" if output else marker)
        name = text.strip()
        if session.dialect == "mssql":
            returns = next((b for b in p.parameters if b.direction is Direction.RETURN_VALUE), None)
            # EXEC ? = p ...: the return code's marker comes first, so with ADO's list-order
            # binding the ReturnValue binding is the list's first, as ADO's Parameters have it.
            if returns is not None:
                name = f"{'?' if style == '?' else '@' + returns.bare_name} = {name}"
            return f"EXEC {name} {', '.join(args)}".rstrip()
        return f"CALL {name}({', '.join(args)})"

    def _statement_text(self, ctx: TaskContext) -> str:
        p = self.props
        source = p.statement
        if p.source_type is SourceType.DirectInput:
            return source
        name = source.strip()
        if p.source_type is SourceType.Variable:
            if not name or name not in ctx.variables:
                raise TaskFailedError(
                    f"the Execute SQL task's SqlStatementSource names the variable {name!r}, "
                    "which is not in scope."
                )
            value = ctx.variables.get(name)
            return "" if value is None else str(value)
        return _read_statement_file(ctx.file_path(name), p.code_page)


def _var(node: XmlNode) -> str:
    return (node.get("DtsVariableName") or "").strip()


def _parameter(node: XmlNode) -> ParameterBinding:
    try:
        direction = Direction.parse(node.get("ParameterDirection") or "Input")
        data_type = int((node.get("DataType") or "-1").strip())
        size = int((node.get("ParameterSize") or "-1").strip())
    except ValueError as exc:
        name = node.get("ParameterName") or "?"
        raise TaskFailedError(f"the parameter binding {name!r} is unreadable: {exc}.") from exc
    return ParameterBinding(node.get("ParameterName") or "", _var(node), direction, data_type, size)


def _read_statement_file(path: str, code_page: int) -> str:
    """The statement file's text: by its BOM, else UTF-8, else the task's CodePage."""
    try:
        fd = open_regular(path)
        with os.fdopen(fd, "rb") as f:
            data = f.read(_MAX_STATEMENT_FILE + 1)
    except (OSError, ValueError) as exc:
        raise TaskFailedError(
            f"the Execute SQL task cannot read its statement file {path}: {exc}; check the FILE "
            "connection manager's path (and --path-map)."
        ) from exc
    if len(data) > _MAX_STATEMENT_FILE:
        raise TaskFailedError(f"the statement file {path} is larger than 64 MiB.")
    text = decode_marked_or_utf8(data)
    if text is not None:
        return text
    try:
        return data.decode(f"cp{code_page}")
    except (LookupError, UnicodeDecodeError) as exc:
        raise TaskFailedError(
            f"the statement file {path} is neither UTF-8 nor readable in the task's CodePage "
            f"{code_page}: {exc}."
        ) from exc
