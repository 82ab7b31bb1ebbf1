"""Windows paths in packages, and where they live here.

Packages are written on Windows, so their paths look like ``C:\\data\\in.csv`` or
``\\\\server\\share\\in.csv``. ``--path-map 'C:\\data=/srv/data'`` (repeatable) tells dtsx where
those folders live here; :class:`PathMap` applies the longest matching prefix. The loader's
callers, the planner, the connection managers and the tasks all ask these questions, so they sit
below all of them and import only the errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dtsx.engine.errors import DtsxError

__all__ = ["PathMap", "PathMapError", "looks_like_windows_path", "unmapped_windows_path"]


_DRIVE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")


def looks_like_windows_path(path: str) -> bool:
    """True for ``C:\\...``, ``C:``, UNC ``\\\\server\\share`` and relative ``a\\b`` paths."""
    if _DRIVE.match(path) or path.startswith("\\\\"):
        return True
    # A backslash with no forward slash is a Windows relative path; POSIX names rarely hold one.
    return "\\" in path and "/" not in path


def unmapped_windows_path(stored: str, local: str) -> str | None:
    """A sentence when ``local`` (``stored`` after ``--path-map``) is still a Windows path, else
    None.

    Such a path would otherwise be used literally, creating files named ``C:\\x\\y`` here. Tasks
    and connection managers refuse it with this sentence rather than guess.
    """
    if not looks_like_windows_path(local):
        return None
    return (
        f"{stored} is a Windows path that no --path-map rule maps to a local folder; "
        "add one, e.g. --path-map 'C:\\folder=/local/folder'"
    )


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
