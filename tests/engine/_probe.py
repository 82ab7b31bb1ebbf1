"""A probe task for executor tests, and builders for packages made in Python.

The probe records into a shared, thread-safe ledger what it saw (concurrency peak, names that
ran); its ``Mode`` property makes it sleep, wait for cancellation, crash with a Python bug,
run a child package, or report an error without raising.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pydantic import AliasChoices, Field

from dtsx.engine.errors import TaskFailedError
from dtsx.engine.model import (
    ConnectionManagerSpec,
    Executable,
    ExecutableKind,
    Package,
    Parameter,
    PrecedenceConstraint,
    PropertyExpression,
    Variable,
    XmlNode,
)
from dtsx.engine.executor import RunOptions, RunResult, run
from dtsx.engine.plan import Plan, build
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties

__all__ = [
    "Ledger",
    "LEDGER",
    "ProbeTask",
    "probe",
    "container",
    "package",
    "edge",
    "var",
    "run_bounded",
]

PROBE = "Tests.ExecutorProbe"


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.running = 0
        self.peak = 0
        self.ran: list[str] = []
        self.canceled: list[str] = []
        self.values: dict[str, Any] = {}


LEDGER = Ledger()


class ProbeTask(Task):
    class Properties(TaskProperties):
        mode: str = Field("ok", validation_alias=AliasChoices("Mode", "mode"))
        seconds: float = Field(0.0, validation_alias=AliasChoices("Seconds", "seconds"))
        target: str = Field("", validation_alias=AliasChoices("Target", "target"))

    def __init__(self, props: TaskProperties) -> None:
        super().__init__(props)
        self._cancel = threading.Event()

    def execute(self, ctx: TaskContext) -> None:
        with LEDGER.lock:
            LEDGER.running += 1
            LEDGER.peak = max(LEDGER.peak, LEDGER.running)
            LEDGER.ran.append(ctx.name)
        try:
            self._act(ctx)
        finally:
            with LEDGER.lock:
                LEDGER.running -= 1

    def _act(self, ctx: TaskContext) -> None:
        mode = self.props.mode
        self.execution_value = len(ctx.name)  # what the executor writes to ExecValueVariable
        if self.props.seconds:
            time.sleep(self.props.seconds)
        if mode == "exit":
            raise SystemExit(2)
        if mode == "bug":
            raise KeyError("a Python bug inside the task")
        if mode == "fail":
            raise TaskFailedError("the probe was told to fail.")
        if mode == "report-error":
            ctx.events.error("reported, not raised")
        if mode == "ignore-cancel":
            time.sleep(30)
        if mode == "wait-cancel":
            if not self._cancel.wait(30):
                raise TaskFailedError("never canceled")
            with LEDGER.lock:
                LEDGER.canceled.append(ctx.name)
        if mode == "child":
            assert ctx.run_package is not None
            outcome = ctx.run_package(
                self.props.target, parameters={}, variables={"User::FromParent": 7}
            )
            with LEDGER.lock:
                LEDGER.values[ctx.name] = outcome.result
        if mode == "acquire":
            with LEDGER.lock:
                LEDGER.values[ctx.name] = ctx.connections.acquire(self.props.target)
        if mode == "rows":
            ctx.variables.set(self.props.target, [("a", 1), ["b", 20], {"name": "c", "n": 300}])
        if mode == "write":
            ctx.variables.set(self.props.target, 3)
        if mode == "read":
            with LEDGER.lock:
                LEDGER.values[ctx.name] = ctx.variables.get(self.props.target)

    def cancel(self) -> None:
        self._cancel.set()


if PROBE not in TASKS:
    TASKS.add(PROBE, ProbeTask, "tests.engine._probe")


def probe(
    name: str,
    parent: str = "Package",
    mode: str = "ok",
    seconds: float = 0.0,
    target: str = "",
    **fields: Any,
) -> Executable:
    node = XmlNode(tag="Probe", attrs={"Mode": mode, "Seconds": str(seconds), "Target": target})
    return Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"{parent}\\{name}",
        name=name,
        raw_type=PROBE,
        type_key=PROBE,
        dtsid=f"{{{name}}}",
        object_data=XmlNode(tag="ObjectData", children=[node]),
        **fields,
    )


def container(
    name: str,
    kind: ExecutableKind,
    parent: str,
    children: list[Executable],
    constraints: list[PrecedenceConstraint] | None = None,
    **fields: Any,
) -> Executable:
    raw = {
        ExecutableKind.SEQUENCE: "STOCK:SEQUENCE",
        ExecutableKind.FOR_LOOP: "STOCK:FORLOOP",
        ExecutableKind.FOREACH_LOOP: "STOCK:FOREACHLOOP",
        ExecutableKind.EVENT_HANDLER: "",
    }[kind]
    ref = (
        f"{parent}\\{name}"
        if kind is not ExecutableKind.EVENT_HANDLER
        else f"{parent}.EventHandlers[{name}]"
    )
    return Executable(
        kind=kind,
        ref_id=ref,
        name=name,
        raw_type=raw,
        type_key=raw,
        executables=children,
        precedence_constraints=constraints or [],
        event=name if raw == "" else None,
        **fields,
    )


def edge(parent: str, a: str, b: str, value: int = 0) -> PrecedenceConstraint:
    return PrecedenceConstraint(
        ref_id=f"{parent}.PrecedenceConstraints[{a}-{b}]",
        from_ref=f"{parent}\\{a}",
        to_ref=f"{parent}\\{b}",
        value=value,
    )


def var(
    name: str, type_code: int = 3, value: str = "0", scope: str = "Package", **fields: Any
) -> Variable:
    return Variable(
        ref_id=f"{scope}.Variables[User::{name}]",
        name=name,
        data_type=type_code,
        value=value,
        scope=scope,
        **fields,
    )


def package(
    children: list[Executable], constraints: list[PrecedenceConstraint] | None = None, **fields: Any
) -> Package:
    return Package(
        ref_id="Package",
        name="probe",
        raw_type="Microsoft.Package",
        type_key="Microsoft.Package",
        executables=children,
        precedence_constraints=constraints or [],
        **fields,
    )


__all__ += ["ConnectionManagerSpec", "Parameter", "PropertyExpression"]


def run_bounded(target: Package | Plan, timeout: float = 30.0, **options: Any) -> RunResult:
    """Run a package (or a built plan) in a thread; a deadlock shows as a failed test, not a hung suite."""
    built = target if isinstance(target, Plan) else build(target)
    box: dict[str, Any] = {}
    cancel = options.setdefault("cancel_event", threading.Event())
    thread = threading.Thread(target=lambda: box.setdefault("r", run(built, RunOptions(**options))))
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        cancel.set()
        thread.join(10)
        pytest.fail("the run did not finish: deadlock")
    return box["r"]
