"""SSIS transactions across two PostgreSQL databases of the live test cluster: two-phase commit
(PREPARE TRANSACTION, then COMMIT PREPARED on each), a prepare that fails rolling back both, a
commit that fails failing the container, and the same through the engine (a Required Sequence).

The participants here are what a database manager gives a transaction: a psycopg connection
begun at the scope's isolation level, prepared and committed with PostgreSQL's own statements.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dtsx.connections.base import DatabaseLease, TransactionParticipant
from dtsx.engine.transactions import Transaction
from tests.dbservers import PostgresDatabase
from tests.engine.test_transactions import DATABASES, LOG, Lease, run_seq, sql

_numbers = itertools.count()


class PgParticipant:
    """One PostgreSQL connection's part of a transaction (two-phase: PREPARE TRANSACTION)."""

    two_phase = True

    def __init__(self, db: PostgresDatabase, isolation: str) -> None:
        self.name = db.database
        conn = db.connect(autocommit=True)  # BEGIN/COMMIT are sent explicitly, as a manager does
        conn.execute(f"BEGIN ISOLATION LEVEL {isolation or 'READ COMMITTED'}")
        self.lease: DatabaseLease = Lease(conn, conn.cancel_safe)
        self.gid = f"dtsx-test-{uuid.uuid4()}"
        self.prepared = False

    def _say(self, statement: str) -> None:
        LOG.append(f"{statement.split(' ')[0].lower()} {self.name}")
        self.lease.dbapi.execute(statement)

    def prepare(self) -> None:
        self._say(f"PREPARE TRANSACTION '{self.gid}'")
        self.prepared = True

    def commit(self) -> None:
        try:
            self._say(f"COMMIT PREPARED '{self.gid}'" if self.prepared else "COMMIT")
        finally:
            self.lease.dbapi.close()

    def rollback(self) -> None:
        try:
            if self.prepared:
                self._say(f"ROLLBACK PREPARED '{self.gid}'")
            elif not self.lease.dbapi.closed:
                self._say("ROLLBACK")
        finally:
            self.lease.dbapi.close()


class PgDatabase:
    """A database of the live cluster for the shared test task (tests.engine.test_transactions)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def connect(self) -> Any:
        return self.db.connect(autocommit=True)

    def participant(self, isolation: str) -> TransactionParticipant:
        return PgParticipant(self.db, isolation)


@pytest.fixture
def two(postgres: PostgresDatabase) -> Iterator[tuple[PostgresDatabase, PostgresDatabase]]:
    """Two fresh databases of the live cluster, each with a table t(name text)."""
    n = next(_numbers)
    dbs = (postgres.create_database(f"tx_a{n}"), postgres.create_database(f"tx_b{n}"))
    for db in dbs:
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (name text)")
        DATABASES[db.database] = PgDatabase(db)
    LOG.clear()
    try:
        yield dbs
    finally:
        with postgres.cluster.admin() as admin:  # never leave a prepared transaction behind
            for (gid,) in admin.execute("SELECT gid FROM pg_prepared_xacts").fetchall():
                admin.execute(f"ROLLBACK PREPARED '{gid}'")
            for db in dbs:
                admin.execute(f'DROP DATABASE IF EXISTS "{db.database}" WITH (FORCE)')
        DATABASES.clear()


def names(db: PostgresDatabase) -> list[str]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute("SELECT name FROM t ORDER BY name").fetchall()]


def prepared(postgres: PostgresDatabase) -> int:
    with postgres.cluster.admin() as admin:
        row = admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()
    return int(row[0]) if row else 0


def deferred_unique(db: PostgresDatabase) -> None:
    """Names in t must be unique, checked at PREPARE/COMMIT: a failure that comes at the end."""
    with db.connect() as conn:
        conn.execute(
            "ALTER TABLE t ADD CONSTRAINT one_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED"
        )


def join(tx: Transaction, db: PostgresDatabase, statement: str) -> PgParticipant:
    participant = PgParticipant(db, tx.isolation)
    tx.enlist(db.database, participant)
    participant.lease.dbapi.execute(statement)
    return participant


def test_two_databases_commit_with_two_phase_commit(
    postgres: PostgresDatabase, two: tuple[PostgresDatabase, PostgresDatabase]
) -> None:
    a, b = two
    warnings: list[str] = []
    tx = Transaction("Package\\Seq", None, warnings.append)
    join(tx, a, "INSERT INTO t VALUES ('in a')")
    join(tx, b, "INSERT INTO t VALUES ('in b')")
    assert names(a) == [] and names(b) == []  # nothing visible before the end
    assert tx.end(commit=True) is None
    assert LOG == [
        f"prepare {a.database}",
        f"prepare {b.database}",
        f"commit {a.database}",
        f"commit {b.database}",
    ]
    assert names(a) == ["in a"] and names(b) == ["in b"]
    assert prepared(postgres) == 0
    assert warnings == []  # two-phase: atomic, nothing to warn about


def test_a_prepare_that_fails_rolls_back_every_database(
    postgres: PostgresDatabase, two: tuple[PostgresDatabase, PostgresDatabase]
) -> None:
    """A deferred constraint is checked at PREPARE TRANSACTION: b's prepare fails after a's
    succeeded, and a's prepared work is rolled back too."""
    a, b = two
    deferred_unique(b)
    tx = Transaction("Package\\Seq", None, lambda _: None)
    join(tx, a, "INSERT INTO t VALUES ('in a')")
    join(tx, b, "INSERT INTO t VALUES ('twice'), ('twice')")
    problem = tx.end(commit=True)
    assert problem is not None
    assert problem.startswith(
        f"the transaction of 'Package\\\\Seq' could not prepare on {b.database}: UniqueViolation"
    )
    assert problem.endswith("every connection in it was rolled back.")
    assert LOG == [
        f"prepare {a.database}",
        f"prepare {b.database}",
        f"rollback {a.database}",  # ROLLBACK PREPARED: it was prepared
        f"rollback {b.database}",
    ]
    assert names(a) == [] and names(b) == []
    assert prepared(postgres) == 0


def test_one_database_commits_without_preparing_and_a_failed_commit_is_reported(
    two: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    a, _ = two
    deferred_unique(a)
    good = Transaction("Package\\Good", None, lambda _: None)
    join(good, a, "INSERT INTO t VALUES ('once')")
    assert good.end(commit=True) is None
    bad = Transaction("Package\\Bad", None, lambda _: None)
    join(bad, a, "INSERT INTO t VALUES ('twice'), ('twice')")
    problem = bad.end(commit=True)
    assert problem is not None
    assert problem.startswith(
        f"the transaction of 'Package\\\\Bad' could not commit on {a.database}"
    )
    assert "UniqueViolation" in problem
    assert LOG == [f"commit {a.database}", f"commit {a.database}"]  # no PREPARE for one database
    assert names(a) == ["once"]


def test_the_isolation_level_is_the_one_the_transaction_runs_at(
    two: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    a, _ = two
    tx = Transaction("Package\\Seq", 65536, lambda _: None)
    participant = join(tx, a, "SELECT 1")
    level = participant.lease.dbapi.execute("SHOW transaction_isolation").fetchone()[0]
    assert level == "repeatable read"
    assert tx.end(commit=False) is None


@pytest.mark.parametrize("fail", [False, True])
def test_a_required_sequence_over_two_databases(
    postgres: PostgresDatabase, two: tuple[PostgresDatabase, PostgresDatabase], fail: bool
) -> None:
    a, b = two
    run = run_seq(
        sql("A", a.database, "INSERT INTO t VALUES ('a')"),
        sql("B", b.database, "INSERT INTO t VALUES ('b')", mode="fail" if fail else "ok"),
    )
    if fail:
        assert run.result.value == "Failure"
        assert names(a) == [] and names(b) == []
        assert LOG == [f"rollback {a.database}", f"rollback {b.database}"]
    else:
        assert run.result.value == "Success", [e.errors for e in run.executables]
        assert names(a) == ["a"] and names(b) == ["b"]
        assert [line.split()[0] for line in LOG] == ["prepare", "prepare", "commit", "commit"]
    assert prepared(postgres) == 0
