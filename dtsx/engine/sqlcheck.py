"""``dtsx sql-check``: which Execute SQL statements of a package translate from T-SQL to a target.

A migration report a team can act on: per task and GO batch, the file and line, the task's
refId and connection, and for every batch that does not translate exactly, each construct in
the way (``engine.tsql.check``). Nothing connects and nothing runs.

The statement is read through the task class the registry returns (its ``sql_source()``), so
any task plugin that offers that method is checked as Execute SQL is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

from dtsx.engine.errors import DtsxError
from dtsx.engine.model import ConnectionManagerSpec, Executable, Package, Variable
from dtsx.engine.references import ConnectionReferences
from dtsx.engine.sqltext import split_batches
from dtsx.engine.tsql import Finding, check

__all__ = ["BatchCheck", "SqlCheckReport", "TaskCheck", "check_package"]


@dataclass(frozen=True, slots=True)
class BatchCheck:
    """One GO batch of a task's statement and what keeps it from translating."""

    line: int  # 1-based line of the statement text where the batch starts
    text: str
    findings: tuple[Finding, ...]

    @property
    def first_line(self) -> str:
        """The batch's first line, cut to fit a report line."""
        line = self.text.strip().splitlines()[0].strip() if self.text.strip() else ""
        return line if len(line) <= 70 else line[:69] + "…"

    @property
    def translates(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class TaskCheck:
    """One task with a SQL statement: where it is, what it runs on, and its batches."""

    ref_id: str
    name: str
    where: str  # file:line of the task's data
    connection: str  # the connection manager's name (or the reference, when it is not found)
    connection_type: str  # its CreationName family: OLEDB, ADO.NET, ODBC, ADO, "" if unknown
    source_type: str  # DirectInput, FileConnection or Variable
    batches: tuple[BatchCheck, ...] = ()
    note: str = ""  # why the statement was not checked, or what to keep in mind

    @property
    def checked(self) -> bool:
        return bool(self.batches)

    @property
    def translates(self) -> bool:
        return self.checked and all(batch.translates for batch in self.batches)


@dataclass
class SqlCheckReport:
    """Every task of one package that carries SQL, checked against one target."""

    path: str
    target: str
    tasks: list[TaskCheck] = field(default_factory=list)

    @property
    def batches(self) -> list[BatchCheck]:
        return [batch for task in self.tasks for batch in task.batches]

    @property
    def translates(self) -> bool:
        return all(task.translates for task in self.tasks)

    def lines(self) -> list[str]:
        """The report as text, one task per block, then the counts."""
        out: list[str] = []
        for task in self.tasks:
            out.append(_task_heading(task))
            if task.note:
                out.append(f"    note: {task.note}")
            for batch in task.batches:
                out.extend(_batch_lines(task, batch, len(task.batches)))
        out.append(self.summary())
        return out

    def to_json(self) -> dict[str, object]:
        """The report as plain data (``dtsx sql-check --json``)."""
        batches = self.batches
        return {
            "path": self.path,
            "target": self.target,
            "translates": self.translates,
            "batches": len(batches),
            "batches_translating": sum(batch.translates for batch in batches),
            "tasks": [_task_json(task) for task in self.tasks],
        }

    def summary(self) -> str:
        batches = self.batches
        good = sum(batch.translates for batch in batches)
        tasks_good = sum(task.translates for task in self.tasks)
        unchecked = sum(not task.checked for task in self.tasks)
        share = f" ({100 * good // len(batches)}%)" if batches else ""
        tail = f"; {unchecked} not checked (see the notes)" if unchecked else ""
        return (
            f"{self.path}: {good} of {len(batches)} batches translate to {self.target}{share}; "
            f"{tasks_good} of {len(self.tasks)} tasks{tail}"
        )


_TASK_FIELDS = (
    *("ref_id", "name", "where", "connection", "connection_type", "source_type"),
    *("checked", "translates", "note"),
)


def _task_json(task: TaskCheck) -> dict[str, object]:
    return {
        **{name: getattr(task, name) for name in _TASK_FIELDS},
        "batches": [
            {
                "line": batch.line,
                "translates": batch.translates,
                "findings": [
                    {
                        "line": batch.line + f.line - 1,
                        "construct": f.construct,
                        "detail": f.detail,
                    }
                    for f in batch.findings
                ],
            }
            for batch in task.batches
        ],
    }


def _task_heading(task: TaskCheck) -> str:
    kind = f" {task.connection_type}" if task.connection_type else ""
    verdict = "translates" if task.translates else "needs work" if task.checked else "not checked"
    return (
        f"{task.where}: task '{task.name}' [{task.ref_id}] on{kind} connection "
        f"'{task.connection}' ({task.source_type}): {verdict}"
    )


def _batch_lines(task: TaskCheck, batch: BatchCheck, count: int) -> list[str]:
    label = f"batch at statement line {batch.line}" if count > 1 else f"line {batch.line}"
    if batch.translates:
        return [f"    ok  {label}: {batch.first_line}"]
    lines = [f"    no  {label}: {batch.first_line}"]
    for finding in batch.findings:
        line = batch.line + finding.line - 1
        lines.append(f"        statement line {line}: {finding.construct}: {finding.detail}")
    return lines


def check_package(package: Package, target: str) -> SqlCheckReport:
    """Check every task of ``package`` that offers ``sql_source()`` against ``target``."""
    report = SqlCheckReport(package.path, target)
    references = ConnectionReferences(package.all_connections())
    variables = _variables(package)
    for exe in package.walk():
        found = _task_source(exe)
        if found is None:
            continue
        if isinstance(found, str):
            report.tasks.append(_unchecked(exe, found))
            continue
        source_type, source, connection_ref = found
        spec = references.find(connection_ref) if connection_ref else None
        text, note = _statement(exe, source_type, source, references, variables)
        report.tasks.append(_task_check(exe, spec, connection_ref, source_type, text, note, target))
    return report


class _SqlTask(Protocol):
    def sql_source(self) -> tuple[str, str, str]: ...


def _task_source(exe: Executable) -> tuple[str, str, str] | str | None:
    """(source type, source, connection) of a task that carries SQL; a sentence when its
    properties cannot be read; None for every other executable."""
    from pydantic import ValidationError

    from dtsx.tasks.base import TASKS

    if not exe.type_key or exe.object_data is None:
        return None
    try:
        cls = TASKS.get(exe.type_key)
    except DtsxError:
        return None
    if not callable(getattr(cls, "sql_source", None)):
        return None
    try:
        task = cast("_SqlTask", cls.from_node(exe.object_data))
        source_type, source, connection = task.sql_source()
    except (ValidationError, DtsxError) as exc:
        first = str(exc).splitlines()[0]
        return f"its properties cannot be read ({first})"
    return str(source_type), str(source or ""), str(connection or "")


def _unchecked(exe: Executable, note: str) -> TaskCheck:
    return TaskCheck(exe.ref_id, exe.name, _where(exe), "?", "", "?", note=note)


def _where(exe: Executable) -> str:
    data = exe.object_data
    node = data.children[0] if data is not None and data.children else data
    file = exe.location.file if exe.location is not None else "<package>"
    line = node.line if node is not None and node.line is not None else None
    if line is None and exe.location is not None:
        line = exe.location.line
    return file if line is None else f"{file}:{line}"


def _statement(
    exe: Executable,
    source_type: str,
    source: str,
    references: ConnectionReferences,
    variables: dict[str, Variable],
) -> tuple[str | None, str]:
    """(the SQL text to check or None, a note)."""
    expression = any(p.name.lower() == "sqlstatementsource" for p in exe.property_expressions)
    note = "an expression sets the statement at run time; the stored text was checked" * expression
    kind = source_type.lower()
    if kind == "variable":
        return _variable_text(source, variables, note)
    if kind == "fileconnection":
        spec = references.find(source)
        if spec is None:
            return None, f"the statement file's connection {source!r} is not in the package"
        return _file_text(spec)
    return source, note


def _variables(package: Package) -> dict[str, Variable]:
    found: dict[str, Variable] = {}
    for exe in package.walk():
        for variable in exe.variables:
            found.setdefault(variable.qualified_name.lower(), variable)
    return found


def _variable_text(name: str, variables: dict[str, Variable], note: str) -> tuple[str | None, str]:
    key = name.strip().lower()
    variable = variables.get(key) or variables.get(f"user::{key}")
    if variable is None:
        return None, f"the statement is in variable {name!r}, which the package does not declare"
    if variable.evaluate_as_expression:
        return None, f"variable {name!r} is an expression; its value is known only at run time"
    return variable.value or "", note or f"the design-time value of variable {name!r} was checked"


def _file_text(spec: ConnectionManagerSpec) -> tuple[str | None, str]:
    from dtsx.engine.files import decode_marked_or_utf8, open_regular

    path = (spec.connection_string or "").strip()
    try:
        fd = open_regular(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return None, f"the statement file {path!r} of connection '{spec.name}' ({reason})"
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    text = decode_marked_or_utf8(data)
    if text is not None:
        return text, f"read from {path}"
    return data.decode("cp1252", errors="replace"), f"read from {path} as cp1252"


def _task_check(
    exe: Executable,
    spec: ConnectionManagerSpec | None,
    connection_ref: str,
    source_type: str,
    text: str | None,
    note: str,
    target: str,
) -> TaskCheck:
    name = spec.name if spec is not None else connection_ref or "?"
    family = spec.type_key.split(":", 1)[0] if spec is not None else ""
    if spec is None and connection_ref:
        note = "; ".join(
            filter(None, [note, f"connection {connection_ref!r} is not in the package"])
        )
    base = TaskCheck(exe.ref_id, exe.name, _where(exe), name, family, source_type, note=note)
    if text is None:
        return base
    try:
        batches = split_batches(text)
    except DtsxError as exc:
        return replace(base, note=f"the statement cannot be split: {exc}")
    if not batches:
        return replace(base, note=note or "the statement is empty")
    checked = tuple(
        BatchCheck(batch.line, batch.text, tuple(check(batch.text, target))) for batch in batches
    )
    return replace(base, batches=checked)
