"""What differs between DB-API drivers: session reset, cancel, statement timeout, transactions.

Connections stay in the driver's autocommit mode all the time (each statement commits, as in
SSIS); a transaction is begun and ended with SQL (``BEGIN ISOLATION LEVEL ...``, ``COMMIT``,
PostgreSQL's ``PREPARE TRANSACTION``/``COMMIT PREPARED``), so that no driver's own transaction
bookkeeping can commit or roll back behind the scope's back. One :class:`Driver` per dialect;
:func:`driver_for` picks it. Nothing here imports a driver module: the connection objects come
in from the pool.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

__all__ = ["Driver", "driver_for"]

# What DISCARD ALL does, minus DEALLOCATE ALL and DISCARD PLANS: psycopg prepares statements it
# runs often under its own names and fails ("prepared statement _pg3_1 does not exist") when
# they vanish behind its back.
_PG_RESET = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


def _run(connection: Any, sql: str) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


class Driver:
    """The behaviour every driver shares; subclasses override what their driver does better.

    ``reset`` runs when a pooled connection comes back; ``pooled`` says whether a connection may
    be handed to the next task at all (False: a driver whose session state dtsx cannot reset
    gets a fresh connection per task, as SSIS's default does)."""

    dialect: ClassVar[str] = ""
    pooled: ClassVar[bool] = False
    two_phase: ClassVar[bool] = False

    def on_connect(self, connection: Any) -> None:
        """A new connection: switch it to autocommit."""
        autocommit = getattr(connection, "autocommit", None)
        if callable(autocommit):  # pymssql, pymysql: a method
            autocommit(True)
        else:
            connection.autocommit = True

    def reset(self, connection: Any) -> None:
        """Undo what a task left behind (open transaction, temp tables, SET options)."""
        self.end(connection, "ROLLBACK")

    def begin(self, connection: Any, isolation: str) -> None:
        _run(connection, f"BEGIN TRANSACTION ISOLATION LEVEL {isolation}" if isolation else "BEGIN")

    def end(self, connection: Any, verb: str) -> None:
        """``COMMIT`` or ``ROLLBACK`` the transaction begun by :meth:`begin`."""
        _run(connection, verb)

    def prepare(self, connection: Any, gid: str) -> None:
        raise NotImplementedError("two-phase commit is not available on this connection")

    def finish_prepared(self, connection: Any, verb: str, gid: str) -> None:
        raise NotImplementedError("two-phase commit is not available on this connection")

    def cancel(self, connection: Any) -> None:
        """Interrupt the running statement from another thread; nothing when the driver cannot."""

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        """Statement timeout for what follows (0 = none); ``state`` lives with the connection."""


class Postgres(Driver):
    dialect = "postgresql"
    pooled = True
    two_phase = True

    def reset(self, connection: Any) -> None:
        if connection.info.transaction_status != 0:  # INTRANS, INERROR, or a command running
            _run(connection, "ROLLBACK")
        _run(connection, _PG_RESET)

    def begin(self, connection: Any, isolation: str) -> None:
        level = "REPEATABLE READ" if isolation == "SNAPSHOT" else isolation  # PG's snapshot
        _run(connection, f"BEGIN ISOLATION LEVEL {level}" if level else "BEGIN")

    def prepare(self, connection: Any, gid: str) -> None:
        _run(connection, f"PREPARE TRANSACTION '{gid}'")

    def finish_prepared(self, connection: Any, verb: str, gid: str) -> None:
        _run(connection, f"{verb} PREPARED '{gid}'")

    def cancel(self, connection: Any) -> None:
        connection.cancel_safe(timeout=1.0)

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        # A round trip only when the value changes; RESET ALL (the reset) puts it back to 0.
        if state.get("timeout", 0) != seconds:
            _run(connection, f"SET statement_timeout = {int(seconds) * 1000}")
            state["timeout"] = seconds


class Sqlite(Driver):
    dialect = "sqlite"
    pooled = True

    def on_connect(self, connection: Any) -> None:
        connection.isolation_level = None  # sqlite3's autocommit: no implicit BEGIN

    def reset(self, connection: Any) -> None:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        temp = connection.execute(
            "SELECT type, name FROM temp.sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
        for kind, name in temp:
            quoted = name.replace('"', '""')
            connection.execute(f'DROP {kind.upper()} IF EXISTS temp."{quoted}"')
        connection.set_progress_handler(None, 0)

    def begin(self, connection: Any, isolation: str) -> None:
        connection.execute("BEGIN")  # SQLite transactions are always serializable

    def end(self, connection: Any, verb: str) -> None:
        if connection.in_transaction:
            connection.execute(verb)

    def cancel(self, connection: Any) -> None:
        connection.interrupt()

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        if seconds <= 0:
            connection.set_progress_handler(None, 0)
            return
        deadline = time.monotonic() + seconds
        # Asked every 1000 virtual-machine steps; a true result interrupts the statement.
        connection.set_progress_handler(lambda: time.monotonic() > deadline, 1000)


class SqlServer(Driver):
    """pymssql (or pyodbc to SQL Server). Not pooled: only the driver's own sp_reset_connection
    resets a session, and pymssql does not offer it."""

    dialect = "mssql"

    def begin(self, connection: Any, isolation: str) -> None:
        prefix = f"SET TRANSACTION ISOLATION LEVEL {isolation}; " if isolation else ""
        _run(connection, prefix + "BEGIN TRANSACTION")

    def end(self, connection: Any, verb: str) -> None:
        _run(connection, f"IF @@TRANCOUNT > 0 {verb} TRANSACTION")

    def cancel(self, connection: Any) -> None:
        raw = getattr(connection, "_conn", None)  # pymssql's _mssql connection
        if raw is not None and hasattr(raw, "cancel"):
            raw.cancel()

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        raw = getattr(connection, "_conn", None)
        if raw is not None and hasattr(raw, "query_timeout"):
            raw.query_timeout = seconds


class MySql(Driver):
    dialect = "mysql"

    def begin(self, connection: Any, isolation: str) -> None:
        level = "REPEATABLE READ" if isolation == "SNAPSHOT" else isolation
        if level:
            _run(connection, f"SET TRANSACTION ISOLATION LEVEL {level}")
        _run(connection, "START TRANSACTION")

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        if state.get("timeout", 0) != seconds:
            _run(connection, f"SET SESSION max_execution_time = {int(seconds) * 1000}")
            state["timeout"] = seconds


class Odbc(Driver):
    """pyodbc: the query timeout is a connection attribute read by each new cursor; cancelling
    needs the cursor, which :class:`OdbcConnection` remembers."""

    pooled = False

    def __init__(self, dialect: str) -> None:
        self.inner = driver_for(dialect) if dialect else Driver()
        self.pooled = self.inner.pooled  # type: ignore[misc]

    def on_connect(self, connection: Any) -> None:
        connection.autocommit = True

    def reset(self, connection: Any) -> None:
        connection.rollback()  # a BEGIN a task left open; SQL resets are the inner dialect's
        if isinstance(self.inner, Postgres):
            _run(connection, _PG_RESET)

    def cancel(self, connection: Any) -> None:
        cursor = connection.last_cursor()
        if cursor is not None:
            cursor.cancel()

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        if isinstance(self.inner, (Postgres, MySql)):
            # psqlODBC refuses pyodbc's timeout attribute; the server's own setting works.
            self.inner.set_timeout(connection, state, seconds)
        else:
            connection.timeout = seconds  # SQL_ATTR_QUERY_TIMEOUT of the cursors made after


class OdbcConnection:
    """A pyodbc connection that remembers the cursor it last made, so that another thread can
    cancel the statement on it (pyodbc can cancel only through a cursor)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._cursor: Any = None
        self._lock = threading.Lock()

    def cursor(self) -> Any:
        cursor = self._connection.cursor()
        with self._lock:
            self._cursor = cursor
        return cursor

    def last_cursor(self) -> Any:
        with self._lock:
            return self._cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._connection, name, value)


_DRIVERS: dict[str, type[Driver]] = {
    "postgresql": Postgres,
    "sqlite": Sqlite,
    "mssql": SqlServer,
    "mysql": MySql,
}


def driver_for(dialect: str, *, odbc: bool = False) -> Driver:
    """The behaviour for a dialect (through pyodbc when ``odbc``)."""
    if odbc:
        return Odbc(dialect)
    return _DRIVERS.get(dialect, Driver)()
