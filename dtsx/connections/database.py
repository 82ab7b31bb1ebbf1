"""The database connection managers: OLEDB, ADO.NET, ODBC and ADO, one implementation.

The four families differ only in how SSIS names their provider; ``db_strings`` maps each
connection string (or a ``--conn`` SQLAlchemy URL) to a driver, and ``acquire()`` returns one
:class:`~dtsx.connections.db_session.DbSession` per manager per run. ``check``,
``transaction_support`` and ``dialect_of`` answer the planner from the settings alone: nothing
connects and no database library is imported before a run opens a connection.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from dtsx.connections.base import ConnectionManager, ConnectionSettings, register_connection
from dtsx.connections.db_session import DbSession
from dtsx.connections.db_strings import (
    dialect_of,
    is_url,
    setting,
    string_problems,
    target_for,
    translation,
)
from dtsx.engine.errors import ConnectionManagerError

__all__ = [
    "AdoConnectionManager",
    "AdoNetConnectionManager",
    "DatabaseConnectionManager",
    "OdbcConnectionManager",
    "OleDbConnectionManager",
]


class DatabaseConnectionManager(ConnectionManager):
    """The shared implementation of the four database families."""

    family: ClassVar[str] = ""
    # SSIS's database connection-manager properties that expressions and --set may set.
    runtime_properties: ClassVar[frozenset[str] | None] = frozenset(
        {
            "RetainSameConnection",
            "ServerName",
            "InitialCatalog",
            "UserName",
            "Password",
            "Translate",
            "Retain",
        }
    )

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._session: DbSession | None = None

    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        problems = string_problems(settings)
        translate = translation(settings)
        if translate is not None and translate not in ("", "tsql"):
            problems.append(
                f"connection manager {settings.name!r} has Translate={translate!r}; the only "
                "translation dtsx offers is 'tsql' (T-SQL to the target's dialect)."
            )
        retain = setting(settings.properties, "Retain", "RetainSameConnection")
        if retain is not None and retain.strip().lower() not in (
            "true",
            "false",
            "-1",
            "0",
            "1",
            "yes",
            "no",
            "",
        ):
            problems.append(
                f"connection manager {settings.name!r} has RetainSameConnection={retain!r}; "
                "it must be True or False."
            )
        return problems

    @classmethod
    def transaction_support(cls, settings: ConnectionSettings) -> str:
        """``"two-phase"`` (PostgreSQL), ``"local"`` (one database only: SQLite, SQL Server,
        MySQL) or ``"none"`` (ODBC), from the settings alone (nothing connects)."""
        text = settings.connection_string.strip()
        if is_url(text):
            scheme = text.split(":", 1)[0].split("+", 1)[0].lower()
            return "two-phase" if scheme in ("postgresql", "postgres") else "local"
        if cls.family == "ODBC":
            return "none"
        try:
            target = target_for(settings)
        except ConnectionManagerError:
            return "local"  # the connection's own problem is reported by check()
        if target.driver == "pyodbc":
            return "none"
        return "two-phase" if target.dialect == "postgresql" else "local"

    @classmethod
    def dialect_of(cls, settings: ConnectionSettings) -> str | None:
        """SQLAlchemy's dialect name the settings lead to, without connecting (None: only a
        connect can tell, or no driver); see ``db_strings.dialect_of``."""
        return dialect_of(settings)

    def acquire(self) -> DbSession:
        with self._lock:
            if self._session is None:
                self._session = DbSession(self.settings, self.family, target_for(self.settings))
            return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


@register_connection("OLEDB")
class OleDbConnectionManager(DatabaseConnectionManager):
    """CreationName ``OLEDB``: the Provider key picks the driver."""

    creation_name = "OLEDB"
    family = "OLEDB"


@register_connection("ADO.NET")
class AdoNetConnectionManager(DatabaseConnectionManager):
    """CreationName ``ADO.NET:<provider class>``: the qualifier picks the driver."""

    creation_name = "ADO.NET"
    family = "ADO.NET"


@register_connection("ODBC")
class OdbcConnectionManager(DatabaseConnectionManager):
    """CreationName ``ODBC``: pyodbc with the ODBC string itself."""

    creation_name = "ODBC"
    family = "ODBC"


@register_connection("ADO")
class AdoConnectionManager(DatabaseConnectionManager):
    """CreationName ``ADO``: an OLE DB string through ADO."""

    creation_name = "ADO"
    family = "ADO"
