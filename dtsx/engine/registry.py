"""A generic plugin registry, and the normalisation of SSIS type names.

Packages name the same task differently in every format (``Microsoft.SendMailTask`` in 2016+,
an assembly-qualified class name with ``Version=9.0.242.0/10.0.0.0/11.0.0.0`` before that,
``SSIS.Pipeline.2``, bare CLSIDs). :func:`normalise_type` turns every spelling into one key, so a
registry only ever sees canonical keys. This module knows names, never concrete classes.

Registration has two ways in, which share one table: the ``@register`` decorator (import time)
and entry points (``dtsx.tasks`` / ``dtsx.connections``), which are imported only when a package
needs that key.

Plugins fail alone. An entry point that fails to import, two distributions' entry points under
one key, or a second class registered under a taken key make *that key* broken: asking for it
raises :class:`PluginError` naming the plugin, its distribution and the error (the import error
is its ``__cause__``), while every other key keeps working, so a package that does not use the
broken key never notices. :meth:`Registry.entries` lists every plugin, broken ones with their
error, with the distribution and version that installed it (``dtsx list``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

from dtsx.engine.errors import PluginError

__all__ = ["Registry", "Registration", "PluginEntry", "normalise_type", "UnknownKeyError"]

T = TypeVar("T")

# Version-suffixed ProgIDs of 2005-2014 (``SSIS.Pipeline.3``) and their 2016+ logical names.
_PROGID = re.compile(r"^(?:SSIS|DTS|MSDTS)\.(?P<name>[A-Za-z]+)(?:\.\d+)?$")
_PROGID_NAMES = {
    "pipeline": "Microsoft.Pipeline",
    "package": "Microsoft.Package",
    "executepackagetask": "Microsoft.ExecutePackageTask",
}
# Data Flow tasks persisted as bare CLSIDs (v3 and v6).
_CLSIDS = {
    "{E3CFBEA8-1F48-40D8-91E1-2DEDC1EDDD56}": "Microsoft.Pipeline",
    "{5918251B-2970-45A4-AB5F-01C3C588FE5A}": "Microsoft.Pipeline",
    "{C3BF9DC1-4715-4694-936F-D3CFDA9E42C5}": "Microsoft.Pipeline",
}
# Class names whose 2016+ logical name is not simply ``Microsoft.<ClassName>``.
_CLASS_NAMES = {
    "foreachfromvarenumerator": "Microsoft.ForEachFromVarEnumerator",
    "dtsforeachfromvarenumerator": "Microsoft.ForEachFromVarEnumerator",
}
# Database connection families: one plugin per family, whatever the provider. ``ADO.NET:`` is
# followed by the provider's class (``System.Data.SqlClient.SqlConnection, System.Data, ...``),
# which the connection manager reads from its settings to pick a driver.
_DATABASE_FAMILIES = frozenset({"OLEDB", "ADO.NET", "ODBC", "ADO"})
# The API's programmatic monikers of Microsoft's tasks (Package.Executables.Add), as a
# tool-written file may carry them.
_STOCK_MONIKERS = {
    "stock:sendmailtask": "Microsoft.SendMailTask",
    "stock:pipelinetask": "Microsoft.Pipeline",
    "stock:sqltask": "Microsoft.ExecuteSQLTask",
    "stock:scripttask": "Microsoft.ScriptTask",
}


def normalise_type(raw: str) -> str:
    """Return the canonical key for any spelling of an SSIS type name.

    Containers keep their ``STOCK:`` monikers (``STOCK:SEQUENCE``); everything Microsoft ships
    becomes its 2016+ logical name (``Microsoft.SendMailTask``); anything else (a third-party
    type) is returned trimmed, with only its assembly qualification removed.
    """
    name = raw.strip()
    if not name:
        return name
    upper = name.upper()
    if upper in _CLSIDS:
        return _CLSIDS[upper]
    lower = name.lower()
    if lower in _STOCK_MONIKERS:
        return _STOCK_MONIKERS[lower]
    if upper.startswith("STOCK:"):
        return upper
    if upper in _DATABASE_FAMILIES:
        return upper
    if upper.startswith("ADO.NET:"):
        return "ADO.NET"
    progid = _PROGID.match(name)
    if progid:
        short = progid.group("name")
        return _PROGID_NAMES.get(short.lower(), f"Microsoft.{short}")
    class_path = name.split(",", 1)[0].strip()
    if class_path.startswith("Microsoft.SqlServer.") or class_path.startswith(
        "Microsoft.DataTransformationServices."
    ):
        short = class_path.rsplit(".", 1)[-1]
        return _CLASS_NAMES.get(short.lower(), f"Microsoft.{short}")
    return class_path


class UnknownKeyError(PluginError, LookupError):
    """No plugin is registered under a key; the message lists the nearest registered keys."""

    def __init__(self, kind: str, key: str, suggestions: list[str]) -> None:
        self.key = key
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            f"no {kind} is registered as {key!r}.{hint} Run 'dtsx list' to see every registered "
            f"{kind}."
        )


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One registered plugin and where it came from (a module, or an entry point)."""

    key: str
    obj: T
    origin: str


@dataclass(frozen=True)
class PluginEntry:
    """One line of ``dtsx list``: a plugin, where it comes from, and whether it works.

    ``target`` is the entry point's ``module:attr`` (or ``module.Qualname`` for a decorator);
    ``distribution`` and ``version`` are the installed distribution's, when one is known;
    ``error`` is ``None`` for a plugin that loaded, else the sentence saying why it cannot.
    """

    key: str
    target: str
    origin: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None


class Registry(Generic[T]):
    """Canonical key → plugin, filled by decorators and by lazily loaded entry points.

    A plugin that fails to import, is not a plugin class, or clashes with another under the same
    key is *broken*: :meth:`get` raises PluginError for that key only, so packages that do not
    use it never notice, and :meth:`entries` lists it with its error.
    """

    def __init__(
        self, kind: str, group: str, check: Callable[[object], bool] | None = None
    ) -> None:
        self.kind = kind
        self.group = group
        self._check = check
        self._items: dict[str, Registration[T]] = {}
        # Lower-cased key -> why it cannot be used, and the exception that made it so.
        self._broken: dict[str, tuple[str, BaseException | None]] = {}
        self._entry_points: dict[str, list[metadata.EntryPoint]] | None = None

    def register(self, key: str, *, origin: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@registry.register("Acme.FtpTask")``."""

        def decorate(obj: T) -> T:
            self.add(key, obj, origin or _origin_of(obj))
            return obj

        return decorate

    def add(self, key: str, obj: T, origin: str) -> None:
        """Register ``obj``; PluginError if it is no plugin class or the key is taken by another
        object (the key is then broken: which of the two would run is anybody's guess)."""
        canonical = normalise_type(key)
        if self._check is not None and not self._check(obj):
            raise PluginError(
                f"{origin} registers {obj!r} as {self.kind} {canonical!r}, but it is not a "
                f"{self.kind} class."
            )
        existing = self._items.get(canonical.lower())
        if existing is not None and existing.obj is not obj:
            message = (
                f"{self.kind} {canonical!r} is registered twice: by {existing.origin} and by "
                f"{origin}; uninstall or rename one of them."
            )
            self._broken[canonical.lower()] = (message, None)
            raise PluginError(message)
        self._items[canonical.lower()] = Registration(canonical, obj, origin)

    def get(self, key: str) -> T:
        """The plugin for ``key`` (any spelling); imports its entry point on first use.

        Raises UnknownKeyError (with the nearest keys) when nothing is registered under it, and
        PluginError when its plugin is broken."""
        canonical = normalise_type(key)
        lower = canonical.lower()
        self._discover()  # so a clash of entry points is known even for a key already imported
        found = self._items.get(lower)
        if found is None:
            self._load_entry_point(canonical)
            found = self._items.get(lower)
        if lower in self._broken:
            message, cause = self._broken[lower]
            raise PluginError(message) from cause
        if found is None:
            raise UnknownKeyError(self.kind, canonical, self.suggest(canonical))
        return found.obj

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` names a plugin that can be used."""
        try:
            self.get(key)
        except PluginError:
            return False
        return True

    def key_of(self, obj: T) -> str | None:
        """The key ``obj`` is registered under, if it is (no entry point is imported)."""
        return next((r.key for r in self._items.values() if r.obj is obj), None)

    def suggest(self, key: str) -> list[str]:
        keys = {k.lower(): k for k in self.keys()}
        close = difflib.get_close_matches(key.lower(), list(keys), n=3, cutoff=0.6)
        return [keys[c] for c in close]

    def keys(self) -> list[str]:
        """Every key, broken ones included, without importing any entry point."""
        names = {r.key for r in self._items.values()}
        names.update(eps[0].name for eps in self._discover().values())
        return sorted(names, key=str.lower)

    def registrations(self) -> list[Registration[T]]:
        """Every plugin that loads, importing all entry points; broken ones are left out."""
        self._load_all()
        return sorted(
            (r for low, r in self._items.items() if low not in self._broken),
            key=lambda r: r.key.lower(),
        )

    def entries(self) -> list[PluginEntry]:
        """Every plugin for ``dtsx list``, broken ones with their error; imports all entry
        points and never raises."""
        self._load_all()
        entries: list[PluginEntry] = []
        for lower, eps in self._discover().items():
            error = self._error(lower)
            entries.extend(self._entry_of_point(ep, error) for ep in eps)
        for lower, reg in self._items.items():
            if lower not in self._discover():
                entries.append(self._entry_of_decorator(reg, self._error(lower)))
        return sorted(entries, key=lambda e: (e.key.lower(), e.target))

    def _error(self, lower: str) -> str | None:
        broken = self._broken.get(lower)
        return broken[0] if broken else None

    def _load_all(self) -> None:
        for lower in list(self._discover()):
            self._load_entry_point(lower)

    def _entry_of_point(self, ep: metadata.EntryPoint, error: str | None) -> PluginEntry:
        dist = ep.dist
        return PluginEntry(
            key=normalise_type(ep.name),
            target=ep.value,
            origin=f"entry point {ep.value}",
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
            error=error,
        )

    def _entry_of_decorator(self, reg: Registration[T], error: str | None) -> PluginEntry:
        module = getattr(reg.obj, "__module__", None) or ""
        dist = _distribution_of_module(module)
        return PluginEntry(
            key=reg.key,
            target=reg.origin,
            origin=reg.origin,
            distribution=dist[0] if dist else None,
            version=dist[1] if dist else None,
            error=error,
        )

    def _discover(self) -> dict[str, list[metadata.EntryPoint]]:
        """Lower-cased key -> its entry points (more than one distinct target: a clash)."""
        if self._entry_points is None:
            found: dict[str, list[metadata.EntryPoint]] = {}
            for ep in metadata.entry_points(group=self.group):
                same_key = found.setdefault(normalise_type(ep.name).lower(), [])
                # The same target twice (one distribution seen on two paths) is no clash.
                if all(other.value != ep.value for other in same_key):
                    same_key.append(ep)
            for lower, eps in found.items():
                if len(eps) > 1:
                    self._broken[lower] = (self._clash(eps), None)
            self._entry_points = found
        return self._entry_points

    def _clash(self, eps: list[metadata.EntryPoint]) -> str:
        named = " and ".join(f"{ep.value} ({_distribution_label(ep)})" for ep in eps)
        return (
            f"{self.kind} {eps[0].name!r} is registered twice by entry points: {named}; "
            "uninstall one of the distributions."
        )

    def _load_entry_point(self, canonical: str) -> None:
        """Import the key's entry point; a failure marks the key broken instead of raising."""
        lower = canonical.lower()
        eps = self._discover().get(lower)
        if eps is None or len(eps) != 1 or lower in self._broken:
            return
        ep = eps[0]
        origin = f"entry point {ep.value}"
        existing = self._items.get(lower)
        if existing is not None and existing.origin == origin:
            return
        # Also when a decorator registered the key first (importing the module of another entry
        # point, say FILE's, registers FLATFILE too): the entry point names the origin either way,
        # so `dtsx list` does not depend on import order. Importing it again costs nothing.
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - third-party code: only its own key breaks
            self._broken[lower] = (
                f"the {self.kind} plugin {ep.name!r} ({ep.value}, from {_distribution_label(ep)}) "
                f"failed to import: {type(exc).__name__}: {exc}; reinstall or uninstall it.",
                exc,
            )
            return
        try:
            self.add(ep.name, obj, origin)
        except PluginError as exc:
            self._broken[lower] = (str(exc), exc)


def _distribution_label(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _distribution_of_module(module: str) -> tuple[str, str] | None:
    """The installed distribution that ships ``module``, for a plugin registered by decorator."""
    top = module.split(".", 1)[0]
    names = metadata.packages_distributions().get(top) if top else None
    if not names:
        return None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return None


def _origin_of(obj: object) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{module}.{name}"
