"""Database sessions on real databases: SQLite files, the throwaway PostgreSQL cluster
(tests/dbservers.py) through psycopg and through unixODBC's PostgreSQL driver.

Pooling, session reset, RetainSameConnection, transactions (one phase and PostgreSQL's two
phase), cancel, statement timeouts, connection errors without the password, and that close()
leaves no connection open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import pytest

from dtsx.connections.base import ConnectionSettings, DatabaseLease, DatabaseSession
from dtsx.connections.database import (
    AdoNetConnectionManager,
    DatabaseConnectionManager,
    OdbcConnectionManager,
    OleDbConnectionManager,
)
from dtsx.engine.errors import ConnectionManagerError

SQLITE = "ADO.NET:SYSTEM.DATA.SQLITE.SQLITECONNECTION, SYSTEM.DATA.SQLITE"
SQLITE_300K = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
    "SELECT count(*) FROM c"
)
# A query that runs for minutes on SQLite unless interrupted.
SQLITE_FOREVER = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)


class Scope:
    """A TransactionScope as the contract describes it (H5's engine.transactions implements it
    for runs): participants by key, ended once."""

    def __init__(self, isolation: str = "SERIALIZABLE") -> None:
        self.isolation = isolation
        self.participants: dict[str, Any] = {}

    def enlisted(self, key: str) -> DatabaseLease | None:
        found = self.participants.get(key)
        return None if found is None else found.lease

    def enlist(self, key: str, participant: Any) -> None:
        assert key not in self.participants
        self.participants[key] = participant

    def end(self, success: bool, two_phase: bool = False) -> None:
        parts = list(self.participants.values())
        if success and two_phase:
            try:
                for part in parts:
                    part.prepare()
            except Exception:
                for part in parts:
                    part.rollback()
                raise
        for part in parts:
            part.commit() if success else part.rollback()


class Canceller(threading.Thread):
    """Cancels ``lease`` from another thread, as Ctrl-C does: first after 0.3 s, then again
    every 0.3 s (a cancel that comes before the statement starts is lost) until stopped.
    ``first`` is when it first cancelled."""

    def __init__(self, lease: DatabaseLease) -> None:
        super().__init__(daemon=True)
        self.lease, self.first, self.done = lease, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.3):
            self.first = self.first or time.monotonic()
            self.lease.cancel()

    def __enter__(self) -> Canceller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(5)
        assert self.first and time.monotonic() - self.first < 1.0, "not cancelled within 1 s"


def manager(cls: type[DatabaseConnectionManager], creation: str, text: str, **props: str) -> Any:
    return cls(ConnectionSettings("CM", creation, text, properties=props))


@pytest.fixture
def sqlite_cm(tmp_path):
    made = []

    def make(**props: str) -> Any:
        cm = manager(AdoNetConnectionManager, SQLITE, f"Data Source={tmp_path / 'x.db'};", **props)
        made.append(cm)
        return cm

    yield make
    for cm in made:
        cm.close()


def lease_error(session: Any) -> str:
    """The sentence a lease of ``session`` fails with (it must fail)."""
    with pytest.raises(ConnectionManagerError) as caught:
        with session.lease():
            pass
    return str(caught.value)


def scalar(lease: DatabaseLease, sql: str, params: Any = ()) -> Any:
    cursor = lease.dbapi.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else row[0]
    finally:
        cursor.close()


def run(lease: DatabaseLease, *sqls: str) -> None:
    cursor = lease.dbapi.cursor()
    for sql in sqls:
        cursor.execute(sql)
    cursor.close()


# --- SQLite -------------------------------------------------------------------------------


def test_a_sqlite_session_describes_itself(sqlite_cm, tmp_path):
    session = sqlite_cm().acquire()
    assert isinstance(session, DatabaseSession)
    assert (session.connection_type, session.dialect, session.paramstyle) == (
        "ADO.NET",
        "sqlite",
        "qmark",
    )
    assert session.server == str(tmp_path / "x.db") and session.translate is None


@pytest.mark.parametrize("where", ["property", "key"])
def test_translate_tsql_gives_the_session_a_translator_to_its_dialect(sqlite_cm, tmp_path, where):
    if where == "property":
        cm = sqlite_cm(Translate="tsql")
    else:
        text = f"Data Source={tmp_path / 'x.db'};Translate=tsql;"
        cm = manager(AdoNetConnectionManager, SQLITE, text)
    session = cm.acquire()
    try:
        assert session.translate is not None
        sql = session.translate("SELECT TOP 2 ISNULL(a, 0) FROM t")
        assert "LIMIT 2" in sql.upper() and "TOP" not in sql.upper()
    finally:
        cm.close()


def test_statements_commit_at_once_and_the_pool_reuses_a_reset_connection(sqlite_cm, tmp_path):
    session = sqlite_cm().acquire()
    with session.lease() as lease:
        run(lease, "CREATE TABLE t(a)", "INSERT INTO t VALUES (1)", "CREATE TEMP TABLE scratch(x)")
        first = lease.dbapi
        # autocommit: another connection sees the row while the lease is still held
        other = sqlite3.connect(tmp_path / "x.db")
        assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
        other.close()
    with session.lease() as lease:
        assert lease.dbapi is first  # pooled: no new connect
        assert scalar(lease, "SELECT count(*) FROM temp.sqlite_master") == 0  # reset


def test_a_transaction_a_task_leaves_open_is_rolled_back_without_retain(sqlite_cm):
    session = sqlite_cm().acquire()
    with session.lease() as lease:
        run(lease, "CREATE TABLE t(a)", "BEGIN", "INSERT INTO t VALUES (1)")
    with session.lease() as lease:
        assert scalar(lease, "SELECT count(*) FROM t") == 0


def test_retain_same_connection_keeps_session_state_and_an_open_begin(sqlite_cm, tmp_path):
    session = sqlite_cm(RetainSameConnection="True").acquire()
    with session.lease() as lease:
        run(lease, "CREATE TABLE t(a)", "CREATE TEMP TABLE scratch(x)", "BEGIN")
        run(lease, "INSERT INTO t VALUES (1)")
        first = lease.dbapi
    with session.lease() as lease:
        assert lease.dbapi is first
        assert scalar(lease, "SELECT count(*) FROM temp.sqlite_master") == 1
        other = sqlite3.connect(tmp_path / "x.db")
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)  # not yet committed
        run(lease, "COMMIT")
        assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
        other.close()


def test_retain_as_the_loader_keeps_it_minus_one(sqlite_cm):
    session = sqlite_cm(Retain="-1").acquire()
    with session.lease() as a:
        first = a.dbapi
        run(a, "CREATE TEMP TABLE keep(x)")
    with session.lease() as b:
        assert b.dbapi is first and scalar(b, "SELECT count(*) FROM temp.sqlite_master") == 1


def test_a_retained_connection_serialises_its_leases(sqlite_cm):
    session = sqlite_cm(RetainSameConnection="True").acquire()
    inside, order = threading.Event(), []

    def second() -> None:
        with session.lease():
            order.append("second")

    with session.lease():
        thread = threading.Thread(target=second)
        thread.start()
        inside.wait(0.3)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_a_transaction_holds_one_connection_until_it_ends(sqlite_cm, tmp_path):
    session = sqlite_cm().acquire()
    with session.lease() as lease:
        run(lease, "CREATE TABLE t(a)")
    for success, rows in ((False, 0), (True, 2)):
        scope = Scope()
        with session.lease(scope) as a:
            run(a, "INSERT INTO t VALUES (1)")
        with session.lease(scope) as b:
            assert b is a  # the enlisted connection, not the pool's next one
            run(b, "INSERT INTO t VALUES (2)")
        (participant,) = scope.participants.values()
        assert participant.two_phase is False
        other = sqlite3.connect(tmp_path / "x.db")
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing committed
        other.close()
        scope.end(success)
        with session.lease() as lease:
            assert scalar(lease, "SELECT count(*) FROM t") == rows
            assert not lease.dbapi.in_transaction  # back to autocommit


def test_a_sqlite_transaction_ended_by_a_task_is_reported_at_commit(sqlite_cm):
    session = sqlite_cm().acquire()
    scope = Scope()
    with session.lease(scope) as lease:
        run(lease, "CREATE TABLE t(a)", "COMMIT", "INSERT INTO t VALUES (1)")
    with pytest.raises(ConnectionManagerError, match="already ended before the container"):
        scope.end(True)
    with session.lease() as lease:  # back in the pool, usable
        assert scalar(lease, "SELECT count(*) FROM t") == 1


def test_cancel_interrupts_a_running_sqlite_statement_within_a_second(sqlite_cm):
    session = sqlite_cm().acquire()
    with session.lease() as lease:
        with Canceller(lease), pytest.raises(sqlite3.OperationalError, match="interrupted"):
            scalar(lease, SQLITE_FOREVER)
    with session.lease() as lease:  # the connection still works for the next task
        assert scalar(lease, "SELECT 1") == 1


def test_a_sqlite_statement_timeout_fails_the_statement_and_zero_waits(sqlite_cm):
    session = sqlite_cm().acquire()
    with session.lease() as lease:
        lease.set_timeout(1)
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            scalar(lease, SQLITE_FOREVER)
        assert 0.9 < time.monotonic() - started < 2.5
        lease.set_timeout(0)
        assert scalar(lease, SQLITE_300K) == 300000


def test_a_timeout_a_task_left_on_a_retained_connection_does_not_cut_the_next_task(sqlite_cm):
    session = sqlite_cm(RetainSameConnection="True").acquire()
    with session.lease() as lease:
        lease.set_timeout(1)  # and the task ends without setting it back
    time.sleep(1.1)
    with session.lease() as lease:
        assert scalar(lease, SQLITE_300K) == 300000


def test_close_closes_the_pool_and_later_leases_fail(sqlite_cm):
    cm = sqlite_cm()
    session = cm.acquire()
    with session.lease() as lease:
        connection = lease.dbapi
    cm.close()
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")  # closed
    with pytest.raises(ConnectionManagerError, match="already closed"):
        with session.lease():
            pass


def test_a_memory_database_lives_for_the_run():
    cm = manager(AdoNetConnectionManager, SQLITE, "Data Source=:memory:;")
    try:
        session = cm.acquire()
        with session.lease() as lease:
            run(lease, "CREATE TABLE t(a)", "INSERT INTO t VALUES (1)")
        with session.lease() as lease:
            assert scalar(lease, "SELECT count(*) FROM t") == 1
    finally:
        cm.close()


def test_a_sqlite_url_through_conn(tmp_path):
    cm = manager(OleDbConnectionManager, "OLEDB", f"sqlite:///{tmp_path / 'u.db'}")
    try:
        session = cm.acquire()
        assert (session.connection_type, session.dialect) == ("OLEDB", "sqlite")
        with session.lease() as lease:
            run(lease, "CREATE TABLE t(a)")
        assert (tmp_path / "u.db").exists()
    finally:
        cm.close()


def test_a_sqlite_file_that_cannot_be_opened_names_the_connection(tmp_path, opened):
    session = opened(AdoNetConnectionManager, SQLITE, f"Data Source={tmp_path / 'no' / 'x.db'};")
    message = lease_error(session)
    assert message.startswith(f"connection 'CM' ({tmp_path / 'no' / 'x.db'}) cannot be opened:")
    assert "SQLSTATE SQLITE_CANTOPEN" in message


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("pymssql") is not None, reason="pymssql is installed"
)
def test_a_missing_driver_says_which_extra_installs_it(opened):
    cm = manager(OleDbConnectionManager, "OLEDB", "Provider=SQLNCLI11;Data Source=srv;")
    with pytest.raises(ConnectionManagerError, match=r"pip install 'dtsx\[mssql\]'"):
        cm.acquire()


# --- PostgreSQL (psycopg) -------------------------------------------------------------------


NPGSQL = "ADO.NET:NPGSQL.NPGSQLCONNECTION"


def pg_manager(db: Any, **props: str) -> Any:
    return manager(AdoNetConnectionManager, NPGSQL, db.npgsql, **props)


def settled_connections(db: Any, expected: int) -> int:
    """connections_to, asked until it is ``expected`` or 5 s have passed: a backend leaves
    pg_stat_activity a moment after its client closed the connection."""
    for _ in range(50):
        count = connections_to(db)
        if count == expected:
            break
        time.sleep(0.1)
    return count


def connections_to(db: Any) -> int:
    return int(
        admin_scalar(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db.database,),
        )
    )


def my_temp(name: str) -> str:
    """SQL counting this session's temp tables called ``name`` (pg_class shows every session's)."""
    return (
        f"SELECT count(*) FROM pg_class WHERE relname = '{name}' "
        "AND relnamespace = pg_my_temp_schema()"
    )


def admin_scalar(db: Any, sql: str, params: Any = None) -> Any:
    """A value read as the cluster's superuser (sees every session and prepared transaction)."""
    with db.cluster.admin() as conn:
        return conn.execute(sql, params).fetchone()[0]


@pytest.fixture
def pg(postgres_db):
    return postgres_db


@pytest.fixture
def opened():
    """``opened(cls, creation, text, **properties)``: a manager's session; every manager is
    closed after the test."""
    made = []

    def open_(cls: type[DatabaseConnectionManager], creation: str, text: str, **props: str) -> Any:
        made.append(manager(cls, creation, text, **props))
        return made[-1].acquire()

    yield open_
    for cm in made:
        cm.close()


@pytest.fixture
def pg_open(pg, opened):
    """``pg_open(**properties)``: a session of the test's fresh database, through Npgsql's
    string, with an empty table t(a int)."""

    def open_(**props: str) -> Any:
        session = opened(AdoNetConnectionManager, NPGSQL, pg.npgsql, **props)
        with session.lease() as lease:
            run(lease, "CREATE TABLE t(a int)")
        return session

    return open_


def test_a_postgres_session_pools_resets_and_closes_every_connection(pg):
    cm = pg_manager(pg, Translate="")
    session = cm.acquire()
    assert (session.dialect, session.paramstyle) == ("postgresql", "pyformat")
    assert session.server == f"127.0.0.1:{pg.port}/{pg.database}"
    with session.lease() as lease:
        run(lease, "CREATE TEMP TABLE scratch(x int)", "SET work_mem = '7MB'")
        run(lease, "CREATE TABLE t(a int)", "INSERT INTO t VALUES (1)")
        first = lease.dbapi
        assert pg.scalar("SELECT count(*) FROM t") == 1  # committed at once
    # Let the reset (sent as the lease ended) come back: while it is on the way, the pool hands
    # out another connection instead (see the next test).
    time.sleep(0.5)
    with session.lease() as lease:
        assert lease.dbapi is first
        assert scalar(lease, "SHOW work_mem") != "7MB"
        assert scalar(lease, my_temp("scratch")) == 0
        # psycopg's own prepared statements survive the reset (it prepares after 5 runs)
        for value in range(8):
            assert scalar(lease, "SELECT %s::int", (value,)) == value
    time.sleep(0.5)
    with session.lease() as lease:
        assert lease.dbapi is first
        for value in range(3):
            assert scalar(lease, "SELECT %s::int", (value,)) == value
    assert connections_to(pg) == 1
    cm.close()
    assert connections_to(pg) == 0


def test_back_to_back_tasks_alternate_two_connections_each_one_reset(pg):
    cm = pg_manager(pg)
    session = cm.acquire()
    try:
        seen = set()
        for round_ in range(40):
            with session.lease() as lease:
                seen.add(id(lease.dbapi))
                assert scalar(lease, "SHOW work_mem") == "4MB", round_  # the server's default
                assert scalar(lease, my_temp("x")) == 0
                run(lease, "SET work_mem = '9MB'", "CREATE TEMP TABLE x(a int)")
        assert len(seen) <= 2 and connections_to(pg) <= 2
    finally:
        cm.close()
    assert connections_to(pg) == 0


def test_overlapping_tasks_open_more_connections_and_only_pool_size_stay_idle(pg):
    from contextlib import ExitStack

    from dtsx.connections.db_session import POOL_SIZE

    cm = pg_manager(pg)
    session = cm.acquire()
    try:
        with ExitStack() as held:  # POOL_SIZE + 3 tasks at once: each its own connection
            leases = [held.enter_context(session.lease()) for _ in range(POOL_SIZE + 3)]
            assert len({id(lease.dbapi) for lease in leases}) == POOL_SIZE + 3
            assert connections_to(pg) == POOL_SIZE + 3
        assert settled_connections(pg, POOL_SIZE) == POOL_SIZE  # the three beyond were closed
        time.sleep(0.5)  # every reset has come back
        with session.lease() as lease:  # an idle one is reused, no new connection
            assert scalar(lease, "SELECT 1") == 1
        assert connections_to(pg) == POOL_SIZE
    finally:
        cm.close()
    assert connections_to(pg) == 0


def test_a_pooled_connection_the_server_dropped_is_replaced_for_the_next_task(
    pg, monkeypatch, pg_open
):
    from dtsx.connections import db_drivers

    # The connection idles for less than the run's threshold; pretend it idled longer.
    monkeypatch.setattr(db_drivers, "PING_AFTER_IDLE", 0.0)
    session = pg_open()
    with session.lease() as lease:
        pid = scalar(lease, "SELECT pg_backend_pid()")
    admin_scalar(pg, "SELECT pg_terminate_backend(%s)", (pid,))
    with session.lease() as lease:
        assert scalar(lease, "SELECT pg_backend_pid()") != pid


def test_postgres_retain_carries_begin_and_commit_across_leases(pg):
    cm = pg_manager(pg, RetainSameConnection="True")
    session = cm.acquire()
    try:
        with session.lease() as lease:
            run(lease, "CREATE TABLE t(a int)", "BEGIN", "INSERT INTO t VALUES (1)")
        assert pg.scalar("SELECT count(*) FROM t") == 0
        with session.lease() as lease:
            run(lease, "COMMIT")
        assert pg.scalar("SELECT count(*) FROM t") == 1
    finally:
        cm.close()
    assert connections_to(pg) == 0


def test_postgres_two_phase_commit_and_rollback(pg, pg_open):
    session = pg_open()
    for success, rows in ((True, 1), (False, 1)):
        scope = Scope("READ COMMITTED")
        with session.lease(scope) as lease:
            assert scalar(lease, "SHOW transaction_isolation") == "read committed"
            run(lease, "INSERT INTO t VALUES (1)")
        (participant,) = scope.participants.values()
        assert participant.two_phase
        participant.prepare()
        assert admin_scalar(pg, "SELECT count(*) FROM pg_prepared_xacts") == 1
        participant.commit() if success else participant.rollback()
        assert admin_scalar(pg, "SELECT count(*) FROM pg_prepared_xacts") == 0
        assert pg.scalar("SELECT count(*) FROM t") == rows


def test_postgres_one_phase_rollback_of_a_failed_transaction(pg, pg_open):
    import psycopg

    session = pg_open()
    scope = Scope()
    with session.lease(scope) as lease:
        assert scalar(lease, "SHOW transaction_isolation") == "serializable"
        run(lease, "INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            run(lease, "SELECT 1/0")
    scope.end(False)
    assert pg.scalar("SELECT count(*) FROM t") == 0
    with session.lease() as lease:  # the connection is usable again, in autocommit
        run(lease, "INSERT INTO t VALUES (2)")
    assert pg.scalar("SELECT count(*) FROM t") == 1


@pytest.mark.parametrize("two_phase", [False, True])
def test_postgres_an_aborted_transaction_cannot_be_committed_silently(pg, two_phase, pg_open):
    import psycopg

    session = pg_open()
    scope = Scope()
    with session.lease(scope) as lease:
        run(lease, "INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            run(lease, "SELECT 1/0")  # a failure the container tolerated
    with pytest.raises(ConnectionManagerError) as caught:
        scope.end(True, two_phase=two_phase)
    assert str(caught.value).startswith(f"connection 'CM' ({session.server}): its transaction")
    assert "aborted by an earlier failed statement" in str(caught.value)
    for participant in scope.participants.values():
        participant.rollback()  # as a scope does after a failed commit: nothing happens
    assert admin_scalar(pg, "SELECT count(*) FROM pg_prepared_xacts") == 0
    with session.lease() as lease:
        assert scalar(lease, "SELECT count(*) FROM t") == 0


def test_postgres_a_transaction_a_task_committed_itself_is_reported(pg, pg_open):
    session = pg_open()
    scope = Scope()
    with session.lease(scope) as lease:
        run(lease, "INSERT INTO t VALUES (1)", "COMMIT")
    with pytest.raises(ConnectionManagerError, match="already ended before the container"):
        scope.end(True)


def test_postgres_cancel_within_a_second_and_statement_timeout(pg, pg_open):
    import psycopg

    session = pg_open()
    with session.lease() as lease:
        with Canceller(lease), pytest.raises(psycopg.errors.QueryCanceled):
            run(lease, "SELECT pg_sleep(30)")
        lease.set_timeout(1)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            run(lease, "SELECT pg_sleep(5)")
        assert 0.9 < time.monotonic() - started < 4
    with session.lease() as lease:  # the timeout went with the reset
        assert scalar(lease, "SHOW statement_timeout") == "0"


def test_a_wrong_password_fails_in_one_sentence_without_the_password(pg, opened):
    wrong = "Wrong-Pass-4417"
    text = pg.npgsql.replace(pg.password, wrong)
    session = opened(AdoNetConnectionManager, NPGSQL, text)
    message = lease_error(session)
    assert wrong not in message and pg.password not in message
    assert message.startswith(f"connection 'CM' (127.0.0.1:{pg.port}/{pg.database}) cannot be")
    assert "password authentication failed" in message and "check the user name" in message
    assert "\n" not in message


def test_a_password_in_a_url_stays_out_of_messages(pg, opened):
    url = pg.url.replace(pg.password, "Url-Secret-99")
    session = opened(OleDbConnectionManager, "OLEDB", url)
    assert "Url-Secret-99" not in session.server
    message = lease_error(session)
    assert "Url-Secret-99" not in message


def test_nothing_listens_is_a_clear_error(opened):
    from tests.dbservers import free_port

    pytest.importorskip("psycopg")
    text = f"Host=127.0.0.1;Port={free_port()};Database=d;Username=u;Password=p;Timeout=2"
    session = opened(AdoNetConnectionManager, NPGSQL, text)
    assert "check that the server runs" in lease_error(session)


# --- ODBC through unixODBC -------------------------------------------------------------------


def test_odbc_to_postgres_through_unixodbc(postgres_odbc, pg):
    cm = manager(OdbcConnectionManager, "ODBC", pg.odbc)
    session = cm.acquire()
    try:
        assert (session.connection_type, session.dialect, session.paramstyle) == (
            "ODBC",
            "postgresql",
            "qmark",
        )
        assert pg.password not in session.server
        with session.lease() as lease:
            run(lease, "CREATE TABLE t(a int)", "CREATE TEMP TABLE scratch(x int)")
            cursor = lease.dbapi.cursor()
            cursor.execute("INSERT INTO t VALUES (?)", 5)
            cursor.close()
        assert pg.scalar("SELECT a FROM t") == 5  # autocommit
        with session.lease() as lease:
            assert scalar(lease, my_temp("scratch")) == 0
        with pytest.raises(ConnectionManagerError, match="0xC002F308"):
            with session.lease(Scope()):
                pass
    finally:
        cm.close()
    assert connections_to(pg) == 0


def test_odbc_cancel_and_query_timeout(postgres_odbc, pg, opened):
    import pyodbc

    session = opened(OdbcConnectionManager, "ODBC", pg.odbc)
    with session.lease() as lease:
        cursor = lease.dbapi.cursor()
        with Canceller(lease), pytest.raises(pyodbc.Error, match="cancel"):
            cursor.execute("SELECT pg_sleep(30)")
        lease.set_timeout(1)
        cursor = lease.dbapi.cursor()
        started = time.monotonic()
        with pytest.raises(pyodbc.Error, match="statement timeout"):
            cursor.execute("SELECT pg_sleep(5)")
        assert 0.9 < time.monotonic() - started < 4


def test_an_odbc_wrong_password_names_the_sqlstate_without_the_password(postgres_odbc, pg, opened):
    text = pg.odbc.replace(pg.password, "Odbc-Wrong-51")
    session = opened(OdbcConnectionManager, "ODBC", text)
    message = lease_error(session)
    assert "Odbc-Wrong-51" not in message and "SQLSTATE" in message


# --- SQL Server through pymssql, no server: the mapping reaches the driver and fails clearly -----


@pytest.mark.parametrize(
    "auth",
    ["User ID=etl;Password=Sql-Secret-3;", "User ID=etl;Password=x;", "Integrated Security=SSPI;"],
)
def test_sql_server_that_does_not_answer_fails_in_one_sentence(opened, auth):
    pytest.importorskip("pymssql")
    from tests.dbservers import free_port

    port = free_port()
    text = (
        f"Provider=SQLNCLI11.1;Data Source=localhost,{port};Initial Catalog=Dw;{auth}"
        "Connect Timeout=3;Application Name=SSIS-Nightly;"
    )
    session = opened(OleDbConnectionManager, "OLEDB", text)
    assert (session.dialect, session.paramstyle) == ("mssql", "pyformat")
    message = lease_error(session)
    assert message.startswith(f"connection 'CM' (127.0.0.1:{port}/Dw) cannot be opened: ")
    # all of it: a short password ("x") is masked as a word, never inside one ("e****ist")
    assert "TDS server is unavailable or does not exist" in message
    assert "(DB-Lib error 20009)" in message
    assert "Sql-Secret-3" not in message and "\n" not in message and "b'" not in message
    if "Integrated" in auth:
        assert "Kerberos from the ticket cache (kinit)" in message
    else:
        assert "check that the server runs" in message


# --- SQL Server, when one is given ------------------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("DTSX_TEST_MSSQL_URL"),
    reason="no SQL Server here: set DTSX_TEST_MSSQL_URL=mssql+pymssql://user:pw@host:1433/db",
)
def test_live_sql_server(opened):
    session = opened(OleDbConnectionManager, "OLEDB", os.environ["DTSX_TEST_MSSQL_URL"])
    assert session.dialect == "mssql"
    with session.lease() as lease:
        assert scalar(lease, "SELECT 1") == 1
    scope = Scope("READ COMMITTED")
    with session.lease(scope) as lease:
        assert scalar(lease, "SELECT @@TRANCOUNT") == 1
    scope.end(False)
