"""Runs a plan: the top of a run, one executable's execution, event handlers' runs, and child
packages. The other jobs live in their own modules, each with one job:

- :mod:`dtsx.engine.bind` — options, overrides and configurations → the run's initial state;
- :mod:`dtsx.engine.scheduler` — the walk of one container's graph (constraints, who runs what);
- :mod:`dtsx.engine.workers` — the elastic thread pool and the MaxConcurrentExecutables slots;
- :mod:`dtsx.engine.dispatch` — events: raising, counting errors, handlers, forwarding;
- :mod:`dtsx.engine.taskhost` — one task execution (properties, context, outcome);
- :mod:`dtsx.engine.containers` — Sequences, For Loops and Foreach Loops;
- :mod:`dtsx.engine.frames`, :mod:`dtsx.engine.scopes` — one execution, the variable scopes;
- :mod:`dtsx.engine.runstate` — the run's books (records, internal errors, expressions);
- :mod:`dtsx.engine.results` — ExecutionResult, ExecutableResult, RunResult.

Shape of a run. Every executable execution gets a :class:`Frame` (its scope, its error count,
its parent frame). Tasks need one of ``MaxConcurrentExecutables`` slots while they execute;
containers never hold a slot while they wait on their children, and a task gives its slot back
while an event handler or a child package runs on its behalf, so nested containers, handlers
and Execute Package can never deadlock on the limit. An exception nobody planned, in a task or
in the executor, ends that execution as a Failure with an OnError that keeps the exception and
its traceback (:class:`InternalError`); the run goes on and the books stay straight.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from collections.abc import Callable

from dtsx.connections.collection import Connections
from dtsx.engine.bind import (
    Binding,
    RunOptions,
    bind,
    concurrency_limit,
    effective_limit,
    load_child_plan,
)
from dtsx.engine.containers import Containers, container_result
from dtsx.engine.dispatch import Dispatcher, Forward
from dtsx.engine.errors import DtsxError, PackageValidationError, Problem
from dtsx.engine.events import EventLog, RunEvent
from dtsx.engine.frames import Frame, unlink
from dtsx.engine.model import Executable, ExecutableKind
from dtsx.engine.overrides import PropertySet, parse_set
from dtsx.engine.plan import Plan
from dtsx.engine.results import (
    EXIT_CODES,
    FORCED_RESULTS,
    ExecutableResult,
    ExecutionResult,
    InternalError,
    RunResult,
    json_value,
)
from dtsx.engine.runstate import RunState
from dtsx.engine.scheduler import Scheduler
from dtsx.engine.scopes import Scopes, visible_names
from dtsx.engine.taskhost import TaskHost, effective
from dtsx.engine.transactions import NOT_SUPPORTED, Transaction
from dtsx.engine.variables import MASK, Scope, Secrets, Slot, VariableStore
from dtsx.engine.workers import POLL_S, Slots, TaskSlots, Workers

__all__ = [
    "run",
    "RunOptions",
    "RunResult",
    "ExecutableResult",
    "ExecutionResult",
    "InternalError",
    "PropertySet",
    "parse_set",
    "EXIT_CODES",
    "Slots",
    "json_value",
]

# How long a canceled run waits for the tasks' cancel() calls to return.
_CANCEL_GRACE_S = 5.0
_MAX_PACKAGE_DEPTH = 16
_SUCCESS, _FAILURE = ExecutionResult.SUCCESS, ExecutionResult.FAILURE
_CANCELED = ExecutionResult.CANCELED
# ``ExecutableKind.TASK`` as a module constant, as the results above: an enum class-attribute
# read is ~10x a global's (timeit: 80-150 ns against 7), and every execution reads it.
_TASK = ExecutableKind.TASK


def run(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Run ``plan``. Never raises for a task failure; raises DtsxError only for setup problems
    (bad overrides, a required parameter without a value) before anything runs."""
    return _Run(plan, options or RunOptions()).execute()


@dataclass
class _Parent:
    """What a parent package's run hands its child (Execute Package): never a user option."""

    depth: int
    scope: Scope  # the Execute Package task's scope: the child reads and writes through it
    forward: Forward  # where the child's events continue
    forward_names: frozenset[str]
    slots: Slots  # one limit across the whole run
    # Known sensitive values, shared (not copied): what the child is given from a secret stays
    # masked in the child's messages, and back.
    secrets: Secrets
    # The transaction in force at the Execute Package task: an in-process child joins it unless
    # the child package is NotSupported (SSIS).
    transaction: Transaction | None = None


class _Run:
    def __init__(self, plan: Plan, options: RunOptions, parent: _Parent | None = None) -> None:
        self.options = options
        self.parent = parent
        self.package = plan.package
        self.state = state = RunState(plan, options.cancel_event or threading.Event())
        self.store = state.store = VariableStore(
            state.compile,
            on_change=self._variable_changed,
            lock_timeout=options.variable_lock_timeout_s,
        )
        if parent is not None:
            self.store.secrets = parent.secrets
        self.log = EventLog(options.sinks, mask=self.store.mask, on_broken=self._log_broken)
        self.dispatcher = state.dispatcher = Dispatcher(
            plan.executables,
            self.store,
            self.log,
            state.cancel,
            slots_for=self._slots_for,
            forward=parent.forward if parent is not None else None,
            forward_names=parent.forward_names if parent is not None else frozenset(),
        )
        self.dispatcher.execute_handler = self._execute_handler
        self.warnings: list[str] = []
        self.limit = concurrency_limit(self.package, options.max_concurrent)
        self.started = datetime.now()
        self.scopes = Scopes(self.store, self.package, self.started, str(uuid.uuid4()).upper())
        self.local_path = options.path_map or _identity
        self.package_failed = False
        self.tasks = TaskHost(
            state, local_path=self.local_path, run_child_package=self.run_child_package
        )

    def _slots_for(self, exe: Executable) -> list[Slot]:
        return self.scopes.slots_for(exe)

    def _variable_changed(self, scope: Scope, slot: Slot) -> None:
        frame = scope.owner if isinstance(scope.owner, Frame) else None
        if frame is not None:
            self.dispatcher.raise_event(
                frame,
                "OnVariableValueChanged",
                f"variable {slot.qualified} changed",
                extra={"variable": slot.qualified},
            )

    # -- the run ----------------------------------------------------------------------------
    def execute(self) -> RunResult:
        self._check_depth()
        binding = bind(
            self.state.plan,
            self.options,
            self.store,
            self.scopes,
            self.parent.scope if self.parent is not None else None,
        )
        root = binding.root
        clock = time.perf_counter()
        pool = self._start(binding)
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch_cancel, args=(done,), name="dtsx-cancel", daemon=True
        )
        watcher.start()
        result = _FAILURE
        try:
            self._emit_warnings()
            result = self._run_package(root)
        finally:
            done.set()
            pool.shutdown()
            self.state.connections.close()
        if self.state.cancel.is_set():  # what the tasks' cancel() raised belongs in the result
            self._await_watcher(watcher)
        return self._result(result, root, time.perf_counter() - clock)

    def _await_watcher(self, watcher: threading.Thread) -> None:
        """Wait, bounded, for the cancel watcher to finish telling the tasks: a task can end
        (its cancel() stopped its wait) before that cancel() has returned or raised."""
        watcher.join(_CANCEL_GRACE_S)
        if watcher.is_alive():
            self.warnings.append(
                f"a task's cancel() had not returned {_CANCEL_GRACE_S:g} s after the run ended; "
                "the run did not wait for it."
            )

    def _check_depth(self) -> None:
        depth = self.parent.depth if self.parent is not None else 0
        if depth > _MAX_PACKAGE_DEPTH:
            raise PackageValidationError(
                [
                    Problem(
                        "package-depth",
                        f"packages call each other more than {_MAX_PACKAGE_DEPTH} levels deep",
                        self.package.path or None,
                    )
                ]
            )

    def _start(self, binding: Binding) -> Workers:
        """Take the bound state; make the slots, the connections, the scheduler and the pool."""
        state = self.state
        self.warnings.extend(binding.warnings)
        if binding.max_concurrent is not None:  # in range: Overrides refuses any other value
            self.limit = effective_limit(binding.max_concurrent)
        slots = self.parent.slots if self.parent is not None else Slots(self.limit)
        self.slots = TaskSlots(slots, state.cancel)
        state.host_sets = binding.host_sets
        root = binding.root
        state.connections = Connections(
            binding.specs,
            overrides=binding.connection_strings,
            expressions=lambda spec: state.connection_expressions(spec, root),
            local_path=self.local_path,
            redirect=self.options.connection_redirect,
        )
        # Elastic: slots bound the running tasks; threads waiting on children or handlers must
        # never starve the work they wait for. Idle threads are reused.
        pool = Workers()
        self.scheduler = Scheduler(
            state.plan.flows,
            state.plan.executables,
            state.cancel,
            self.slots,
            pool,
            self._run_child,
            state.constraint_expression,
        )
        self.containers = Containers(state, self.scheduler, self.local_path)
        return pool

    def _emit_warnings(self) -> None:
        for problem in self.state.plan.warnings:
            ref = problem.ref_id or "Package"
            self.dispatcher.warn_package(ref.rsplit("\\", 1)[-1], ref, problem.message)
        for message in self.warnings:  # configurations that could not be applied
            self.dispatcher.warn_package(self.package.name, "Package", message)

    def _run_package(self, root: Scope) -> ExecutionResult:
        frame = Frame(self.package, None, root)
        if self.parent is not None and self.package.transaction_option != NOT_SUPPORTED:
            frame.transaction = self.parent.transaction
        root.owner = frame
        raise_event = self.dispatcher.raise_event
        # dtsx validates while planning; the package's validation events mark that it passed.
        raise_event(frame, "OnPreValidate")
        raise_event(frame, "OnPostValidate")
        raise_event(frame, "OnPreExecute")
        try:  # a Required package runs in a transaction of its own (the containers' job)
            self.containers.execute(frame)
        except DtsxError as exc:  # e.g. its transaction's commit failed: the package's OnError
            self.state.task_error(frame, str(exc))
        except Exception as exc:  # a bug in the executor itself must still end as a result
            self.state.internal_error(frame, exc, f"internal error: {type(exc).__name__}: {exc}")
        result = container_result(self.state.cancel, frame)
        if self.package_failed and result == _SUCCESS:
            result = _FAILURE
        forced = FORCED_RESULTS.get(self.package.force_execution_result)
        if forced is not None and result != _CANCELED:
            result = _SUCCESS if forced == ExecutionResult.COMPLETION else forced
        raise_event(frame, "OnPostExecute")
        unlink(frame)
        return result

    def _result(self, result: ExecutionResult, root: Scope, duration: float) -> RunResult:
        return RunResult(
            package=self.package.path or self.package.name,
            result=result,
            exit_code=EXIT_CODES[result.value],
            started=self.started,
            duration_s=duration,
            executables=list(self.state.records.values()),
            variables=_reported_variables(root, self.store.mask),
            events=self.log.totals(),
            warnings=[str(w) for w in self.state.plan.warnings] + self.warnings,
            internal_errors=list(self.state.internal_errors),
        )

    def _log_broken(self, message: str) -> None:
        """A log sink failed (EventLog dropped it): one warning, to the sinks still working."""
        self.warnings.append(message)
        self.log.emit(RunEvent("OnWarning", self.package.name, "Package", message=message))

    def _watch_cancel(self, done: threading.Event) -> None:
        while not done.is_set():
            if self.state.cancel.wait(POLL_S):
                self.tasks.cancel_running()
                return

    # -- one executable -----------------------------------------------------------------------
    def _run_child(self, exe: Executable, parent: Frame) -> ExecutionResult:
        """run_executable for a walk: a bug in the executor itself fails this child (an OnError
        naming it) instead of killing the thread that the walk waits on."""
        try:
            return self.run_executable(exe, parent)
        except Exception as exc:
            message = f"internal error running {exe.ref_id}: {type(exc).__name__}: {exc}"
            self.state.internal_error(parent, exc, message, ref_id=exe.ref_id)
            return _FAILURE

    def run_executable(self, exe: Executable, parent: Frame) -> ExecutionResult:
        """Run one child of ``parent``; returns the result the constraints leaving it see."""
        state = self.state
        if state.cancel.is_set():
            return _CANCELED
        skipped = state.plan.skipped  # empty in most runs: then the model field is not read
        if skipped and exe.ref_id in skipped:  # unsupported, run as disabled (--unsupported skip)
            state.record(exe, ExecutionResult.SKIPPED, datetime.now(), 0.0, iterations=0)
            return _SUCCESS
        if exe.disabled:
            return _SUCCESS  # a disabled executable satisfies Success and Completion constraints
        started = datetime.now()
        scope = self.scopes.make(exe, parent.scope, started=started)
        frame = Frame(exe, parent, scope)
        scope.owner = frame
        try:
            if exe.property_expressions or state.host_sets:
                try:
                    exe = effective(state, exe, frame)
                except DtsxError as exc:
                    message = self.store.mask(str(exc))
                    state.record(frame.exe, _FAILURE, datetime.now(), 0.0, [message])
                    self.dispatcher.raise_event(frame, "OnError", str(exc))
                    return self._after(frame, _FAILURE)
                if exe.disabled:  # an expression or --set disabled it
                    return _SUCCESS
                frame.exe = exe
            return self._run_frame(frame, started)
        finally:
            unlink(frame)

    def _run_frame(self, frame: Frame, started: datetime) -> ExecutionResult:
        exe = frame.exe
        clock = time.perf_counter()
        self.dispatcher.raise_event(frame, "OnPreExecute")
        result = _FAILURE
        iterations = 1
        try:
            if exe.kind is _TASK:
                result = self.tasks.execute(frame)
            else:
                iterations = self.containers.execute(frame)
                result = container_result(self.state.cancel, frame)
        except DtsxError as exc:
            self.state.task_error(frame, str(exc))
            result = _FAILURE
        except Exception as exc:  # the executor's own bug: still a result, never a crash
            self.state.internal_error(frame, exc, f"internal error: {type(exc).__name__}: {exc}")
            result = _FAILURE
        finally:
            if self.state.cancel.is_set() and result != _FAILURE:
                result = _CANCELED
        if result == _FAILURE and exe.kind is _TASK:
            self.dispatcher.raise_event(frame, "OnTaskFailed")
        forced = FORCED_RESULTS.get(exe.force_execution_result)
        if forced is not None and result != _CANCELED:
            result = forced
        self.dispatcher.raise_event(frame, "OnPostExecute")
        self.state.record(exe, result, started, time.perf_counter() - clock, None, iterations)
        return self._after(frame, result)

    def _after(self, frame: Frame, result: ExecutionResult) -> ExecutionResult:
        if result == _FAILURE:
            if frame.exe.fail_package_on_failure:
                self.package_failed = True
            if frame.exe.fail_parent_on_failure and frame.parent is not None:
                frame.parent.fatal_child = True
        return result

    def run_child_package(
        self,
        path: str,
        parameters: dict[str, object],
        variables: dict[str, object],
        caller: Frame,
    ) -> RunResult:
        """Execute Package: run another package in process, sharing the slot limit and cancellation.
        The child's events continue into this package at ``caller`` (the Execute Package task),
        as SSIS's do: its errors count here and reach this package's handlers."""
        resolved = _child_path(path, self.package.path)
        options = self.options
        if options.plan_loader is not None:
            plan = options.plan_loader(resolved)
        else:  # the child sees the variables of its caller's scope, so its plan may read them
            plan = load_child_plan(
                resolved,
                project_dir=options.project_dir,
                unsupported=options.unsupported,
                outer_variables=visible_names(caller.scope),
            )
        child = options.for_child(self.limit, parameters, variables, self.state.cancel)
        link = _Parent(
            depth=(self.parent.depth if self.parent is not None else 0) + 1,
            scope=caller.scope,
            forward=lambda event: self.dispatcher.receive(caller, event),
            forward_names=self.dispatcher.handled | {"OnError"},
            slots=self.slots.slots,
            secrets=self.store.secrets,
            transaction=caller.transaction,
        )
        with self.slots.released():
            return _Run(plan, child, link).execute()

    def _execute_handler(self, frame: Frame) -> None:
        """Walk an event handler's graph (the dispatcher made its frame) and record it."""
        started = datetime.now()
        clock = time.perf_counter()
        with self.slots.released():
            try:  # a Required handler with no transaction in force starts its own
                self.containers.execute(frame)
            except DtsxError as exc:
                self.state.task_error(frame, str(exc))
            except Exception as exc:  # a bug while running the handler is still only a result
                message = f"internal error: {type(exc).__name__}: {exc}"
                self.state.internal_error(frame, exc, message)
        result = container_result(self.state.cancel, frame)
        self.state.record(frame.exe, result, started, time.perf_counter() - clock, None)


def _reported_variables(root: Scope, mask: Callable[[str], str]) -> dict[str, Any]:
    """The package's variables as the report shows them: JSON values, secrets masked."""
    variables: dict[str, Any] = {}
    for slot in root.own.values():
        if slot.namespace != "System":
            try:
                value = json_value(root.read(slot))  # a read may find it sensitive: mask after
                variables[slot.qualified] = MASK if slot.sensitive else value
            except DtsxError as exc:
                variables[slot.qualified] = f"<error: {mask(str(exc))}>"
    return variables


def _identity(path: str) -> str:
    return path


def _child_path(path: str, parent: str) -> str:
    if os.path.isabs(path) or not parent or os.path.exists(path):
        return path
    candidate = os.path.join(os.path.dirname(parent), path)
    return candidate if os.path.exists(candidate) else path
