"""FILE and FLATFILE connection managers, and the mapping of Windows paths to local ones.

Packages are written on Windows, so their paths look like ``C:\\data\\in.csv`` or
``\\\\server\\share\\in.csv``. ``--path-map 'C:\\data=/srv/data'`` (repeatable) tells dtsx where
those folders live here; :class:`PathMap` applies the longest matching prefix. A FILE
connection manager's ``acquire()`` returns the mapped local path as a ``str``, after checking
that it exists when its FileUsageType says it must.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from dtsx.connections.base import (
    ConnectionManager,
    ConnectionSettings,
    looks_like_windows_path,
    register_connection,
    unmapped_windows_path,
)
from dtsx.engine.errors import ConnectionManagerError, DtsxError
from dtsx.engine.files import file_kind

__all__ = [
    "FileConnectionManager",
    "FileUsage",
    "FlatFileConnectionManager",
    "PathMap",
    "PathMapError",
]


class PathMapError(DtsxError, ValueError):
    """A ``--path-map`` specification that cannot be parsed."""


def _key(path: str) -> str:
    """A comparison key: forward slashes, no repeated or trailing separators, lower case.

    Windows compares paths case-insensitively, so the whole prefix is matched that way.
    """
    text = path.replace("\\", "/")
    unc = text.startswith("//")
    text = re.sub(r"/+", "/", text).rstrip("/")
    if unc:
        text = "/" + text
    return text.lower()


@dataclass(frozen=True)
class _Rule:
    windows: str  # as the user wrote it
    key: str  # normalised Windows prefix
    local: str  # local folder


class PathMap:
    """Maps Windows paths in a package to local paths; longest prefix wins."""

    def __init__(self, rules: Iterable[tuple[str, str]] = ()) -> None:
        built = []
        for windows, local in rules:
            key = _key(windows)
            if not key:
                raise PathMapError(
                    f"--path-map {windows}={local}: the Windows side is empty; write e.g. "
                    "'C:\\data=/srv/data'."
                )
            local_root = local.rstrip("/") or "/"
            built.append(_Rule(windows, key, local_root))
        # Longest prefix first, so C:\data\in wins over C:\data.
        self._rules = sorted(built, key=lambda r: len(r.key), reverse=True)

    @classmethod
    def parse(cls, specs: Iterable[str] | None) -> PathMap:
        """Parse ``WINDOWS=LOCAL`` specs (``C:\\data=/srv/data``, ``\\\\srv\\share=/mnt/share``)."""
        rules = []
        for spec in specs or ():
            windows, sep, local = spec.partition("=")
            if not sep or not windows.strip() or not local.strip():
                raise PathMapError(
                    f"--path-map {spec!r} is not WINDOWS=LOCAL; write it like 'C:\\data=/srv/data'."
                )
            rules.append((windows.strip(), local.strip()))
        return cls(rules)

    @property
    def rules(self) -> list[tuple[str, str]]:
        return [(r.windows, r.local) for r in self._rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __repr__(self) -> str:
        return f"PathMap({self.rules!r})"

    def map(self, path: str) -> str:
        """The local path for ``path``; unmatched Windows-looking paths get ``/`` separators."""
        if not path:
            return path
        key = _key(path)
        for rule in self._rules:
            if key == rule.key or key.startswith(rule.key + "/"):
                rest = path.replace("\\", "/")
                rest = re.sub(r"/+", "/", rest)
                # Cut by the length of the matched prefix in the normalised original.
                rest = _strip_prefix(rest, rule.key)
                return rule.local if not rest else os.path.join(rule.local, rest)
        if looks_like_windows_path(path):
            return path.replace("\\", "/")
        return path

    __call__ = map


def _strip_prefix(normalised: str, key: str) -> str:
    """``normalised`` minus the prefix that ``key`` matched (keys are lower-case)."""
    text = normalised
    if key.startswith("//"):
        text = "/" + text.lstrip("/")
        key_len = len(key) - 1
    else:
        key_len = len(key)
    return text[key_len:].lstrip("/")


class FileUsage:
    """DTSFileConnectionUsageType codes."""

    EXISTING_FILE = 0
    CREATE_FILE = 1
    EXISTING_FOLDER = 2
    CREATE_FOLDER = 3
    NAMES: ClassVar[Mapping[int, str]] = MappingProxyType(
        {0: "existing file", 1: "create file", 2: "existing folder", 3: "create folder"}
    )


def _property(props: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in props.items() if k.lower() == wanted), None)


@register_connection("FILE")
class FileConnectionManager(ConnectionManager):
    """A FILE connection: the connection string is a path; ``acquire()`` returns it, mapped."""

    creation_name = "FILE"
    runtime_properties: ClassVar[frozenset[str] | None] = frozenset({"FileUsageType"})

    @classmethod
    def usage_of(cls, settings: ConnectionSettings) -> int:
        raw = _property(settings.properties, "FileUsageType")
        if raw is None or not str(raw).strip():
            return FileUsage.EXISTING_FILE
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = -1
        if value not in FileUsage.NAMES:
            raise ConnectionManagerError(
                f"connection manager {settings.name!r} has FileUsageType {raw!r}; "
                "it must be 0 (existing file), 1 (create file), 2 (existing folder) or 3 (create "
                "folder)."
            )
        return value

    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        problems = []
        if not settings.connection_string.strip():
            problems.append(
                f"connection manager {settings.name!r} has no file path (its ConnectionString is "
                "empty)."
            )
        try:
            cls.usage_of(settings)
        except ConnectionManagerError as exc:
            problems.append(str(exc))
        return problems

    @property
    def path(self) -> str:
        """The path as the package stores it (after overrides and expressions)."""
        return self.settings.connection_string.strip().strip('"')

    def acquire(self) -> str:
        stored = self.path
        if not stored:
            raise ConnectionManagerError(
                f"connection manager {self.settings.name!r} has no file path; set its "
                "ConnectionString "
                f'(e.g. --conn "{self.settings.name}=/path/to/file").'
            )
        local = self.settings.local_path(stored)
        problem = unmapped_windows_path(stored, local)
        if problem is not None:
            raise ConnectionManagerError(
                f"connection manager {self.settings.name!r} points at {problem}."
            )
        usage = self.usage_of(self.settings)
        if usage == FileUsage.EXISTING_FILE:
            self._require(stored, local, "file", stat.S_ISREG)
        elif usage == FileUsage.EXISTING_FOLDER:
            self._require(stored, local, "folder", stat.S_ISDIR)
        return local

    def _require(self, stored: str, local: str, what: str, wanted: Callable[[int], bool]) -> None:
        """Raise unless ``local`` is what FileUsageType says; the sentence names what it is instead."""
        try:
            mode = os.stat(local).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise ConnectionManagerError(self._missing(stored, local, what)) from None
        except (OSError, ValueError) as exc:
            reason = (
                exc.strerror
                if isinstance(exc, OSError) and exc.strerror
                else "it holds a NUL character"
            )
            raise ConnectionManagerError(
                self._cannot(
                    stored,
                    local,
                    what,
                    f"which cannot be examined ({reason})",
                    "check the path and its folders' permissions",
                )
            ) from None
        if not wanted(mode):
            wanted_kind = "a folder" if what == "folder" else "a regular file"
            problem = f"which is {file_kind(mode)}, not {wanted_kind}"
            raise ConnectionManagerError(
                self._cannot(stored, local, what, problem, f"point it at {wanted_kind}")
            )

    def _where(self, stored: str, local: str) -> str:
        return stored if stored == local else f"{stored} (here {local})"

    def _cannot(self, stored: str, local: str, what: str, problem: str, hint: str) -> str:
        return (
            f"connection manager {self.settings.name!r} needs an existing {what} at "
            f"{self._where(stored, local)}, "
            f'{problem}; {hint}, or override it with --conn "{self.settings.name}=/local/path".'
        )

    def _missing(self, stored: str, local: str, what: str) -> str:
        where = self._where(stored, local)
        hint = f'check the path, or override it with --conn "{self.settings.name}=/local/path"'
        if looks_like_windows_path(stored):
            unmapped = local in (stored, stored.replace("\\", "/"))
            hint = (
                "map its Windows folder to a local one with --path-map 'C:\\folder=/local/folder'"
                if unmapped
                else "check the --path-map rule that maps it"
            )
        return (
            f"connection manager {self.settings.name!r} needs an existing {what} at {where}, "
            f"which does not exist; {hint}."
        )


@register_connection("FLATFILE")
class FlatFileConnectionManager(FileConnectionManager):
    """A Flat File connection, used here only for its path (the ConnectionString)."""

    creation_name = "FLATFILE"
    # SSIS's Flat File properties (ConnectionManagerFlatFileClass); dtsx reads only the path, but
    # an expression on any of them is valid in SSIS and must not be reported as unknown.
    runtime_properties: ClassVar[frozenset[str] | None] = frozenset(
        {
            "FileUsageType",
            "AlwaysCheckForRowDelimiters",
            "CodePage",
            "ColumnNamesInFirstDataRow",
            "Columns",
            "DataRowsToSkip",
            "Format",
            "HeaderRowDelimiter",
            "HeaderRowsToSkip",
            "LocaleID",
            "RowDelimiter",
            "TextQualifier",
            "Unicode",
        }
    )
