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

__all__ = ["Driver", "TransactionLost", "driver_for"]

PING_AFTER_IDLE = 5.0  # seconds a pooled PostgreSQL connection may idle before it is pinged

# The session state SSIS's fresh connection per task would not have: SET options and the role,
# temp tables, sequences' currval. Not DISCARD ALL: it also deallocates the statements psycopg
# prepares under its own names ("prepared statement _pg3_1 does not exist" next time), and each
# statement more costs server time per task. LISTEN, session advisory locks and WITH HOLD
# cursors do survive to the next task (rare in SSIS packages; documented).
_ENDED = (
    "its transaction was already ended before the container finished (by a COMMIT or ROLLBACK "
    "in a task, or by the database after an error), so its work was not committed as one unit"
)
_PG_RESET = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP; DISCARD SEQUENCES"
_PG_RESET_SQL = _PG_RESET.encode()
_PG_ROLLBACK_RESET_SQL = b"ROLLBACK; " + _PG_RESET_SQL
_PG_FATAL_ERROR = 7  # libpq's PGRES_FATAL_ERROR (psycopg.pq.ExecStatus.FATAL_ERROR)


class TransactionLost(Exception):
    """The transaction to commit or prepare is no longer the one begun: the server aborted it
    at a failed statement, or a statement of a task ended it. Committing now would commit
    nothing (or only what followed) without an error; the message says which."""


def _run(connection: Any, sql: str) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


class Driver:
    """The behaviour every driver shares; subclasses override what their driver does better.

    ``release`` runs when a pooled connection comes back, ``checkout`` when it is handed out
    again; ``pooled`` says whether a connection may
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

    def release(self, connection: Any, state: dict[str, Any]) -> None:
        """A task is done with a pooled connection: undo what it left behind (an open
        transaction, temp tables, SET options) before the next task gets it."""
        self.end(connection, "ROLLBACK")

    def checkout(self, connection: Any, state: dict[str, Any]) -> None:
        """A pooled connection is handed to a task: finish what :meth:`release` began."""

    def resetting(self, connection: Any, state: dict[str, Any]) -> bool:
        """Whether the reset :meth:`release` began is still waiting for the server."""
        return False

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

    def release(self, connection: Any, state: dict[str, Any]) -> None:
        # The reset is sent now and its results read when the connection is next handed out:
        # the server works on it while dtsx moves on to the next task, instead of each task
        # waiting one more round trip (about doubling the cost of a one-statement task).
        pgconn = connection.pgconn
        status = pgconn.transaction_status
        if status == 1:  # ACTIVE: a statement still runs (a cancelled task); not reusable
            raise RuntimeError("a statement is still running on the connection")
        pgconn.send_query(_PG_RESET_SQL if status == 0 else _PG_ROLLBACK_RESET_SQL)  # 0: IDLE
        # The connection is non-blocking; a flush that leaves nothing to send (the usual case
        # for a query this short) needs none of psycopg's wait machinery.
        if pgconn.flush() != 0:
            from psycopg import generators

            connection.wait(generators.send(pgconn))
        state["reset"] = True
        state["released"] = time.monotonic()

    def resetting(self, connection: Any, state: dict[str, Any]) -> bool:
        if not state.get("reset"):
            return False
        pgconn = connection.pgconn
        try:
            pgconn.consume_input()  # reads what has arrived; never waits
        except Exception:
            return False  # a broken connection: checkout() finds out and replaces it
        return bool(pgconn.is_busy())

    def checkout(self, connection: Any, state: dict[str, Any]) -> None:
        if state.pop("reset", False):
            pgconn = connection.pgconn
            failed = [r for r in _reset_results(connection) if r.status == _PG_FATAL_ERROR]
            if failed or pgconn.transaction_status != 0:
                message = failed[0].error_message.decode("utf-8", "replace") if failed else ""
                raise RuntimeError(f"resetting the connection failed: {message.strip()}")
        # A connection idle for a while may have been dropped by the server or a firewall;
        # the reset's answer came back before that could be seen, so ask once more.
        released = state.get("released")
        if released is not None and time.monotonic() - released > PING_AFTER_IDLE:
            _run(connection, "SELECT 1")

    def begin(self, connection: Any, isolation: str) -> None:
        level = "REPEATABLE READ" if isolation == "SNAPSHOT" else isolation  # PG's snapshot
        _run(connection, f"BEGIN ISOLATION LEVEL {level}" if level else "BEGIN")

    def end(self, connection: Any, verb: str) -> None:
        if verb == "COMMIT":
            self._still_open(connection)
        _run(connection, verb)

    def prepare(self, connection: Any, gid: str) -> None:
        self._still_open(connection)
        _run(connection, f"PREPARE TRANSACTION '{gid}'")

    @staticmethod
    def _still_open(connection: Any) -> None:
        """PostgreSQL answers COMMIT and PREPARE TRANSACTION of an aborted transaction with a
        silent ROLLBACK; say so instead."""
        status = connection.info.transaction_status
        if status == 3:  # INERROR
            _run(connection, "ROLLBACK")
            raise TransactionLost(
                "its transaction was aborted by an earlier failed statement (PostgreSQL ends a "
                "transaction at its first error, where SQL Server keeps it open), so nothing of "
                "it was committed"
            )
        if status == 0:  # IDLE: a task's own COMMIT or ROLLBACK ended it
            raise TransactionLost(_ENDED)

    def finish_prepared(self, connection: Any, verb: str, gid: str) -> None:
        _run(connection, f"{verb} PREPARED '{gid}'")

    def cancel(self, connection: Any) -> None:
        connection.cancel_safe(timeout=1.0)

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        # A round trip only when the value changes; RESET ALL (the reset) puts it back to 0.
        if state.get("timeout", 0) != seconds:
            _run(connection, f"SET statement_timeout = {int(seconds) * 1000}")
            state["timeout"] = seconds


def _reset_results(connection: Any) -> list[Any]:
    """The reset's results. What has arrived is read straight from libpq; psycopg's wait
    (a generator and a selector) only when the server has not answered everything yet."""
    pgconn = connection.pgconn
    results: list[Any] = []
    while not pgconn.is_busy():  # get_result() would not block
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)
    from psycopg import generators

    rest: list[Any] = connection.wait(generators.fetch_many(pgconn))
    return results + rest


class Sqlite(Driver):
    dialect = "sqlite"
    pooled = True

    def on_connect(self, connection: Any) -> None:
        connection.isolation_level = None  # sqlite3's autocommit: no implicit BEGIN

    def release(self, connection: Any, state: dict[str, Any]) -> None:
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
        elif verb == "COMMIT":  # a task's COMMIT/ROLLBACK, or SQLite after a fatal error
            raise TransactionLost(_ENDED)

    def cancel(self, connection: Any) -> None:
        connection.interrupt()

    def set_timeout(self, connection: Any, state: dict[str, Any], seconds: int) -> None:
        state["timeout"] = seconds
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
            state["timeout"] = seconds


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

    def release(self, connection: Any, state: dict[str, Any]) -> None:
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
            state["timeout"] = seconds


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
