"""SSIS transactions in the engine (TransactionOption, IsolationLevel), on real SQLite files.

A small test task, ``Tests.TxSql``, runs one SQL statement on a SQLite file the way a database
task does: inside a transaction (``ctx.transaction``) it joins the connection already enlisted
for that file, or opens one, begins and enlists it; outside it works in autocommit and closes
the connection. What the engine must do is then checked on the file itself, through a separate
connection, after the run.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from pydantic import AliasChoices, Field

from dtsx.connections.base import DatabaseLease, TransactionParticipant
from dtsx.engine.errors import ExecutionError, TaskFailedError
from dtsx.engine.events import RunEvent
from dtsx.engine.executor import RunResult
from dtsx.engine.model import ExecutableKind, Executable, XmlNode
from dtsx.engine import model
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.transactions import ISOLATION_SQL, Transaction, isolation_sql
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties
from tests.engine._probe import container, edge, package, run_bounded, var

TXSQL = "Tests.TxSql"
SEEN: dict[str, Any] = {}  # what the tasks saw, by task name


class Lease:
    """A DB-API connection as a DatabaseLease (the tests set no statement timeouts)."""

    def __init__(self, conn: Any, cancel: Callable[[], None]) -> None:
        self.dbapi = conn
        self.cancel = cancel

    def set_timeout(self, seconds: int) -> None:
        pass


class _Participant:
    """A SQLite connection's part of a transaction: BEGIN on enlisting, COMMIT or ROLLBACK at
    the end (SQLite cannot prepare, so two_phase is False)."""

    two_phase = False

    def __init__(self, path: str, isolation: str, log: list[str], pragma: str = "") -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if pragma:  # before BEGIN: SQLite ignores some pragmas inside a transaction
            conn.execute(pragma)
        # SQLite is always serializable; IMMEDIATE takes the write lock at once, as SERIALIZABLE asks.
        conn.execute("BEGIN IMMEDIATE" if isolation == "SERIALIZABLE" else "BEGIN")
        self.lease: DatabaseLease = Lease(conn, conn.interrupt)
        self.log = log
        self.path = path

    def prepare(self) -> None:
        self.log.append(f"prepare {self.path}")

    def commit(self) -> None:
        self.log.append(f"commit {Path(self.path).name}")
        self.lease.dbapi.execute("COMMIT")
        self.lease.dbapi.close()

    def rollback(self) -> None:
        self.log.append(f"rollback {Path(self.path).name}")
        if self.lease.dbapi.in_transaction:
            self.lease.dbapi.execute("ROLLBACK")
        self.lease.dbapi.close()


class Database(Protocol):
    """A database the test task can work on: an autocommit connection outside a transaction,
    a participant (begun at ``isolation``) inside one."""

    def connect(self) -> Any: ...

    def participant(self, isolation: str) -> TransactionParticipant: ...


class SqliteFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def connect(self) -> Any:
        return sqlite3.connect(self.path, isolation_level=None)

    def participant(self, isolation: str) -> TransactionParticipant:
        return _Participant(self.path, isolation, LOG)


DATABASES: dict[str, Database] = {}  # by the name the task's Database property gives
LOG: list[str] = []  # what the participants did, in order
_JOIN = threading.Lock()


class TxSqlTask(Task):
    """Runs ``Sql`` on ``Database`` in the transaction in force (joining the connection already
    enlisted for it, else beginning and enlisting one), or in autocommit outside any; ``Mode``
    makes it fail after its statement or wait for cancellation."""

    class Properties(TaskProperties):
        database: str = Field("", validation_alias=AliasChoices("Database", "database"))
        sql: str = Field("", validation_alias=AliasChoices("Sql", "sql"))
        mode: str = Field("ok", validation_alias=AliasChoices("Mode", "mode"))

    def __init__(self, props: TaskProperties) -> None:
        super().__init__(props)
        self._cancel = threading.Event()

    def execute(self, ctx: TaskContext) -> None:
        props = self.props
        assert isinstance(props, TxSqlTask.Properties)
        database = DATABASES[props.database]
        tx = ctx.transaction
        SEEN[ctx.name] = tx
        SEEN.setdefault(f"{ctx.name} every time", []).append(tx)
        if tx is None:
            conn = database.connect()
            try:
                self._run(props, conn, ctx)
            finally:
                conn.close()
            return
        with _JOIN:  # a manager joins atomically (two tasks of one scope may start together)
            lease = tx.enlisted(props.database)
            if lease is None:
                participant = database.participant(tx.isolation)
                tx.enlist(props.database, participant)
                lease = participant.lease
        self._run(props, lease.dbapi, ctx)

    def _run(self, props: TxSqlTask.Properties, conn: Any, ctx: TaskContext) -> None:
        if props.sql:
            cursor = conn.execute(props.sql)
            SEEN[f"{ctx.name} row"] = cursor.fetchone() if cursor.description else None
        if props.mode == "fail":
            raise TaskFailedError("the task was told to fail after its statement.")
        if props.mode == "wait-cancel" and not self._cancel.wait(30):
            raise TaskFailedError("never canceled")

    def cancel(self) -> None:
        self._cancel.set()


if TXSQL not in TASKS:
    TASKS.add(TXSQL, TxSqlTask, "tests.engine.test_transactions")

SEQ = "Package\\Seq"


def sql(
    name: str, db: Path | str, statement: str, parent: str = SEQ, mode: str = "ok", **fields: Any
) -> Executable:
    """A test task on ``db``: a SQLite file, or the name of a database in DATABASES."""
    if isinstance(db, Path):
        DATABASES.setdefault(str(db), SqliteFile(db))
    node = XmlNode(tag="TxSql", attrs={"Database": str(db), "Sql": statement, "Mode": mode})
    return Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"{parent}\\{name}",
        name=name,
        raw_type=TXSQL,
        type_key=TXSQL,
        object_data=XmlNode(tag="ObjectData", children=[node]),
        **fields,
    )


def sequence(name: str, children: list[Executable], option: int = 2, **fields: Any) -> Executable:
    names = [c.name for c in children]
    chain = [edge(f"Package\\{name}", a, b) for a, b in zip(names, names[1:], strict=False)]
    return container(
        name,
        ExecutableKind.SEQUENCE,
        "Package",
        children,
        chain,
        transaction_option=option,
        **fields,
    )


def run_seq(*children: Executable, **fields: Any) -> RunResult:
    """Run a package of one Sequence ``Seq`` (Required unless ``option=`` says) of ``children``,
    chained in order; ``sinks``, ``cancel_event`` go to the run."""
    options = {k: fields.pop(k) for k in ("sinks", "cancel_event") if k in fields}
    return run_bounded(package([sequence("Seq", list(children), **fields)]), **options)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "tx.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (name TEXT)")
        conn.execute("CREATE TABLE audit (name TEXT)")
    conn.close()
    SEEN.clear()
    LOG.clear()
    DATABASES.clear()
    return path


class Events:
    """A log sink that keeps every event of the run."""

    def __init__(self) -> None:
        self.kept: list[RunEvent] = []  # not ``events``: a sink's ``events`` names what it wants

    def __call__(self, event: RunEvent) -> None:
        self.kept.append(event)

    def close(self) -> None:
        return None

    def messages(self, name: str, ref: str) -> list[str]:
        return [e.message for e in self.kept if e.name == name and e.source_ref == ref]


def rows(path: Path, table: str = "t") -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f"SELECT name FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def results(run: Any) -> dict[str, str]:
    return {e.ref_id.rsplit("\\", 1)[-1]: e.result for e in run.executables}


def test_a_required_sequence_whose_second_task_fails_rolls_back_the_first(db: Path) -> None:
    run = run_seq(
        sql("Insert", db, "INSERT INTO t VALUES ('first')"),
        sql("Broken", db, "INSERT INTO missing_table VALUES (1)"),
    )
    assert results(run) == {"Insert": "Success", "Broken": "Failure", "Seq": "Failure"}
    assert rows(db) == []
    assert LOG == ["rollback tx.db"]


def test_a_required_sequence_that_succeeds_commits_once_at_its_end(db: Path) -> None:
    run = run_seq(
        sql("One", db, "INSERT INTO t VALUES ('one')"),
        sql("Two", db, "INSERT INTO t VALUES ('two')"),
        # Joins the same transaction: sees the uncommitted rows of the first two.
        sql("Count", db, "SELECT count(*) FROM t"),
    )
    assert run.result.value == "Success", [e.errors for e in run.executables]
    assert rows(db) == ["one", "two"]
    assert SEEN["Count row"] == (2,)
    assert SEEN["One"] is SEEN["Two"] is SEEN["Count"]  # one transaction for the scope
    assert isinstance(SEEN["One"], Transaction)
    assert LOG == ["commit tx.db"]


def test_work_is_not_committed_before_the_scope_ends(db: Path) -> None:
    """A NotSupported task inside the scope reads through its own connection: the scope's rows
    are not there yet (they are one transaction, not statements committing one by one)."""
    run = run_seq(
        sql("Insert", db, "INSERT INTO t VALUES ('pending')"),
        sql("Outside", db, "SELECT count(*) FROM t", transaction_option=0),
    )
    assert run.result.value == "Success"
    assert SEEN["Outside"] is None
    assert SEEN["Outside row"] == (0,)
    assert rows(db) == ["pending"]


def test_a_not_supported_child_commits_survive_the_rollback(tmp_path: Path, db: Path) -> None:
    other = tmp_path / "audit.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE audit (name TEXT)")
    conn.close()
    run = run_seq(
        sql("Insert", db, "INSERT INTO t VALUES ('in the transaction')"),
        sql("Audit", other, "INSERT INTO audit VALUES ('outside')", transaction_option=0),
        sql("Fail", db, "", mode="fail"),
    )
    assert results(run)["Seq"] == "Failure"
    assert rows(db) == []
    assert rows(other, "audit") == ["outside"]
    assert SEEN["Audit"] is None


def test_supported_tasks_outside_any_transaction_autocommit(db: Path) -> None:
    pkg = package(
        [
            sql("Insert", db, "INSERT INTO t VALUES ('kept')", "Package"),
            sql("Fail", db, "", "Package", mode="fail"),
        ],
        [edge("Package", "Insert", "Fail")],
    )
    run = run_bounded(pkg)
    assert results(run)["Fail"] == "Failure"
    assert SEEN["Insert"] is None
    assert rows(db) == ["kept"]


def test_a_required_task_is_its_own_transaction(db: Path) -> None:
    """TransactionOption=Required on a task: its work commits when it succeeds and rolls back
    when it fails after doing it."""
    pkg = package(
        [
            sql("Good", db, "INSERT INTO t VALUES ('good')", "Package", transaction_option=2),
            sql("Bad", db, "INSERT INTO t VALUES ('bad')", "Package", "fail", transaction_option=2),
        ],
        [edge("Package", "Good", "Bad")],
    )
    run = run_bounded(pkg)
    assert results(run) == {"Good": "Success", "Bad": "Failure"}
    assert rows(db) == ["good"]
    assert LOG == ["commit tx.db", "rollback tx.db"]
    assert SEEN["Good"] is not SEEN["Bad"]


def nested(option: int, inner_task: Executable) -> Executable:
    """A Sequence ``Inner`` (TransactionOption ``option``) holding ``inner_task``, inside Seq."""
    return container("Inner", ExecutableKind.SEQUENCE, SEQ, [inner_task], transaction_option=option)


def test_a_required_container_inside_a_required_one_joins_it(db: Path) -> None:
    """Required starts a transaction only when none is in force: the inner Sequence's work is
    rolled back with the outer one, although the inner one succeeded."""
    inner = nested(2, sql("Insert", db, "INSERT INTO t VALUES ('inner')", f"{SEQ}\\Inner"))
    run = run_seq(inner, sql("Fail", db, "", mode="fail"))
    assert results(run) == {
        "Insert": "Success",
        "Inner": "Success",
        "Fail": "Failure",
        "Seq": "Failure",
    }
    assert rows(db) == []
    assert LOG == ["rollback tx.db"]


def test_a_required_child_of_a_not_supported_container_starts_its_own(db: Path) -> None:
    own = sql("Own", db, "INSERT INTO t VALUES ('own')", f"{SEQ}\\Inner", transaction_option=2)
    run = run_seq(nested(0, own), sql("Fail", db, "", mode="fail"))
    assert results(run)["Seq"] == "Failure"
    assert rows(db) == ["own"]  # its own transaction committed; the outer one had nothing


def test_a_required_for_loop_is_one_transaction_over_every_iteration(db: Path) -> None:
    loop = container(
        "Loop",
        ExecutableKind.FOR_LOOP,
        "Package",
        [sql("Insert", db, "INSERT INTO t VALUES ('row')", "Package\\Loop")],
        transaction_option=2,
        init_expression="@[User::i] = 0",
        eval_expression="@[User::i] < 3",
        assign_expression="@[User::i] = @[User::i] + 1",
    )
    run = run_bounded(package([loop], variables=[var("i")]))
    assert run.result.value == "Success"
    assert rows(db) == ["row", "row", "row"]
    assert LOG == ["commit tx.db"]


def test_cancellation_rolls_back(db: Path) -> None:
    cancel = threading.Event()

    def cancel_once_waiting() -> None:
        deadline = time.monotonic() + 20
        while "Wait" not in SEEN and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()

    helper = threading.Thread(target=cancel_once_waiting)
    helper.start()
    run = run_seq(
        sql("Insert", db, "INSERT INTO t VALUES ('canceled')"),
        sql("Wait", db, "", mode="wait-cancel"),
        cancel_event=cancel,
    )
    helper.join()
    assert run.result.value == "Canceled"
    assert rows(db) == []
    assert LOG == ["rollback tx.db"]


def test_the_isolation_level_reaches_the_connection(db: Path) -> None:
    pkg = package(
        [
            sequence(
                "Seq", [sql("Insert", db, "INSERT INTO t VALUES ('x')")], isolation_level=4096
            ),
            sequence(
                "Default", [sql("Other", db, "INSERT INTO t VALUES ('y')", "Package\\Default")]
            ),
        ],
        [edge("Package", "Seq", "Default")],
    )
    run = run_bounded(pkg)
    assert run.result.value == "Success"
    assert SEEN["Insert"].isolation == "READ COMMITTED"
    assert SEEN["Other"].isolation == "SERIALIZABLE"  # SSIS's default


def test_connections_that_cannot_commit_together_commit_in_order_with_a_warning(
    tmp_path: Path, db: Path
) -> None:
    other = tmp_path / "second.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (name TEXT)")
    conn.close()
    events = Events()
    run = run_seq(
        sql("First", db, "INSERT INTO t VALUES ('a')"),
        sql("Second", other, "INSERT INTO t VALUES ('b')"),
        sinks=[events],
    )
    assert run.result.value == "Success"
    assert rows(db) == ["a"] and rows(other) == ["b"]
    assert LOG == ["commit tx.db", "commit second.db"]
    (warning,) = events.messages("OnWarning", SEQ)
    assert "commits them one after another, which is not atomic" in warning
    assert f"connections {db}, {other}," in warning


def test_an_isolation_level_that_is_no_ssis_code_is_refused_before_the_run(db: Path) -> None:
    with pytest.raises(PackageValidationError) as refused:
        run_seq(sql("Insert", db, "INSERT INTO t VALUES ('x')"), isolation_level=12)
    (problem,) = refused.value.problems
    assert problem.code == "bad-property" and problem.ref_id == SEQ
    assert "IsolationLevel 12 is not an SSIS isolation level" in problem.message
    assert rows(db) == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (None, "SERIALIZABLE"),
        (-1, ""),
        (16, ""),
        (256, "READ UNCOMMITTED"),
        (4096, "READ COMMITTED"),
        (65536, "REPEATABLE READ"),
        (1048576, "SERIALIZABLE"),
        (16777216, "SNAPSHOT"),
    ],
)
def test_isolation_codes(code: int | None, words: str) -> None:
    assert isolation_sql(code) == words


def test_isolation_codes_are_the_ones_ssis_knows() -> None:
    assert sorted(ISOLATION_SQL) == [-1, 16, 256, 4096, 65536, 1048576, 16777216]
    assert ISOLATION_SQL.keys() == model.ISOLATION_LEVELS.keys()
    with pytest.raises(ExecutionError, match="IsolationLevel 2 is not an SSIS isolation level"):
        isolation_sql(2)


def test_after_its_end_a_transaction_is_no_longer_in_force(db: Path) -> None:
    """The Sequence's own OnPostExecute comes once its transaction has ended: the handler's task
    runs outside it (an ended transaction would hand out a connection it gave back)."""
    where = f"{SEQ}.EventHandlers[OnPostExecute]"
    log = sql("Log", db, "INSERT INTO audit VALUES ('post')", where)
    handler = container("OnPostExecute", ExecutableKind.EVENT_HANDLER, SEQ, [log])
    run = run_seq(sql("Insert", db, "INSERT INTO t VALUES ('x')"), event_handlers=[handler])
    assert run.result.value == "Success", [e.errors for e in run.executables]
    inside, after = SEEN[
        "Log every time"
    ]  # the task's OnPostExecute bubbles up, then the Sequence's
    assert inside is SEEN["Insert"] and isinstance(inside, Transaction)
    assert after is None
    assert inside.enlisted(str(db)) is None  # ended: it hands out nothing any more
    assert rows(db) == ["x"] and rows(db, "audit") == ["post", "post"]


# -- the end of a transaction, connection by connection ----------------------------------------
def deferred_fk_db(path: Path) -> Path:
    """A file whose COMMIT fails for real: a deferred foreign key, violated by a test row."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    conn.close()
    return path


def join_all(tx: Transaction, paths: list[Path], bad: Path | None) -> None:
    for path in paths:
        participant = _Participant(str(path), "", LOG, "PRAGMA foreign_keys = ON")
        tx.enlist(path.name, participant)
        statement = (
            "INSERT INTO child VALUES (42)" if path == bad else "INSERT INTO parent VALUES (1)"
        )
        participant.lease.dbapi.execute(statement)


def parents(path: Path) -> int:
    return len(rows_of(path, "SELECT id FROM parent"))


def rows_of(path: Path, statement: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


def test_in_order_a_commit_failing_part_way_rolls_back_the_rest(tmp_path: Path) -> None:
    LOG.clear()
    a, b, c = (deferred_fk_db(tmp_path / f"{n}.db") for n in "abc")
    warnings: list[str] = []
    tx = Transaction("Package\\Seq", None, warnings.append)
    join_all(tx, [a, b, c], bad=b)
    problem = tx.end(commit=True)
    assert problem == (
        "the transaction of 'Package\\\\Seq' could not commit on b.db: IntegrityError: FOREIGN "
        "KEY constraint failed; already committed: a.db; rolled back: b.db, c.db."
    )
    assert LOG == ["commit a.db", "commit b.db", "rollback b.db", "rollback c.db"]
    assert (parents(a), parents(c)) == (1, 0)
    assert rows_of(b, "SELECT * FROM child") == []
    assert len(warnings) == 1 and "a.db, b.db, c.db" in warnings[0]


def test_one_connection_whose_commit_fails(tmp_path: Path) -> None:
    LOG.clear()
    a = deferred_fk_db(tmp_path / "a.db")
    tx = Transaction("Package\\Task", None, lambda _: None)
    join_all(tx, [a], bad=a)
    problem = tx.end(commit=True)
    assert problem == (
        "the transaction of 'Package\\\\Task' could not commit on a.db: IntegrityError: FOREIGN "
        "KEY constraint failed"
    )
    assert rows_of(a, "SELECT * FROM child") == []


def test_a_transaction_ends_once(tmp_path: Path) -> None:
    LOG.clear()
    a = deferred_fk_db(tmp_path / "a.db")
    tx = Transaction("Package\\Seq", None, lambda _: None)
    join_all(tx, [a], bad=None)
    assert tx.connections == ["a.db"]
    assert tx.end(commit=False) is None
    assert tx.end(commit=True) is None  # already ended: nothing happens
    assert LOG == ["rollback a.db"]
    assert parents(a) == 0
    with pytest.raises(RuntimeError, match="has already ended"):
        tx.enlist("late", _Participant(str(a), "", LOG))


def test_a_connection_enlists_once() -> None:
    tx = Transaction("Package\\Seq", None, lambda _: None)
    first = _Participant(":memory:", "", LOG)
    tx.enlist("DB", first)
    assert tx.enlisted("DB") is first.lease
    assert tx.enlisted("Other") is None
    with pytest.raises(RuntimeError, match="already enlisted"):
        tx.enlist("DB", _Participant(":memory:", "", LOG))
    tx.end(commit=False)


def test_a_rollback_that_fails_is_reported_and_the_others_still_roll_back(tmp_path: Path) -> None:
    LOG.clear()
    a, b = (deferred_fk_db(tmp_path / f"{n}.db") for n in "ab")
    tx = Transaction("Package\\Seq", None, lambda _: None)
    join_all(tx, [a, b], bad=None)
    lease = tx.enlisted("a.db")
    assert lease is not None
    lease.dbapi.close()  # the connection is gone: its ROLLBACK cannot be sent
    problem = tx.end(commit=False)
    assert problem is not None
    assert problem.startswith("the transaction of 'Package\\\\Seq' could not roll back on a.db (")
    assert LOG == ["rollback a.db", "rollback b.db"]
    assert (parents(a), parents(b)) == (0, 0)
