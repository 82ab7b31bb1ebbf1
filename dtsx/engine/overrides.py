"""Run-time overrides: ``--set`` (dtexec property paths), ``--param``, ``--conn``,
``CM.<connection>.<property>`` parameters and package configurations (the 2005-2008
``.dtsConfig`` files, environment variables and parent package variables), applied before
anything runs.

:func:`parse_set` turns one ``--set`` / ``/Set`` argument into a :class:`PropertySet`;
:class:`Overrides` applies them to a run's variables, connection specs and executable
properties and collects *every* problem (unknown variable, path, parameter or connection,
a value the type refuses), which the bind stage (engine.bind) raises together as one
PackageValidationError. Nothing here reads a file: the bind stage hands in the reader of
configuration files, and the plan only as the package and its executables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Protocol
from collections.abc import Callable, Mapping

from dtsx.connections.base import is_url, parse_connection_string

from dtsx.engine.paths import unmapped_windows_path
from dtsx.engine.errors import DtsxError, PackageValidationError, Problem
from dtsx.engine.model import (
    ConfiguredValue,
    ConnectionManagerSpec,
    Executable,
    Package,
    PackageConfiguration,
    package_configurations,
)
from dtsx.engine.references import ConnectionReferences
from dtsx.engine.variables import Scope, Slot, VariableStore, split_name

__all__ = ["PropertySet", "parse_set", "Overrides", "configuration_sets", "design_configurations"]

_PATH = re.compile(
    r"^\\(?P<exe>[^.\[]+(?:\.EventHandlers\[[^\]]+\](?:\\[^.\[]+)*)?)(?P<rest>\..*)$", re.IGNORECASE
)
_VARIABLE = re.compile(
    r"^\.Variables\[(?P<n>[^\]]+)\](?:\.Properties\[Value\]|\.Value)?$", re.IGNORECASE
)
_CONNECTION = re.compile(
    r"^\.Connections\[(?P<c>[^\]]+)\](?:\.Properties\[(?P<p>[^\]]+)\]|\.(?P<q>\w+))$", re.IGNORECASE
)
_PROPERTY = re.compile(r"^(?:\.Properties\[(?P<p>[^\]]+)\]|\.(?P<q>\w+))$", re.IGNORECASE)

# Reads the values of one .dtsConfig file (the bind stage passes the loader's reader).
ReadConfiguration = Callable[[str], list[ConfiguredValue]]


class PlannedPackage(Protocol):
    """What overrides need of a plan: the package and every executable by ref_id."""

    @property
    def package(self) -> Package: ...

    @property
    def executables(self) -> Mapping[str, Executable]: ...


@dataclass(frozen=True)
class PropertySet:
    """One ``--set`` / ``/Set``: a variable, an executable property, or a connection property.

    ``container`` is the ref_id of the executable the path names (``Package``,
    ``Package\\Seq\\Task``, ``Package.EventHandlers[OnError]``); ``name`` the variable's
    qualified name or the property name; ``connection`` the connection manager for
    connection properties.
    """

    kind: str  # "variable" | "property" | "connection"
    container: str
    name: str
    value: str
    connection: str | None = None
    text: str = ""
    sensitive: bool = False  # dtexec's $Sensitive:: prefix: the value is never shown
    origin: str = "--set"  # what messages name: --set, or the configuration it came from

    @property
    def label(self) -> str:
        """How messages name this override: ``--set '<argument>'``, or the configuration and
        path."""
        return (
            f"{self.origin} {self.shown!r}"
            if self.origin == "--set"
            else f"{self.origin}: {self.shown}"
        )

    @property
    def marked_sensitive(self) -> bool:
        """Given with dtexec's ``$Sensitive::``: the value itself is a secret, and so is the
        variable it sets (configuration values are only kept out of messages)."""
        return self.sensitive and self.text.strip()[:12].lower() == "$sensitive::"

    @property
    def shown(self) -> str:
        """The argument as errors may show it: a sensitive value is masked."""
        if not self.sensitive or self.text.strip()[:12].lower() != "$sensitive::":
            return self.text
        body = self.text.strip()[12:]  # after "$Sensitive::"
        if body.startswith("\\"):
            return f"$Sensitive::{body.split(';', 1)[0]};********"
        return f"$Sensitive::{body.split('=', 1)[0]}=********"


def parse_set(text: str) -> PropertySet:
    """``User::X=V``, ``$Package::P=V`` or a dtexec property path ``\\Package...;V``
    (the value is everything after the first ``;``)."""
    raw = text.strip()
    sensitive = raw[:12].lower() == "$sensitive::"  # dtexec's mark for values kept out of logs
    if sensitive:
        raw = raw[12:]
    if raw.startswith("\\"):
        path, sep, value = raw.partition(";")
        if not sep:
            raise _usage(
                f"--set {path.strip()!r} has no ';' between the property path and the value"
            )
        item = _parse_path(path.strip(), value, text)
        return replace(item, sensitive=sensitive) if sensitive else item
    name, sep, value = raw.partition("=")
    if not sep or not name.strip():
        shown = name.strip() if sensitive else text
        raise _usage(
            f"--set {shown!r} must be NAME=VALUE (e.g. User::Count=3) or a \\Package... property "
            "path"
        )
    namespace, short = split_name(name)
    return PropertySet(
        "variable",
        "Package",
        f"{namespace or 'User'}::{short}",
        value,
        text=text,
        sensitive=sensitive,
    )


MAX_CONCURRENT = 2**31 - 1  # MaxConcurrentExecutables is an Int32: -1 (CPUs + 2), or 1 up to this


def valid_concurrency(value: int) -> bool:
    """Whether SSIS accepts ``value`` as MaxConcurrentExecutables (0 and below -1 it refuses)."""
    return value == -1 or 1 <= value <= MAX_CONCURRENT


def _concurrency(item: PropertySet) -> int:
    try:
        value = int(item.value.strip())
    except ValueError:
        value = 0
    if not valid_concurrency(value):
        raise DtsxError(
            f"MaxConcurrentExecutables cannot be {item.value.strip()!r}: give -1 (the number of "
            f"CPUs + 2) or a number of tasks from 1 to {MAX_CONCURRENT}"
        )
    return value


def _usage(message: str) -> PackageValidationError:
    return PackageValidationError([Problem("override-invalid", message)])


def _parse_path(path: str, value: str, text: str) -> PropertySet:
    match = _PATH.match(path)
    if match is None:
        raise _usage(
            f"--set property path {path!r} is not of the form "
            "\\Package[\\Child...].Collection[Name].Properties[Prop]"
        )
    container = match.group("exe")
    if container.lower().startswith("package"):
        container = "Package" + container[len("package") :]
    rest = match.group("rest")
    var = _VARIABLE.match(rest)
    if var:
        namespace, short = split_name(var.group("n"))
        return PropertySet(
            "variable", container, f"{namespace or 'User'}::{short}", value, text=text
        )
    conn = _CONNECTION.match(rest)
    if conn:
        prop = conn.group("p") or conn.group("q")
        return PropertySet(
            "connection", container, prop, value, connection=conn.group("c"), text=text
        )
    prop = _PROPERTY.match(rest)
    if prop:
        return PropertySet(
            "property", container, prop.group("p") or prop.group("q"), value, text=text
        )
    if rest.lower().startswith(".parameters["):
        raise _usage(
            f"--set property path {path!r}: a parameter is set as a variable, "
            "\\Package.Variables[$Package::NAME].Properties[Value] (or --param NAME=VALUE)"
        )
    raise _usage(
        f"--set property path {path!r}: cannot tell what {rest!r} names "
        "(Variables[...], Connections[...] or Properties[...])"
    )


class Overrides:
    """Applies one run's overrides; ``problems`` collects everything that could not be applied.

    Results: ``specs`` (copies of the connection specs, CM properties applied),
    ``connection_strings`` (name → connection string for the Connections collection),
    ``host_sets`` (ref_id → {property: raw value} for executables), ``max_concurrent``.
    """

    def __init__(
        self,
        plan: PlannedPackage,
        store: VariableStore,
        slots_for: Callable[[Executable], list[Slot]],
    ) -> None:
        self.plan = plan
        self.package = plan.package
        self.store = store
        self._slots_for = slots_for
        self.problems: list[Problem] = []
        self.specs = [s.model_copy(deep=True) for s in self.package.all_connections()]
        self._references = ConnectionReferences(self.specs)
        self.connection_strings: dict[str, str] = {}
        self.host_sets: dict[str, dict[str, str]] = {}
        self.max_concurrent: int | None = None
        self.warnings: list[str] = []

    def problem(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message, self.package.path or None))

    # -- parameters and connections ------------------------------------------------------------
    def parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        """``--param`` values by qualified name (bare = ``$Package::``); ``CM.*`` go to
        connections."""
        known = {
            p.qualified_name for p in [*self.package.parameters, *self.package.project_parameters]
        }
        result: dict[str, Any] = {}
        for name, value in given.items():
            if name.upper().startswith("CM."):
                self._cm_parameter(name, str(value))
                continue
            namespace, short = split_name(name)
            qualified = f"{namespace if namespace else '$Package'}::{short}"
            if qualified not in known:
                names = ", ".join(sorted(known)) or "none"
                self.problem(
                    "override-parameter",
                    f"the package has no parameter {qualified} (its parameters: {names})",
                )
                continue
            result[qualified] = value
        return result

    def _cm_parameter(self, name: str, value: str) -> None:
        parts = name.split(".")
        if len(parts) < 3:
            self.problem("override-parameter", f"{name!r} must be CM.<connection>.<property>")
            return
        self.connection_property(".".join(parts[1:-1]), parts[-1], value)

    def connections(self, given: dict[str, str]) -> None:
        """``--conn NAME=STRING`` (by name or DTSID); applied after CM parameters, so they win."""
        for name, conn_string in given.items():
            spec = self._find_spec(name)
            if spec is None:
                self.problem(
                    "override-connection",
                    f"--conn names {name!r}, which is not a connection manager of "
                    f"the package ({self._spec_names()})",
                )
                continue
            self.connection_strings[spec.name] = conn_string

    def connection_property(self, conn: str, prop: str, value: str) -> None:
        """Set one property: ConnectionString replaces the string; any other becomes a key in it."""
        spec = self._find_spec(conn)
        if spec is None:
            self.problem(
                "override-connection",
                f"no connection manager {conn!r} to set {prop} on ({self._spec_names()})",
            )
            return
        if prop.lower() == "connectionstring":
            self.connection_strings[spec.name] = value
            return
        spec.properties[prop] = value
        current = self.connection_strings.pop(spec.name, None)
        if is_url(current if current is not None else spec.connection_string):
            # A URL has no keys: the property alone carries the value to the manager.
            if current is not None:
                self.connection_strings[spec.name] = current
            return
        try:
            parsed = parse_connection_string(
                current if current is not None else spec.connection_string
            )
        except DtsxError as exc:  # the parser's sentence names the key and position, never a value
            self.problem(
                "override-connection", f"connection manager {spec.name!r}: cannot set {prop}: {exc}"
            )
            return
        parsed[prop] = value
        self.connection_strings[spec.name] = parsed.render(hide=frozenset())

    def _find_spec(self, name: str) -> ConnectionManagerSpec | None:
        return self._references.find(name.strip())

    def _spec_names(self) -> str:
        return ", ".join(repr(s.name) for s in self.specs) or "it has none"

    # -- --set ----------------------------------------------------------------------------------
    def sets(self, items: list[PropertySet], root: Scope) -> None:
        for item in items:
            try:
                self._apply(item, root)
            except DtsxError as exc:
                detail = (
                    "the value is not valid for it (not shown: sensitive)"
                    if item.sensitive
                    else str(exc)
                )
                self.problem("override-invalid", f"{item.label}: {detail}")

    def configured(self, items: list[PropertySet], root: Scope) -> None:
        """Package configurations: as in SSIS, a value that cannot be applied (no such variable,
        path or connection, or a value the type refuses) is a warning and the run goes on."""
        before = len(self.problems)
        self.sets(items, root)
        for problem in self.problems[before:]:
            if problem.message not in self.warnings:  # design-time configurations apply twice
                self.warnings.append(problem.message)
        del self.problems[before:]

    def _apply(self, item: PropertySet, root: Scope) -> None:
        if item.kind == "connection":
            self.connection_property(item.connection or "", item.name, item.value)
            return
        ref = self._resolve_ref(item.container)
        if ref is None:
            self.problem(
                "override-path", f"{item.label}: the package has no executable {item.container!r}"
            )
        elif item.kind == "variable":
            self._set_variable(root, ref, item)
        elif ref == "Package" and item.name.lower() == "maxconcurrentexecutables":
            self.max_concurrent = _concurrency(item)
        else:
            self.host_sets.setdefault(ref, {})[item.name] = item.value
            self._expression_wins(item, ref)

    def _expression_wins(self, item: PropertySet, ref: str) -> None:
        """SSIS evaluates property expressions after --set and configurations, so the expression's
        value is the one used: say so, instead of ignoring the --set without a word."""
        exe = self.plan.executables.get(ref)
        wanted = item.name.lower()
        for pe in exe.property_expressions if exe is not None else ():
            if pe.name.lower() == wanted:
                self._warn(
                    f"{item.label} sets {pe.name} of {ref!r}, but the property expression "
                    f"{pe.expression!r} sets it too; as in SSIS, the expression's value is used "
                    "(remove the expression to let the value apply)"
                )
                return

    def _warn(self, message: str) -> None:
        if message not in self.warnings:  # design-time configurations apply twice
            self.warnings.append(message)

    def _set_variable(self, root: Scope, ref: str, item: PropertySet) -> None:
        if item.name.startswith("$"):
            slot = self.store.parameters.get(item.name)
            if slot is None:
                self.problem("override-parameter", f"{item.label}: no parameter {item.name}")
                return
            holder = Scope(self.store, None, "Package")
            holder.add(slot)
            holder.force(item.name, item.value, sensitive=item.marked_sensitive)
            return
        if ref == "Package":
            scope = root
        else:
            scope = Scope(self.store, None, ref)
            for slot in self._slots_for(self.plan.executables[ref]):
                scope.add(slot)
        if item.name not in scope.own:
            self.problem("override-variable", f"{item.label}: {ref!r} has no variable {item.name}")
            return
        scope.force(item.name, item.value, sensitive=item.marked_sensitive)
        if scope.own[item.name].expression is not None:
            self._warn(
                f"{item.label} sets {item.name}, but the variable is computed by its expression "
                "(EvaluateAsExpression); as in SSIS, the expression's value is used"
            )

    def _resolve_ref(self, container: str) -> str | None:
        if container in self.plan.executables:
            return container
        lowered = container.lower()
        return next((ref for ref in self.plan.executables if ref.lower() == lowered), None)


# -- package configurations ------------------------------------------------------------------------


def configuration_sets(
    values: list[ConfiguredValue], origin: str
) -> tuple[list[PropertySet], list[str]]:
    """The values of one configuration file as property sets, and a warning for each path that
    is not a property path. Values are treated as secrets in messages: files hold passwords."""
    items: list[PropertySet] = []
    warnings: list[str] = []
    for value in values:
        where = f"{origin}, from {value.location}" if value.location is not None else origin
        try:
            item = _parse_path(value.path, value.value, value.path)
        except PackageValidationError as exc:
            warnings.append(f"{where}: {exc.problems[0].message}")
            continue
        items.append(replace(item, origin=where, sensitive=True))
    return items, warnings


def design_configurations(
    package: Package,
    local_path: Callable[[str], str],
    environ: dict[str, str],
    parent_value: Callable[[str], Any] | None,
    *,
    read_file: ReadConfiguration,
) -> tuple[list[PropertySet], list[PropertySet], list[str]]:
    """The property sets a package's own configurations give, in their order: those of XML
    files (type 1, or 5 through an environment variable, read with ``read_file``) and
    environment variables (2), then separately those of parent package variables (0), which
    SSIS applies last of all; and a warning for each configuration that cannot be read (SSIS
    warns and runs on)."""
    items: list[PropertySet] = []
    parent_items: list[PropertySet] = []
    warnings: list[str] = []
    for config in package_configurations(package):
        found, notes = _one_configuration(config, local_path, environ, parent_value, read_file)
        (parent_items if config.type == 0 else items).extend(found)
        warnings.extend(notes)
    return items, parent_items, warnings


def _one_configuration(
    config: PackageConfiguration,
    local_path: Callable[[str], str],
    environ: dict[str, str],
    parent_value: Callable[[str], Any] | None,
    read_file: ReadConfiguration,
) -> tuple[list[PropertySet], list[str]]:
    where = f"configuration {config.name or config.string!r}"
    if config.location is not None:
        where += f" ({config.location})"
    if config.type in (1, 5):
        path = config.string if config.type == 1 else environ.get(config.string)
        if path is None:
            return [], [
                f"{where}: the environment variable {config.string} that names its file is not "
                "set; "
                "its values are not applied"
            ]
        return _file_configuration(where, path, local_path, read_file)
    if config.type == 2:
        value = environ.get(config.string)
        if value is None:
            return [], [
                f"{where}: the environment variable {config.string} is not set; {config.target} "
                "keeps its value"
            ]
        return configuration_sets([ConfiguredValue(path=config.target, value=value)], where)
    if config.type == 0:
        if parent_value is None:
            return [], [
                f"{where}: the parent package variable {config.string} is only there when an "
                "Execute "
                f"Package task runs this package; {config.target} keeps its value"
            ]
        value = parent_value(config.string)
        if value is None:
            return [], [
                f"{where}: the parent package has no variable {config.string}; {config.target} "
                "keeps its value"
            ]
        return configuration_sets([ConfiguredValue(path=config.target, value=str(value))], where)
    # Types 1, 2, 5 and 0 are read above; the others (registry, SQL Server, INI...) are not.
    return [], [
        f"{where}: configurations of the kind '{config.kind}' are not supported by dtsx; its "
        "values "
        "are not applied (give them with --set or --config-file)"
    ]


def _file_configuration(
    where: str, path: str, local_path: Callable[[str], str], read_file: ReadConfiguration
) -> tuple[list[PropertySet], list[str]]:
    local = local_path(path)
    problem = unmapped_windows_path(path, local)
    if problem is not None:
        return [], [f"{where}: its file {problem}; its values are not applied"]
    try:
        values = read_file(local)
    except DtsxError as exc:
        return [], [f"{where}: {exc}; its values are not applied"]
    return configuration_sets(values, where)
