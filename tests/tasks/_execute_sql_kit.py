"""Small format-8 packages for the Execute SQL tests: connection managers, variables, Execute SQL
tasks run one after the other, and an optional Foreach ADO loop; run through the real loader,
planner and executor."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from dtsx.engine.executor import RunOptions, RunResult, run
from dtsx.engine.loader import load_bytes
from dtsx.engine.plan import Plan, build

__all__ = [
    "Param",
    "Sql",
    "Loop",
    "package",
    "plan_of",
    "run_xml",
    "run_canceled",
    "errors_of",
    "result_of",
    "OBJECT",
    "INT32",
    "INT64",
    "STRING",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
    "DATETIME",
]

SQLTASK = "www.microsoft.com/sqlserver/dts/tasks/sqltask"
# VARTYPE codes of DTS:DataType
INT32, INT64, STRING, DOUBLE, DECIMAL, BOOLEAN, DATETIME, OBJECT = 3, 20, 8, 5, 14, 11, 7, 13


@dataclass(frozen=True)
class Param:
    name: str
    variable: str
    data_type: int
    direction: str = "Input"
    size: int = -1


@dataclass(frozen=True)
class Sql:
    """One Execute SQL task."""

    name: str
    sql: str
    connection: str = "DB"
    result: str = "ResultSetType_None"
    params: Sequence[Param] = ()
    results: Sequence[tuple[str, str]] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)
    host: Mapping[str, str] = field(default_factory=dict)  # DTS: attributes of the executable


@dataclass(frozen=True)
class Loop:
    """A Foreach ADO loop over ``variable``, mapping ValueIndex -> variable, around ``body``."""

    name: str
    variable: str
    mappings: Mapping[int, str]
    body: Sequence[Sql]
    enum_type: str = "EnumerateRowsInFirstTable"


def _connection(name: str, creation: str, string: str, retain: bool) -> str:
    extra = ' DTS:Retain="True"' if retain else ""
    return (
        f"<DTS:ConnectionManager DTS:refId={quoteattr(f'Package.ConnectionManagers[{name}]')} "
        f'DTS:CreationName={quoteattr(creation)} DTS:DTSID="{{{uuid.uuid4()}}}" '
        f"DTS:ObjectName={quoteattr(name)}><DTS:ObjectData><DTS:ConnectionManager"
        f"{extra} DTS:ConnectionString={quoteattr(string)} /></DTS:ObjectData>"
        "</DTS:ConnectionManager>"
    )


def _variable(name: str, code: int, value: Any, read_only: bool = False) -> str:
    namespace, _, local = name.rpartition("::")
    text = "" if value is None else escape(str(value))
    flag = ' DTS:ReadOnly="True"' if read_only else ""
    return (
        f"<DTS:Variable DTS:Namespace={quoteattr(namespace or 'User')} "
        f"DTS:ObjectName={quoteattr(local)}{flag}>"
        f'<DTS:VariableValue DTS:DataType="{code}">{text}</DTS:VariableValue></DTS:Variable>'
    )


def _task(task: Sql, parent: str) -> str:
    attrs = {
        "Connection": task.connection,
        "SqlStatementSource": task.sql,
        "ResultType": task.result,
        **task.attrs,
    }
    stored = " ".join(f"SQLTask:{k}={quoteattr(v)}" for k, v in attrs.items())
    children = "".join(
        f"<SQLTask:ParameterBinding SQLTask:ParameterName={quoteattr(p.name)} "
        f"SQLTask:DtsVariableName={quoteattr(p.variable)} "
        f"SQLTask:ParameterDirection={quoteattr(p.direction)} "
        f'SQLTask:DataType="{p.data_type}" SQLTask:ParameterSize="{p.size}" />'
        for p in task.params
    ) + "".join(
        f"<SQLTask:ResultBinding SQLTask:ResultName={quoteattr(n)} "
        f"SQLTask:DtsVariableName={quoteattr(v)} />"
        for n, v in task.results
    )
    host = " ".join(f"DTS:{k}={quoteattr(v)}" for k, v in task.host.items())
    ref = _ref(parent, task.name)
    return (
        f"<DTS:Executable DTS:refId={quoteattr(ref)} "
        'DTS:CreationName="Microsoft.ExecuteSQLTask" DTS:ExecutableType="Microsoft.ExecuteSQLTask" '
        f"DTS:ObjectName={quoteattr(task.name)} {host}><DTS:ObjectData>"
        f'<SQLTask:SqlTaskData xmlns:SQLTask="{SQLTASK}" {stored}>{children}</SQLTask:SqlTaskData>'
        "</DTS:ObjectData></DTS:Executable>"
    )


def _loop(loop: Loop, parent: str) -> str:
    ref = _ref(parent, loop.name)
    mappings = "".join(
        f'<DTS:ForEachVariableMapping DTS:ValueIndex="{i}" DTS:VariableName={quoteattr(v)} '
        f'DTS:ObjectName="m{i}" />'
        for i, v in loop.mappings.items()
    )
    return (
        f'<DTS:Executable DTS:refId={quoteattr(ref)} DTS:CreationName="STOCK:FOREACHLOOP" '
        f'DTS:ExecutableType="STOCK:FOREACHLOOP" DTS:ObjectName={quoteattr(loop.name)}>'
        '<DTS:ForEachEnumerator DTS:CreationName="Microsoft.ForEachADOEnumerator" '
        'DTS:ObjectName="e"><DTS:ObjectData>'
        f"<FEEADO EnumType={quoteattr(loop.enum_type)} VarName={quoteattr(loop.variable)} />"
        "</DTS:ObjectData></DTS:ForEachEnumerator>"
        f"<DTS:Executables>{_chain(loop.body, ref)}</DTS:Executables>"
        f"{_constraints(loop.body, ref)}"
        f"<DTS:ForEachVariableMappings>{mappings}</DTS:ForEachVariableMappings>"
        "</DTS:Executable>"
    )


def _ref(parent: str, name: str) -> str:
    return parent + "\\" + name


def _chain(steps: Sequence[Sql | Loop], parent: str) -> str:
    return "".join(_loop(s, parent) if isinstance(s, Loop) else _task(s, parent) for s in steps)


def _constraints(steps: Sequence[Sql | Loop], parent: str) -> str:
    if len(steps) < 2:
        return ""
    parts = [
        f"<DTS:PrecedenceConstraint DTS:refId={quoteattr(f'{parent}.PrecedenceConstraints[c{i}]')} "
        f"DTS:From={quoteattr(_ref(parent, a.name))} DTS:To={quoteattr(_ref(parent, b.name))} "
        f'DTS:LogicalAnd="True" DTS:ObjectName="c{i}" />'
        for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False))
    ]
    return f"<DTS:PrecedenceConstraints>{''.join(parts)}</DTS:PrecedenceConstraints>"


def package(
    steps: Sequence[Sql | Loop],
    *,
    connections: Mapping[str, tuple[str, str]] | None = None,
    variables: Mapping[str, tuple[Any, ...]] | None = None,
    retain: bool = False,
) -> str:
    """A package running ``steps`` in order; ``connections``: name -> (CreationName, string);
    ``variables``: name -> (VARTYPE code, value[, read-only])."""
    cms = "".join(_connection(n, c, s, retain) for n, (c, s) in (connections or {}).items())
    vs = "".join(_variable(n, *spec) for n, spec in (variables or {}).items())
    return (
        '<?xml version="1.0"?>'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package" '
        'DTS:ObjectName="sqltest"><DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>'
        f"<DTS:ConnectionManagers>{cms}</DTS:ConnectionManagers><DTS:Variables>{vs}</DTS:Variables>"
        f"<DTS:Executables>{_chain(steps, 'Package')}</DTS:Executables>"
        f"{_constraints(steps, 'Package')}</DTS:Executable>"
    )


def plan_of(xml: str) -> Plan:
    return build(load_bytes(xml.encode("utf-8"), file="sqltest.dtsx"))


def run_xml(xml: str, **options: Any) -> RunResult:
    return run(plan_of(xml), RunOptions(**options))


def run_canceled(plan: Plan, after: float = 0.5) -> tuple[RunResult, float]:
    """Run ``plan``, cancel it (as Ctrl-C does) ``after`` seconds in; the result and how long
    the run took to end once canceled."""
    cancel = threading.Event()
    canceled_at: list[float] = []

    def press() -> None:
        canceled_at.append(time.monotonic())
        cancel.set()

    timer = threading.Timer(after, press)
    timer.start()
    try:
        result = run(plan, RunOptions(cancel_event=cancel))
    finally:
        timer.cancel()
    assert canceled_at, "the run ended before it was canceled"
    return result, time.monotonic() - canceled_at[0]


def result_of(result: RunResult, name: str) -> str:
    ref = name if name.startswith("Package") else f"Package\\{name}"
    found = next(r for r in result.executables if r.ref_id == ref)
    value = found.result
    return str(getattr(value, "value", value))


def errors_of(result: RunResult, name: str) -> list[str]:
    ref = name if name.startswith("Package") else f"Package\\{name}"
    return list(next(r for r in result.executables if r.ref_id == ref).errors)
