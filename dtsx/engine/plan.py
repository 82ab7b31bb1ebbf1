"""Model → plan: resolve types, validate task properties, check references, build one
``networkx.DiGraph`` per container, and report *every* problem with file, line and refId.

Nothing here runs anything. ``build`` raises :class:`PackageValidationError` listing all
problems; a package that plans cleanly can be handed to the executor.

Executables that are disabled (or inside a disabled container) are not resolved or validated,
as SSIS does not validate them either; they still appear in ``executables`` and the graphs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from dtsx.engine.gcpause import paused_gc
from dtsx.engine.errors import (
    DtsxError,
    ExpressionError,
    PackageValidationError,
    PluginError,
    Problem,
)
from dtsx.engine.events import EVENT_NAMES
from dtsx.engine.model import (
    CONNECTION_PROPERTIES,
    ENUMERATOR_DATA,
    ENUMERATOR_PROPERTIES,
    FOR_LOOP_PROPERTIES,
    HOST_PROPERTIES,
    IGNORED_HOST_PROPERTIES,
    ISOLATION_LEVELS,
    LOCAL_NAMES,
    TRANSACTION_OPTIONS,
    TYPECODE_TO_DOTNET,
    VARTYPE_TO_DOTNET,
    ConnectionManagerSpec,
    Executable,
    ExecutableKind,
    Package,
    Parameter,
    PrecedenceConstraint,
    PropertyExpression,
    SourceLocation,
    Variable,
    XmlNode,
    ssis_flag,
)
from dtsx.engine.references import ConnectionReferences, guid_key
from dtsx.engine.registry import UnknownKeyError
from pydantic import ValidationError

if TYPE_CHECKING:
    import networkx as nx
    from dtsx.connections.base import ConnectionManager, ConnectionSettings
    from dtsx.engine.expressions import CompiledExpression
    from dtsx.tasks.base import Task, ValidationContext

__all__ = [
    "SUPPORTED_ENUMERATORS",
    "SYSTEM_VARIABLES",
    "ContainerFlow",
    "Plan",
    "PropertyAssignment",
    "PropertyTarget",
    "SetValue",
    "build",
]

SUPPORTED_ENUMERATORS = frozenset(ENUMERATOR_PROPERTIES)
# System variables every scope sees (spec §4.4); handler-only ones are accepted everywhere,
# since a task inside a handler sees them and the planner does not track event payloads.
SYSTEM_VARIABLES = frozenset(
    {
        "CancelEvent",
        "ContainerStartTime",
        "CreationDate",
        "CreatorComputerName",
        "CreatorName",
        "ExecutionInstanceGUID",
        "FailedConfigurations",
        "IgnoreConfigurationsOnLoad",
        "InteractiveMode",
        "LocaleId",
        "LocaleID",
        "MachineName",
        "OfflineMode",
        "PackageID",
        "PackageName",
        "StartTime",
        "ServerExecutionID",
        "UserName",
        "VersionBuild",
        "VersionComment",
        "VersionGUID",
        "VersionMajor",
        "VersionMinor",
        "CreationName",
        "TaskID",
        "TaskName",
        "TaskTransactionOption",
        "Cancel",
        "ErrorCode",
        "ErrorDescription",
        "ExecutionStatus",
        "ExecutionValue",
        "PercentComplete",
        "ProgressCountHigh",
        "ProgressCountLow",
        "ProgressDescription",
        "Propagate",
        "SourceDescription",
        "SourceID",
        "SourceName",
        "SourceParentGUID",
        "VariableDescription",
        "VariableID",
        "VariableName",
    }
)
# Enumerator settings that name the variable being enumerated (ADO: VarName; From Variable).
_ENUMERATOR_VARIABLE_SETTINGS = ("VarName", "VariableName")
_GUID = re.compile(
    r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$"
)
_SCRIPT_TYPES = {"microsoft.scripttask"}
_CONSTRAINT_VALUES = {0, 1, 2}
# Property names as the executor compares them (any case).
_HOST_NAMES = frozenset(name.lower() for name in HOST_PROPERTIES)
_FOR_LOOP_NAMES = frozenset(name.lower() for name in FOR_LOOP_PROPERTIES)
_IGNORED_NAMES = frozenset(name.lower() for name in IGNORED_HOST_PROPERTIES)
_KIND_NAMES = {
    ExecutableKind.SEQUENCE: "Sequence",
    ExecutableKind.FOR_LOOP: "For Loop",
    ExecutableKind.FOREACH_LOOP: "Foreach Loop",
    ExecutableKind.EVENT_HANDLER: "event handler",
    ExecutableKind.PACKAGE: "package",
}
_TYPE_CODES = ", ".join(f"{code} ({name})" for code, name in VARTYPE_TO_DOTNET.items())
_PROJECT_TYPE_CODES = ", ".join(f"{code} ({name})" for code, name in TYPECODE_TO_DOTNET.items())
_EVAL_OPS = {1, 2, 3, 4}
# Runtime name (any case) -> model field of the host settings an expression or --set may change;
# the executor has always treated the For Loop's names as host settings of any executable.
_HOST_FIELDS = {name.lower(): f for name, f in (HOST_PROPERTIES | FOR_LOOP_PROPERTIES).items()}
_DISABLE_NAMES = frozenset(name.lower() for name, f in HOST_PROPERTIES.items() if f == "disabled")


class PropertyTarget(Enum):
    """Where the property a property expression sets lives."""

    HOST = "host"  # a container's or task host's setting: a field of the model's Executable
    TASK = "task"  # a property of the task object (``Task.set_property``)
    IGNORED = "ignored"  # a container setting dtsx reads but never changes at run time


@dataclass(frozen=True)
class PropertyAssignment:
    """One property expression of an executable, decided once by the planner: the property it
    sets (its name as written, without surrounding whitespace), where that property lives, the
    model field for a host setting, and the expression text (a key of ``Plan.expressions``)."""

    name: str
    target: PropertyTarget
    field: str | None  # for HOST: the Executable field ("disabled", "eval_expression"), else None
    expression: str
    location: SourceLocation | None = None


class SetValue(Protocol):
    """What the planner reads of one ``--set`` (``engine.overrides.PropertySet`` conforms):
    ``kind`` is ``"variable"``, ``"property"`` or ``"connection"``; ``container`` the ref_id of
    the executable the path names; ``name`` the property; ``connection`` the manager a
    connection property belongs to."""

    @property
    def kind(self) -> str: ...

    @property
    def container(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    @property
    def connection(self) -> str | None: ...


@dataclass
class Plan:
    """A checked package, ready to run.

    ``graphs``: container ref_id → DiGraph whose nodes are the ref_ids of the container's
    direct children, each edge (u, v) holding ``constraints``: the list of
    PrecedenceConstraint objects from u to v. ``flows``: the same graphs as plain data
    (:class:`ContainerFlow`), for the run, which need not import networkx. ``tasks``: task
    ref_id → the task built from its ObjectData (a prototype; the executor runs ``.copy()`` of
    it). ``executables``: ref_id → model
    object, for every executable including containers and event handlers. ``expressions``:
    expression text → compiled expression (every expression in the package, compiled once).
    ``skipped``: ref_ids of unsupported executables that run as disabled (``--unsupported skip``),
    with ``warnings`` saying so. ``assignments``: ref_id -> the executable's property expressions,
    in document order, each decided (:class:`PropertyAssignment`), for every executable that has
    any: the executor applies them from here instead of deciding again.
    """

    package: Package
    graphs: Mapping[str, nx.DiGraph] = field(default_factory=lambda: _LazyGraphs())
    tasks: dict[str, Task] = field(default_factory=dict)
    executables: dict[str, Executable] = field(default_factory=dict)
    expressions: dict[tuple[str, bool], CompiledExpression] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    warnings: list[Problem] = field(default_factory=list)
    assignments: dict[str, tuple[PropertyAssignment, ...]] = field(default_factory=dict)
    flows: Mapping[str, ContainerFlow] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.flows and isinstance(self.graphs, _LazyGraphs):
            self.flows = self.graphs.flows


@dataclass(frozen=True)
class ContainerFlow:
    """One container's checked precedence graph as plain data: ``nodes``, the ref_ids of its
    direct children in document order; ``successors[u][v]``, the PrecedenceConstraints from u to
    v (every node has an entry, in node order; targets in the order their first constraint
    appears). The same graph as ``Plan.graphs[ref]``, without networkx."""

    nodes: list[str]
    successors: dict[str, dict[str, list[PrecedenceConstraint]]]


def _flow(nodes: list[str], constraints: list[PrecedenceConstraint]) -> ContainerFlow:
    successors: dict[str, dict[str, list[PrecedenceConstraint]]] = {n: {} for n in nodes}
    for pc in constraints:  # checked: both ends are nodes
        targets = successors[pc.from_ref]
        found = targets.get(pc.to_ref)
        if found is None:
            targets[pc.to_ref] = [pc]
        else:
            found.append(pc)
    return ContainerFlow(nodes, successors)


class _LazyFlows(Mapping[str, ContainerFlow]):
    """Container ref_id -> ContainerFlow, each built from its checked nodes and constraints the
    first time it is read (and then kept), so planning a package never pays for containers the
    run does not reach. Keys, order, ``len`` and ``in`` are known up front, as with a dict."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[list[str], list[PrecedenceConstraint]]] = {}
        self._built: dict[str, ContainerFlow] = {}

    def define(self, ref: str, nodes: list[str], constraints: list[PrecedenceConstraint]) -> None:
        self._parts[ref] = (nodes, constraints)
        self._built.pop(ref, None)

    def __getitem__(self, ref: str) -> ContainerFlow:
        flow = self._built.get(ref)
        if flow is None:
            # setdefault is atomic: threads reading the same flow at once all get one object.
            flow = self._built.setdefault(ref, _flow(*self._parts[ref]))
        return flow

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, ref: object) -> bool:
        return ref in self._parts


class _LazyGraphs(Mapping[str, "nx.DiGraph"]):
    """Container ref_id -> DiGraph, each built from the container's flow the first time it is
    read (and then kept); networkx is imported only then. Keys as in ``flows``."""

    def __init__(self) -> None:
        self.flows = _LazyFlows()
        self._built: dict[str, nx.DiGraph] = {}

    def define(self, ref: str, nodes: list[str], constraints: list[PrecedenceConstraint]) -> None:
        """The graph of ``ref``: ``nodes`` in order, one edge per (from, to) pair of
        ``constraints``."""
        self.flows.define(ref, nodes, constraints)
        self._built.pop(ref, None)

    def __getitem__(self, ref: str) -> nx.DiGraph:
        graph = self._built.get(ref)
        if graph is None:
            graph = self._built.setdefault(ref, _digraph(self.flows[ref]))
        return graph

    def __iter__(self) -> Iterator[str]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def __contains__(self, ref: object) -> bool:
        return ref in self.flows

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.flows)!r})"


def _digraph(flow: ContainerFlow) -> nx.DiGraph:
    """Nodes in order; each edge (u, v) holds ``constraints``: the PrecedenceConstraints u -> v."""
    import networkx as nx  # here, not at the top: a run that reports no cycle never needs it

    graph = nx.DiGraph()
    graph.add_nodes_from(flow.nodes)
    graph.add_edges_from(
        [
            (u, v, {"constraints": pcs})
            for u, targets in flow.successors.items()
            for v, pcs in targets.items()
        ]
    )
    return graph


def build(
    package: Package,
    *,
    unsupported: str = "fail",
    path_map: Callable[[str], str] | None = None,
    connections: Mapping[str, str] | None = None,
    outer_variables: Iterable[str] = (),
    sets: Iterable[SetValue] = (),
) -> Plan:
    """Check ``package`` and build its plan; ``unsupported`` is ``"fail"`` or ``"skip"``.

    ``path_map`` is the run's ``--path-map`` (Windows path -> local path): a stored Windows path
    it leaves unmapped is a problem. ``connections`` holds the run's ``--conn`` overrides (a
    connection manager's name, DTSID or refId -> connection string), checked instead of the
    stored strings they replace. ``outer_variables`` names variables visible from outside the
    package (a parent package's, for a child run by an Execute Package task). ``sets`` are the
    run's parsed ``--set`` values: those that change what validation sees apply as the run will
    apply them (``Disable`` true on an executable: it is not validated, as a disabled one;
    a connection's ``ConnectionString``: checked instead of the stored one, after ``--conn``).
    """
    if unsupported not in ("fail", "skip"):
        raise ValueError(f"unsupported must be 'fail' or 'skip', not {unsupported!r}")
    with paused_gc():  # engine/gcpause.py says why
        planner = _Planner(
            package,
            skip_unsupported=unsupported == "skip",
            path_map=path_map,
            overrides=connections,
            outer_variables=outer_variables,
            sets=sets,
        )
        planner.run()
    if planner.problems:
        raise PackageValidationError(planner.problems, file=package.path or None)
    return planner.plan


def _where(location: SourceLocation | None) -> tuple[str | None, int | None]:
    if location is None:
        return None, None
    return location.file, location.line


class _Planner:
    """One package's planning: the index (executables, parents, scopes), the walk of the tree
    that decides what is checked (disabled and skipped parts are not), the property expressions
    decided once, and the problems and warnings. Each concern's checks are their own class
    (values, expressions, tasks, containers, connections), sharing this planner's index and
    reporting through it."""

    def __init__(
        self,
        package: Package,
        *,
        skip_unsupported: bool,
        path_map: Callable[[str], str] | None = None,
        overrides: Mapping[str, str] | None = None,
        outer_variables: Iterable[str] = (),
        sets: Iterable[SetValue] = (),
    ) -> None:
        self.package = package
        self.outer_variables = list(outer_variables)
        self.skip_unsupported = skip_unsupported
        self.path_map = path_map
        self.references = ConnectionReferences(package.all_connections())
        self.connections = _UsedConnections(self.references)
        self.sets = list(sets)
        # Connection strings the run replaces (--conn, then --set), by refId of the manager.
        self.overrides = self._connection_overrides(overrides or {})
        # Executables a --set disables (ref_ids, known once indexed): validated as disabled ones.
        self.set_disabled: frozenset[str] = frozenset()
        self.graphs = _LazyGraphs()
        self.plan = Plan(package=package, graphs=self.graphs)
        self.problems: list[Problem] = []
        self.parents: dict[str, str | None] = {}
        self.scopes: dict[str, frozenset[str]] = {}
        # The checks of one concern each; they report through this planner and share its index.
        self.value_checks = _ValueChecks(self)
        self.expression_checks = _ExpressionChecks(self)
        self.task_checks = _TaskChecks(self)
        self.container_checks = _ContainerChecks(self)
        self.connection_checks = _ConnectionChecks(self)
        self.transaction_checks = _TransactionChecks(self)

    # -- reporting

    def problem(
        self, code: str, message: str, location: SourceLocation | None, ref_id: str | None
    ) -> None:
        file, line = _where(location)
        self.problems.append(
            Problem(code, message, file or self.package.path or None, line, ref_id)
        )

    def warn(
        self, code: str, message: str, location: SourceLocation | None, ref_id: str | None
    ) -> None:
        file, line = _where(location)
        self.plan.warnings.append(
            Problem(code, message, file or self.package.path or None, line, ref_id)
        )

    # -- driver

    def run(self) -> None:
        self._index(self.package, None, self._package_scope())
        self.set_disabled = self._disabled_by_sets()
        self.value_checks.check_dtsids()
        self.value_checks.check_values()
        self._check_tree(self.package, disabled=False)
        self.expression_checks.package_expressions()
        self.connection_checks.check_connections()
        self.transaction_checks.check_transactions()

    # -- the run's overrides that change what is validated

    def _connection_overrides(self, given: Mapping[str, str]) -> dict[str, str]:
        """refId -> the connection string the run uses instead of the stored one: ``--conn`` by
        any reference form, then ``--set`` of a ConnectionString, which the run applies after.
        A reference that names no manager is left to the run, which reports it."""
        found: dict[str, str] = {}
        for ref, text in given.items():
            spec = self.references.find(ref)
            if spec is not None:
                found[spec.ref_id] = text
        for item in self.sets:
            if item.kind == "connection" and item.name.lower() == "connectionstring":
                spec = self.references.find(item.connection or "")
                if spec is not None:
                    found[spec.ref_id] = item.value
        return found

    def _disabled_by_sets(self) -> frozenset[str]:
        """ref_ids of executables a ``--set ...Properties[Disable];True`` disables (the path's
        executable found in any case, as the run finds it); a value that is not a boolean is
        left to the run, which refuses it."""
        by_lower = {ref.lower(): ref for ref in reversed(self.plan.executables)}
        found: set[str] = set()
        for item in self.sets:
            # Names compared as the run compares them: in any case, spaces kept.
            if item.kind != "property" or item.name.lower() not in _DISABLE_NAMES:
                continue
            ref = (
                item.container
                if item.container in self.plan.executables
                else by_lower.get(item.container.lower())
            )
            if ref is not None and ssis_flag(item.value) is True:
                found.add(ref)
        return frozenset(found)

    def _package_scope(self) -> frozenset[str]:
        names = {f"System::{n}" for n in SYSTEM_VARIABLES}
        names.update(SYSTEM_VARIABLES)  # an unqualified name finds a System variable last
        for name in self.outer_variables:
            text = name.strip().lstrip("@").strip("[]")
            names.add(text)
            names.add(text.split("::", 1)[-1])
        names.update(f"$Package::{p.name}" for p in self.package.parameters)
        names.update(f"$Project::{p.name}" for p in self.package.project_parameters)
        return frozenset(names)

    def _index(self, exe: Executable, parent: str | None, outer: frozenset[str]) -> None:
        """Every executable by ref_id, its parent, and the variable names visible inside it."""
        if exe.ref_id in self.plan.executables and self.plan.executables[exe.ref_id] is not exe:
            first = self.plan.executables[exe.ref_id]
            self.problem(
                "duplicate-refid",
                f"two executables have the refId '{exe.ref_id}' (the other is at "
                f"{first.location}); "
                "rename one of them",
                exe.location,
                exe.ref_id,
            )
        self.plan.executables[exe.ref_id] = exe
        self.parents[exe.ref_id] = parent
        scope = outer
        if (
            exe.variables
        ):  # most executables declare none, and then share their parent's scope object
            own = {v.qualified_name for v in exe.variables}
            own.update(v.name for v in exe.variables)  # an unqualified name finds any namespace
            scope = outer | own
        self.scopes[exe.ref_id] = scope
        for child in exe.event_handlers:
            self._check_event(child)
            self._index(child, exe.ref_id, scope)
        if exe.executables:
            self._index_children(exe.executables, exe.ref_id, scope)

    def _index_children(
        self, children: list[Executable], parent: str, scope: frozenset[str]
    ) -> None:
        """Speed: ``_index_children_plain`` (``_index`` for each child), with a leaf (no
        variables, handlers or children, a new refId: the usual task) recorded here, without a
        call per child. Pinned equal by test_plan.py's fast-path test."""
        executables, parents, scopes = self.plan.executables, self.parents, self.scopes
        for child in children:
            ref = child.ref_id
            if child.variables or child.event_handlers or child.executables or ref in executables:
                self._index(child, parent, scope)
            else:
                executables[ref] = child
                parents[ref] = parent
                scopes[ref] = scope

    def _index_children_plain(
        self, children: list[Executable], parent: str, scope: frozenset[str]
    ) -> None:
        """The plain reference of ``_index_children``."""
        for child in children:
            self._index(child, parent, scope)

    def _delayed(self, ref: str | None) -> bool:
        """Whether ``ref`` or a container above it sets DelayValidation."""
        while ref is not None:
            exe = self.plan.executables.get(ref)
            if exe is not None and exe.delay_validation:
                return True
            ref = self.parents.get(ref)
        return False

    # -- events

    def _check_event(self, handler: Executable) -> None:
        event = handler.event or ""
        if event in EVENT_NAMES:
            return
        self.problem(
            "unknown-event",
            f"event handler '{handler.ref_id}' is for the event '{event}', which is never raised, "
            "so the handler "
            f"never runs{_nearest(event, EVENT_NAMES)}; the events are {', '.join(EVENT_NAMES)}",
            handler.location,
            handler.ref_id,
        )

    # -- shared by the checks: paths, configurations

    def _check_path(
        self,
        stored: str,
        what: str,
        location: SourceLocation | None,
        ref_id: str,
        *,
        may_change: bool,
    ) -> None:
        """A Windows path that ``--path-map`` leaves unmapped cannot be opened here; a warning
        only when something may set the path at run time. Not checked when the caller gave no
        path map (``build`` without ``path_map``): it then maps paths in its own way."""
        from dtsx.engine.paths import unmapped_windows_path

        if self.path_map is None:
            return
        sentence = unmapped_windows_path(stored, self.path_map(stored))
        if sentence is not None:
            (self.warn if may_change else self.problem)(
                "unmapped-path", f"{what} {sentence}", location, ref_id
            )

    def _configurable(self) -> bool:
        """Whether package configurations may set properties at run time."""
        return bool(self.package.configurations)

    # -- the tree

    def _check_tree(self, exe: Executable, *, disabled: bool) -> None:
        off = disabled or exe.disabled or exe.ref_id in self.set_disabled
        if exe.property_expressions:
            self._assign(exe)
        if exe.kind is ExecutableKind.TASK:
            if not off:
                self.task_checks.check_task(exe)
            for handler in exe.event_handlers:
                self._check_tree(handler, disabled=off or exe.ref_id in self.plan.skipped)
            return
        skipped = False
        if exe.kind is ExecutableKind.FOREACH_LOOP and not off:
            skipped = self.container_checks.check_foreach(exe)
        if exe.kind is ExecutableKind.FOR_LOOP and not off:
            self.container_checks.check_for_loop(exe)
        self.container_checks.graph(exe)
        if not off and not skipped:
            self.expression_checks.executable_expressions(exe)
        for child in exe.event_handlers:
            self._check_tree(child, disabled=off or skipped)
        self._check_children(exe.executables, off or skipped)

    def _check_children(self, children: list[Executable], off: bool) -> None:
        """Speed: ``_check_children_plain`` (``_check_tree`` for each child), with a task that
        has no handlers (the usual child; containers hold thousands) checked here, without the
        call. Pinned equal by test_plan.py's fast-path test."""
        task, set_disabled = ExecutableKind.TASK, self.set_disabled
        for child in children:
            if child.kind is not task or child.event_handlers:
                self._check_tree(child, disabled=off)
                continue
            if child.property_expressions:
                self._assign(child)
            if not (off or child.disabled or (set_disabled and child.ref_id in set_disabled)):
                self.task_checks.check_task(child)

    def _check_children_plain(self, children: list[Executable], off: bool) -> None:
        """The plain reference of ``_check_children``."""
        for child in children:
            self._check_tree(child, disabled=off)

    def _assign(self, exe: Executable) -> tuple[PropertyAssignment, ...]:
        """Decide, once, what each property expression of ``exe`` sets (``Plan.assignments``);
        the checks, the task's validation and the executor all read the decision."""
        found = self.plan.assignments[exe.ref_id] = tuple(
            _assignment(exe, pe) for pe in exe.property_expressions
        )
        return found

    def _unsupported(self, exe: Executable, code: str, message: str) -> None:
        if self.skip_unsupported:
            self.plan.skipped.add(exe.ref_id)
            self.warn(
                code,
                f"{message}; it is skipped and runs as if disabled (--unsupported skip)",
                exe.location,
                exe.ref_id,
            )
        else:
            self.problem(code, message, exe.location, exe.ref_id)

    # -- property expressions (every executable's; Plan.assignments decides them)

    def _check_property_names(self, exe: Executable, cls: type[Task] | None = None) -> None:
        """Each property expression must name a property the executable has; otherwise the
        run either fails at the task or silently sets nothing."""
        for assigned in self.plan.assignments.get(exe.ref_id, ()):
            name = assigned.name
            if assigned.target is PropertyTarget.HOST or (
                cls is not None and cls.field_for(name) is not None
            ):
                continue
            if cls is None and name.lower() in _IGNORED_NAMES:
                self.warn(
                    "ignored-property",
                    f"the property expression on {name} of '{exe.name}' has no effect in dtsx, "
                    "which does not change that setting at run time",
                    assigned.location,
                    exe.ref_id,
                )
                continue
            known = set(HOST_PROPERTIES)
            if cls is not None:
                known |= cls.property_names()
                what = f"task '{exe.name}'"
            else:
                known |= IGNORED_HOST_PROPERTIES
                if exe.kind is ExecutableKind.FOR_LOOP:
                    known |= set(FOR_LOOP_PROPERTIES)
                what = f"{_KIND_NAMES.get(exe.kind, exe.kind.value)} '{exe.name}'"
            self._unknown_property(what, name, known, assigned.location, exe.ref_id)

    def _unknown_property(
        self,
        what: str,
        name: str,
        known: Iterable[str],
        location: SourceLocation | None,
        ref_id: str,
    ) -> None:
        names = sorted(set(known), key=str.lower)
        self.problem(
            "unknown-property",
            f"{what} has a property expression for '{name}', which is not one of its properties"
            f"{_nearest(name, names)}; its properties are {', '.join(names) or 'none'}",
            location,
            ref_id,
        )


class _TaskChecks:
    """Each enabled task: its type resolved to a registered class, its properties built and
    validated by the task itself, the connection managers and variables its data names, and the
    expressions it evaluates of its own."""

    def __init__(self, planner: _Planner) -> None:
        self.p = planner
        self.classes: dict[str, type[Task]] = {}
        # Validation contexts by scope, for tasks without property expressions (the common case):
        # siblings share one scope object, so they can share one context.
        self.contexts: dict[int, tuple[frozenset[str], ValidationContext]] = {}
        # Attribute key (Clark notation) -> its local name if it can name a connection, else None;
        # ``plain_attrs`` holds the keys already known to be None, to skip them with one set
        # difference.
        self.ref_attrs: dict[str, str | None] = {}
        self.plain_attrs: set[str] = set()
        self.resolved: dict[str, bool] = {}
        # (task class, attribute keys of its data element) -> the keys no property takes.
        self.unknown_keys: dict[tuple[type[Task], tuple[str, ...]], list[str]] = {}
        self.traits: dict[type[Task], tuple[bool, bool]] = {}

    def check_task(self, exe: Executable) -> None:
        cls = self.classes.get(exe.type_key) or self.task_class(exe)
        if cls is None:
            return
        try:
            task = cls.from_node(exe.object_data)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err.get("loc", ())) or "?"
                self.p.problem(
                    "bad-property",
                    f"task '{exe.name}': property {where}: {err.get('msg')}",
                    exe.location,
                    exe.ref_id,
                )
            return
        except DtsxError as exc:
            self.p.problem("bad-property", f"task '{exe.name}': {exc}", exe.location, exe.ref_id)
            return
        except Exception as exc:  # noqa: BLE001 - third-party plugin code: report it, never crash the planner
            self.p.problem(
                "plugin-error",
                f"task '{exe.name}': building it raised {type(exc).__name__}: {exc}",
                exe.location,
                exe.ref_id,
            )
            return
        self.p.plan.tasks[exe.ref_id] = task
        messages = self.validate_task(exe, task)
        if not cls.validates_connections:
            self.check_connection_refs(exe, messages)
        built_in, own_expressions = self.traits.get(cls) or self.class_traits(cls)
        if built_in:
            self.check_task_data(exe, cls)
        if exe.property_expressions or exe.variables:
            self.p._check_property_names(exe, cls)
            self.p.expression_checks.executable_expressions(exe)
        if own_expressions:
            self.task_expressions(exe, task)
        if exe.properties:
            self.check_exec_value_variable(exe)

    def class_traits(self, cls: type[Task]) -> tuple[bool, bool]:
        """(ships with dtsx, so its data may be judged; evaluates expressions of its own), once per
        class."""
        from dtsx.tasks.base import Task as TaskBase

        found = self.traits[cls] = (
            cls.__module__.startswith("dtsx.tasks."),
            cls.expressions is not TaskBase.expressions,
        )
        return found

    def task_expressions(self, exe: Executable, task: Task) -> None:
        """The expressions the task itself evaluates (an Expression Task's), compiled and checked
        in the task's scope like every other expression."""
        try:
            found = task.expressions()
        except Exception as exc:  # noqa: BLE001 - third-party plugin code: report it, never crash the planner
            self.p.problem(
                "plugin-error",
                f"task '{exe.name}': listing its expressions raised {type(exc).__name__}: {exc}",
                exe.location,
                exe.ref_id,
            )
            return
        if not found:  # the common case: the task evaluates no expression of its own
            return
        data = exe.object_data
        location = (
            _line(exe, data.children[0]) if data is not None and data.children else exe.location
        )
        replaced = self.replaced_texts(exe)
        for text, assignment in found:
            if text.strip() and text not in replaced:
                self.p.expression_checks.compile(text, assignment, location, exe.ref_id, exe.ref_id)

    @staticmethod
    def replaced_texts(exe: Executable) -> frozenset[str]:
        """Stored task settings that a property expression replaces at run time (the Expression
        Task's ``Expression`` set by an expression): a stale stored text is not what runs, and
        what the property expression builds is checked with the other property expressions."""
        data = exe.object_data
        if not exe.property_expressions or data is None or not data.children:
            return frozenset()
        dynamic = _set_names(exe.property_expressions)
        stored = data.children[0].attrs
        return frozenset(
            value for key, value in stored.items() if LOCAL_NAMES[key].lower() in dynamic
        )

    def check_exec_value_variable(self, exe: Executable) -> None:
        target = exe.properties.get("ExecValueVariable", "").strip()
        if target and not _visible(target, self.p.scopes.get(exe.ref_id, frozenset())):
            self.p.expression_checks.missing_variable(
                target,
                f"task '{exe.name}' stores its execution value (ExecValueVariable) in",
                exe.location,
                exe.ref_id,
                exe.ref_id,
            )

    def check_task_data(self, exe: Executable, cls: type[Task]) -> None:
        """A warning for each attribute or child element of a built-in task's data that none of
        its properties reads: a misspelt setting is otherwise dropped without a word. (A plugin
        may read its data its own way, so only built-in tasks are judged.)"""
        node = exe.object_data
        inner = node.children[0] if node is not None and node.children else None
        if inner is None:
            return
        key = (cls, tuple(inner.attrs))
        names = self.unknown_keys.get(key)
        if names is None:  # Speed: siblings of one type write the same attributes: look up once
            # The plugin contract's one definition of "an attribute no property reads".
            names = self.unknown_keys[key] = [found.name for found in cls.unknown_data(node)]
        if inner.children:
            names = names + self.unknown_children(inner, cls)
        for name in names:
            known = sorted(cls.property_names())
            self.p.warn(
                "unknown-data",
                f"task '{exe.name}': its data has '{name}', which no property of the task reads, "
                "so it is ignored"
                f"{_nearest(name, known)}",
                _line(exe, inner),
                exe.ref_id,
            )

    @staticmethod
    def unknown_children(inner: XmlNode, cls: type[Task]) -> list[str]:
        """Child elements no property takes: text-only ones always (the default reading takes
        them as properties); others only when the task reads its data the default way, since a
        task with its own reading consumes such elements itself."""
        from dtsx.tasks.base import Task as TaskBase

        default = TaskBase.properties_from_node.__func__  # type: ignore[attr-defined]
        own_reader = getattr(cls.properties_from_node, "__func__", None) is not default
        names = []
        for child in inner.children:
            if child.children:
                if not own_reader and cls.field_for(child.local_name) is None:
                    names.append(child.local_name)
            elif (
                child.text is not None
                and child.text.strip()
                and cls.field_for(child.local_name) is None
            ):
                names.append(child.local_name)
        return names

    def task_class(self, exe: Executable) -> type[Task] | None:
        """The registered class for the task's type; lookups are cached per type key."""
        if exe.type_key in self.classes:
            return self.classes[exe.type_key]
        cls = self.lookup_task_class(exe)
        if cls is not None:
            self.classes[exe.type_key] = cls
        return cls

    def lookup_task_class(self, exe: Executable) -> type[Task] | None:
        from dtsx.tasks.base import TASKS

        kind = exe.type_key or exe.raw_type or "(no type)"
        if exe.type_key.lower() in _SCRIPT_TYPES:
            self.p._unsupported(
                exe,
                "unsupported-task",
                f"task '{exe.name}' is a Script Task ({exe.raw_type}): C#/VB Script Tasks cannot "
                "run in dtsx; "
                "replace it with an Execute Process or Expression task, or a task plugin",
            )
            return None
        suggestions: list[str] = []
        try:
            return TASKS.get(exe.type_key) if exe.type_key else None
        except UnknownKeyError as exc:
            suggestions = exc.suggestions
        except PluginError as exc:
            self.p.problem(
                "plugin-error", f"task '{exe.name}' of type {kind}: {exc}", exe.location, exe.ref_id
            )
            return None
        # The registry's nearest keys are kept: a misspelt CreationName is the usual cause.
        near = (
            f" (did you mean {' or '.join(repr(s) for s in suggestions)}?)" if suggestions else ""
        )
        self.p._unsupported(
            exe,
            "unsupported-task",
            f"task '{exe.name}' has type {kind} ({exe.raw_type or 'no type'}), which dtsx does not "
            f"implement{near}; "
            "disable it, install a plugin that registers it, or run with --unsupported skip",
        )
        return None

    def validate_task(self, exe: Executable, task: Task) -> list[str]:
        scope = self.p.scopes.get(exe.ref_id, frozenset())
        if exe.property_expressions:
            vctx = self.context(scope, _set_names(exe.property_expressions), exe.ref_id)
        else:
            # Speed: siblings share one scope object, and so one context (see self.contexts).
            cached = self.contexts.get(id(scope))
            if cached is None or cached[0] is not scope:
                made = self.context(scope, frozenset(), exe.ref_id)
                cached = self.contexts[id(scope)] = (scope, made)
            vctx = cached[1]
        try:
            messages = task.validate(vctx)
            if messages.__class__ is not list:
                messages = list(messages)
        except DtsxError as exc:
            messages = [str(exc)]
        except Exception as exc:  # noqa: BLE001 - third-party plugin code: report it, never crash the planner
            messages = [f"its validation raised {type(exc).__name__}: {exc}"]
        for message in messages:
            self.p.problem(
                "invalid-task", f"task '{exe.name}': {message}", exe.location, exe.ref_id
            )
        return messages

    def resolves(self, value: str) -> bool:
        """True unless ``value`` is a GUID naming no connection manager (cached: tasks repeat
        them)."""
        known = self.resolved.get(value)
        if known is None:
            # Looked up even when not a GUID: the lookup records the manager as used.
            found = self.p.connections.type_of(value) is not None
            known = self.resolved[value] = found or not _GUID.match(value.strip())
        return known

    def context(
        self, scope: frozenset[str], dynamic: frozenset[str], ref_id: str
    ) -> ValidationContext:
        """What the task at ``ref_id`` may ask (siblings that share a scope object share one:
        they see the same variables)."""
        from dtsx.tasks.base import ValidationContext

        planner = self.p
        return ValidationContext(
            connection_type=planner.connections.type_of,
            has_variable=lambda name: _visible(name, scope),
            dynamic_properties=dynamic,
            variable=lambda name: _declared_variable(planner, ref_id, name),
            connection_dialect=lambda ref: _connection_dialect(planner, ref),
        )

    def check_connection_refs(self, exe: Executable, already: list[str]) -> None:
        """Any GUID in a *Connection*/SMTPServer attribute of the task's data must name a CM."""
        if exe.object_data is None:
            return
        found = self.reference_attributes(exe.object_data)
        if not found:
            return
        dynamic = _set_names(exe.property_expressions) if exe.property_expressions else frozenset()
        for local, value in found:
            if (
                (dynamic and local.lower() in dynamic)
                or self.resolved.get(value)
                or self.resolves(value)
            ):
                continue
            if any(value in message for message in already):
                continue
            self.p.problem(
                "missing-connection",
                f"task '{exe.name}': {local}={value} matches no connection manager in the package "
                "or project; "
                "add the connection manager or pass --project-dir",
                exe.location,
                exe.ref_id,
            )

    def reference_attributes(self, data: XmlNode) -> list[tuple[str, str]]:
        """Speed: what :func:`_reference_attributes_plain` returns (local name, value of each
        attribute that may name a connection manager, in document order), with each attribute
        key classified once per planner: keys known not to name one are dropped with one set
        difference per element. Pinned equal by test_plan.py's fast-path test."""
        kinds, plain = self.ref_attrs, self.plain_attrs
        found: list[tuple[str, str]] = []
        stack = [data]
        while stack:
            node = stack.pop()
            children, attrs = node.children, node.attrs
            if children:
                stack.extend(reversed(children))  # depth first, in document order
            rest = attrs.keys() - plain if attrs else None
            if not rest:
                continue
            # One key left (the usual SMTPServer or Connection): no need to walk them all.
            for key in rest if len(rest) == 1 else [key for key in attrs if key in rest]:
                local = kinds.get(key, "")
                if local == "":
                    local = kinds[key] = _reference_attribute(key)
                    if local is None:
                        plain.add(key)
                if local is not None:
                    found.append((local, attrs[key]))
        return found


class _ConnectionChecks:
    """Each connection manager's settings as its plugin checks them, and the names its property
    expressions set."""

    def __init__(self, planner: _Planner) -> None:
        self.p = planner

    def check_connections(self) -> None:
        """Each connection manager's settings, as its plugin checks them (``check``), and the
        names its property expressions set: what would otherwise fail only when a task first
        uses it, or be hidden by ``--dev-smtp``."""
        for cm in self.p.package.all_connections():
            cls = self.connection_class(cm)
            if cls is None:
                continue
            self.check_connection_names(cm, cls)
            override = self.override_for(cm)
            dynamic = _set_names(cm.property_expressions)
            if override is None and "connectionstring" in dynamic:
                continue  # the string exists only at run time
            settings = self.settings(cm, override)
            # Warn only when the run may never open it (no checked task names it), when another
            # expression or a configuration may still change what is checked, or when the string
            # is empty or lacks its encrypted parts: one the run is meant to supply (--conn).
            may_change = (
                cm.ref_id not in self.p.connections.used
                or override is None
                and (
                    bool(dynamic)
                    or cm.delay_validation
                    or self.p._configurable()
                    or bool(cm.sensitive_unavailable)
                    or not (cm.connection_string or "").strip()
                )
            )
            report = self.p.warn if may_change else self.p.problem
            for message in self.connection_problems(cm, cls, settings):
                report("bad-connection", message, cm.location, cm.ref_id)
            text = settings.connection_string.strip().strip('"')
            if text and "=" not in text:
                self.p._check_path(
                    text,
                    f"connection manager '{cm.name}' points at",
                    cm.location,
                    cm.ref_id,
                    may_change=may_change,
                )

    def connection_class(self, cm: ConnectionManagerSpec) -> type[ConnectionManager] | None:
        from dtsx.connections.base import CONNECTIONS

        try:
            return CONNECTIONS.get(cm.type_key) if cm.type_key else None
        except UnknownKeyError:  # an unknown type fails when a task uses it, with its own sentence
            return None
        except PluginError as exc:  # a broken plugin: the registry's sentence names it and why
            self.p.problem(
                "plugin-error",
                f"connection manager '{cm.name}' of type {cm.creation_name}: {exc}",
                cm.location,
                cm.ref_id,
            )
            return None

    def check_connection_names(
        self, cm: ConnectionManagerSpec, cls: type[ConnectionManager]
    ) -> None:
        # A plugin that does not declare its runtime properties is not second-guessed.
        own = getattr(cls, "runtime_properties", None)
        if own is None or not cm.property_expressions:
            return
        known = {n.lower() for n in (*CONNECTION_PROPERTIES, *own)}
        for pe in cm.property_expressions:
            name = pe.name.strip()
            if name.lower() not in known:
                self.p._unknown_property(
                    f"connection manager '{cm.name}'",
                    name,
                    {*CONNECTION_PROPERTIES, *own},
                    pe.location or cm.location,
                    cm.ref_id,
                )

    def override_for(self, cm: ConnectionManagerSpec) -> str | None:
        return self.p.overrides.get(cm.ref_id)

    def ask(self, cm: ConnectionManagerSpec, question: str) -> object:
        """What the manager's class answers, without connecting, to the optional classmethod
        ``question`` (``transaction_support``, ``dialect_of``) on the run's settings; None when
        the class lacks it or it raises (plugin code: unknown is the safe answer)."""
        asked = getattr(self.connection_class(cm), question, None)
        if asked is None:
            return None
        try:
            return asked(self.settings(cm, self.override_for(cm)))
        except Exception:  # noqa: BLE001 - third-party plugin code: never crash the planner
            return None

    def settings(self, cm: ConnectionManagerSpec, override: str | None) -> ConnectionSettings:
        from dtsx.connections.base import ConnectionSettings

        return ConnectionSettings(
            name=cm.name,
            creation_name=cm.type_key,
            connection_string=cm.connection_string or "" if override is None else override,
            dtsid=cm.dtsid,
            properties=dict(cm.properties),
            local_path=self.p.path_map or _identity,
        )

    @staticmethod
    def connection_problems(
        cm: ConnectionManagerSpec, cls: type[ConnectionManager], settings: ConnectionSettings
    ) -> list[str]:
        try:
            return list(cls.check(settings))
        except DtsxError as exc:
            return [str(exc)]
        except Exception as exc:  # noqa: BLE001 - third-party plugin code: report it, never crash the planner
            return [f"connection manager '{cm.name}': its check raised {type(exc).__name__}: {exc}"]


class _TransactionChecks:
    """SSIS transactions as dtsx can honour them (no DTC): the TransactionOption and
    IsolationLevel codes, and for each transaction the database connections its tasks use: ODBC
    cannot join one (as in SSIS), and several connections commit together only where every one can
    prepare (two-phase)."""

    # Type keys of the database connection managers that may enlist in a transaction.
    DATABASE_TYPES = frozenset({"OLEDB", "ADO.NET", "ODBC", "ADO"})

    def __init__(self, planner: _Planner) -> None:
        self.p = planner

    def check_transactions(self) -> None:
        required = False
        for exe in self.p.plan.executables.values():
            option, level = exe.transaction_option, exe.isolation_level
            if option not in TRANSACTION_OPTIONS or (
                level is not None and level not in ISOLATION_LEVELS
            ):
                self.check_codes(exe)
            required = required or option == 2
        if required:  # most packages start no transaction: no second walk for them
            for owner, tasks in self.scopes():
                self.check_scope(owner, tasks)

    def check_codes(self, exe: Executable) -> None:
        what = f"{_KIND_NAMES.get(exe.kind, exe.kind.value)} '{exe.name}'"
        if exe.transaction_option not in TRANSACTION_OPTIONS:
            known = ", ".join(f"{name} {code}" for code, name in TRANSACTION_OPTIONS.items())
            self.p.problem(
                "bad-property",
                f"{what}: TransactionOption {exe.transaction_option} is not an SSIS transaction "
                f"option ({known})",
                exe.location,
                exe.ref_id,
            )
        level = exe.isolation_level
        if level is not None and level not in ISOLATION_LEVELS:
            known = ", ".join(f"{name} {code}" for code, name in ISOLATION_LEVELS.items())
            self.p.problem(
                "bad-property",
                f"{what}: IsolationLevel {level} is not an SSIS isolation level ({known})",
                exe.location,
                exe.ref_id,
            )

    def scopes(self) -> list[tuple[Executable, list[Executable]]]:
        """Each executable that starts a transaction (Required, none in force) with the enabled
        tasks that run inside it; a NotSupported executable and what it holds run outside."""
        found: list[tuple[Executable, list[Executable]]] = []
        disabled = self.p.set_disabled

        def visit(exe: Executable, tasks: list[Executable] | None) -> None:
            if exe.disabled or exe.ref_id in disabled:
                return
            if exe.transaction_option == 0:
                tasks = None
            elif exe.transaction_option == 2 and tasks is None:
                tasks = []
                found.append((exe, tasks))
            if exe.kind is ExecutableKind.TASK and tasks is not None:
                tasks.append(exe)
            for child in (*exe.event_handlers, *exe.executables):
                visit(child, tasks)

        visit(self.p.package, None)
        return found

    def check_scope(self, owner: Executable, tasks: list[Executable]) -> None:
        members: dict[str, tuple[ConnectionManagerSpec, str]] = {}
        for task in tasks:
            for spec in self.database_connections(task):
                support = self.support(spec)
                if support == "none":
                    self.p.problem(
                        "transaction",
                        f"task '{task.name}' uses the {spec.type_key} connection '{spec.name}' "
                        f"inside the transaction of '{owner.name}' (TransactionOption=Required); "
                        "it cannot join an SSIS transaction (0xC002F308): set the task's "
                        "TransactionOption to NotSupported, or use an OLE DB or ADO.NET connection",
                        task.location,
                        task.ref_id,
                    )
                else:
                    members.setdefault(spec.ref_id, (spec, support))
        if len(members) > 1 and any(support != "two-phase" for _, support in members.values()):
            names = ", ".join(f"'{spec.name}' ({support})" for spec, support in members.values())
            self.p.problem(
                "transaction",
                f"the transaction of '{owner.name}' (TransactionOption=Required) spans the "
                f"connections {names}, which cannot commit together: dtsx has no DTC, and commits "
                "several connections at once only when every one can prepare (PostgreSQL); use "
                "one connection, or set TransactionOption to NotSupported on the tasks of all but "
                "one",
                owner.location,
                owner.ref_id,
            )

    def database_connections(self, task: Executable) -> list[ConnectionManagerSpec]:
        if task.object_data is None:
            return []
        found: list[ConnectionManagerSpec] = []
        for _, value in self.p.task_checks.reference_attributes(task.object_data):
            spec = self.p.references.find(value)
            if spec is not None and spec.type_key.upper() in self.DATABASE_TYPES:
                if spec not in found:
                    found.append(spec)
        return found

    def support(self, spec: ConnectionManagerSpec) -> str:
        """ "two-phase", "local" or "none", as the connection's plugin tells without connecting
        ("local", a transaction of its own, when it does not say)."""
        found = self.p.connection_checks.ask(spec, "transaction_support")
        return found if found in ("two-phase", "local", "none") else "local"


class _ContainerChecks:
    """Foreach and For Loops (enumerator, its data and variables, loop expressions) and each
    container's precedence constraints (ends, values, cycles; the graph itself is lazy)."""

    def __init__(self, planner: _Planner) -> None:
        self.p = planner

    def check_foreach(self, exe: Executable) -> bool:
        """True when the loop is skipped as unsupported."""
        enum = exe.enumerator
        if enum is None or enum.type_key not in SUPPORTED_ENUMERATORS:
            kind = (
                "no enumerator"
                if enum is None
                else f"the enumerator {enum.raw_type or '(no type)'}"
            )
            self.p._unsupported(
                exe,
                "unsupported-enumerator",
                f"Foreach Loop '{exe.name}' has {kind}; dtsx runs the File, Item, From Variable "
                "and ADO enumerators",
            )
            return self.p.skip_unsupported
        scope = self.p.scopes.get(exe.ref_id, frozenset())
        dynamic = _set_names(enum.property_expressions)
        for key in _ENUMERATOR_VARIABLE_SETTINGS:
            source = enum.properties.get(key, "").strip()
            if source and key.lower() not in dynamic and not _visible(source, scope):
                self.p.problem(
                    "missing-variable",
                    f"Foreach Loop '{exe.name}' enumerates the variable '{source}' ({key}), "
                    "which is not a variable in its scope",
                    enum.location or exe.location,
                    exe.ref_id,
                )
        for mapping in exe.variable_mappings:
            if not _visible(mapping.variable, scope):
                self.p.problem(
                    "missing-variable",
                    f"Foreach Loop '{exe.name}' maps value {mapping.value_index} to "
                    f"'{mapping.variable}', "
                    "which is not a variable in its scope",
                    mapping.location or exe.location,
                    exe.ref_id,
                )
        allowed = ENUMERATOR_PROPERTIES.get(enum.type_key, frozenset())
        for pe in enum.property_expressions:
            if pe.name.strip() not in allowed:
                what = f"the enumerator of Foreach Loop '{exe.name}'"
                self.p._unknown_property(
                    what, pe.name.strip(), allowed, pe.location or enum.location, enum.ref_id
                )
        self.p.expression_checks.compile_all(enum.property_expressions, enum.ref_id, exe.ref_id)
        self.check_enumerator_data(exe)
        directory = enum.properties.get("Directory", "").strip()
        if directory and "directory" not in dynamic:
            self.p._check_path(
                directory,
                f"Foreach Loop '{exe.name}' enumerates the folder",
                enum.location or exe.location,
                exe.ref_id,
                may_change=self.p._configurable(),
            )
        return False

    def check_enumerator_data(self, exe: Executable) -> None:
        """Elements and attributes of a built-in enumerator's data that it does not read (a
        warning each), and an Item enumerator whose data holds no items it can read (an error:
        the loop would run zero times without a word)."""
        enum = exe.enumerator
        known = ENUMERATOR_DATA.get(enum.type_key) if enum is not None else None
        if enum is None or known is None or enum.object_data is None:
            return
        elements, attributes = known
        where = enum.location or exe.location
        nodes = list(enum.object_data.iter())[1:]
        for node in nodes:
            if node.local_name not in elements:
                self.p.warn(
                    "unknown-data",
                    f"the enumerator of Foreach Loop '{exe.name}' has an element "
                    f"'{node.local_name}', "
                    f"which it does not read{_nearest(node.local_name, elements)}",
                    _line(exe, node, where),
                    enum.ref_id,
                )
            for key in node.attrs:
                local = LOCAL_NAMES[key]
                if local not in attributes:
                    self.p.warn(
                        "unknown-data",
                        f"the enumerator of Foreach Loop '{exe.name}' has an attribute '{local}' "
                        "on "
                        f"'{node.local_name}', which it does not read{_nearest(local, attributes)}",
                        _line(exe, node, where),
                        enum.ref_id,
                    )
        if enum.type_key == "Microsoft.ForEachItemEnumerator":
            self.check_items(exe, nodes, elements, where)

    def check_items(
        self,
        exe: Executable,
        nodes: list[XmlNode],
        elements: frozenset[str],
        where: SourceLocation | None,
    ) -> None:
        """No item at all but elements it does not know: they were meant as items. (An empty
        ``<FEIEItems/>`` is a loop over nothing, as the author wrote it.)"""
        items = [node for node in nodes if node.local_name.lower() == "feieitem"]
        if not items and any(node.local_name not in elements for node in nodes):
            self.p.problem(
                "empty-enumerator",
                f"the Item enumerator of Foreach Loop '{exe.name}' holds no "
                '<FEIEItems><FEIEItem><FEIEItemValue Type="8" Value="..."/> rows, so the loop '
                "would run "
                "zero times; write its items in that form",
                where,
                exe.ref_id,
            )
        for item in items:
            for value in item.children:
                code = (value.get("Type") or value.get("DataType") or "8").strip()
                type_name = VARTYPE_TO_DOTNET.get(int(code)) if code.lstrip("-").isdigit() else None
                location = _line(exe, value, where)
                if type_name is None:
                    self.p.problem(
                        "bad-datatype",
                        f"an item of Foreach Loop '{exe.name}' has Type {code!r}, which is "
                        f"not a type code; use one of {_TYPE_CODES}",
                        location,
                        exe.ref_id,
                    )
                    continue
                raw = value.get("Value")
                self.p.value_checks.check_value(
                    type_name,
                    value.text or "" if raw is None else raw,
                    f"an item of Foreach Loop '{exe.name}'",
                    location,
                    exe.ref_id,
                )

    def check_for_loop(self, exe: Executable) -> None:
        if not exe.eval_expression:
            self.p.problem(
                "invalid-task",
                f"For Loop '{exe.name}' has no EvalExpression; set one, or the loop can never end",
                exe.location,
                exe.ref_id,
            )
        for text, assignment in (
            (exe.init_expression, True),
            (exe.eval_expression, False),
            (exe.assign_expression, True),
        ):
            if text:
                self.p.expression_checks.compile(
                    text, assignment, exe.location, exe.ref_id, exe.ref_id
                )

    def graph(self, container: Executable) -> None:
        """Check the container's constraints now; its DiGraph is built when first read."""
        nodes = [child.ref_id for child in container.executables]
        known = set(nodes)
        constraints = [
            pc
            for pc in container.precedence_constraints
            if self.constraint_ok(container, pc, known)
        ]
        self.p.graphs.define(container.ref_id, nodes, constraints)
        if constraints and not _no_cycle(nodes, known, constraints):
            self.report_cycles(container, self.p.graphs[container.ref_id])

    def constraint_ok(
        self, container: Executable, pc: PrecedenceConstraint, known: set[str]
    ) -> bool:
        if (
            pc.from_ref in known
            and pc.to_ref in known
            and pc.eval_op == 2
            and pc.value in _CONSTRAINT_VALUES
        ):
            return True  # Speed: the common case, a plain constraint between two siblings
        ok = True
        for end, ref in (("From", pc.from_ref), ("To", pc.to_ref)):
            if ref not in known:
                ok = False
                self.p.problem(
                    "bad-constraint", self.bad_end(container, pc, end, ref), pc.location, pc.ref_id
                )
        if pc.value not in _CONSTRAINT_VALUES or pc.eval_op not in _EVAL_OPS:
            ok = False
            self.p.problem(
                "bad-constraint",
                f"precedence constraint '{pc.name or pc.ref_id}' has Value={pc.value} "
                f"EvalOp={pc.eval_op}; "
                "Value must be 0, 1 or 2 and EvalOp 1 to 4",
                pc.location,
                pc.ref_id,
            )
        elif pc.eval_op != 2 and not (pc.expression or "").strip():
            ok = False
            self.p.problem(
                "bad-constraint",
                f"precedence constraint '{pc.name or pc.ref_id}' has EvalOp={pc.eval_op}, which "
                "needs an expression, "
                "but has none",
                pc.location,
                pc.ref_id,
            )
        elif pc.eval_op != 2 and pc.expression:
            self.p.expression_checks.compile(
                pc.expression, False, pc.location, pc.ref_id, container.ref_id
            )
        return ok

    def bad_end(self, container: Executable, pc: PrecedenceConstraint, end: str, ref: str) -> str:
        """Why a constraint's From or To names no sibling, and the form it expects."""
        head = f"precedence constraint '{pc.name or pc.ref_id}' has {end}='{ref}'"
        siblings = {child.name: child.ref_id for child in container.executables}
        short = ref.replace("/", "\\").rsplit("\\", 1)[-1]
        if ref in siblings or (short in siblings and siblings[short] != ref):
            wanted = siblings[short if ref not in siblings else ref]
            return (
                f"{head}, a name where the refId of an executable is expected; "
                f"write {end}='{wanted}'"
            )
        if ref in self.p.plan.executables:
            return (
                f"{head}, which is not directly inside '{container.ref_id}'; constraints only link "
                "executables "
                "of the same container"
            )
        refs = list(siblings.values())
        example = refs[0] if refs else f"{container.ref_id}\\Name"
        return (
            f"{head}, which is no executable's refId; {end} takes the refId of an executable "
            "directly inside "
            f"'{container.ref_id}', such as '{example}'{_nearest(ref, refs)}"
        )

    def report_cycles(self, container: Executable, graph: nx.DiGraph) -> None:
        import networkx as nx

        for component in nx.strongly_connected_components(graph):
            if len(component) == 1:
                (node,) = component
                if not graph.has_edge(node, node):
                    continue
            names = sorted(component)
            first = self.p.plan.executables.get(names[0])
            through = ", ".join(f"'{n}'" for n in names)
            self.p.problem(
                "cycle",
                f"precedence constraints in '{container.ref_id}' form a cycle through {through}; "
                "remove one of the constraints",
                first.location if first else container.location,
                names[0],
            )


class _ValueChecks:
    """Identity and stored values: DTSIDs that repeat, and the type codes and values of every
    variable and parameter (the run refuses a bad one before anything executes)."""

    def __init__(self, planner: _Planner) -> None:
        self.p = planner

    def check_dtsids(self) -> None:
        if self.dtsids_unique():
            return
        seen: dict[str, tuple[str, SourceLocation | None]] = {}
        for ref, dtsid, location in self.identified():
            key = guid_key(dtsid)  # GUIDs compare in any case, braces optional
            if not key:
                continue
            if key in seen:
                other_ref, other_loc = seen[key]
                self.p.problem(
                    "duplicate-dtsid",
                    f"DTSID {dtsid} is used by '{ref}' and by '{other_ref}' (at {other_loc}); "
                    "give one of them a new GUID",
                    location,
                    ref,
                )
            else:
                seen[key] = (ref, location)

    def dtsids_unique(self) -> bool:
        """Speed: True when no GUID (and at most one blank) repeats: the common case, checked
        without building the (ref, GUID, location) rows that reporting needs (``_identified``,
        the plain reference, keyed by ``guid_key``). ``_no_repeat`` is pinned by
        test_plan_lazy_graphs.py never to miss a repeat the exact key finds."""
        executables = self.p.plan.executables.values()
        raw = [exe.dtsid for exe in executables if exe.dtsid]
        for exe in executables:
            if exe.variables:
                raw.extend(v.dtsid for v in exe.variables if v.dtsid)
            if exe.precedence_constraints:
                raw.extend(pc.dtsid for pc in exe.precedence_constraints if pc.dtsid)
        raw.extend(cm.dtsid for cm in self.p.package.connections if cm.dtsid)
        return _no_repeat(raw) or len({guid_key(dtsid) for dtsid in raw}) == len(raw)

    def identified(self) -> list[tuple[str, str, SourceLocation | None]]:
        # A list, not a generator: this visits every object of the package once.
        found: list[tuple[str, str, SourceLocation | None]] = []
        for exe in self.p.plan.executables.values():
            if exe.dtsid:
                found.append((exe.ref_id, exe.dtsid, exe.location))
            if exe.variables:
                found.extend((v.ref_id, v.dtsid, v.location) for v in exe.variables if v.dtsid)
            if exe.precedence_constraints:
                found.extend(
                    (pc.ref_id, pc.dtsid, pc.location)
                    for pc in exe.precedence_constraints
                    if pc.dtsid
                )
        found.extend(
            (cm.ref_id, cm.dtsid, cm.location) for cm in self.p.package.connections if cm.dtsid
        )
        return found

    def check_values(self) -> None:
        """Type codes and stored values of every variable and parameter: the run refuses a bad
        one before anything executes, so it is a problem here, with its line."""
        for exe in self.p.plan.executables.values():
            if exe.variables:
                for var in exe.variables:
                    self.check_variable(var)
        for param in (*self.p.package.parameters, *self.p.package.project_parameters):
            self.check_parameter(param)

    def check_variable(self, var: Variable) -> None:
        if var.data_type not in VARTYPE_TO_DOTNET:
            self.p.problem(
                "bad-datatype",
                f"variable {var.qualified_name} has DataType {var.data_type}, which is not a type "
                "code; "
                f"use one of {_TYPE_CODES}",
                var.location,
                var.ref_id,
            )
        elif var.value is not None and not var.sensitive_unavailable:
            self.check_value(
                var.dotnet_type,
                var.value,
                f"variable {var.qualified_name}",
                var.location,
                var.ref_id,
            )

    def check_parameter(self, param: Parameter) -> None:
        codes = TYPECODE_TO_DOTNET if param.scope == "Project" else VARTYPE_TO_DOTNET
        if param.data_type_code not in codes:
            listed = _PROJECT_TYPE_CODES if param.scope == "Project" else _TYPE_CODES
            self.p.problem(
                "bad-datatype",
                f"parameter {param.qualified_name} has DataType {param.data_type_code}, which is "
                "not a type code; "
                f"use one of {listed}",
                param.location,
                param.qualified_name,
            )
        elif param.value is not None and not param.sensitive_unavailable:
            self.check_value(
                param.dotnet_type,
                param.value,
                f"parameter {param.qualified_name}",
                param.location,
                param.qualified_name,
                secret=param.sensitive,
            )

    def check_value(
        self,
        type_name: str,
        raw: str,
        what: str,
        location: SourceLocation | None,
        ref_id: str,
        *,
        secret: bool = False,
    ) -> None:
        if type_name == "Object":
            return
        from dtsx.engine.expressions import value_from_dotnet

        try:
            value_from_dotnet(type_name, raw)
        except ExpressionError as exc:
            # The reason may quote the value (a date parser's does): a secret's is left out whole.
            shown = "its value" if secret else f"the value {_short(raw)}"
            why = "" if secret else f" ({exc.message})"
            self.p.problem(
                "bad-value",
                f"{what} has the type {type_name}, and {shown} is not of that type"
                f"{why}; correct the value or the DataType",
                location,
                ref_id,
            )


class _ExpressionChecks:
    """Every expression compiled once (``Plan.expressions``), and the variables each use reads
    checked in the scope where it appears."""

    def __init__(self, planner: _Planner) -> None:
        from dtsx.engine.expressions import compile as compile_expression

        self.p = planner
        self.compiler: Callable[..., CompiledExpression] = compile_expression

    def executable_expressions(self, exe: Executable) -> None:
        if exe.kind is not ExecutableKind.TASK and exe.property_expressions:
            self.p._check_property_names(exe)
        self.compile_all(exe.property_expressions, exe.ref_id, exe.ref_id)
        for var in exe.variables:
            if var.evaluate_as_expression and var.expression:
                self.compile(var.expression, False, var.location, var.ref_id, exe.ref_id)
            self.compile_all(var.property_expressions, var.ref_id, exe.ref_id)

    def package_expressions(self) -> None:
        for cm in self.p.package.all_connections():
            self.compile_all(cm.property_expressions, cm.ref_id, self.p.package.ref_id)

    def compile_all(self, expressions: list[PropertyExpression], ref_id: str, owner: str) -> None:
        for expr in expressions:
            if expr.expression.strip():
                self.compile(expr.expression, False, expr.location, ref_id, owner)

    def compile(
        self,
        text: str,
        assignment: bool,
        location: SourceLocation | None,
        ref_id: str,
        owner: str | None = None,
    ) -> None:
        """Compile once per text; then check its variables in ``owner``'s scope (each place an
        expression appears has its own scope, so this runs for every use)."""
        compiled = self.p.plan.expressions.get((text, assignment))
        if compiled is None:
            try:
                compiled = self.p.plan.expressions[(text, assignment)] = self.compiler(
                    text, assignment=assignment
                )
            except ExpressionError as exc:
                self.p.problem("expression", f"{exc}", location, ref_id)
                return
        if owner is None or not compiled.variables:
            return
        scope = self.p.scopes.get(owner, frozenset())
        for name in compiled.variables_in_order():
            if not _visible(name, scope):
                self.missing_variable(
                    name, f"the expression {_short(text)} reads", location, ref_id, owner
                )

    def missing_variable(
        self, name: str, what: str, location: SourceLocation | None, ref_id: str, owner: str
    ) -> None:
        if (
            name.strip().lstrip("@[").startswith("$Project::")
            and not self.p.package.project_parameters
        ):
            # The project was not loaded, so its parameters are unknown here, not wrong.
            self.p.warn(
                "missing-variable",
                f"{what} @[{name}], a project parameter, but no Project.params was found "
                "beside the package; pass --project-dir with the project's folder",
                location,
                ref_id,
            )
            return
        scope = self.p.scopes.get(owner, frozenset())
        # DelayValidation defers the check to run time (a child may read its parent's variables).
        report = self.p.warn if self.p._delayed(owner) else self.p.problem
        report(
            "missing-variable",
            f"{what} @[{name}], which is not a variable in the scope of "
            f"'{owner}'{_nearest_variable(name, scope)}; "
            "declare it or correct the name",
            location,
            ref_id,
        )


def _assignment(exe: Executable, pe: PropertyExpression) -> PropertyAssignment:
    """What one property expression of ``exe`` sets: a host setting (any executable's, and a For
    Loop's own), else the task's property, else (on a container) a setting dtsx ignores."""
    name = pe.name.strip()
    low = name.lower()
    host = low in _HOST_NAMES or (exe.kind is ExecutableKind.FOR_LOOP and low in _FOR_LOOP_NAMES)
    if host:
        target = PropertyTarget.HOST
    elif exe.kind is ExecutableKind.TASK:
        target = PropertyTarget.TASK
    else:
        target = PropertyTarget.IGNORED
    return PropertyAssignment(
        name, target, _HOST_FIELDS[low] if host else None, pe.expression, pe.location
    )


def _reference_attributes_plain(data: XmlNode) -> list[tuple[str, str]]:
    """(local name, value) of each attribute of ``data`` and its descendants that may name a
    connection manager, in document order: the plain reference of
    ``_TaskChecks.reference_attributes``."""
    return [
        (local, value)
        for node in data.iter()
        for key, value in node.attrs.items()
        if (local := _reference_attribute(key)) is not None
    ]


def _set_names(expressions: Iterable[PropertyExpression]) -> frozenset[str]:
    """The names the property expressions set, as names compare: stripped, in lower case."""
    return frozenset(pe.name.strip().lower() for pe in expressions)


def _no_cycle(nodes: list[str], known: set[str], constraints: list[PrecedenceConstraint]) -> bool:
    """Speed: what :func:`_no_cycle_plain` (networkx) says, without building a graph: the usual
    layout (every constraint goes forward in document order) is seen in one pass, and Kahn's
    algorithm decides the rest. ``known`` is ``set(nodes)``. Pinned equal by test_plan.py."""
    return _forward(nodes, constraints) or _acyclic(known, constraints)


def _no_cycle_plain(nodes: list[str], constraints: list[PrecedenceConstraint]) -> bool:
    """The plain reference of :func:`_no_cycle`."""
    import networkx as nx

    return bool(nx.is_directed_acyclic_graph(_digraph(_flow(nodes, constraints))))


def _forward(nodes: list[str], constraints: list[PrecedenceConstraint]) -> bool:
    """True when every constraint goes to a later sibling in document order, the usual layout:
    such a graph has no cycle. False proves nothing (Kahn's algorithm decides then)."""
    position = {ref: i for i, ref in enumerate(nodes)}
    return all(position[pc.from_ref] < position[pc.to_ref] for pc in constraints)


def _acyclic(nodes: set[str], constraints: list[PrecedenceConstraint]) -> bool:
    """Kahn's algorithm over the (from, to) pairs: True when no cycle. Cheaper than asking networkx,
    whose generic version costs as much as building the graph; cycles are then reported by
    networkx's strongly connected components."""
    indegree = dict.fromkeys(nodes, 0)
    after: dict[str, list[str]] = {}
    for u, v in {(pc.from_ref, pc.to_ref) for pc in constraints}:
        indegree[v] += 1
        if u in after:
            after[u].append(v)
        else:
            after[u] = [v]
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for nxt in after.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return seen == len(indegree)


def _no_repeat(dtsids: list[str]) -> bool:
    """True when the GUIDs surely have no repeat, found with a few passes over all of them at
    once: uppercased, without braces or whitespace anywhere. GUIDs that are equal under the
    exact key (strip, strip braces, uppercase) are equal here too, so False only means
    "ask the exact key" (a NUL inside a GUID also lands there)."""
    joined = "\x00".join(dtsids).upper().replace("{", "").replace("}", "")
    keys = "".join(joined.split()).split("\x00")
    return len(keys) == len(dtsids) and len(set(keys)) == len(dtsids)


def _nearest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest candidate (compared in any case), else ``""``."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def _nearest_variable(name: str, scope: frozenset[str]) -> str:
    """The nearest name by its part after ``::`` (namespaces are few and alike): the same name in
    another namespace first, else the closest one; written as the expression wrote ``name``."""
    namespace, _, short = name.rpartition("::")
    others: dict[str, str] = {}
    for candidate in sorted(scope):
        if "::" in candidate and not candidate.startswith("System::"):
            others.setdefault(candidate.rpartition("::")[2], candidate)
    if short in others and namespace:
        return f" (did you mean '{others[short]}'?)"
    close = difflib.get_close_matches(short, list(others), n=1, cutoff=0.6)
    if not close:  # a one-letter name is near nothing by itself: compare whole names, strictly
        whole = {others[n]: n for n in others}
        close = [
            whole[n]
            for n in difflib.get_close_matches(
                f"{namespace}::{short}", list(whole), n=1, cutoff=0.8
            )
        ]
    if not close:
        return ""
    return f" (did you mean '{others[close[0]] if namespace else close[0]}'?)"


def _short(text: str, limit: int = 80) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _line(
    exe: Executable, node: XmlNode, default: SourceLocation | None = None
) -> SourceLocation | None:
    """The location of an element of ``exe``'s data: its own line when known."""
    base = default or exe.location
    if base is None or node.line is None:
        return base
    return SourceLocation(file=base.file, line=node.line)


def _identity(path: str) -> str:
    return path


def _bare_name(name: str) -> str:
    """A variable reference as scopes hold it: ``@[User::X]`` and ``@X`` without their marks."""
    text = name.strip()
    if text.startswith("@[") and text.endswith("]"):
        return text[2:-1]
    if text.startswith("@"):
        return text[1:]
    return text


def _visible(name: str, scope: frozenset[str]) -> bool:
    text = _bare_name(name)
    # System variables are accepted by name: the planner does not list every event's variables.
    return text in scope or text.startswith("System::")


def _declared_variable(planner: _Planner, ref_id: str, name: str) -> Variable | None:
    """The variable ``name`` (``User::X``, ``X``, ``@[User::X]``) finds from the executable
    ``ref_id``: its own, then each container's up to the package, as the run's scopes find
    them; None for System variables and names declared outside the package."""
    text = _bare_name(name)
    namespace, _, short = text.rpartition("::")
    current: str | None = ref_id
    while current is not None:
        exe = planner.plan.executables.get(current)
        for var in exe.variables if exe is not None else ():
            if var.name == short and (not namespace or var.namespace == namespace):
                return var
        current = planner.parents.get(current)
    return None


def _connection_dialect(planner: _Planner, ref: str) -> str | None:
    """The SQL dialect the database connection ``ref`` names will open (after ``--conn``),
    as its plugin tells without connecting; None when it cannot tell."""
    spec = planner.references.find(ref)
    if spec is None:
        return None
    found = planner.connection_checks.ask(spec, "dialect_of")
    return found if isinstance(found, str) and found else None


class _UsedConnections:
    """The planner's view of the one resolver: the type a reference names (asked once per
    reference: tasks repeat the same few), and which managers a checked task names (``used``:
    the ones the run may open)."""

    def __init__(self, references: ConnectionReferences) -> None:
        self.references = references
        self.types: dict[str, str | None] = {}
        self.used: set[str] = set()

    def type_of(self, ref: str) -> str | None:
        if ref in self.types:
            return self.types[ref]
        cm = self.references.find(ref)
        if cm is not None:
            self.used.add(cm.ref_id)
        found = self.types[ref] = cm.type_key if cm is not None else None
        return found


def _reference_attribute(key: str) -> str | None:
    """The local name of an attribute that may name a connection manager (``*Connection*``,
    ``SMTPServer``), else None; ``key`` is in Clark notation."""
    local = LOCAL_NAMES[key]
    low = local.lower()
    return local if "connection" in low or low == "smtpserver" else None
