"""The books of one run, shared by the executor's parts: the plan, the variables, the event
dispatcher, the result of every executable and every internal error, and the expression
evaluation they all use.

Only the executor makes a :class:`RunState`; the scheduler, the task host and the containers
read and write it. Writes that several threads may make at once (a record's errors, an event
handler running for several sources, loop iteration counts) take ``lock``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from dtsx.connections.collection import Connections
from dtsx.engine.dispatch import Dispatcher
from dtsx.engine.expressions import Value
from dtsx.engine.expressions import compile as compile_expression
from dtsx.engine.frames import Frame
from dtsx.engine.errors import DtsxError, ExecutionError
from dtsx.engine.model import (
    ConnectionManagerSpec,
    Executable,
    ExecutableKind,
    Package,
    PrecedenceConstraint,
)
from dtsx.engine.plan import Plan
from dtsx.engine.results import ExecutableResult, ExecutionResult, InternalError
from dtsx.engine.variables import Scope, VariableStore, text_of

__all__ = ["RunState"]


class RunState:
    """What one run knows while it runs (see the module docstring)."""

    def __init__(self, plan: Plan, cancel: threading.Event) -> None:
        self.plan = plan
        self.package: Package = plan.package
        self.cancel = cancel
        self.lock = threading.Lock()
        self.records: dict[str, ExecutableResult] = {
            ref: ExecutableResult(ref)
            for ref, exe in plan.executables.items()
            if exe.kind is not ExecutableKind.PACKAGE
        }
        self.internal_errors: list[InternalError] = []
        # Speed: record() tells a handler by its ref, not by its model's kind (a pydantic field
        # read for every execution, ~10x a set lookup).
        self._handler_refs = frozenset(
            ref for ref, exe in plan.executables.items() if exe.kind is ExecutableKind.EVENT_HANDLER
        )
        # Set by the executor once the run is bound (before anything runs).
        self.store: VariableStore
        self.dispatcher: Dispatcher
        self.connections: Connections
        self.host_sets: dict[str, dict[str, str]] = {}

    # -- expressions ------------------------------------------------------------------------
    def compile(self, text: str, assignment: bool) -> Any:
        key = (text, assignment)
        compiled = self.plan.expressions.get(key)
        if compiled is None:
            compiled = compile_expression(text, assignment=assignment)
            self.plan.expressions[key] = compiled
        return compiled

    def evaluate(self, scope: Scope, text: str) -> Value:
        """The value of a (non-assignment) expression in ``scope``."""
        value: Value = self.compile(text, False).evaluate(scope.lookup)
        return value

    def connection_expressions(self, spec: ConnectionManagerSpec, root: Scope) -> dict[str, str]:
        """A connection manager's property expressions, evaluated in the package's scope."""
        return {
            pe.name: text_of(self.evaluate(root, pe.expression)) for pe in spec.property_expressions
        }

    def constraint_expression(self, constraint: PrecedenceConstraint, frame: Frame) -> bool:
        """A precedence constraint's expression in ``frame``; False, after an OnError, when it
        cannot be evaluated or is not a Boolean."""
        try:
            value = self.evaluate(frame.scope, constraint.expression or "")
            if value.type != "DT_BOOL":
                raise ExecutionError(f"the expression returns {value.type}, not a Boolean")
            return bool(value.value)
        except DtsxError as exc:
            self.dispatcher.raise_event(
                frame, "OnError", f"precedence constraint {constraint.ref_id!r}: {exc}"
            )
            return False

    def evaluate_in(self, scope: Scope, text: str, *, assignment: bool = False) -> Value:
        """Evaluate an expression in ``scope``; an assignment also stores into its target.

        An assignment holds its target's write lock from the first read to the write, as SSIS
        locks a task's ReadWriteVariables, so parallel ``@[User::Sum] = @[User::Sum] + 1`` lose
        no update; and the target becomes sensitive when the expression read a sensitive value."""
        return self.evaluate_compiled(scope, self.compile(text, assignment))

    def evaluate_compiled(self, scope: Scope, compiled: Any) -> Value:
        """:meth:`evaluate_in` for an expression already compiled (a For Loop compiles its
        expressions once, not once per iteration)."""
        target = compiled.target
        if target is None:
            value: Value = compiled.evaluate(scope.lookup)
            return value
        slot = scope.find(target)
        if slot is None:  # the evaluation reports the unknown variable, in its own words
            scope.set(target, compiled.evaluate(scope.lookup))
            return scope.value(target)
        return scope.assign(slot, compiled.evaluate)

    # -- results ------------------------------------------------------------------------------
    def record(
        self,
        exe: Executable,
        result: ExecutionResult,
        started: datetime,
        duration: float,
        errors: list[str] | None = None,
        iterations: int = 1,
    ) -> None:
        ref = exe.ref_id
        record = self.records.get(ref)
        if record is None:
            return
        if ref in self._handler_refs:
            with self.lock:  # one handler may run for several sources at once
                record.update(result, started, duration, errors, iterations)
        else:  # an executable runs at most once at a time: only its own thread writes here
            record.update(result, started, duration, errors, iterations)

    def add_iterations(self, exe: Executable, iterations: int) -> None:
        record = self.records.get(exe.ref_id)
        if record is not None:
            with self.lock:
                record.iterations += iterations

    def task_error(self, frame: Frame, message: str) -> None:
        """A task's planned failure: one error in its record and one OnError."""
        message = self.store.mask(message)
        with self.lock:
            record = self.records.get(frame.exe.ref_id)
            if record is not None:
                record.errors.append(message)
        self.dispatcher.raise_event(frame, "OnError", message)

    def keep_internal(self, ref_id: str, exc: BaseException) -> None:
        """Keep an exception nobody planned that needs no event (a task's cancel() failing while
        the run is canceled anyway): only ``--debug`` and RunResult.internal_errors show it."""
        internal = InternalError.of(ref_id, exc, self.store.mask)
        with self.lock:
            self.internal_errors.append(internal)

    def internal_error(
        self,
        frame: Frame,
        exc: BaseException,
        message: str,
        *,
        ref_id: str | None = None,
        in_record: bool = False,
    ) -> None:
        """An exception nobody planned, at ``frame``: kept whole on the run, on the record of
        ``ref_id`` (default: the frame's executable) and on the OnError raised with
        ``message``; ``in_record`` also lists the message among the record's errors."""
        ref = ref_id or frame.exe.ref_id
        internal = InternalError.of(ref, exc, self.store.mask)
        message = self.store.mask(message)
        with self.lock:
            self.internal_errors.append(internal)
            record = self.records.get(ref)
            if record is not None:
                if record.internal is None:
                    record.internal = internal
                if in_record:
                    record.errors.append(message)
        self.dispatcher.raise_event(frame, "OnError", message, internal=internal)
