"""Plain in-test stand-ins for what the executor gives a task: variables, events, connections.

These are data holders (a dict, lists), not protocol mocks: tasks read and write them exactly
as they would the executor's scoped variables and event sink.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dtsx.engine.errors import ConnectionManagerError
from dtsx.tasks.base import TaskContext

__all__ = ["Events", "PathConnections", "Vars", "make_ctx"]


class Vars:
    """Variables by qualified name; ``X`` finds ``User::X``."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})

    def _key(self, name: str) -> str:
        name = name.strip().strip("@[]")
        if name in self.values:
            return name
        if "::" not in name and f"User::{name}" in self.values:
            return f"User::{name}"
        raise KeyError(name)

    def get(self, name: str) -> Any:
        return self.values[self._key(name)]

    def set(self, name: str, value: Any) -> None:
        try:
            self.values[self._key(name)] = value
        except KeyError:
            self.values[name] = value

    def __contains__(self, name: str) -> bool:
        try:
            self._key(name)
        except KeyError:
            return False
        return True


class Events:
    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def information(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def error(self, message: str, code: int = 0) -> None:
        self.errors.append(message)


class PathConnections:
    """Connections whose managers are given as objects with ``acquire()`` (e.g. FILE managers)."""

    def __init__(self, managers: dict[str, Any] | None = None) -> None:
        self.managers = dict(managers or {})

    def find(self, ref: str) -> Any:
        return self.managers.get(ref)

    def acquire(self, ref: str) -> object:
        if ref not in self.managers:
            raise ConnectionManagerError(f"no connection manager matches {ref!r}.")
        return self.managers[ref].acquire()


def make_ctx(
    variables: dict[str, Any] | None = None,
    *,
    connections: Any = None,
    local_path: Callable[[str], str] = lambda p: p,
    package_path: str = "",
    run_package: Callable[..., Any] | None = None,
) -> TaskContext:
    return TaskContext(
        name="task",
        ref_id="Package\\task",
        connections=connections or PathConnections(),
        variables=Vars(variables),
        events=Events(),
        package_path=package_path,
        cancel_event=threading.Event(),
        local_path=local_path,
        run_package=run_package,
    )
