"""Runs a plan: precedence constraints, concurrency, containers and loops, property expressions,
event handlers and their propagation, error counting, cancellation.

Shape of a run. Every executable execution gets a :class:`Frame` (its scope, its error count,
its parent frame). A container's DAG is walked by the thread that runs the container
(:meth:`_Run._walk`); that thread alone settles constraints. When exactly one child can run and
none is running (a loop body, a chain), it runs that child itself, with no hand-off. Otherwise
ready containers go to an elastic worker pool, ready tasks go on the walk's queue, and task
workers (one per slot taken) run queued tasks back to back, reporting finishes through a
C-level queue: no Python lock is shared between workers, so they never convoy on one. Tasks
need one of ``MaxConcurrentExecutables`` slots while they execute; containers never hold a slot
while they wait on their children, and a task gives its slot back while an event handler or a
child package runs on its behalf, so nested containers, handlers and Execute Package can never
deadlock on the limit.

A task's outcome is decided in one ``try/finally`` (:meth:`_Run._execute_task`): an
ExecutionError is a planned failure; anything else is a bug in the task, reported as an OnError
naming the exception type. Either way the run goes on and the books stay straight.
"""

from __future__ import annotations

import copy
import getpass
import os
import platform
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any
from collections.abc import Callable

from dtsx.connections.collection import Connections, Redirect
from dtsx.engine.enumerators import enumerate_items
from dtsx.engine.errors import (
    DtsxError,
    ExecutionError,
    PackageValidationError,
    Problem,
)
from dtsx.engine.events import EventLog, LogSink, RunEvent
from dtsx.engine.expressions import Value
from dtsx.engine.expressions import compile as compile_expression
from dtsx.engine.loader import load_configuration_file
from dtsx.engine.model import (
    FOR_LOOP_PROPERTIES,
    HOST_PROPERTIES,
    VARTYPE_TO_DOTNET,
    ConnectionManagerSpec,
    Executable,
    ExecutableKind,
    Package,
    ssis_flag,
)
from dtsx.engine.overrides import (
    MAX_CONCURRENT,
    Overrides,
    PropertySet,
    configuration_sets,
    design_configurations,
    parse_set,
    valid_concurrency,
)
from dtsx.engine.plan import Plan
from dtsx.engine.variables import (
    LOCK_TIMEOUT_S,
    MASK,
    Scope,
    Secrets,
    Slot,
    VariableStore,
    split_name,
    text_of,
    typed_value,
)
from dtsx.tasks.base import Task, TaskContext

__all__ = [
    "run",
    "RunOptions",
    "RunResult",
    "ExecutableResult",
    "PropertySet",
    "parse_set",
    "EXIT_CODES",
    "Slots",
    "json_value",
]

EXIT_CODES = {"Success": 0, "Failure": 1, "Canceled": 3}
_RESULT_NAMES = {0: "Success", 1: "Failure", 2: "Completion"}
_MAX_HANDLER_DEPTH = 4
_MAX_PACKAGE_DEPTH = 16
_POLL_S = 0.2


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
# Container/task-host properties that property expressions and --set may change, by lower-case
# runtime name → (model field, converter).
_HOST_PROPERTIES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    name.lower(): (field_name, _HOST_CONVERTERS[field_name])
    for name, field_name in (HOST_PROPERTIES | FOR_LOOP_PROPERTIES).items()
}


# --------------------------------------------------------------------------------------------
# Options and results
# --------------------------------------------------------------------------------------------


@dataclass
class RunOptions:
    """How to run a plan. Everything has a default; the CLI fills what the user gave."""

    max_concurrent: int | None = None
    sets: list[PropertySet] = field(default_factory=list)
    # dtexec /ConfigFile: .dtsConfig files applied after the package's own configurations.
    config_files: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    path_map: Callable[[str], str] | None = None
    cancel_event: threading.Event | None = None
    sinks: list[LogSink] = field(default_factory=list)
    project_dir: str | None = None
    unsupported: str = "fail"
    # Rewrites every connection's final settings (``--dev-smtp``); child packages inherit it.
    connection_redirect: Redirect | None = None
    # Turns a child package path into a plan (Execute Package); default: loader + planner.
    plan_loader: Callable[[str], Plan] | None = None
    depth: int = 0
    # Set by a parent package's run: its Execute Package task's scope, and where this (child)
    # package's events continue.
    parent_scope: Scope | None = None
    forward: Callable[[RunEvent], None] | None = None
    forward_names: frozenset[str] = frozenset()
    # Shared with child packages so one limit holds across the whole run.
    slots: Slots | None = None
    # How long a task waits for a variable another task holds locked (see engine.variables).
    variable_lock_timeout_s: float = LOCK_TIMEOUT_S
    # A parent package's known sensitive values, shared (not copied) with its child packages:
    # what the child is given from a secret stays masked in the child's messages, and back.
    secrets: Secrets | None = None


def _stamp(moment: datetime) -> str:
    """ISO 8601 with the UTC offset: the run keeps local wall-clock times (System::StartTime is
    local, as in SSIS), but a report read elsewhere must say which local time it was."""
    return moment.astimezone().isoformat(timespec="milliseconds")


@dataclass
class ExecutableResult:
    ref_id: str
    result: str = "NotRun"
    started: datetime | None = None
    duration_s: float = 0.0
    iterations: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref_id": self.ref_id,
            "result": self.result,
            "started": _stamp(self.started) if self.started else None,
            "duration_s": round(self.duration_s, 6),
            "iterations": self.iterations,
            "errors": list(self.errors),
        }


@dataclass
class RunResult:
    package: str
    result: str
    exit_code: int
    started: datetime
    duration_s: float
    executables: list[ExecutableResult]
    variables: dict[str, Any]
    events: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "result": self.result,
            "exit_code": self.exit_code,
            "started": _stamp(self.started),
            "duration_s": round(self.duration_s, 6),
            "executables": [e.to_json() for e in self.executables],
            "variables": dict(self.variables),
            "events": dict(sorted(self.events.items())),
        }

    def executable(self, ref_id: str) -> ExecutableResult:
        for item in self.executables:
            if item.ref_id == ref_id:
                return item
        raise KeyError(ref_id)


def json_value(value: Value) -> Any:
    """A variable's value in JSON terms: numbers, strings, booleans, ISO dates, lists."""
    return _json_raw(value.value)


def _json_raw(raw: Any) -> Any:
    if raw is None or isinstance(raw, (bool, int, str)):
        return raw
    if isinstance(raw, float):
        return raw if raw == raw and raw not in (float("inf"), float("-inf")) else str(raw)
    if isinstance(raw, Decimal):
        return int(raw) if raw == raw.to_integral_value() and abs(raw) < 2**53 else float(raw)
    if isinstance(raw, (datetime, date)):
        return raw.isoformat()
    if isinstance(raw, bytes):
        return raw.hex()
    if isinstance(raw, (list, tuple)):
        return [_json_raw(v) for v in raw]
    if isinstance(raw, dict):
        return {str(k): _json_raw(v) for k, v in raw.items()}
    return str(raw)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def run(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Run ``plan``. Never raises for a task failure; raises DtsxError only for setup problems
    (bad overrides, a required parameter without a value) before anything runs."""
    return _Run(plan, options or RunOptions()).execute()


@dataclass
class _GraphInfo:
    """A container's DAG, precomputed once per run: start nodes, constraints into each node,
    the nodes whose constraints combine with OR, the nodes that are containers, and the plan
    graph's own adjacency (``succ[u][v]["constraints"]``). Few, flat objects on purpose: built
    for every run, they live as long as it does, and thousands of small ones would push the
    cyclic collector into full passes over the whole plan."""

    size: int
    start: list[str]
    incoming: dict[str, int]
    succ: dict[str, dict[str, dict[str, Any]]]
    or_nodes: frozenset[str]
    containers: frozenset[str]  # nodes that are not tasks (they need no slot)


class _Walk:
    """One walk of one container's DAG. Only the walking thread reads or writes these fields;
    workers talk to it through two C-level queues (no Python lock to contend for):
    ``queue`` carries ready tasks to the walk's workers, ``done`` brings back
    ``(ref_id, result)`` for each finished child, or None when a task worker leaves."""

    __slots__ = (
        "frame",
        "info",
        "pending",
        "started",
        "ready",
        "containers",
        "running",
        "workers",
        "queue",
        "done",
    )

    def __init__(self, frame: Frame, info: _GraphInfo) -> None:
        self.frame = frame
        self.info = info
        self.pending = dict(info.incoming)
        self.started: set[str] = set(info.start)
        # Ready children not yet handed out, in the order they became ready (package order first).
        self.ready = [ref for ref in info.start if ref not in info.containers]
        self.containers = [ref for ref in info.start if ref in info.containers]
        self.running = 0  # children handed out (queued or running) and not yet reported done
        self.workers = 0  # task workers of this walk, each holding a slot, not yet reported gone
        # Made on first use: a walk whose children all run on the walking thread (a loop body,
        # a chain) never needs them.
        self.queue: queue.SimpleQueue[str] | None = None
        self.done: queue.SimpleQueue[tuple[str, str] | None] | None = None

    def queues(self) -> tuple[queue.SimpleQueue[str], queue.SimpleQueue[tuple[str, str] | None]]:
        if self.queue is None or self.done is None:
            self.queue, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        return self.queue, self.done


class Frame:
    """One execution of one executable."""

    __slots__ = ("exe", "parent", "scope", "errors", "fatal_child", "handler", "task")

    def __init__(
        self, exe: Executable, parent: Frame | None, scope: Scope, handler: bool = False
    ) -> None:
        self.exe = exe
        self.parent = parent
        self.scope = scope
        self.errors = 0
        self.fatal_child = False
        self.handler = handler
        self.task: Task | None = None


class _Events:
    """The EventSink a task sees: raises events at its frame."""

    __slots__ = ("_run", "_frame")

    def __init__(self, run_: _Run, frame: Frame) -> None:
        self._run = run_
        self._frame = frame

    def information(self, message: str) -> None:
        self._run.raise_event(self._frame, "OnInformation", message)

    def warning(self, message: str) -> None:
        self._run.raise_event(self._frame, "OnWarning", message)

    def error(self, message: str, code: int = 0) -> None:
        self._run.raise_event(self._frame, "OnError", message, code)

    def progress(self, message: str, percent: int = 0) -> None:
        self._run.raise_event(self._frame, "OnProgress", message, extra={"percent": percent})


class _Run:
    def __init__(self, plan: Plan, options: RunOptions) -> None:
        self.plan = plan
        self.package: Package = plan.package
        self.options = options
        self.cancel = options.cancel_event or threading.Event()
        self.store = VariableStore(
            self._compile,
            on_change=self._variable_changed,
            lock_timeout=options.variable_lock_timeout_s,
        )
        if options.secrets is not None:
            self.store.secrets = options.secrets
        self.log = EventLog(options.sinks, mask=self.store.mask, on_broken=self._log_broken)
        self.records: dict[str, ExecutableResult] = {
            ref: ExecutableResult(ref)
            for ref, exe in plan.executables.items()
            if exe.kind is not ExecutableKind.PACKAGE
        }
        self._lock = threading.Lock()
        self._tls = threading.local()
        self._graphs: dict[str, _GraphInfo] = {}
        self._handlers = self._index_handlers()
        self._local_handled = frozenset(e for by_event in self._handlers.values() for e in by_event)
        # Events a parent package (Execute Package) wants too must be built even with no local use.
        self._handled = self._local_handled | options.forward_names
        self._wanted = self.log.wanted()
        self._listened = self._wanted | self._handled
        self._user_slots: dict[str, list[Slot]] = {}
        self._host_sets: dict[str, dict[str, str]] = {}
        # Frames of running tasks, for cancellation. Plain dict operations are atomic under the
        # GIL, so the hot path takes no lock for this bookkeeping.
        self._running: dict[int, Frame] = {}
        self.package_failed = False
        self.warnings: list[str] = []
        self.limit = self._limit()
        self.slots = options.slots or Slots(self.limit)
        self.pool: _Workers | None = None
        self.connections: Connections | None = None
        self.started = datetime.now()
        self.instance_id = str(uuid.uuid4()).upper()

    # -- setup ------------------------------------------------------------------------------
    def _limit(self) -> int:
        """MaxConcurrentExecutables in effect: --max-concurrent, else the package's attribute.
        A value SSIS refuses (0, below -1, beyond Int32) is a validation error before the run;
        a huge valid one costs nothing (Slots makes tokens only as tasks take them)."""
        pkg = self.package
        if not valid_concurrency(pkg.max_concurrent_executables):
            line = pkg.location.line if pkg.location is not None else None
            raise PackageValidationError(
                [
                    Problem(
                        "max-concurrent",
                        f'MaxConcurrentExecutables="{pkg.max_concurrent_executables}" is not '
                        "valid: "
                        "set it to -1 (the number of CPUs + 2) or to a number of tasks from 1 to "
                        f"{MAX_CONCURRENT}",
                        pkg.path or None,
                        line,
                        "Package",
                    )
                ],
                file=pkg.path or None,
            )
        given = self.options.max_concurrent
        if given is not None and not valid_concurrency(given):
            raise PackageValidationError(
                [
                    Problem(
                        "override-max-concurrent",
                        f"--max-concurrent (/MaxConcurrent) {given} is not valid: give -1 "
                        f"(the number of CPUs + 2) or a number of tasks from 1 to {MAX_CONCURRENT}",
                    )
                ],
                file=pkg.path or None,
            )
        limit = given if given is not None else pkg.max_concurrent_executables
        return limit if limit > 0 else (os.cpu_count() or 1) + 2

    def _index_handlers(self) -> dict[str, dict[str, Executable]]:
        index: dict[str, dict[str, Executable]] = {}
        for ref, exe in self.plan.executables.items():
            if exe.event_handlers:
                index[ref] = {h.event or "": h for h in exe.event_handlers}
        return index

    def _compile(self, text: str, assignment: bool) -> Any:
        key = (text, assignment)
        compiled = self.plan.expressions.get(key)
        if compiled is None:
            compiled = compile_expression(text, assignment=assignment)
            self.plan.expressions[key] = compiled
        return compiled

    def _setup(self) -> tuple[Scope, list[ConnectionManagerSpec], dict[str, str]]:
        """Parameters, variables and connections with every override applied; raises
        PackageValidationError listing every override that cannot be applied."""
        overrides = Overrides(self.plan, self.store, self._slots_for)
        params = overrides.parameters(self.options.parameters)
        errors: list[str] = []
        missing = self.store.add_parameters(
            [*self.package.parameters, *self.package.project_parameters], params, errors
        )
        for message in errors:
            overrides.problem("override-parameter", message)
        # A configuration or --set may still give a Required parameter its value: the Value it
        # has now is replaced (never changed in place) if one does.
        unset = {name: self.store.parameters[name].value for name in missing}
        outer = self._outer_scope()
        root = self._make_scope(self.package, outer)
        design, parent = self._configurations(overrides, root, outer)
        overrides.connections(self.options.connections)
        overrides.sets(self.options.sets, root)
        # As SSIS 2008+ does under dtexec: the package's own configurations are applied before
        # the command line and again after it, so a --set cannot replace a configured value;
        # parent package variable configurations come last of all.
        overrides.configured(design, root)
        overrides.configured(parent, root)
        for name, value in unset.items():
            if self.store.parameters[name].value is value:
                overrides.problem(
                    "required-parameter",
                    f"parameter {name} is Required and has no value: "
                    f"supply it with --param {name}=VALUE",
                )
        self.warnings.extend(overrides.warnings)
        if overrides.problems:
            raise PackageValidationError(overrides.problems, file=self.package.path or None)
        if overrides.max_concurrent is not None:  # in range: Overrides refuses any other value
            self.limit = (
                overrides.max_concurrent
                if overrides.max_concurrent > 0
                else (os.cpu_count() or 1) + 2
            )
            if self.options.slots is None:
                self.slots = Slots(self.limit)
        self._host_sets = overrides.host_sets
        return root, overrides.specs, overrides.connection_strings

    def _configurations(
        self, overrides: Overrides, root: Scope, outer: Scope | None
    ) -> tuple[list[PropertySet], list[PropertySet]]:
        """Apply the package's configurations (but parent package variables), then --config-file.
        Returns what the command line is followed by: the same configurations again, and the
        parent variable ones. A --config-file that cannot be read is an error (it was asked
        for); the package's own configurations only warn, as in SSIS."""
        parent = (
            (lambda name: outer.get(name) if name in outer else None) if outer is not None else None
        )
        design, parent_items, notes = design_configurations(
            self.package, self.options.path_map or _identity, dict(os.environ), parent
        )
        overrides.warnings.extend(notes)
        overrides.configured(design, root)
        for path in self.options.config_files:
            try:
                values = load_configuration_file(path)
            except DtsxError as exc:
                overrides.problem("override-config", f"--config-file {path}: {exc}")
                continue
            items, notes = configuration_sets(values, f"--config-file {path}")
            overrides.warnings.extend(notes)
            overrides.configured(items, root)
        return design, parent_items

    def _outer_scope(self) -> Scope | None:
        """A parent package's variables, visible to this (child) package under its own: the
        Execute Package task's live scope (reads and writes reach the parent, as in SSIS), or
        copies of the values a caller passed."""
        if self.options.parent_scope is not None:
            return self.options.parent_scope
        if not self.options.variables:
            return None
        outer = Scope(self.store, None, "Parent")
        for name, raw in self.options.variables.items():
            namespace, short = split_name(name)
            type_name = _infer_type(raw)
            value = (
                raw
                if isinstance(raw, Value)
                else typed_value(type_name, raw, what=f"variable {name}")
            )
            outer.add(Slot(namespace or "User", short, type_name, value))
        return outer

    # -- scopes -----------------------------------------------------------------------------
    def _slots_for(self, exe: Executable) -> list[Slot]:
        """The executable's own variables; created once per run so values persist across loops."""
        slots = self._user_slots.get(exe.ref_id)
        if slots is None:
            holder = Scope(self.store, None, exe.ref_id)
            holder.add_variables(exe.variables)
            slots = list(holder.own.values())
            self._user_slots[exe.ref_id] = slots
        return slots

    def _make_scope(
        self, exe: Executable, parent: Scope | None, *, started: datetime | None = None
    ) -> Scope:
        scope = Scope(self.store, parent, exe.ref_id)
        if exe.kind is ExecutableKind.PACKAGE:
            self._package_system(scope)
        else:
            # System variables are built on first read (see Scope.lazy): most tasks read none.
            scope.lazy = partial(_Run._container_system, self, exe, started or datetime.now())
        if exe.variables:
            for slot in self._slots_for(exe):
                scope.add(slot)
        return scope

    def _package_system(self, scope: Scope) -> None:
        pkg = self.package
        add = scope.add_system
        add("PackageName", "String", pkg.name)
        add("PackageID", "String", pkg.dtsid or "")
        add("StartTime", "DateTime", self.started)
        add("ContainerStartTime", "DateTime", self.started)
        add("MachineName", "String", platform.node())
        add("UserName", "String", _user_name())
        add("ExecutionInstanceGUID", "String", "{" + self.instance_id + "}")
        add("CreatorName", "String", pkg.creator_name or "")
        add("CreatorComputerName", "String", pkg.creator_computer_name or "")
        add("VersionMajor", "Int32", pkg.version_major or 0)
        add("VersionMinor", "Int32", pkg.version_minor or 0)
        add("VersionBuild", "Int32", pkg.version_build or 0)
        add("VersionGUID", "String", pkg.version_guid or "")
        add("VersionComment", "String", "")
        add("InteractiveMode", "Boolean", False)
        add("OfflineMode", "Boolean", False)
        add("LocaleId", "Int32", pkg.locale_id if pkg.locale_id and pkg.locale_id > 0 else 1033)
        add("ServerExecutionID", "Int64", 0)
        add("CancelEvent", "Int32", 0)
        try:
            add("CreationDate", "DateTime", pkg.creation_date)
        except DtsxError:
            add("CreationDate", "DateTime", None)

    def _container_system(self, exe: Executable, started: datetime) -> dict[str, Slot]:
        """Per-executable System variables; ``started`` is the ContainerStartTime."""
        holder = Scope(self.store, None, exe.ref_id)
        add = holder.add_system
        add("TaskName", "String", exe.name)
        add("TaskID", "String", exe.dtsid or "")
        add("CreationName", "String", exe.raw_type or exe.type_key)
        add("LocaleId", "Int32", exe.locale_id if exe.locale_id and exe.locale_id > 0 else 1033)
        add("TaskTransactionOption", "Int32", exe.transaction_option)
        add("ContainerStartTime", "DateTime", started)
        return holder.own

    def _variable_changed(self, scope: Scope, slot: Slot) -> None:
        frame = scope.owner if isinstance(scope.owner, Frame) else None
        if frame is not None:
            self.raise_event(
                frame,
                "OnVariableValueChanged",
                f"variable {slot.qualified} changed",
                extra={"variable": slot.qualified},
            )

    # -- the run ----------------------------------------------------------------------------
    def execute(self) -> RunResult:
        if self.options.depth > _MAX_PACKAGE_DEPTH:
            raise PackageValidationError(
                [
                    Problem(
                        "package-depth",
                        f"packages call each other more than {_MAX_PACKAGE_DEPTH} levels deep",
                        self.package.path or None,
                    )
                ]
            )
        root, specs, overrides = self._setup()
        clock = time.perf_counter()
        self.connections = Connections(
            specs,
            overrides=overrides,
            expressions=lambda spec: self._connection_expressions(spec, root),
            local_path=self.options.path_map or (lambda p: p),
            redirect=self.options.connection_redirect,
        )
        # Elastic: slots bound the running tasks; threads waiting on children or handlers must
        # never starve the work they wait for. Idle threads are reused.
        self.pool = _Workers()
        watcher = threading.Thread(target=self._watch_cancel, name="dtsx-cancel", daemon=True)
        done = threading.Event()
        self._done = done
        watcher.start()
        result = "Failure"
        try:
            for problem in self.plan.warnings:
                ref = problem.ref_id or "Package"
                self.log.emit(
                    RunEvent("OnWarning", ref.rsplit("\\", 1)[-1], ref, message=problem.message)
                )
            for message in self.warnings:  # configurations that could not be applied
                self.log.emit(RunEvent("OnWarning", self.package.name, "Package", message=message))
            result = self._run_package(root)
        finally:
            done.set()
            self.pool.shutdown()
            self.connections.close()
        return self._result(result, root, time.perf_counter() - clock)

    def _run_package(self, root: Scope) -> str:
        frame = Frame(self.package, None, root)
        root.owner = frame
        # dtsx validates while planning; the package's validation events mark that it passed.
        self.raise_event(frame, "OnPreValidate")
        self.raise_event(frame, "OnPostValidate")
        self.raise_event(frame, "OnPreExecute")
        try:
            self._walk(frame)
        except Exception as exc:  # a bug in the executor itself must still end as a result
            self.raise_event(frame, "OnError", f"internal error: {type(exc).__name__}: {exc}")
        result = self._container_result(frame)
        if self.package_failed and result == "Success":
            result = "Failure"
        forced = _RESULT_NAMES.get(self.package.force_execution_result)
        if forced is not None and result != "Canceled":
            result = "Success" if forced == "Completion" else forced
        self.raise_event(frame, "OnPostExecute")
        _unlink(frame)
        return result

    def _result(self, result: str, root: Scope, duration: float) -> RunResult:
        variables: dict[str, Any] = {}
        for slot in root.own.values():
            if slot.namespace != "System":
                try:
                    value = json_value(root.read(slot))  # a read may find it sensitive: mask after
                    variables[slot.qualified] = MASK if slot.sensitive else value
                except DtsxError as exc:
                    variables[slot.qualified] = f"<error: {self.store.mask(str(exc))}>"
        return RunResult(
            package=self.package.path or self.package.name,
            result=result,
            exit_code=EXIT_CODES[result],
            started=self.started,
            duration_s=duration,
            executables=list(self.records.values()),
            variables=variables,
            events=self.log.totals(),
            warnings=[str(w) for w in self.plan.warnings] + self.warnings,
        )

    def _log_broken(self, message: str) -> None:
        """A log sink failed (EventLog dropped it): one warning, to the sinks still working."""
        self.warnings.append(message)
        self.log.emit(RunEvent("OnWarning", self.package.name, "Package", message=message))

    def _watch_cancel(self) -> None:
        while not self._done.is_set():
            if self.cancel.wait(_POLL_S):
                running = [f.task for f in list(self._running.values()) if f.task is not None]
                for task in running:
                    try:
                        task.cancel()
                    except Exception:  # a task's cancel() must not stop the others being told
                        pass
                return

    def _connection_expressions(self, spec: ConnectionManagerSpec, root: Scope) -> dict[str, str]:
        values: dict[str, str] = {}
        for pe in spec.property_expressions:
            value = self._compile(pe.expression, False).evaluate(root.lookup)
            values[pe.name] = text_of(value)
        return values

    # -- walking a container's graph ----------------------------------------------------------
    def _graph(self, ref: str) -> _GraphInfo:
        info = self._graphs.get(ref)
        if info is None:
            info = self._graphs[ref] = _graph_info(self.plan, ref)
        return info

    def _walk(self, frame: Frame) -> None:
        """Run the container's children once, honouring precedence constraints.

        The walking thread alone settles constraints and decides what is ready (see
        :class:`_Walk`). When exactly one child can run and none is running, it runs that child
        itself: there is nothing to dispatch meanwhile, so a loop body or a chain costs no
        hand-off to a worker and back. Otherwise ready containers go to workers, ready tasks go
        on the walk's queue, and task workers (one per slot taken) run queued tasks one after
        another, as the plain thread-pool walk does.
        """
        info = self._graph(frame.exe.ref_id)
        if not info.size:
            return
        walk = _Walk(frame, info)
        while True:
            if self.cancel.is_set():
                self._drop_ready(walk)
            if walk.running == 0:
                waiting = len(walk.ready) + len(walk.containers)
                if waiting == 0:
                    return
                if waiting == 1:
                    self._run_inline(walk)
                    continue
            self._dispatch(walk)
            self._collect(walk)

    def _run_inline(self, walk: _Walk) -> None:
        """Run the walk's only runnable child on the walking thread, with a slot if it is a task
        (the walking thread holds none of its own: containers never do)."""
        ref = (walk.ready or walk.containers).pop()
        exe = self.plan.executables[ref]
        if exe.kind is not ExecutableKind.TASK:
            self._settle(ref, self._run_child(exe, walk.frame), walk)
            return
        if not self._acquire_slot():
            return  # canceled while waiting for a slot: it never starts
        tls = self._tls
        tls.holding = True
        try:
            result = self._run_child(exe, walk.frame)
        finally:
            if tls.holding:
                self.slots.release()
            tls.holding = False
        self._settle(ref, result, walk)

    def _dispatch(self, walk: _Walk) -> None:
        """Hand every ready child out: containers to workers of their own, tasks to the queue;
        then make sure queued tasks have workers."""
        assert self.pool is not None
        tasks, done = walk.queues()
        for ref in walk.containers:
            walk.running += 1
            self.pool.submit(self._container_job, self.plan.executables[ref], walk, done)
        walk.containers.clear()
        for ref in walk.ready:
            walk.running += 1
            tasks.put(ref)
        walk.ready.clear()
        backlog = tasks.qsize()
        while backlog > 0:
            # A worker per queued task, as far as free slots go. Without a worker of its own the
            # walk waits for a slot (cancellation permitting); with one, it takes only a free
            # slot: that worker gets to the queue anyway, and a finishing one reports back.
            if walk.workers:
                if not self.slots.acquire(blocking=False):
                    return
            elif not self._acquire_slot():
                return  # canceled: the next round drops what is queued
            walk.workers += 1
            backlog -= 1
            self.pool.submit(self._task_worker, walk, tasks, done)

    def _collect(self, walk: _Walk) -> None:
        """Wait (one poll at most) for children to finish; settle every finish reported."""
        done = walk.done
        if done is None or (walk.running == 0 and walk.workers == 0):
            return
        try:
            item = done.get(timeout=_POLL_S)
        except queue.Empty:
            return
        while True:
            if item is None:
                walk.workers -= 1
            else:
                walk.running -= 1
                self._settle(item[0], item[1], walk)
            try:
                item = done.get_nowait()
            except queue.Empty:
                return

    def _drop_ready(self, walk: _Walk) -> None:
        """Canceled: what is ready or queued never starts."""
        walk.ready.clear()
        walk.containers.clear()
        if walk.queue is not None:
            while True:
                try:
                    walk.queue.get_nowait()
                except queue.Empty:
                    return
                walk.running -= 1

    def _task_worker(
        self,
        walk: _Walk,
        tasks: queue.SimpleQueue[str],
        done: queue.SimpleQueue[tuple[str, str] | None],
    ) -> None:
        """Run queued tasks of one walk with the slot the walking thread took, until the queue
        is empty (or the run is canceled); then give the slot back and say so."""
        tls = self._tls
        tls.holding = True
        try:
            while not self.cancel.is_set():
                try:
                    ref = tasks.get_nowait()
                except queue.Empty:
                    break
                done.put((ref, self._run_child(self.plan.executables[ref], walk.frame)))
        finally:
            if tls.holding:
                self.slots.release()
            tls.holding = False
            assert self.pool is not None
            self.pool.idle()
            done.put(None)

    def _container_job(
        self, exe: Executable, walk: _Walk, done: queue.SimpleQueue[tuple[str, str] | None]
    ) -> None:
        result = self._run_child(exe, walk.frame)
        assert self.pool is not None
        self.pool.idle()
        done.put((exe.ref_id, result))

    def _settle(self, ref: str, result: str, walk: _Walk) -> None:
        """Evaluate constraints leaving ``ref``; mark targets that may now run as ready, drop
        those that never can (and, transitively, what is reachable only through them)."""
        info, pending, started, frame = walk.info, walk.pending, walk.started, walk.frame
        succ, or_nodes, containers = info.succ, info.or_nodes, info.containers
        work = [(ref, result)]
        while work:
            source, outcome = work.pop()
            for target, data in succ.get(source, _NO_EDGES).items():
                for constraint in data.get("constraints", ()):
                    if target in started:
                        break
                    ok = outcome != "NotRun" and self._constraint_ok(constraint, outcome, frame)
                    pending[target] -= 1
                    if target not in or_nodes:
                        if not ok:
                            started.add(target)
                            work.append((target, "NotRun"))
                        elif pending[target] == 0:
                            started.add(target)
                            (walk.containers if target in containers else walk.ready).append(target)
                    elif ok:
                        started.add(target)
                        (walk.containers if target in containers else walk.ready).append(target)
                    elif pending[target] == 0:
                        started.add(target)
                        work.append((target, "NotRun"))

    def _constraint_ok(self, constraint: Any, outcome: str, frame: Frame) -> bool:
        op = constraint.eval_op
        if op == 2:
            return _outcome_matches(constraint.value, outcome)
        if op == 3 and not _outcome_matches(constraint.value, outcome):
            return False
        if op == 4 and _outcome_matches(constraint.value, outcome):
            return True
        return self._constraint_expression(constraint, frame)

    def _constraint_expression(self, constraint: Any, frame: Frame) -> bool:
        text = constraint.expression or ""
        try:
            value = self._compile(text, False).evaluate(frame.scope.lookup)
            if value.type != "DT_BOOL":
                raise ExecutionError(f"the expression returns {value.type}, not a Boolean")
            return bool(value.value)
        except DtsxError as exc:
            self.raise_event(
                frame, "OnError", f"precedence constraint {constraint.ref_id!r}: {exc}"
            )
            return False

    def _acquire_slot(self) -> bool:
        while not self.slots.acquire(timeout=_POLL_S):
            if self.cancel.is_set():
                return False
        return True

    def released_slot(self) -> _SlotRelease:
        """Context manager: give this thread's task slot back while it waits on other work."""
        return _SlotRelease(self)

    # -- one executable -----------------------------------------------------------------------
    def _run_child(self, exe: Executable, parent: Frame) -> str:
        """run_executable for a walk: a bug in the executor itself fails this child (an OnError
        naming it) instead of killing the thread that the walk waits on."""
        try:
            return self.run_executable(exe, parent)
        except Exception as exc:
            self.raise_event(
                parent,
                "OnError",
                f"internal error running {exe.ref_id}: {type(exc).__name__}: {exc}",
            )
            return "Failure"

    def run_executable(self, exe: Executable, parent: Frame) -> str:
        """Run one child of ``parent``; returns the result the constraints leaving it see."""
        if self.cancel.is_set():
            return "Canceled"
        if exe.disabled or exe.ref_id in self.plan.skipped:
            return "Success"  # a disabled executable satisfies Success and Completion constraints
        started = datetime.now()
        scope = self._make_scope(exe, parent.scope, started=started)
        frame = Frame(exe, parent, scope)
        scope.owner = frame
        try:
            try:
                if exe.property_expressions or self._host_sets:
                    exe = self._effective(exe, frame)
            except DtsxError as exc:
                self._record(frame.exe, "Failure", datetime.now(), 0.0, [self.store.mask(str(exc))])
                self.raise_event(frame, "OnError", str(exc))
                return self._after(frame, "Failure")
            if exe.disabled:
                return "Success"
            frame.exe = exe
            return self._run_frame(frame, started)
        finally:
            _unlink(frame)

    def _run_frame(self, frame: Frame, started: datetime) -> str:
        exe = frame.exe
        clock = time.perf_counter()
        self.raise_event(frame, "OnPreExecute")
        result = "Failure"
        iterations = 1
        try:
            if exe.kind is ExecutableKind.TASK:
                result = self._execute_task(frame)
            else:
                iterations = self._execute_container(frame)
                result = self._container_result(frame)
        except DtsxError as exc:
            self._task_error(frame, str(exc))
            result = "Failure"
        except Exception as exc:  # the executor's own bug: still a result, never a crash
            self.raise_event(frame, "OnError", f"internal error: {type(exc).__name__}: {exc}")
            result = "Failure"
        finally:
            if self.cancel.is_set() and result != "Failure":
                result = "Canceled"
        if result == "Failure" and exe.kind is ExecutableKind.TASK:
            self.raise_event(frame, "OnTaskFailed")
        result = self._forced(exe, result)
        self.raise_event(frame, "OnPostExecute")
        self._record(exe, result, started, time.perf_counter() - clock, None, iterations)
        return self._after(frame, result)

    def _forced(self, exe: Executable, result: str) -> str:
        forced = _RESULT_NAMES.get(exe.force_execution_result)
        if forced is None or result == "Canceled":
            return result
        return forced

    def _after(self, frame: Frame, result: str) -> str:
        if result == "Failure":
            if frame.exe.fail_package_on_failure:
                self.package_failed = True
            if frame.exe.fail_parent_on_failure and frame.parent is not None:
                frame.parent.fatal_child = True
        return result

    def _record(
        self,
        exe: Executable,
        result: str,
        started: datetime,
        duration: float,
        errors: list[str] | None,
        iterations: int = 1,
    ) -> None:
        record = self.records.get(exe.ref_id)
        if record is None:
            return
        if exe.kind is ExecutableKind.EVENT_HANDLER:
            with self._lock:  # one handler may run for several sources at once
                _update(record, result, started, duration, errors, iterations)
        else:  # an executable runs at most once at a time: only its own thread writes here
            _update(record, result, started, duration, errors, iterations)

    def _effective(self, exe: Executable, frame: Frame) -> Executable:
        """The executable with ``--set`` values and property expressions applied to its host
        settings."""
        updates: dict[str, Any] = {}
        for name, raw in self._host_sets.get(exe.ref_id, {}).items():
            self._host_update(exe, name, raw, updates, from_set=True)
        for pe in exe.property_expressions:
            if pe.name.lower() in _HOST_PROPERTIES:
                value = self._compile(pe.expression, False).evaluate(frame.scope.lookup)
                self._host_update(exe, pe.name, value.value, updates, from_set=False)
        return exe.model_copy(update=updates) if updates else exe

    def _host_update(
        self, exe: Executable, name: str, raw: Any, updates: dict[str, Any], *, from_set: bool
    ) -> None:
        entry = _HOST_PROPERTIES.get(name.lower())
        if entry is None:
            if exe.kind is ExecutableKind.TASK or not from_set:
                return  # task properties are set on the task itself
            raise ExecutionError(f"{exe.ref_id!r} has no settable property {name!r}")
        field_name, conv = entry
        try:
            updates[field_name] = conv(raw)
        except (TypeError, ValueError) as exc:
            raise ExecutionError(
                f"property {name} of {exe.ref_id!r} cannot take the value {raw!r}"
            ) from exc

    # -- tasks --------------------------------------------------------------------------------
    def _execute_task(self, frame: Frame) -> str:
        """Prepare and run one task; every exception becomes a result here."""
        exe = frame.exe
        raised = True
        stored = True
        try:
            task = self._prepare_task(frame)
            frame.task = task
            ctx = self._context(frame)
            self._running[id(frame)] = frame
            try:
                if self.cancel.is_set():
                    return "Canceled"
                task.execute(ctx)
                raised = False
            finally:
                self._running.pop(id(frame), None)
                # Once, whatever happened (a refusal is one OnError, not one per attempt).
                stored = self._store_execution_value(frame, task)
        except ExecutionError as exc:
            self._task_error(frame, str(exc))
        except DtsxError as exc:
            self._task_error(frame, str(exc))
        except Exception as exc:  # a bug in the task: a Failure naming the exception, never a crash
            self._task_error(frame, f"the task raised {type(exc).__name__}: {exc}")
        except SystemExit as exc:  # a task calling sys.exit() must not end the whole run
            self._task_error(
                frame, f"the task tried to exit the process (SystemExit {exc.code!r})."
            )
        if self.cancel.is_set():
            return "Canceled"
        if not stored:
            raised = True
        limit = exe.max_error_count
        # A task that raised failed; one that only reported errors fails at its MaximumErrorCount.
        failed = raised or (limit > 0 and frame.errors >= limit)
        return "Failure" if failed else "Success"

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
            self._task_error(frame, f"ExecValueVariable {target}: {exc}")
            return False
        return True

    def _task_error(self, frame: Frame, message: str) -> None:
        message = self.store.mask(message)
        with self._lock:
            record = self.records.get(frame.exe.ref_id)
            if record is not None:
                record.errors.append(message)
        self.raise_event(frame, "OnError", message)

    def _prepare_task(self, frame: Frame) -> Task:
        exe = frame.exe
        proto = self.plan.tasks.get(exe.ref_id)
        if proto is None:
            raise ExecutionError(
                f"{exe.ref_id!r} has no runnable task (type {exe.raw_type or exe.type_key!r})."
            )
        task = _fresh(proto, bool(exe.property_expressions) or exe.ref_id in self._host_sets)
        for name, raw in self._host_sets.get(exe.ref_id, {}).items():
            if name.lower() not in _HOST_PROPERTIES:
                task.set_property(name, raw)
        for pe in exe.property_expressions:
            if pe.name.lower() in _HOST_PROPERTIES:
                continue
            value = self._compile(pe.expression, False).evaluate(frame.scope.lookup)
            task.set_property(pe.name, value.value)
        return task

    def _context(self, frame: Frame) -> TaskContext:
        exe = frame.exe
        scope = frame.scope
        assert self.connections is not None

        def evaluate(text: str, *, assignment: bool = False) -> Value:
            return self.evaluate_in(scope, text, assignment=assignment)

        def run_package(
            path: str,
            *,
            parameters: dict[str, object] | None = None,
            variables: dict[str, object] | None = None,
        ) -> RunResult:
            return self.run_child_package(path, parameters or {}, variables or {}, frame)

        return TaskContext(
            name=exe.name,
            ref_id=exe.ref_id,
            connections=self.connections,
            variables=scope,
            events=_Events(self, frame),
            package_path=self.package.path,
            cancel_event=self.cancel,
            local_path=self.options.path_map or _identity,
            evaluate=evaluate,
            run_package=run_package,
        )

    def evaluate_in(self, scope: Scope, text: str, *, assignment: bool = False) -> Value:
        """Evaluate an expression in ``scope``; an assignment also stores into its target.

        An assignment holds its target's write lock from the first read to the write, as SSIS
        locks a task's ReadWriteVariables, so parallel ``@[User::Sum] = @[User::Sum] + 1`` lose
        no update; and the target becomes sensitive when the expression read a sensitive value."""
        compiled = self._compile(text, assignment)
        target = compiled.target
        if target is None:
            return compiled.evaluate(scope.lookup)
        slot = scope.find(target)
        if slot is None:  # the evaluation reports the unknown variable, in its own words
            scope.set(target, compiled.evaluate(scope.lookup))
            return scope.value(target)
        store = scope.store
        with store.hold((slot,)):
            mark = store.sensitive_mark()
            value = compiled.evaluate(scope.lookup)
            scope.write(slot, value, sensitive=store.sensitive_mark() != mark)
            return scope.read(slot)

    def run_child_package(
        self,
        path: str,
        parameters: dict[str, object],
        variables: dict[str, object],
        caller: Frame | None = None,
    ) -> RunResult:
        """Execute Package: run another package in process, sharing the slot limit and cancellation.
        The child's events continue into this package at ``caller`` (the Execute Package task),
        as SSIS's do: its errors count here and reach this package's handlers."""
        resolved = _child_path(path, self.package.path)
        if self.options.plan_loader is not None:
            plan = self.options.plan_loader(resolved)
        else:  # the child sees the variables of its caller's scope, so its plan may read them
            outer = _visible_names(caller.scope) if caller is not None else list(variables)
            plan = _load_plan(resolved, self.options, outer)
        options = RunOptions(
            max_concurrent=self.limit,
            parameters=dict(parameters),
            variables=dict(variables),
            path_map=self.options.path_map,
            cancel_event=self.cancel,
            sinks=self.options.sinks,
            project_dir=self.options.project_dir,
            unsupported=self.options.unsupported,
            plan_loader=self.options.plan_loader,
            depth=self.options.depth + 1,
            slots=self.slots,
            connection_redirect=self.options.connection_redirect,
            secrets=self.store.secrets,
            variable_lock_timeout_s=self.options.variable_lock_timeout_s,
        )
        if caller is not None:
            options.parent_scope = caller.scope
            options.forward = lambda event: self._receive(caller, event)
            options.forward_names = self._handled | {"OnError"}
        with self.released_slot():
            return _Run(plan, options).execute()

    # -- containers -----------------------------------------------------------------------------
    def _execute_container(self, frame: Frame) -> int:
        kind = frame.exe.kind
        if kind is ExecutableKind.FOR_LOOP:
            return self._for_loop(frame)
        if kind is ExecutableKind.FOREACH_LOOP:
            return self._foreach_loop(frame)
        self._walk(frame)
        return 1

    def _container_result(self, frame: Frame) -> str:
        if self.cancel.is_set():
            return "Canceled"
        limit = frame.exe.max_error_count
        if frame.fatal_child or (limit > 0 and frame.errors >= limit):
            return "Failure"
        return "Success"

    def _loop_failed(self, frame: Frame) -> bool:
        limit = frame.exe.max_error_count
        return self.cancel.is_set() or frame.fatal_child or (limit > 0 and frame.errors >= limit)

    def _for_loop(self, frame: Frame) -> int:
        exe = frame.exe
        scope = frame.scope
        if exe.init_expression:
            self.evaluate_in(scope, exe.init_expression, assignment=True)
        if not exe.eval_expression:
            raise ExecutionError(
                f"For Loop {exe.ref_id!r} has no EvalExpression; set one that returns a Boolean."
            )
        iterations = 0
        while True:
            condition = self.evaluate_in(scope, exe.eval_expression)
            if condition.type != "DT_BOOL":
                raise ExecutionError(
                    f"the EvalExpression of For Loop {exe.ref_id!r} returns {condition.type}, not "
                    "a Boolean."
                )
            if not condition.value or self._loop_failed(frame):
                break
            self._walk(frame)
            iterations += 1
            if self._loop_failed(frame):
                break
            if exe.assign_expression:
                self.evaluate_in(scope, exe.assign_expression, assignment=True)
        self._set_loop_iterations(exe, iterations)
        return 0

    def _foreach_loop(self, frame: Frame) -> int:
        exe = frame.exe
        enumerator = exe.enumerator
        if enumerator is None:
            raise ExecutionError(f"Foreach Loop {exe.ref_id!r} has no enumerator.")
        settings = dict(enumerator.properties)
        for pe in enumerator.property_expressions:
            settings[pe.name] = text_of(
                self._compile(pe.expression, False).evaluate(frame.scope.lookup)
            )
        iterations = 0
        warn = lambda message: self.raise_event(frame, "OnWarning", message)  # noqa: E731
        for item in enumerate_items(
            enumerator, settings, frame.scope, self.options.path_map or _identity, warn
        ):
            if self._loop_failed(frame):
                break
            self._map_item(frame, item)
            self._walk(frame)
            iterations += 1
        self._set_loop_iterations(exe, iterations)
        return 0

    def _map_item(self, frame: Frame, item: list[Any]) -> None:
        for mapping in frame.exe.variable_mappings:
            if mapping.value_index >= len(item):
                raise ExecutionError(
                    f"Foreach Loop {frame.exe.ref_id!r} maps value index {mapping.value_index} to "
                    f"{mapping.variable}, but the item has only {len(item)} value(s)."
                )
            frame.scope.set(mapping.variable, item[mapping.value_index])

    def _set_loop_iterations(self, exe: Executable, iterations: int) -> None:
        record = self.records.get(exe.ref_id)
        if record is not None:
            with self._lock:
                record.iterations += iterations

    # -- events and handlers ----------------------------------------------------------------
    def raise_event(
        self,
        frame: Frame,
        name: str,
        message: str = "",
        code: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if name == "OnError":
            with self._lock:
                f: Frame | None = frame
                while f is not None:
                    f.errors += 1
                    f = f.parent
        if name not in self._listened:
            self.log.count(name)  # nobody listens: count it without building the event
            return
        exe = frame.exe
        # Masked here, not only in the log: handlers see the message as System::ErrorDescription.
        event = RunEvent(
            name,
            exe.name,
            exe.ref_id,
            exe.dtsid or "",
            self.store.mask(message),
            code,
            source_description=exe.description or "",
            extra=extra or {},
        )
        self.log.emit(event)
        if name in self._local_handled:
            self._bubble(frame, event)
        forward = self.options.forward
        if forward is not None and name in self.options.forward_names:
            forward(event)  # Propagate=False in a child package does not stop this (SSIS)

    def _receive(self, frame: Frame, event: RunEvent) -> None:
        """An event from a child package, arriving at the Execute Package task's frame."""
        if event.name == "OnError":
            with self._lock:
                f: Frame | None = frame
                while f is not None:
                    f.errors += 1
                    f = f.parent
        if event.name in self._local_handled:
            self._bubble(frame, event)
        forward = self.options.forward
        if forward is not None and event.name in self.options.forward_names:
            forward(event)

    def _bubble(self, frame: Frame, event: RunEvent) -> None:
        f: Frame | None = frame
        while f is not None:
            handlers = self._handlers.get(f.exe.ref_id)
            if handlers is not None and not f.exe.disable_event_handlers:
                handler = handlers.get(event.name)
                if (
                    handler is not None
                    and not handler.disabled
                    and self._may_run_handler(frame, handler)
                ):
                    if not self._run_handler(handler, f, event):
                        return
            f = f.parent

    def _may_run_handler(self, frame: Frame, handler: Executable) -> bool:
        """Not while the same handler is already running in this chain, nor too deeply nested."""
        depth = 0
        f: Frame | None = frame
        while f is not None:
            if f.handler:
                depth += 1
                if f.exe.ref_id == handler.ref_id:
                    return False
            f = f.parent
        return depth < _MAX_HANDLER_DEPTH

    def _run_handler(self, handler: Executable, owner: Frame, event: RunEvent) -> bool:
        """Run one handler for ``event``; returns System::Propagate after it ran."""
        scope = Scope(self.store, owner.scope, handler.ref_id)
        add = scope.add_system
        add("SourceName", "String", event.source_name)
        add("SourceID", "String", event.source_id)
        add("SourceDescription", "String", event.source_description)
        add("ErrorCode", "Int32", event.code)
        add("ErrorDescription", "String", event.message)
        add("Propagate", "Boolean", True, writable=True)
        add("Cancel", "Boolean", False, writable=True)
        add("EventHandlerStartTime", "DateTime", datetime.now())
        add("TaskName", "String", handler.name)
        for slot in self._slots_for(handler):
            if slot.namespace == "System" and slot.qualified in scope.own:
                scope.own[slot.qualified].value = slot.value
                continue
            scope.add(slot)
        frame = Frame(handler, owner, scope, handler=True)
        scope.owner = frame
        started = datetime.now()
        clock = time.perf_counter()
        with self.released_slot():
            try:
                self._walk(frame)
            except Exception as exc:  # a bug while running the handler is still only a result
                self.raise_event(frame, "OnError", f"internal error: {type(exc).__name__}: {exc}")
        result = self._container_result(frame)
        self._record(handler, result, started, time.perf_counter() - clock, None)
        _unlink(frame)
        if _truthy(scope, "System::Cancel"):
            self.cancel.set()
        return _truthy(scope, "System::Propagate")


class _Workers:
    """An elastic thread pool: a new thread only when no worker is idle.

    Unlike ThreadPoolExecutor, a worker counts itself idle *before* it reports completion, so the
    walker's next submission reuses it instead of starting another thread; threads blocked on
    children, handlers or child packages never starve the work they wait for.
    """

    def __init__(self, name: str = "dtsx") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._name = name

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put((fn, args))
        if spawn:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            fn(*args)

    def idle(self) -> None:
        """Called by a job just before it reports completion: this worker is free again."""
        with self._lock:
            self._idle += 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


class Slots:
    """The MaxConcurrentExecutables tokens: a C-level queue, cheaper than threading.Semaphore.

    Tokens are made when a task finds none free and fewer than ``size`` exist, so a limit costs
    memory in proportion to the tasks that ran at once, never to the limit itself
    (MaxConcurrentExecutables may be 2147483647)."""

    __slots__ = ("_tokens", "size", "_made", "_making")

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._made = 0
        self._making = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        tokens = self._tokens
        try:
            tokens.get_nowait()
            return True
        except queue.Empty:
            pass
        if self._made < self.size:
            with self._making:  # only while tokens are still being made, never once all exist
                if self._made < self.size:
                    self._made += 1
                    return True
        try:
            tokens.get(blocking, timeout)
        except queue.Empty:
            return False
        return True

    def release(self) -> None:
        self._tokens.put(None)


class _SlotRelease:
    """Gives the current thread's task slot back for the duration of a ``with`` block."""

    __slots__ = ("_run", "_had")

    def __init__(self, run_: _Run) -> None:
        self._run = run_
        self._had = False

    def __enter__(self) -> None:
        tls = self._run._tls
        self._had = getattr(tls, "holding", False)
        if self._had:
            tls.holding = False
            self._run.slots.release()

    def __exit__(self, *exc: object) -> None:
        if self._had:
            # Reacquire even when canceled: the caller's finally releases it once more.
            self._run.slots.acquire()
            self._run._tls.holding = True


def _infer_type(raw: Any) -> str:
    if isinstance(raw, Value):
        return "Object" if raw.type == "Object" else _DT_TO_DOTNET.get(raw.type, "Object")
    if isinstance(raw, bool):
        return "Boolean"
    if isinstance(raw, int):
        return "Int32" if -(2**31) <= raw < 2**31 else "Int64"
    if isinstance(raw, float):
        return "Double"
    if isinstance(raw, Decimal):
        return "Decimal"
    if isinstance(raw, str):
        return "String"
    if isinstance(raw, datetime):
        return "DateTime"
    return "Object"


_DT_TO_DOTNET = {
    "DT_BOOL": "Boolean",
    "DT_I1": "SByte",
    "DT_UI1": "Byte",
    "DT_I2": "Int16",
    "DT_I4": "Int32",
    "DT_I8": "Int64",
    "DT_UI4": "UInt32",
    "DT_UI8": "UInt64",
    "DT_R4": "Single",
    "DT_R8": "Double",
    "DT_DECIMAL": "Decimal",
    "DT_WSTR": "String",
    "DT_DATE": "DateTime",
}


def _update(
    record: ExecutableResult,
    result: str,
    started: datetime,
    duration: float,
    errors: list[str] | None,
    iterations: int,
) -> None:
    record.result = result
    if record.started is None:
        record.started = started
    record.duration_s += duration
    record.iterations += iterations
    if errors:
        record.errors.extend(errors)


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


def _unlink(frame: Frame) -> None:
    """Break the frame <-> scope (and frame -> task) links of a finished execution, so that
    reference counting frees them at once: left to the cyclic collector, thousands of them
    trigger full collections, each a pass over every object of the plan."""
    frame.scope.owner = None
    frame.task = None


def _truthy(scope: Scope, name: str) -> bool:
    try:
        return bool(scope.get(name))
    except DtsxError:
        return False


def _outcome_matches(value: int, outcome: str) -> bool:
    if value == 0:
        return outcome == "Success"
    if value == 1:
        return outcome == "Failure"
    if value == 2:
        return outcome in ("Success", "Failure", "Completion")
    return False


_NO_EDGES: dict[str, dict[str, Any]] = {}


def _graph_info(plan: Plan, ref: str) -> _GraphInfo:
    graph = plan.graphs.get(ref)
    if graph is None:
        return _GraphInfo(0, [], {}, {}, frozenset(), frozenset())
    # adjacency() yields the graph's own neighbour dicts (no copies), in node order.
    succ: dict[str, dict[str, dict[str, Any]]] = dict(graph.adjacency())
    incoming: dict[str, int] = dict.fromkeys(succ, 0)
    or_nodes: set[str] = set()
    for targets in succ.values():
        for target, data in targets.items():
            for constraint in data.get("constraints", ()):
                incoming[target] += 1
                if not constraint.logical_and:
                    or_nodes.add(target)
    start = [n for n, count in incoming.items() if count == 0]
    executables = plan.executables
    containers = frozenset(n for n in succ if executables[n].kind is not ExecutableKind.TASK)
    return _GraphInfo(len(succ), start, incoming, succ, frozenset(or_nodes), containers)


def _identity(path: str) -> str:
    return path


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers; SSIS always has one
        return ""


def _child_path(path: str, parent: str) -> str:
    if os.path.isabs(path) or not parent or os.path.exists(path):
        return path
    candidate = os.path.join(os.path.dirname(parent), path)
    return candidate if os.path.exists(candidate) else path


def _load_plan(path: str, options: RunOptions, outer_variables: list[str]) -> Plan:
    """A child package's plan (loader + planner); ``outer_variables`` are the names its parent
    lets it read, so the planner does not refuse them as missing."""
    from dtsx.engine import loader
    from dtsx.engine import plan as planner

    package = loader.load(path, project_dir=options.project_dir)
    return planner.build(package, unsupported=options.unsupported, outer_variables=outer_variables)


def _visible_names(scope: Scope | None) -> list[str]:
    """The qualified names of the variables ``scope`` sees (its own, then every scope above it,
    up through the parent packages). System variables are left out: a package has its own."""
    names: set[str] = set()
    while scope is not None:
        # A copy first: another thread may be adding this scope's System variables right now.
        names.update(
            slot.qualified for slot in list(scope.own.values()) if slot.namespace != "System"
        )
        scope = scope.parent
    return sorted(names)
