"""The bind stage: what a user gave (:class:`RunOptions`) and what the package configures, turned
into a run's initial state before anything runs.

Parameters, package configurations, ``--config-file``, ``--conn``, ``CM.*`` parameters and
``--set`` are applied in SSIS's order (:func:`bind`), giving the root scope, the connection specs
and strings, the executables' host property values and the concurrency limit; every override
that cannot be applied is collected into one PackageValidationError. This is the only running
module that reads files through the loader: configuration files here, child packages in
:func:`load_child_plan`, so the executor itself never reads XML.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from dtsx.connections.base import Redirect
from dtsx.engine import loader
from dtsx.engine.errors import DtsxError, PackageValidationError, Problem
from dtsx.engine.events import LogSink
from dtsx.engine.model import ConnectionManagerSpec, Package
from dtsx.engine.overrides import (
    MAX_CONCURRENT,
    Overrides,
    PropertySet,
    configuration_sets,
    design_configurations,
    valid_concurrency,
)
from dtsx.engine.scopes import Scopes, outer_scope
from dtsx.engine.variables import LOCK_TIMEOUT_S, Scope, VariableStore

if TYPE_CHECKING:
    from dtsx.engine.plan import Plan

__all__ = [
    "RunOptions",
    "Binding",
    "bind",
    "concurrency_limit",
    "effective_limit",
    "load_child_plan",
]


@dataclass
class RunOptions:
    """How to run a plan: only what a user (or the program embedding dtsx) sets. Everything has
    a default; the CLI fills what the user gave."""

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
    # Turns a child package path into a plan (Execute Package); default: load_child_plan.
    plan_loader: Callable[[str], Plan] | None = None
    # How long a task waits for a variable another task holds locked (see engine.variables).
    variable_lock_timeout_s: float = LOCK_TIMEOUT_S

    def for_child(
        self,
        max_concurrent: int,
        parameters: dict[str, object],
        variables: dict[str, object],
        cancel_event: threading.Event,
    ) -> RunOptions:
        """The options of a child package run by Execute Package: what the child is given,
        and this run's limit, cancellation, logs, paths and redirect (never its --set,
        --config-file or --conn, which name this package's objects)."""
        return RunOptions(
            max_concurrent=max_concurrent,
            parameters=dict(parameters),
            variables=dict(variables),
            path_map=self.path_map,
            cancel_event=cancel_event,
            sinks=self.sinks,
            project_dir=self.project_dir,
            unsupported=self.unsupported,
            plan_loader=self.plan_loader,
            connection_redirect=self.connection_redirect,
            variable_lock_timeout_s=self.variable_lock_timeout_s,
        )


@dataclass
class Binding:
    """A run's initial state: the root scope with every override applied, the connection specs
    and connection strings for the Connections collection, ``--set`` values of executables'
    properties (ref_id → {property: raw value}), a MaxConcurrentExecutables a ``--set`` gave,
    and the warnings of configurations that could not be applied."""

    root: Scope
    specs: list[ConnectionManagerSpec]
    connection_strings: dict[str, str]
    host_sets: dict[str, dict[str, str]]
    max_concurrent: int | None
    warnings: list[str]


def bind(
    plan: Plan,
    options: RunOptions,
    store: VariableStore,
    scopes: Scopes,
    parent_scope: Scope | None = None,
) -> Binding:
    """Parameters, variables and connections with every override applied; raises
    PackageValidationError listing every override that cannot be applied. ``parent_scope`` is
    the Execute Package task's scope when a parent package runs this one."""
    package = plan.package
    overrides = Overrides(plan, store, scopes.slots_for)
    params = overrides.parameters(options.parameters)
    errors: list[str] = []
    missing = store.add_parameters(
        [*package.parameters, *package.project_parameters], params, errors
    )
    for message in errors:
        overrides.problem("override-parameter", message)
    # A configuration or --set may still give a Required parameter its value: the Value it
    # has now is replaced (never changed in place) if one does.
    unset = {name: store.parameters[name].value for name in missing}
    outer = outer_scope(store, parent_scope, options.variables)
    root = scopes.make(package, outer)
    design, parent = _configurations(overrides, options, root, outer)
    overrides.connections(options.connections)
    overrides.sets(options.sets, root)
    # As SSIS 2008+ does under dtexec: the package's own configurations are applied before
    # the command line and again after it, so a --set cannot replace a configured value;
    # parent package variable configurations come last of all.
    overrides.configured(design, root)
    overrides.configured(parent, root)
    for name, value in unset.items():
        if store.parameters[name].value is value:
            overrides.problem(
                "required-parameter",
                f"parameter {name} is Required and has no value: "
                f"supply it with --param {name}=VALUE",
            )
    if overrides.problems:
        raise PackageValidationError(overrides.problems, file=package.path or None)
    return Binding(
        root,
        overrides.specs,
        overrides.connection_strings,
        overrides.host_sets,
        overrides.max_concurrent,
        list(overrides.warnings),
    )


def _configurations(
    overrides: Overrides, options: RunOptions, root: Scope, outer: Scope | None
) -> tuple[list[PropertySet], list[PropertySet]]:
    """Apply the package's configurations (but parent package variables), then --config-file.
    Returns what the command line is followed by: the same configurations again, and the
    parent variable ones. A --config-file that cannot be read is an error (it was asked
    for); the package's own configurations only warn, as in SSIS."""
    parent = (
        (lambda name: outer.get(name) if name in outer else None) if outer is not None else None
    )
    design, parent_items, notes = design_configurations(
        overrides.package,
        options.path_map or _identity,
        dict(os.environ),
        parent,
        read_file=loader.load_configuration_file,
    )
    overrides.warnings.extend(notes)
    overrides.configured(design, root)
    for path in options.config_files:
        try:
            values = loader.load_configuration_file(path)
        except DtsxError as exc:
            overrides.problem("override-config", f"--config-file {path}: {exc}")
            continue
        items, notes = configuration_sets(values, f"--config-file {path}")
        overrides.warnings.extend(notes)
        overrides.configured(items, root)
    return design, parent_items


def concurrency_limit(package: Package, given: int | None) -> int:
    """MaxConcurrentExecutables in effect: --max-concurrent, else the package's attribute.
    A value SSIS refuses (0, below -1, beyond Int32) is a validation error before the run;
    a huge valid one costs nothing (Slots makes tokens only as tasks take them)."""
    if not valid_concurrency(package.max_concurrent_executables):
        line = package.location.line if package.location is not None else None
        raise PackageValidationError(
            [
                Problem(
                    "max-concurrent",
                    f'MaxConcurrentExecutables="{package.max_concurrent_executables}" is not '
                    "valid: "
                    "set it to -1 (the number of CPUs + 2) or to a number of tasks from 1 to "
                    f"{MAX_CONCURRENT}",
                    package.path or None,
                    line,
                    "Package",
                )
            ],
            file=package.path or None,
        )
    if given is not None and not valid_concurrency(given):
        raise PackageValidationError(
            [
                Problem(
                    "override-max-concurrent",
                    f"--max-concurrent (/MaxConcurrent) {given} is not valid: give -1 "
                    f"(the number of CPUs + 2) or a number of tasks from 1 to {MAX_CONCURRENT}",
                )
            ],
            file=package.path or None,
        )
    return effective_limit(given if given is not None else package.max_concurrent_executables)


def effective_limit(value: int) -> int:
    """A valid MaxConcurrentExecutables as a number of tasks: -1 is the number of CPUs + 2."""
    return value if value > 0 else (os.cpu_count() or 1) + 2


def load_child_plan(
    path: str, *, project_dir: str | None, unsupported: str, outer_variables: list[str]
) -> Plan:
    """A child package's plan (loader + planner); ``outer_variables`` are the names its parent
    lets it read, so the planner does not refuse them as missing."""
    from dtsx.engine import plan as planner  # the planner's imports are paid only by a child

    package = loader.load(path, project_dir=project_dir)
    return planner.build(package, unsupported=unsupported, outer_variables=outer_variables)


def _identity(path: str) -> str:
    return path
