"""FILE and FLATFILE connection managers, and the mapping of Windows paths to local ones.

Packages are written on Windows, so their paths look like ``C:\\data\\in.csv`` or
``\\\\server\\share\\in.csv``. ``--path-map 'C:\\data=/srv/data'`` (repeatable) tells dtsx where
those folders live here; :class:`PathMap` applies the longest matching prefix. A FILE
connection manager's ``acquire()`` returns the mapped local path as a ``str``, after checking
that it exists when its FileUsageType says it must.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar

from dtsx.connections.base import ConnectionManager, ConnectionSettings, register_connection
from dtsx.engine.errors import ConnectionManagerError
from dtsx.engine.files import file_kind
from dtsx.engine.paths import looks_like_windows_path, unmapped_windows_path

__all__ = [
    "FileConnectionManager",
    "FileUsage",
    "FlatFileConnectionManager",
]


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
        """Raise unless ``local`` is what FileUsageType says; the sentence names what it is
        instead."""
        try:
            mode = os.stat(local).st_mode
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ConnectionManagerError(self._missing(stored, local, what)) from exc
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
            ) from exc
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
