"""The database fixtures start real servers and stop them (tests/dbservers.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._shared import REPO_ROOT
from tests.dbservers import PASSWORD, PostgresDatabase, postgres_missing, start_postgres


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_postgres_fixture_is_a_live_server_that_checks_passwords(
    postgres: PostgresDatabase,
) -> None:
    import psycopg

    assert postgres.cluster.running()
    assert postgres.scalar("SELECT current_user || '@' || current_database()") == "dtsx@dtsx"
    assert postgres.scalar("SHOW listen_addresses") == "127.0.0.1"
    assert int(postgres.scalar("SHOW max_prepared_transactions")) > 0  # two-phase commit works
    wrong = postgres.conninfo.replace(f"password={PASSWORD}", "password=wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_sqlalchemy_url_and_odbc_string_reach_it(postgres_odbc: PostgresDatabase) -> None:
    import pyodbc
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_odbc.url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == "dtsx"
    finally:
        engine.dispose()
    odbc = pyodbc.connect(postgres_odbc.odbc, timeout=10)
    try:
        assert odbc.cursor().execute("SELECT current_database()").fetchone()[0] == "dtsx"
    finally:
        odbc.close()


def test_create_database_is_fresh(postgres: PostgresDatabase) -> None:
    first = postgres.create_database("fresh_check")
    with first.connect() as conn:
        conn.execute("CREATE TABLE t (x int)")
    again = postgres.create_database("fresh_check")
    assert again.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'") == 0


def test_postgres_db_is_a_database_of_its_own(postgres_db: PostgresDatabase) -> None:
    assert postgres_db.database != "dtsx"
    assert postgres_db.scalar("SELECT current_database()") == postgres_db.database


@pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))
def test_start_and_stop_really_start_and_stop_a_server() -> None:
    db = start_postgres()
    base, pid = db.cluster.base, db.cluster.postmaster_pid()
    try:
        assert pid is not None and db.cluster.running() and _accepts(db.port)
    finally:
        db.cluster.stop()
    assert not db.cluster.running()
    assert not _accepts(db.port)
    assert not base.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


@pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))
def test_a_process_that_forgets_to_stop_its_server_still_stops_it() -> None:
    script = (
        "from tests.dbservers import start_postgres\n"
        "db = start_postgres()\n"
        "print(db.port, db.cluster.base, flush=True)\n"
        "raise SystemExit(3)\n"  # no stop(): the interpreter's exit must stop the cluster
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 3, done.stderr
    port, base = done.stdout.split()
    assert not _accepts(int(port))
    assert not Path(base).exists()
