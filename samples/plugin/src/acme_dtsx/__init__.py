"""Sample dtsx plugin package (see samples/plugin/README.md)."""

from __future__ import annotations

__all__: list[str] = []
