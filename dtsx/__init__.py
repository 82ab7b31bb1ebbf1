"""dtsx: an open-source runtime for SQL Server Integration Services packages."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
