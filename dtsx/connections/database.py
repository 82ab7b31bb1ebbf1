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

from dtsx.connections.base import (
    ConnectionManager,
    ConnectionSettings,
    is_url,
    register_connection,
)
from dtsx.connections.db_session import DbSession
from dtsx.connections.db_strings import (
    dialect_of,
    retains,
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

    def __init_subclass__(cls, family: str = "", **kwargs: object) -> None:
        """``class X(DatabaseConnectionManager, family="OLEDB")``: the family's manager,
        registered under its CreationName."""
        super().__init_subclass__(**kwargs)
        if family:
            cls.creation_name = family
            register_connection(family)(cls)

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
        if retains(settings) is None:
            retain = setting(settings.properties, "Retain", "RetainSameConnection")
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
        if cls.creation_name == "ODBC":
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
        """The run's one session of this connection (built on first use; it connects when a
        task first leases a connection)."""
        with self._lock:
            if self._session is None:
                target = target_for(self.settings)
                self._session = DbSession(self.settings, self.creation_name, target)
            return self._session

    def close(self) -> None:
        with self._lock:  # a session is closed once, and no task can take a new one meanwhile
            if self._session is not None:
                self._session.close()


class OleDbConnectionManager(DatabaseConnectionManager, family="OLEDB"):
    """CreationName ``OLEDB``: the Provider key picks the driver."""


class AdoNetConnectionManager(DatabaseConnectionManager, family="ADO.NET"):
    """CreationName ``ADO.NET:<provider class>``: the qualifier picks the driver."""


class OdbcConnectionManager(DatabaseConnectionManager, family="ODBC"):
    """CreationName ``ODBC``: pyodbc with the ODBC string itself."""


class AdoConnectionManager(DatabaseConnectionManager, family="ADO"):
    """CreationName ``ADO``: an OLE DB string through ADO."""
