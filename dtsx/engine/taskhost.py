"""The task host: what SSIS's TaskHost container does around one task execution.

It applies ``--set`` values and property expressions (to the host's own settings, such as
Disable or MaximumErrorCount, and to the task's properties), gives the task a fresh copy of the
planned prototype and its TaskContext, runs it, stores its ExecValueVariable, and decides the
outcome in one ``try``: an ExecutionError (or any DtsxError) is a planned failure; anything
else is a bug in the task, kept whole as an internal error. Either way the run goes on.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from collections.abc import Callable

from dtsx.engine.dispatch import TaskEvents
from dtsx.engine.errors import DtsxError, ExecutionError
from dtsx.engine.expressions import Value
from dtsx.engine.frames import Frame
from dtsx.engine.model import (
    FOR_LOOP_PROPERTIES,
    HOST_PROPERTIES,
    VARTYPE_TO_DOTNET,
    Executable,
    ExecutableKind,
    ssis_flag,
)
from dtsx.engine.plan import PropertyTarget
from dtsx.engine.results import ExecutionResult
from dtsx.engine.runstate import RunState
from dtsx.engine.variables import typed_value
from dtsx.tasks.base import PackageOutcome, Task, TaskContext

__all__ = ["TaskHost", "effective", "is_host_property"]

# Enum members as module constants: ``Enum.MEMBER`` is a class-attribute read through the
# enum's metaclass, ~10x a global's (timeit: 80-150 ns against 7), on every execution's path.
_SUCCESS, _FAILURE = ExecutionResult.SUCCESS, ExecutionResult.FAILURE
_CANCELED = ExecutionResult.CANCELED

# Runs a child package for an Execute Package task at the task's frame.
RunChildPackage = Callable[[str, dict[str, object], dict[str, object], Frame], PackageOutcome]


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, str):
        flag = ssis_flag(raw)
        if flag is None:  # reported by _host_update as a value the property cannot take
            raise ValueError(f"{raw!r} is not a boolean")
        return flag
    return bool(raw)


# How a value given to each settable host field is converted; the names that reach a field are
# the model's (HOST_PROPERTIES, FOR_LOOP_PROPERTIES), shared with the planner's checks.
_HOST_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "disabled": _to_bool,
    "disable_event_handlers": _to_bool,
    "fail_package_on_failure": _to_bool,
    "fail_parent_on_failure": _to_bool,
    "max_error_count": int,
    "force_execution_result": int,
    "description": str,
    "init_expression": str,
    "eval_expression": str,
    "assign_expression": str,
}
# Container/task-host properties that --set may change, by lower-case runtime name → model field
# (its converter is _HOST_CONVERTERS[field]).
_HOST_FIELDS: dict[str, str] = {
    name.lower(): field_name for name, field_name in (HOST_PROPERTIES | FOR_LOOP_PROPERTIES).items()
}


def is_host_property(name: str) -> bool:
    """Whether ``name`` is a setting of the host (container or task host), not of the task."""
    return name.lower() in _HOST_FIELDS


def effective(state: RunState, exe: Executable, frame: Frame) -> Executable:
    """The executable with ``--set`` values and property expressions applied to its host
    settings (a copy; the planned executable is shared by every execution). Which property an
    expression sets is the planner's decision (``Plan.assignments``)."""
    updates: dict[str, Any] = {}
    for name, raw in state.host_sets.get(exe.ref_id, {}).items():
        field_name = _HOST_FIELDS.get(name.lower())
        if field_name is not None:
            _convert(exe, name, field_name, raw, updates)
        elif exe.kind is not ExecutableKind.TASK:  # a task's own properties go to the task
            raise ExecutionError(f"{exe.ref_id!r} has no settable property {name!r}")
    for assignment in state.plan.assignments.get(exe.ref_id, ()):
        if assignment.target is PropertyTarget.HOST and assignment.field is not None:
            value = state.evaluate(frame.scope, assignment.expression)
            _convert(exe, assignment.name, assignment.field, value.value, updates)
    return exe.model_copy(update=updates) if updates else exe


def _convert(
    exe: Executable, name: str, field_name: str, raw: Any, updates: dict[str, Any]
) -> None:
    try:
        updates[field_name] = _HOST_CONVERTERS[field_name](raw)
    except (TypeError, ValueError) as exc:
        raise ExecutionError(
            f"property {name} of {exe.ref_id!r} cannot take the value {raw!r}"
        ) from exc


class TaskHost:
    """Runs tasks for one run (see the module docstring)."""

    def __init__(
        self,
        state: RunState,
        *,
        local_path: Callable[[str], str],
        run_child_package: RunChildPackage,
    ) -> None:
        self.state = state
        self._local_path = local_path
        self._run_child_package = run_child_package
        self._package_path = state.package.path  # read once: a pydantic field, every task read it
        # Frames of running tasks, for cancellation. Plain dict operations are atomic under the
        # GIL, so the hot path takes no lock for this bookkeeping.
        self.running: dict[int, Frame] = {}

    def execute(self, frame: Frame) -> ExecutionResult:
        """Prepare and run one task; every exception becomes a result here. A task that starts a
        transaction (Required, none in force) commits it when it succeeds, else rolls it back."""
        if frame.starts_transaction():
            return self._transacted(frame)
        return self._execute(frame)

    def _transacted(self, frame: Frame) -> ExecutionResult:
        state = self.state
        frame.start_transaction(
            lambda message: state.dispatcher.raise_event(frame, "OnWarning", message)
        )
        result = _FAILURE
        try:
            result = self._execute(frame)
        finally:  # also when the run is interrupted: never leave the transaction open
            problem = frame.end_transaction(commit=result == _SUCCESS)
        if problem is not None:
            state.task_error(frame, problem)
            if result == _SUCCESS:
                result = _FAILURE
        return result

    def _execute(self, frame: Frame) -> ExecutionResult:
        state = self.state
        raised = True
        stored = True
        try:
            task = self._prepare(frame)
            frame.task = task
            ctx = self._context(frame)
            self.running[id(frame)] = frame
            try:
                if state.cancel.is_set():
                    return _CANCELED
                task.execute(ctx)
                raised = False
            finally:
                self.running.pop(id(frame), None)
                # Once, whatever happened (a refusal is one OnError, not one per attempt).
                stored = self._store_execution_value(frame, task)
        except DtsxError as exc:  # ExecutionError and every other planned refusal
            state.task_error(frame, str(exc))
        except Exception as exc:  # a bug in the task: kept whole, and the run goes on
            message = f"the task raised {type(exc).__name__}: {exc}"
            state.internal_error(frame, exc, message, in_record=True)
        except SystemExit as exc:  # a task calling sys.exit() must not end the whole run
            message = f"the task tried to exit the process (SystemExit {exc.code!r})."
            state.internal_error(frame, exc, message, in_record=True)
        if state.cancel.is_set():
            return _CANCELED
        if not stored:
            raised = True
        limit = frame.exe.max_error_count
        # A task that raised failed; one that only reported errors fails at its MaximumErrorCount.
        failed = raised or (limit > 0 and frame.errors >= limit)
        return _FAILURE if failed else _SUCCESS

    def cancel_running(self) -> None:
        """Tell every running task the run was canceled."""
        for frame in list(self.running.values()):
            task = frame.task
            if task is None:
                continue
            try:
                task.cancel()
            except Exception as exc:  # a task's cancel() must not stop the others being told
                self.state.keep_internal(frame.exe.ref_id, exc)

    def _store_execution_value(self, frame: Frame, task: Task) -> bool:
        """ExecValueVariable gets the task's execution value, or ForcedExecutionValue when
        ForceExecutionValue is set. False (after an OnError) if the variable refuses it."""
        exe = frame.exe
        target = exe.properties.get("ExecValueVariable")
        if not target:
            return True
        value: Any = getattr(task, "execution_value", None)
        if exe.force_execution_value:
            type_name = VARTYPE_TO_DOTNET.get(exe.forced_execution_value_type or 3, "Int32")
            value = typed_value(
                type_name, exe.forced_execution_value or "0", what="ForcedExecutionValue"
            )
        if value is None:
            return True
        try:
            frame.scope.set(target, value)
        except DtsxError as exc:
            self.state.task_error(frame, f"ExecValueVariable {target}: {exc}")
            return False
        return True

    def _prepare(self, frame: Frame) -> Task:
        state = self.state
        exe = frame.exe
        ref = exe.ref_id
        proto = state.plan.tasks.get(ref)
        if proto is None:
            raise ExecutionError(
                f"{ref!r} has no runnable task (type {exe.raw_type or exe.type_key!r})."
            )
        sets = state.host_sets.get(ref)
        task = _fresh(proto, bool(exe.property_expressions) or sets is not None)
        for name, raw in (sets or {}).items():
            if not is_host_property(name):
                task.set_property(name, raw)
        for assignment in state.plan.assignments.get(ref, ()):
            if assignment.target is PropertyTarget.TASK:
                value = state.evaluate(frame.scope, assignment.expression)
                task.set_property(assignment.name, value.value)
        return task

    def _context(self, frame: Frame) -> TaskContext:
        exe = frame.exe
        scope = frame.scope
        state = self.state

        def evaluate(text: str, *, assignment: bool = False) -> Value:
            return state.evaluate_in(scope, text, assignment=assignment)

        def run_package(
            path: str,
            *,
            parameters: dict[str, object] | None = None,
            variables: dict[str, object] | None = None,
        ) -> PackageOutcome:
            return self._run_child_package(path, parameters or {}, variables or {}, frame)

        return TaskContext(
            name=exe.name,
            ref_id=exe.ref_id,
            connections=state.connections,
            variables=scope,
            events=TaskEvents(state.dispatcher, frame),
            package_path=self._package_path,
            cancel_event=state.cancel,
            local_path=self._local_path,
            evaluate=evaluate,
            run_package=run_package,
            transaction=frame.transaction,
        )


def _fresh(proto: Task, will_change: bool) -> Task:
    """A new task for one execution. A task class with its own ``copy`` always gets it called.
    Otherwise the new task shares the prototype's properties when nothing will change them,
    and gets its own copy when property expressions or --set will (:func:`_props_copy`)."""
    if type(proto).copy is not Task.copy:
        return proto.copy()
    if will_change:
        return type(proto)(_props_copy(proto.props))
    return type(proto)(proto.props)


# Values a copy may share with the prototype: nothing can change them in place.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, Decimal, datetime, date, frozenset}
)


def _props_copy(props: Any) -> Any:
    """What ``model_copy(deep=True)`` gives, for a fraction of its cost in a loop body: the
    model is copied shallowly (``set_property`` replaces whole field values, so the prototype
    never sees a change), and only values that could be changed in place (lists, dicts,
    nested models...) are deep-copied."""
    if getattr(props, "__pydantic_private__", None):
        return props.model_copy(deep=True)  # private attributes: keep it simple and exact
    copied = props.model_copy()
    values = copied.__dict__
    for name, value in values.items():
        if type(value) not in _IMMUTABLE and not isinstance(value, Enum):
            values[name] = copy.deepcopy(value)
    return copied
