"""A generic plugin registry, and the normalisation of SSIS type names.

Packages name the same task differently in every format (``Microsoft.SendMailTask`` in 2016+,
an assembly-qualified class name with ``Version=9.0.242.0/10.0.0.0/11.0.0.0`` before that,
``SSIS.Pipeline.2``, bare CLSIDs). :func:`normalise_type` turns every spelling into one key, so a
registry only ever sees canonical keys. This module knows names, never concrete classes.

Registration has two ways in, which share one table: the ``@register`` decorator (import time)
and entry points (``dtsx.tasks`` / ``dtsx.connections``), which are imported only when a package
needs that key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Generic, TypeVar
from collections.abc import Callable

from dtsx.engine.errors import PluginError

__all__ = ["Registry", "Registration", "normalise_type", "UnknownKeyError"]

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
_STOCK_MONIKERS = {
    "stock:sendmailtask": "Microsoft.SendMailTask",
    "stock:pipelinetask": "Microsoft.Pipeline",
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


class Registry(Generic[T]):
    """Canonical key → plugin, filled by decorators and by lazily loaded entry points."""

    def __init__(
        self, kind: str, group: str, check: Callable[[object], bool] | None = None
    ) -> None:
        self.kind = kind
        self.group = group
        self._check = check
        self._items: dict[str, Registration[T]] = {}
        self._entry_points: dict[str, metadata.EntryPoint] | None = None

    def register(self, key: str, *, origin: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@registry.register("Acme.FtpTask")``."""

        def decorate(obj: T) -> T:
            self.add(key, obj, origin or _origin_of(obj))
            return obj

        return decorate

    def add(self, key: str, obj: T, origin: str) -> None:
        canonical = normalise_type(key)
        if self._check is not None and not self._check(obj):
            raise PluginError(
                f"{origin} registers {obj!r} as {self.kind} {canonical!r}, but it is not a "
                f"{self.kind} class."
            )
        existing = self._items.get(canonical.lower())
        if existing is not None and existing.obj is not obj:
            raise PluginError(
                f"{self.kind} {canonical!r} is registered twice: by {existing.origin} and by "
                f"{origin}; "
                "uninstall or rename one of them."
            )
        self._items[canonical.lower()] = Registration(canonical, obj, origin)

    def get(self, key: str) -> T:
        """The plugin for ``key`` (any spelling); imports its entry point on first use."""
        canonical = normalise_type(key)
        found = self._items.get(canonical.lower())
        if found is None:
            self._load_entry_point(canonical)
            found = self._items.get(canonical.lower())
        if found is None:
            raise UnknownKeyError(self.kind, canonical, self.suggest(canonical))
        return found.obj

    def __contains__(self, key: str) -> bool:
        try:
            self.get(key)
        except UnknownKeyError:
            return False
        return True

    def suggest(self, key: str) -> list[str]:
        keys = {k.lower(): k for k in self.keys()}
        close = difflib.get_close_matches(key.lower(), list(keys), n=3, cutoff=0.6)
        return [keys[c] for c in close]

    def keys(self) -> list[str]:
        names = {r.key for r in self._items.values()}
        names.update(ep.name for ep in self._discover().values())
        return sorted(names, key=str.lower)

    def registrations(self) -> list[Registration[T]]:
        """Every plugin, importing all entry points (for ``dtsx list``)."""
        for key in list(self._discover()):
            self._load_entry_point(key)
        return sorted(self._items.values(), key=lambda r: r.key.lower())

    def _discover(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            found: dict[str, metadata.EntryPoint] = {}
            for ep in metadata.entry_points(group=self.group):
                key = normalise_type(ep.name).lower()
                other = found.get(key)
                if other is not None and other.value != ep.value:
                    raise PluginError(
                        f"{self.kind} {ep.name!r} is registered twice by entry points: "
                        f"{other.value} and {ep.value}; "
                        "uninstall one of the two distributions."
                    )
                found[key] = ep
            self._entry_points = found
        return self._entry_points

    def _load_entry_point(self, canonical: str) -> None:
        ep = self._discover().get(canonical.lower())
        if ep is None:
            return
        origin = f"entry point {ep.value}"
        existing = self._items.get(canonical.lower())
        if existing is not None and existing.origin == origin:
            return
        # Also when a decorator registered the key first (importing the module of another entry
        # point, say FILE's, registers FLATFILE too): the entry point names the origin either way,
        # so `dtsx list` does not depend on import order. Importing it again costs nothing.
        try:
            obj = ep.load()
        except Exception as exc:  # any import failure of third-party code becomes a PluginError
            raise PluginError(
                f"the {self.kind} plugin {ep.name!r} ({ep.value}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.add(ep.name, obj, origin)


def _origin_of(obj: object) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{module}.{name}"
