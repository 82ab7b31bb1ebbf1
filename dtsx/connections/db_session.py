"""A database connection manager's session: pooled leases of one database.

:class:`DbSession` is what the OLEDB, ADO.NET, ODBC and ADO managers' ``acquire()`` hands out
(the ``DatabaseSession`` Protocol of ``connections.base``). Underneath is an SQLAlchemy 2
engine (its URL and pool only: tasks run SQL on the raw DB-API connection), or, for ODBC, a
pool of pyodbc connections made from the ODBC string itself; ``db_drivers`` holds what differs
between drivers.

A task execution leases a connection (:meth:`DbSession.lease`): from the pool, in autocommit,
its session state reset when it comes back (SSIS's fresh connection per task, without a
connect each time); with RetainSameConnection the one connection of the run, leases serialised
on it, so ``BEGIN TRAN`` in one task and ``COMMIT`` in a later one work; inside an SSIS
transaction the connection enlisted in it. ``close()`` closes every connection.

SQLAlchemy and the drivers are imported only when a session is built.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dtsx.connections.base import (
    ConnectionSettings,
    DatabaseLease,
    TransactionScope,
)
from dtsx.connections.db_drivers import Driver, OdbcConnection, TransactionLost, driver_for
from dtsx.connections.db_strings import Target, odbc_dialect, retains, translation
from dtsx.engine.errors import ConnectionManagerError, DtsxError

__all__ = ["DbSession"]

log = logging.getLogger("dtsx.connections.database")  # one logger for the family

POOL_SIZE = 8  # idle connections kept per manager; more are opened (and closed) when tasks overlap

# The drivers dtsx knows, by SQLAlchemy driver name: the extra that installs each.
_EXTRAS = {
    "psycopg": ("psycopg", "dtsx[postgresql]"),
    "pymssql": ("pymssql", "dtsx[mssql]"),
    "pyodbc": ("pyodbc", "dtsx[odbc]"),
    "pymysql": ("pymysql", "pymysql"),
}


class _Lease:
    """One connection as a task holds it (the ``DatabaseLease`` Protocol)."""

    __slots__ = ("fairy", "dbapi", "driver", "state", "lock", "enlisted")

    def __init__(self, fairy: Any, driver: Driver) -> None:
        self.fairy = fairy  # the pool's proxy: close() gives the connection back
        self.dbapi: Any = fairy.dbapi_connection
        self.driver = driver
        self.state: dict[str, Any] = fairy.info  # lives as long as the DB-API connection
        self.lock = threading.Lock()  # serialises tasks on a shared (retained, enlisted) lease
        self.enlisted = False

    def cancel(self) -> None:
        try:
            self.driver.cancel(self.dbapi)
        except Exception as exc:  # cancel is best effort and runs on another thread
            log.debug("cancelling a statement failed: %s", exc)

    def set_timeout(self, seconds: int) -> None:
        self.driver.set_timeout(self.dbapi, self.state, max(0, int(seconds)))

    def end_task(self) -> None:
        """A task is done with a shared (retained or enlisted) connection, which is not reset:
        drop the statement timeout it set, so that it cannot cut the next task short."""
        if self.state.get("timeout"):
            try:
                self.set_timeout(0)
            except Exception as exc:  # a broken connection fails the next task, with its error
                log.debug("clearing a statement timeout failed: %s", exc)


class _Participant:
    """One connection's part of an SSIS transaction (the ``TransactionParticipant`` Protocol)."""

    def __init__(self, session: DbSession, lease: _Lease) -> None:
        self.session = session
        self.lease: DatabaseLease = lease
        self._lease = lease
        self.two_phase = lease.driver.two_phase
        self._gid: str | None = None
        self._done = False

    def prepare(self) -> None:
        gid = f"dtsx-{uuid.uuid4().hex}"  # unique in the cluster, whichever host runs dtsx
        self._act("prepare", lambda c: self._lease.driver.prepare(c, gid))
        self._gid = gid

    def commit(self) -> None:
        self._end("COMMIT")

    def rollback(self) -> None:
        self._end("ROLLBACK")

    def _end(self, verb: str) -> None:
        # Once: the connection goes back to the pool at the end, and may then be another
        # task's; a scope that rolls back after a failed commit must not touch it again.
        if self._done:
            return
        self._done = True
        driver, gid = self._lease.driver, self._gid
        try:
            if gid is not None:
                self._act(verb.lower(), lambda c: driver.finish_prepared(c, verb, gid))
            else:
                self._act(verb.lower(), lambda c: driver.end(c, verb))
        finally:
            self.session._leave_transaction(self._lease)

    def _act(self, what: str, action: Callable[[Any], None]) -> None:
        session = self.session
        try:
            action(self._lease.dbapi)
        except TransactionLost as exc:
            raise ConnectionManagerError(
                f"connection {session.name!r} ({session.server}): {exc}.", host=session.server
            ) from None
        except Exception as exc:
            raise session.driver_error(f"could not {what} its transaction", exc) from None


class DbSession:
    """What a database connection manager hands out: pooled leases of one database."""

    def __init__(self, settings: ConnectionSettings, family: str, target: Target) -> None:
        self.name = settings.name
        self.connection_type = family
        self.dialect = target.dialect
        self.server = target.server
        self.key = f"{settings.name} ({target.server})"
        self.translate: Callable[[str], str] | None = None
        self._target = target
        self._retain = retains(settings) is True
        self._lock = threading.Lock()
        self._engine: Any = None
        self._pool: Any = None  # SQLAlchemy's: opens connections (NullPool) or shares one
        # Idle connections, oldest first, kept here rather than in a SQLAlchemy QueuePool: its
        # checkout and checkin (events, the fairy's bookkeeping, a queue.Queue) were ~80k of
        # the 612k instructions of a one-INSERT task on PostgreSQL (callgrind).
        self._idle: deque[Any] = deque()
        self._module: Any = None  # the DB-API module
        self._retained: _Lease | None = None
        self._open: set[_Lease] = set()  # leases out of the pool (to close them at the end)
        self._closed = False
        self._module = self._start()
        self.paramstyle: str = self._module.paramstyle
        self.driver = driver_for(self.dialect, odbc=target.driver == "pyodbc")
        if translation(settings) == "tsql":
            self.translate = self._translator()

    # -- building

    def _start(self) -> Any:
        """Build the pool; return the DB-API module."""
        if self._target.driver == "pyodbc":
            return self._start_odbc()
        return self._start_engine()

    def _start_engine(self) -> Any:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import NullPool, StaticPool

        target = self._target
        url = target.url
        args = dict(target.connect_args)
        # The engine's pool only opens connections (the session keeps the idle ones), with no
        # reset of its own: release() resets (ROLLBACK and more).
        options: dict[str, Any] = {"poolclass": NullPool, "pool_reset_on_return": None}
        if target.dialect == "sqlite":
            args["check_same_thread"] = False  # tasks run on worker threads
            if not url.database or url.database == ":memory:":
                options = {"poolclass": StaticPool}  # one in-memory database for the run
        try:
            self._engine = create_engine(url, connect_args=args, **options)
        except ImportError as exc:
            raise self._missing_driver(url.get_driver_name(), exc) from None
        except Exception as exc:
            raise self.driver_error("cannot be opened", exc) from None
        self._pool = self._engine.pool
        driver = driver_for(target.dialect)
        event.listen(self._pool, "connect", lambda conn, _record: driver.on_connect(conn))
        return self._engine.dialect.dbapi

    def _start_odbc(self) -> Any:
        from sqlalchemy.pool import NullPool

        try:
            import pyodbc
        except ImportError as exc:
            raise self._missing_driver("pyodbc", exc) from None
        odbc = self._target.odbc

        def connect() -> Any:
            try:
                return OdbcConnection(pyodbc.connect(odbc, autocommit=True))
            except pyodbc.Error as exc:
                raise self.driver_error("cannot be opened", exc) from None

        if not self.dialect:  # a DSN: the driver says what it is connected to
            first = connect()
            try:
                self.dialect = odbc_dialect(first.getinfo(pyodbc.SQL_DBMS_NAME) or "")
            finally:
                first.close()
        self._pool = NullPool(connect, reset_on_return=None)
        return pyodbc

    # -- leases

    @contextmanager
    def lease(self, transaction: TransactionScope | None = None) -> Iterator[DatabaseLease]:
        if transaction is not None or self._retain:
            lease = self._enlisted(transaction) if transaction is not None else self._held()
            with lease.lock:
                try:
                    yield lease
                finally:
                    lease.end_task()
        else:
            lease = self._checkout()
            try:
                yield lease
            finally:
                self._release(lease)

    def _checkout(self) -> _Lease:
        if self._closed:
            raise ConnectionManagerError(
                f"connection {self.name!r} ({self.server}) is already closed (the run has ended)."
            )
        lease = _Lease(self._connect(), self.driver)
        with self._lock:
            self._open.add(lease)
        return lease

    def _connect(self) -> Any:
        """An idle connection (else a new one), its reset finished; one that fails its reset is
        dropped for a new one."""
        for attempt in (1, 2):
            fairy = self._take_idle()
            if self.driver.resetting(fairy.dbapi_connection, fairy.info):
                # Its reset is still on the way: take the next one (opened once, the first
                # time), so that one task's reset overlaps the next task instead of delaying it.
                other = self._take_idle()
                self._give_idle(fairy, first=True)
                fairy = other
            try:
                self.driver.checkout(fairy.dbapi_connection, fairy.info)
                return fairy
            except Exception as exc:
                log.debug("a pooled connection of %s failed its reset: %s", self.key, exc)
                fairy.invalidate()
                fairy.close()
                if attempt == 2:
                    raise self.driver_error("cannot be reset for the next task", exc) from None
        raise AssertionError("unreachable")

    def _take_idle(self) -> Any:
        """The oldest idle connection, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.popleft()
        try:
            return self._pool.connect()
        except Exception as exc:
            raise self.driver_error("cannot be opened", exc) from None

    def _give_idle(self, fairy: Any, *, first: bool = False) -> None:
        """Keep a reset (or resetting) connection for the next task; beyond POOL_SIZE, close it."""
        with self._lock:
            if not self._closed and len(self._idle) < POOL_SIZE:
                if first:
                    self._idle.appendleft(fairy)
                else:
                    self._idle.append(fairy)
                return
        fairy.close()

    def _release(self, lease: _Lease) -> None:
        """Give a lease back: reset, into the pool; a connection that cannot be reset is closed."""
        with self._lock:
            self._open.discard(lease)
        if not self.driver.pooled:
            lease.fairy.close()
            return
        try:
            lease.state.clear()
            self.driver.release(lease.dbapi, lease.state)
        except Exception as exc:
            log.debug("resetting a connection of %s failed, closing it: %s", self.key, exc)
            lease.fairy.invalidate()
            lease.fairy.close()
            return
        self._give_idle(lease.fairy)

    def _held(self) -> _Lease:
        """RetainSameConnection: the run's one connection, opened on first use."""
        with self._lock:
            retained = self._retained
        if retained is None:
            fresh = self._checkout()
            with self._lock:
                if self._retained is None:
                    self._retained, fresh = fresh, None  # type: ignore[assignment]
                retained = self._retained
            if fresh is not None:
                self._release(fresh)  # another thread won
        return retained

    def _enlisted(self, transaction: TransactionScope) -> _Lease:
        """The lease of this database in ``transaction``; begun at its isolation level on first
        use. Under the session's join lock, so two tasks cannot both begin one."""
        if self._target.driver == "pyodbc":
            raise ConnectionManagerError(
                f"connection {self.name!r} is an ODBC connection, which cannot join the "
                "transaction of a TransactionOption=Required container (SSIS 0xC002F308); set "
                "the task's TransactionOption to NotSupported or use an OLE DB or ADO.NET "
                "connection."
            )
        with _join_lock:
            found = transaction.enlisted(self.key)
            if found is not None:
                return found  # type: ignore[return-value]  # ours: only we enlist this key
            lease = self._held() if self._retain else self._checkout()
            try:
                with lease.lock:
                    self.driver.begin(lease.dbapi, transaction.isolation)
            except Exception as exc:
                if not self._retain:
                    self._release(lease)
                raise self.driver_error("could not begin a transaction", exc) from None
            lease.enlisted = True
            transaction.enlist(self.key, _Participant(self, lease))
            return lease

    def _leave_transaction(self, lease: _Lease) -> None:
        """After the participant's commit or rollback: back to autocommit work, or closed."""
        lease.enlisted = False
        if lease is self._retained and not self._closed:
            # A timeout SET inside the transaction is kept or undone with it: unknown now.
            if "timeout" in lease.state:
                lease.state["timeout"] = None
            return
        if self._closed:
            lease.fairy.invalidate()
            lease.fairy.close()
        else:
            self._release(lease)

    # -- end and errors

    def close(self) -> None:
        """Close every connection and the pool (leases still enlisted in a transaction are
        closed when it ends). Never raises."""
        with self._lock:
            self._closed = True
            leases, self._open = list(self._open), set()
            idle, self._idle = list(self._idle), deque()
            self._retained = None
        for fairy in idle:
            try:
                fairy.invalidate()  # closes it; a reset may still be on its way
            except Exception as exc:
                log.debug("closing a connection of %s failed: %s", self.key, exc)
        for lease in leases:
            if lease.enlisted:
                continue
            try:
                lease.fairy.invalidate()  # a task may still run on it: the connection goes
            except Exception as exc:
                log.debug("closing a connection of %s failed: %s", self.key, exc)
        try:
            if self._engine is not None:
                self._engine.dispose()
            elif self._pool is not None:
                self._pool.dispose()
        except Exception as exc:
            log.debug("closing the pool of %s failed: %s", self.key, exc)

    def driver_error(self, what: str, exc: BaseException) -> ConnectionManagerError:
        """A driver's failure as one sentence: connection, server, the driver's SQLSTATE and
        message (the password scrubbed), what to check."""
        message, code = _driver_text(exc)
        secret = self._target.secret
        if secret:
            # Not inside a word: a short password must not garble the text ("e****ist").
            bounded = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
            message = re.sub(bounded, "********", message)
        coded = f"{message} ({code})" if code else message
        return ConnectionManagerError(
            f"connection {self.name!r} ({self.server}) {what}: {coded}; {self._hint(message)}",
            host=self.server,
            reply=coded,
        )

    def _hint(self, message: str) -> str:
        lowered = message.lower()
        if self._target.integrated:
            return (
                "it uses Windows authentication (Integrated Security), which dtsx tries as "
                "Kerberos from the ticket cache (kinit); or give credentials with "
                f'--conn "{self.name}=mssql+pymssql://user:password@host:1433/database".'
            )
        if "password" in lowered or "authentication" in lowered or "login" in lowered:
            return "check the user name and password (or --conn with the right credentials)."
        if re.search(r"database .* does not exist|unknown database|cannot open database", lowered):
            return "check the database name in the connection string."
        return (
            "check that the server runs and accepts connections at that address, or point the "
            f'connection elsewhere with --conn "{self.name}=URL".'
        )

    def _translator(self) -> Callable[[str], str]:
        try:
            from dtsx.engine.tsql import translator

            return translator(self.dialect)
        except (ImportError, DtsxError) as exc:
            raise ConnectionManagerError(
                f"connection {self.name!r} ({self.server}) asks for T-SQL translation "
                f"(Translate=tsql), which dtsx cannot give for {self.dialect or 'this driver'}: "
                f"{exc}"
            ) from exc

    def _missing_driver(self, name: str, exc: ImportError) -> ConnectionManagerError:
        module, extra = _EXTRAS.get(name, (name, name))
        return ConnectionManagerError(
            f"connection {self.name!r} ({self.server}) needs the Python driver {module}, which "
            f"is not installed ({exc.name or exc}); install it with pip install '{extra}'."
        )


_join_lock = threading.Lock()  # enlisting is rare: one lock for all sessions keeps it simple


def _driver_text(exc: BaseException) -> tuple[str, str | None]:
    """A driver error's message on one line and its code: psycopg's ``sqlstate``, sqlite3's
    error name, pyodbc's ``(SQLSTATE, message)``, pymssql's ``(number, bytes)`` (FreeTDS
    repeats its lines: each is said once)."""
    args: tuple[Any, ...] = exc.args
    if len(args) == 1 and isinstance(args[0], tuple):  # pymssql's OperationalError((n, b""))
        args = args[0]
    code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], bytes):  # pymssql
        lines = args[1].decode("utf-8", "replace").splitlines()
        said = dict.fromkeys(x.strip() for x in lines if x.strip() and "severity" not in x)
        return " ".join(said), f"DB-Lib error {args[0]}"
    if len(args) == 2 and isinstance(args[0], str) and len(args[0]) == 5:  # pyodbc
        return " ".join(str(args[1]).split()), f"SQLSTATE {args[0]}"
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message, f"SQLSTATE {code}" if code else None
