"""The one resolver of connection-manager references.

A task, a ``--conn``, a ``--set`` path or a ``CM.<name>.<property>`` parameter names a connection
manager in one of the ways SSIS accepts, and the planner, the run's Connections collection and
the overrides must all agree on which manager that is. :class:`ConnectionReferences` is the only
place that decides it:

1. a DTSID, in any case, with or without braces (``{5A5A...}``, ``5a5a...``); the
   ``{GUID}:external`` form of a project reference counts as the GUID;
2. the exact name or refId (``SMTP``, ``Package.ConnectionManagers[SMTP]``);
3. the name in any case, given alone or inside a refId of either scope
   (``smtp connection manager``, ``Project.ConnectionManagers[Mail]``): SSIS keeps names unique
   regardless of case, and the run has always accepted them so.

Package managers come before project (``.conmgr``) ones, so a package's own manager wins when both
use a name. Layer L0: imports only the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dtsx.engine.model import ConnectionManagerSpec

__all__ = ["ConnectionReferences", "guid_key"]

_REF_ID = re.compile(r"^(?:Package|Project)\.ConnectionManagers\[(?P<name>.*)\]$", re.IGNORECASE)
_EXTERNAL = ":external"


def guid_key(text: str) -> str:
    """A GUID as GUIDs compare: without surrounding whitespace and braces, in upper case
    (``{5a5a-...}`` and ``5A5A-...`` give the same key; spaces inside the braces are kept)."""
    return text.strip().strip("{}").upper()


class ConnectionReferences:
    """Finds the connection manager a reference names (see the module docstring for the forms).

    Built once per package (indexes, so each lookup is a few dict reads); immutable afterwards,
    so threads may share it.
    """

    def __init__(self, specs: Iterable[ConnectionManagerSpec]) -> None:
        self.specs: tuple[ConnectionManagerSpec, ...] = tuple(specs)
        self._by_guid: dict[str, ConnectionManagerSpec] = {}
        self._by_exact: dict[str, ConnectionManagerSpec] = {}
        self._by_name: dict[str, ConnectionManagerSpec] = {}
        for spec in reversed(self.specs):  # the first spec of a key wins: package before project
            if spec.dtsid and guid_key(spec.dtsid):
                self._by_guid[guid_key(spec.dtsid)] = spec
            self._by_exact[spec.ref_id] = spec
            self._by_exact[spec.name] = spec
            self._by_name[spec.name.lower()] = spec

    def find(self, ref: str) -> ConnectionManagerSpec | None:
        """The manager ``ref`` names, or None (also for an empty reference)."""
        text = ref.strip()
        if text[-len(_EXTERNAL) :].lower() == _EXTERNAL:
            text = text[: -len(_EXTERNAL)].strip()
        if not text:
            return None
        found = self._by_guid.get(guid_key(text)) or self._by_exact.get(text)
        if found is not None:
            return found
        match = _REF_ID.match(text)
        name = match.group("name") if match else text
        return self._by_name.get(name.lower())

    def names(self) -> list[str]:
        """The managers' names, in order, for messages that list what the package defines."""
        return [spec.name for spec in self.specs]
