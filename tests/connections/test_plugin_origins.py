"""`dtsx list` shows where each plugin came from; for an installed one that is its entry
point, whichever of its modules happened to be imported first."""

from __future__ import annotations

from dtsx.connections.base import ConnectionManager
from dtsx.connections.file import FileConnectionManager, FlatFileConnectionManager
from dtsx.engine.registry import Registry


def test_a_key_its_module_registered_first_still_names_its_entry_point() -> None:
    registry: Registry[type[ConnectionManager]] = Registry("connection manager", "dtsx.connections")
    # What importing dtsx/connections/file.py for the FILE entry point does: its decorators run,
    # registering FLATFILE too, under the module's name.
    registry.add("FILE", FileConnectionManager, "dtsx.connections.file.FileConnectionManager")
    registry.add(
        "FLATFILE", FlatFileConnectionManager, "dtsx.connections.file.FlatFileConnectionManager"
    )
    origins = {r.key: r.origin for r in registry.registrations()}
    assert origins["FILE"] == "entry point dtsx.connections.file:FileConnectionManager"
    assert origins["FLATFILE"] == "entry point dtsx.connections.file:FlatFileConnectionManager"
    assert {"FILE", "FLATFILE", "SMTP"} <= set(origins)
    assert all(origin.startswith("entry point ") for origin in origins.values())
