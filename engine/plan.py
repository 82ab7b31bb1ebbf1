"""Model → plan: resolve types, validate task properties, check references, build one
``networkx.DiGraph`` per container, and report *every* problem with file, line and refId.

Nothing here runs anything. ``build`` raises :class:`PackageValidationError` listing all
problems; a package that plans cleanly can be handed to the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from dtsx.engine.errors import PackageValidationError, Problem
from dtsx.engine.model import Executable, Package

if TYPE_CHECKING:
    from dtsx.engine.expressions import CompiledExpression
    from dtsx.tasks.base import Task

__all__ = ["Plan", "build"]


@dataclass
class Plan:
    """A checked package, ready to run.

    ``graphs``: container ref_id → DiGraph whose nodes are the ref_ids of the container's
    direct children, each edge (u, v) holding ``constraints``: the list of
    PrecedenceConstraint objects from u to v. ``tasks``: task ref_id → the task built from its
    ObjectData (a prototype; the executor runs ``.copy()`` of it). ``executables``: ref_id → model
    object, for every executable including containers and event handlers. ``expressions``:
    expression text → compiled expression (every expression in the package, compiled once).
    ``skipped``: ref_ids of unsupported executables that run as disabled (``--unsupported skip``),
    with ``warnings`` saying so.
    """

    package: Package
    graphs: dict[str, nx.DiGraph] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    executables: dict[str, Executable] = field(default_factory=dict)
    expressions: dict[tuple[str, bool], CompiledExpression] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    warnings: list[Problem] = field(default_factory=list)


def build(package: Package, *, unsupported: str = "fail") -> Plan:
    """Check ``package`` and build its plan; ``unsupported`` is ``"fail"`` or ``"skip"``."""
    raise PackageValidationError(
        [Problem("not-implemented", "the planner is not written yet", package.path or None)]
    )
