"""SSIS transactions across two PostgreSQL databases of the live test cluster: two-phase commit
(PREPARE TRANSACTION, then COMMIT PREPARED on each), a prepare that fails rolling back both, a
commit that fails failing the container, and the same through the engine (a Required Sequence).

The participants here are what a database manager gives a transaction: a psycopg connection
begun at the scope's isolation level, prepared and committed with PostgreSQL's own statements.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import AliasChoices, Field

from dtsx.connections.base import DatabaseLease
from dtsx.engine.errors import TaskFailedError
from dtsx.engine.model import Executable, ExecutableKind, XmlNode
from dtsx.engine.transactions import Transaction
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties
from tests.dbservers import PostgresDatabase
from tests.engine._probe import container, edge, package, run_bounded

PGSQL = "Tests.TxPg"
LOG: list[str] = []
_numbers = itertools.count()


class _Lease:
    def __init__(self, conn: Any) -> None:
        self.dbapi = conn

    def cancel(self) -> None:
        self.dbapi.cancel_safe()

    def set_timeout(self, seconds: int) -> None:
        self.dbapi.execute(f"SET statement_timeout = {int(seconds) * 1000}")


class PgParticipant:
    """One PostgreSQL connection's part of a transaction (two-phase: PREPARE TRANSACTION)."""

    two_phase = True

    def __init__(self, db: PostgresDatabase, isolation: str) -> None:
        self.name = db.database
        conn = db.connect(autocommit=True)  # BEGIN/COMMIT are sent explicitly, as a manager does
        conn.execute(f"BEGIN ISOLATION LEVEL {isolation or 'READ COMMITTED'}")
        self.lease: DatabaseLease = _Lease(conn)
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


DATABASES: dict[str, PostgresDatabase] = {}  # the test's databases, by name
_JOIN = threading.Lock()


class TxPgTask(Task):
    """Runs ``Sql`` on the test database ``Database``, in the transaction in force if any."""

    class Properties(TaskProperties):
        database: str = Field("", validation_alias=AliasChoices("Database", "database"))
        sql: str = Field("", validation_alias=AliasChoices("Sql", "sql"))
        mode: str = Field("ok", validation_alias=AliasChoices("Mode", "mode"))

    def execute(self, ctx: TaskContext) -> None:
        props = self.props
        assert isinstance(props, TxPgTask.Properties)
        db = DATABASES[props.database]
        tx = ctx.transaction
        if tx is None:
            with db.connect(autocommit=True) as conn:
                conn.execute(props.sql)
        else:
            with _JOIN:
                lease = tx.enlisted(db.database)
                if lease is None:
                    participant = PgParticipant(db, tx.isolation)
                    tx.enlist(db.database, participant)
                    lease = participant.lease
            if props.sql:
                lease.dbapi.execute(props.sql)
        if props.mode == "fail":
            raise TaskFailedError("the task was told to fail after its statement.")


if PGSQL not in TASKS:
    TASKS.add(PGSQL, TxPgTask, "tests.engine.test_transactions_pg")


@pytest.fixture
def two(postgres: PostgresDatabase) -> Iterator[tuple[PostgresDatabase, PostgresDatabase]]:
    """Two fresh databases of the live cluster, each with a table t(name text)."""
    n = next(_numbers)
    dbs = (postgres.create_database(f"tx_a{n}"), postgres.create_database(f"tx_b{n}"))
    for db in dbs:
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (name text)")
        DATABASES[db.database] = db
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
    with b.connect() as conn:
        conn.execute(
            "ALTER TABLE t ADD CONSTRAINT one_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED"
        )
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
    with a.connect() as conn:
        conn.execute(
            "ALTER TABLE t ADD CONSTRAINT one_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED"
        )
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


def _task(
    name: str, db: PostgresDatabase, statement: str, parent: str, mode: str = "ok"
) -> Executable:
    node = XmlNode(tag="TxPg", attrs={"Database": db.database, "Sql": statement, "Mode": mode})
    return Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"{parent}\\{name}",
        name=name,
        raw_type=PGSQL,
        type_key=PGSQL,
        object_data=XmlNode(tag="ObjectData", children=[node]),
    )


@pytest.mark.parametrize("fail", [False, True])
def test_a_required_sequence_over_two_databases(
    postgres: PostgresDatabase, two: tuple[PostgresDatabase, PostgresDatabase], fail: bool
) -> None:
    a, b = two
    seq = "Package\\Seq"
    children = [
        _task("A", a, "INSERT INTO t VALUES ('a')", seq),
        _task("B", b, "INSERT INTO t VALUES ('b')", seq, mode="fail" if fail else "ok"),
    ]
    pkg = package(
        [
            container(
                "Seq",
                ExecutableKind.SEQUENCE,
                "Package",
                children,
                [edge(seq, "A", "B")],
                transaction_option=2,
            )
        ]
    )
    run = run_bounded(pkg)
    if fail:
        assert run.result.value == "Failure"
        assert names(a) == [] and names(b) == []
        assert LOG == [f"rollback {a.database}", f"rollback {b.database}"]
    else:
        assert run.result.value == "Success", [e.errors for e in run.executables]
        assert names(a) == ["a"] and names(b) == ["b"]
        assert [line.split()[0] for line in LOG] == ["prepare", "prepare", "commit", "commit"]
    assert prepared(postgres) == 0
