"""The run's Connections collection.

Resolves a task's reference through the one resolver, ``engine.references`` (a DTSID in any case
and brace form, a name, a refId such as ``Package.ConnectionManagers[X]`` or
``Project.ConnectionManagers[X]``, or the ``{GUID}:external`` form of project references), builds
each manager on first use, rebuilds it when its settings change (a property expression inside a
loop), and closes them all at the end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Callable, Mapping

from dtsx.connections.base import CONNECTIONS, ConnectionManager, ConnectionSettings
from dtsx.engine.errors import ConnectionManagerError, PluginError
from dtsx.engine.model import ConnectionManagerSpec
from dtsx.engine.references import ConnectionReferences
from dtsx.engine.registry import Registry

__all__ = ["Connections", "ExpressionHook", "Redirect"]

# Evaluates a connection manager's property expressions: spec -> {runtime property: value}.
ExpressionHook = Callable[[ConnectionManagerSpec], Mapping[str, str]]
# Rewrites final settings, after expressions and overrides (``--dev-smtp`` points SMTP at a sink).
Redirect = Callable[[ConnectionSettings], ConnectionSettings]


@dataclass
class _Live:
    settings: ConnectionSettings
    manager: ConnectionManager


class Connections:
    """Lookup and lazy construction of the connection managers of one run. Thread-safe."""

    def __init__(
        self,
        specs: list[ConnectionManagerSpec],
        *,
        overrides: Mapping[str, str] | None = None,
        expressions: ExpressionHook | None = None,
        local_path: Callable[[str], str] = lambda p: p,
        registry: Registry[type[ConnectionManager]] = CONNECTIONS,
        redirect: Redirect | None = None,
    ) -> None:
        self.specs = list(specs)
        self._references = ConnectionReferences(self.specs)
        # ``--conn`` strings by the refId of the manager they name (any reference form).
        self._overrides: dict[str, str] = {}
        for ref, text in (overrides or {}).items():
            spec = self._references.find(ref)
            if spec is not None:
                self._overrides[spec.ref_id] = text
        self._expressions = expressions
        self._local_path = local_path
        self._registry = registry
        self._redirect = redirect
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()

    def find(self, ref: str) -> ConnectionManagerSpec | None:
        """The spec a reference names, or None (``engine.references`` says how it is found)."""
        return self._references.find(ref)

    def require(self, ref: str) -> ConnectionManagerSpec:
        spec = self.find(ref)
        if spec is None:
            names = ", ".join(repr(name) for name in self._references.names()) or "none"
            raise ConnectionManagerError(
                f"no connection manager matches {ref!r} (the package and project define: {names}); "
                "check the task's connection property."
            )
        return spec

    def settings_for(self, spec: ConnectionManagerSpec) -> ConnectionSettings:
        """Stored settings, then property expressions, then ``--conn`` overrides, then the
        redirect."""
        return self._resolve(spec)[1]

    def _resolve(
        self, spec: ConnectionManagerSpec
    ) -> tuple[ConnectionSettings, ConnectionSettings, bool]:
        """The package's settings (expressions and ``--conn`` applied), the final ones (the redirect
        applied too), and whether ``--conn`` or the redirect replaced the stored connection."""
        properties = dict(spec.properties)
        connection_string = spec.connection_string or ""
        if self._expressions is not None and spec.property_expressions:
            for name, value in self._expressions(spec).items():
                if name.lower() == "connectionstring":
                    connection_string = value
                else:
                    properties[name] = value
        override = self._override_for(spec)
        stored = ConnectionSettings(
            name=spec.name,
            creation_name=spec.type_key,
            connection_string=connection_string if override is None else override,
            dtsid=spec.dtsid,
            properties=properties,
            local_path=self._local_path,
        )
        # Last, so that nothing in the package (an expression on SmtpServer) can undo a redirect.
        final = stored if self._redirect is None else self._redirect(stored)
        return stored, final, override is not None or final is not stored

    def manager(self, ref: str) -> ConnectionManager:
        """The live manager for a reference, built (or rebuilt after a settings change) on
        demand."""
        spec = self.require(ref)
        if not spec.property_expressions:
            # Without expressions the settings cannot change during the run: the manager built
            # first is the one (a dict read is atomic). Saves resolving and comparing the
            # settings on every task execution: acquire() went from 35 to 11 us under cProfile.
            live = self._live.get(spec.ref_id)
            if live is not None:
                return live.manager
        stored, settings, replaced = self._resolve(spec)
        if spec.sensitive_unavailable and not replaced:
            hidden = ", ".join(spec.sensitive_unavailable)
            raise ConnectionManagerError(
                f"connection manager {spec.name!r} needs {hidden}, which the package stores "
                "encrypted or "
                "not at all; supply its connection string with --conn."
            )
        with self._lock:
            live = self._live.get(spec.ref_id)
            if live is not None and _same(live.settings, settings):
                return live.manager
            if live is not None:
                live.manager.close()
            manager = self._build(spec, settings, stored)
            self._live[spec.ref_id] = _Live(settings, manager)
            return manager

    def acquire(self, ref: str) -> object:
        return self.manager(ref).acquire()

    def close(self) -> None:
        """Close every manager built in this run; a failure to close one does not stop the rest."""
        with self._lock:
            live, self._live = list(self._live.values()), {}
        for item in live:
            try:
                item.manager.close()
            except Exception:  # close() must not raise; a broken plugin must not hide the others
                pass

    def _override_for(self, spec: ConnectionManagerSpec) -> str | None:
        """The ``--conn`` connection string for this manager, if any."""
        return self._overrides.get(spec.ref_id)

    def _build(
        self, spec: ConnectionManagerSpec, settings: ConnectionSettings, stored: ConnectionSettings
    ) -> ConnectionManager:
        try:
            cls = self._registry.get(spec.type_key)
        except PluginError as exc:
            raise ConnectionManagerError(
                f"connection manager {spec.name!r} has type {spec.creation_name!r}, which dtsx "
                f"cannot open: {exc}"
            ) from exc
        if settings is not stored:
            # A redirect (--dev-smtp) must not hide a connection the real run would refuse: the
            # package's own settings are checked as if they were used.
            problems = cls.check(stored)
            if problems:
                raise ConnectionManagerError(" ".join(problems))
        return cls(settings)


def _same(a: ConnectionSettings, b: ConnectionSettings) -> bool:
    return a.connection_string == b.connection_string and dict(a.properties) == dict(b.properties)
