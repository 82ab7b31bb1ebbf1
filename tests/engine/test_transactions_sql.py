"""SSIS transactions end to end: packages whose Execute SQL tasks run on the real database
connection managers, inside Required Sequences, on SQLite files and the live PostgreSQL cluster.

The packages are written as SSIS writes them (the shape of the corpus's
ProSSIS Ch15 ``05_MultipleTransactionDemo``: two Required Sequences of Execute SQL tasks, the
second one failing), loaded by the real loader and run by the CLI or the executor.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from dtsx.engine import executor, loader, plan
from dtsx.engine.cli import main
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.executor import RunOptions, RunResult
from tests._shared import require_shared
from tests.dbservers import PostgresDatabase

SQLTASK = "Microsoft.ExecuteSQLTask"
BS = "\\"  # a backslash, for refIds inside f-strings (Python 3.11)


def cm(name: str, connection_string: str, creation: str = "OLEDB") -> str:
    return (
        f"<DTS:ConnectionManager DTS:refId={quoteattr(f'Package.ConnectionManagers[{name}]')} "
        f'DTS:CreationName="{creation}" DTS:DTSID="{{{uuid.uuid4()}}}" DTS:ObjectName={quoteattr(name)}>'
        f"<DTS:ObjectData><DTS:ConnectionManager DTS:ConnectionString={quoteattr(connection_string)} />"
        "</DTS:ObjectData></DTS:ConnectionManager>"
    )


def task(name: str, parent: str, connection: str, statement: str, option: int | None = None) -> str:
    extra = f' DTS:TransactionOption="{option}"' if option is not None else ""
    return (
        f"<DTS:Executable DTS:refId={quoteattr(parent + BS + name)} DTS:CreationName={quoteattr(SQLTASK)} "
        f"DTS:ExecutableType={quoteattr(SQLTASK)} DTS:ObjectName={quoteattr(name)}"
        f' DTS:DTSID="{{{uuid.uuid4()}}}"{extra}>'
        "<DTS:ObjectData><SQLTask:SqlTaskData "
        f"SQLTask:Connection={quoteattr(connection)} SQLTask:SqlStatementSource={quoteattr(statement)} "
        'xmlns:SQLTask="www.microsoft.com/sqlserver/dts/tasks/sqltask" /></DTS:ObjectData>'
        "</DTS:Executable>"
    )


def chain(parent: str, names: list[str]) -> str:
    return "".join(
        f"<DTS:PrecedenceConstraint DTS:refId={quoteattr(f'{parent}.PrecedenceConstraints[{a}-{b}]')} "
        f"DTS:From={quoteattr(parent + BS + a)} DTS:To={quoteattr(parent + BS + b)} "
        'DTS:LogicalAnd="True" DTS:ObjectName="c" />'
        for a, b in zip(names, names[1:], strict=False)
    )


# One Execute SQL task of a Sequence: name, connection, statement, TransactionOption (None: unset).
Step = tuple[str, str, str, int | None]


def sequence(
    name: str,
    tasks: list[Step],
    option: str = "2",
    *,
    chained: bool = True,
    handlers: str = "",
    attrs: str = "",
) -> str:
    ref = f"Package\\{name}"
    body = "".join(task(n, ref, c, s, o) for n, c, s, o in tasks)
    option_attr = (f' DTS:TransactionOption="{option}"' if option else "") + attrs
    constraints = chain(ref, [t[0] for t in tasks]) if chained else ""
    return (
        f'<DTS:Executable DTS:refId={quoteattr(ref)} DTS:CreationName="STOCK:SEQUENCE" '
        f'DTS:ExecutableType="STOCK:SEQUENCE" DTS:ObjectName={quoteattr(name)}{option_attr}>'
        f"<DTS:Executables>{body}</DTS:Executables>"
        f"<DTS:PrecedenceConstraints>{constraints}</DTS:PrecedenceConstraints>"
        f"<DTS:EventHandlers>{handlers}</DTS:EventHandlers>"
        "</DTS:Executable>"
    )


def on_error(
    owner: str, connection: str, statement: str, option: int | None, event: str = "OnError"
) -> str:
    """An event handler (OnError unless ``event`` says) of ``owner`` running one Execute SQL task."""
    ref = f"{owner}.EventHandlers[{event}]"
    extra = f' DTS:TransactionOption="{option}"' if option is not None else ""
    return (
        f'<DTS:EventHandler DTS:refId={quoteattr(ref)} DTS:CreationName="{event}" '
        f'DTS:DTSID="{{{uuid.uuid4()}}}" DTS:EventName="{event}"{extra}>'
        f"<DTS:Executables>{task('Log', ref, connection, statement)}</DTS:Executables>"
        "</DTS:EventHandler>"
    )


def seq_package(connections: list[str], *steps: Step, **options: Any) -> str:
    """A package of one Sequence ``Seq`` of ``steps`` (Required unless ``option=`` says)."""
    return package(connections, [sequence("Seq", list(steps), **options)], ["Seq"])


def package(connections: list[str], sequences: list[str], names: list[str], **attrs: str) -> str:
    extra = "".join(f" DTS:{k}={quoteattr(v)}" for k, v in attrs.items())
    return (
        '<?xml version="1.0"?>\n'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package" '
        f'DTS:ObjectName="transactions"{extra}>'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>'
        f"<DTS:ConnectionManagers>{''.join(connections)}</DTS:ConnectionManagers>"
        f"<DTS:Executables>{''.join(sequences)}</DTS:Executables>"
        f"<DTS:PrecedenceConstraints>{chain('Package', names)}</DTS:PrecedenceConstraints>"
        "</DTS:Executable>"
    )


def run_xml(tmp_path: Path, xml: str, **options: Any) -> RunResult:
    path = tmp_path / "transactions.dtsx"
    path.write_text(xml, encoding="utf-8")
    return executor.run(plan.build(loader.load(path)), RunOptions(**options))


def results(run: RunResult) -> dict[str, str]:
    return {e.ref_id: e.result.value for e in run.executables}


def errors(run: RunResult) -> list[str]:
    return [m for e in run.executables for m in e.errors]


def demo(
    db: str,
    audit: str | None = None,
    fail: str = "INSERT INTO missing_table(col1) VALUES (1)",
) -> str:
    """05_MultipleTransactionDemo's shape: Trans 1 inserts 1 and 2; Trans 2 inserts 3, writes an
    audit row outside the transaction (NotSupported; on connection ``Log``, the same database
    unless ``audit`` is given), then fails."""
    return package(
        [cm("DB", db), cm("Log", audit or db)],
        [
            sequence(
                "Trans 1",
                [
                    ("Insert 1", "DB", "INSERT INTO T1(col1) VALUES (1)", None),
                    ("Insert 2", "DB", "INSERT INTO T1(col1) VALUES (2)", None),
                ],
            ),
            sequence(
                "Trans 2",
                [
                    ("Insert 3", "DB", "INSERT INTO T1(col1) VALUES (3)", None),
                    ("Audit", "Log", "INSERT INTO audit(note) VALUES ('Trans 2 ran')", 0),
                    ("Insert A", "DB", fail, None),
                ],
            ),
        ],
        ["Trans 1", "Trans 2"],
    )


# -- SQLite ------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """demo.db with T1, and beside it audit.db with audit: SQLite locks a whole file for a
    writer, so the audit row written outside the transaction goes to a file of its own."""
    for name, table in (("demo.db", "T1 (col1 INTEGER)"), ("audit.db", "audit (note TEXT)")):
        conn = sqlite3.connect(tmp_path / name)
        with conn:
            conn.execute(f"CREATE TABLE {table}")
        conn.close()
    return tmp_path / "demo.db"


def sqlite_rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(sql)]
    finally:
        conn.close()


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        main(args)
    out = capsys.readouterr()
    return int(ended.value.code or 0), out.out + out.err


def test_sqlite_the_failing_sequence_rolls_back_and_the_other_commits(
    tmp_path: Path, sqlite_db: Path
) -> None:
    audit = sqlite_db.with_name("audit.db")
    run = run_xml(tmp_path, demo(f"sqlite:///{sqlite_db}", f"sqlite:///{audit}"))
    assert results(run) == {
        "Package\\Trans 1": "Success",
        "Package\\Trans 1\\Insert 1": "Success",
        "Package\\Trans 1\\Insert 2": "Success",
        "Package\\Trans 2": "Failure",
        "Package\\Trans 2\\Insert 3": "Success",
        "Package\\Trans 2\\Audit": "Success",
        "Package\\Trans 2\\Insert A": "Failure",
    }, errors(run)
    assert sqlite_rows(sqlite_db, "SELECT col1 FROM T1 ORDER BY col1") == [1, 2]
    assert sqlite_rows(audit, "SELECT note FROM audit") == ["Trans 2 ran"]


def test_sqlite_without_transactions_every_statement_commits(
    tmp_path: Path, sqlite_db: Path
) -> None:
    """The same package with TransactionOption left at Supported: nothing is rolled back."""
    audit = sqlite_db.with_name("audit.db")
    xml = demo(f"sqlite:///{sqlite_db}", f"sqlite:///{audit}")
    run = run_xml(tmp_path, xml.replace(' DTS:TransactionOption="2"', ""))
    assert run.result.value == "Failure"
    assert sqlite_rows(sqlite_db, "SELECT col1 FROM T1 ORDER BY col1") == [1, 2, 3]


def test_sqlite_through_the_cli_with_conn(
    tmp_path: Path, sqlite_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.dtsx"
    path.write_text(demo("sqlite:///elsewhere.db"), encoding="utf-8")
    audit = sqlite_db.with_name("audit.db")
    code, out = cli(
        [
            "run",
            str(path),
            "--conn",
            f"DB=sqlite:///{sqlite_db}",
            "--conn",
            f"Log=sqlite:///{audit}",
        ],
        capsys,
    )
    assert code == 1
    assert "missing_table" in out
    assert sqlite_rows(sqlite_db, "SELECT col1 FROM T1 ORDER BY col1") == [1, 2]
    assert sqlite_rows(audit, "SELECT note FROM audit") == ["Trans 2 ran"]


def test_sqlite_parallel_tasks_of_one_scope_share_its_transaction(
    tmp_path: Path, sqlite_db: Path
) -> None:
    """Four tasks with no constraints between them run at once and lease the same manager: all
    of them join the one enlisted connection (one writer: SQLite would refuse a second)."""
    inserts = [(f"Insert {i}", "DB", f"INSERT INTO T1(col1) VALUES ({i})", None) for i in range(4)]
    xml = seq_package([cm("DB", f"sqlite:///{sqlite_db}")], *inserts, chained=False)
    run = run_xml(tmp_path, xml)
    assert run.result.value == "Success", errors(run)
    assert sqlite_rows(sqlite_db, "SELECT col1 FROM T1 ORDER BY col1") == [0, 1, 2, 3]
    failing = xml.replace("VALUES (3)", "VALUES (3) ON CONFLICT FAIL, x")
    run = run_xml(tmp_path, failing)
    assert run.result.value == "Failure"
    assert sqlite_rows(sqlite_db, "SELECT count(*) FROM T1") == [4]  # the second run left nothing


# -- PostgreSQL --------------------------------------------------------------------------------
def pg_prepare(db: PostgresDatabase) -> None:
    with db.connect() as conn:
        conn.execute("CREATE TABLE t1 (col1 integer)")
        conn.execute("CREATE TABLE audit (note text)")


def pg_rows(db: PostgresDatabase, sql: str) -> list[Any]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute(sql).fetchall()]


def test_postgres_the_failing_sequence_rolls_back_and_the_other_commits(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    pg_prepare(postgres_db)
    run = run_xml(tmp_path, demo(postgres_db.url, fail="INSERT INTO t1(col1) VALUES ('A')"))
    assert results(run)["Package\\Trans 1"] == "Success"
    assert results(run)["Package\\Trans 2"] == "Failure"
    assert pg_rows(postgres_db, "SELECT col1 FROM t1 ORDER BY col1") == [1, 2]
    assert pg_rows(postgres_db, "SELECT note FROM audit") == ["Trans 2 ran"]
    (message,) = errors(run)[:1]
    assert "22P02" in message or "invalid input syntax" in message
    assert postgres_db.password not in " ".join(errors(run))


def handled_package(url: str, option: int | None, fail: str) -> str:
    """A Required Sequence (insert, then ``fail``) whose OnError handler writes an audit row."""
    handler = on_error("Package\\Seq", "DB", "INSERT INTO audit(note) VALUES ('failed')", option)
    return seq_package(
        [cm("DB", url)],
        ("Insert", "DB", "INSERT INTO T1(col1) VALUES (1)", None),
        ("Fail", "DB", fail, None),
        handlers=handler,
    )


HANDLER_LOG = "Package\\Seq.EventHandlers[OnError]\\Log"


def test_sqlite_an_on_error_handler_joins_the_failing_transaction(
    tmp_path: Path, sqlite_db: Path
) -> None:
    """An OnError handler is a child of the container that raised it: with Supported (the
    default) its audit row is part of the transaction and rolled back with it, as in SSIS."""
    conn = sqlite3.connect(sqlite_db)
    with conn:
        conn.execute("CREATE TABLE audit (note TEXT)")
    conn.close()
    run = run_xml(
        tmp_path,
        handled_package(f"sqlite:///{sqlite_db}", None, "INSERT INTO missing(x) VALUES (1)"),
    )
    assert run.result.value == "Failure"
    assert results(run)[HANDLER_LOG] == "Success", errors(run)
    assert sqlite_rows(sqlite_db, "SELECT count(*) FROM T1") == [0]
    assert sqlite_rows(sqlite_db, "SELECT count(*) FROM audit") == [0]


def test_handlers_after_the_end_of_a_transaction_run_outside_it(
    tmp_path: Path, sqlite_db: Path
) -> None:
    """The Sequence's OnPostExecute comes after its transaction has ended: its handler's
    statement runs on its own (autocommit) and is kept."""
    conn = sqlite3.connect(sqlite_db)
    with conn:
        conn.execute("CREATE TABLE audit (note TEXT)")
    conn.close()
    handler = on_error(
        "Package\\Seq", "DB", "INSERT INTO audit(note) VALUES ('done')", None, "OnPostExecute"
    )
    insert: Step = ("Insert", "DB", "INSERT INTO T1(col1) VALUES (1)", None)
    xml = seq_package([cm("DB", f"sqlite:///{sqlite_db}")], insert, handlers=handler)
    run = run_xml(tmp_path, xml)
    assert run.result.value == "Success", errors(run)
    assert sqlite_rows(sqlite_db, "SELECT col1 FROM T1") == [1]
    # The handler runs for the Sequence and for its task (events bubble): twice, both kept.
    assert sqlite_rows(sqlite_db, "SELECT note FROM audit") == ["done", "done"]


def test_postgres_a_not_supported_on_error_handler_keeps_its_row(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    pg_prepare(postgres_db)
    run = run_xml(tmp_path, handled_package(postgres_db.url, 0, "SELECT 1/0"))
    assert run.result.value == "Failure"
    assert results(run)[HANDLER_LOG] == "Success", errors(run)
    assert pg_rows(postgres_db, "SELECT col1 FROM t1") == []
    assert pg_rows(postgres_db, "SELECT note FROM audit") == ["failed"]


def test_postgres_a_supported_on_error_handler_meets_the_aborted_transaction(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    """Where PostgreSQL differs from SQL Server: its transaction is aborted at the first failed
    statement, so a handler's statement inside it fails (25P02) instead of running; the
    transaction rolls back all the same."""
    pg_prepare(postgres_db)
    run = run_xml(tmp_path, handled_package(postgres_db.url, None, "SELECT 1/0"))
    assert run.result.value == "Failure"
    assert results(run)[HANDLER_LOG] == "Failure"
    assert any("25P02" in m for m in errors(run))
    assert pg_rows(postgres_db, "SELECT col1 FROM t1") == []
    assert pg_rows(postgres_db, "SELECT note FROM audit") == []


def test_postgres_a_tolerated_failure_cannot_commit_an_aborted_transaction(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    """A Required Sequence that tolerates its failed task (MaximumErrorCount 0: no limit)
    succeeds and commits; PostgreSQL has aborted the transaction at the failure and answers the
    COMMIT with ROLLBACK. That must not pass for a commit: the Sequence fails, saying so."""
    pg_prepare(postgres_db)
    xml = seq_package(
        [cm("DB", postgres_db.url)],
        ("Insert", "DB", "INSERT INTO t1(col1) VALUES (1)", None),
        ("Fail", "DB", "SELECT 1/0", None),
        attrs=' DTS:MaxErrorCount="0"',
    )
    run = run_xml(tmp_path, xml)
    assert pg_rows(postgres_db, "SELECT col1 FROM t1") == []
    assert results(run)["Package\\Seq"] == "Failure", errors(run)
    (problem,) = [m for m in errors(run) if m.startswith("the transaction of 'Package\\\\Seq'")]
    assert "could not commit" in problem and "aborted by an earlier failed statement" in problem


def test_postgres_two_databases_in_one_sequence_commit_with_two_phase(
    tmp_path: Path, postgres: PostgresDatabase, postgres_db: PostgresDatabase
) -> None:
    second = postgres.create_database(f"{postgres_db.database}_b")
    try:
        for db in (postgres_db, second):
            pg_prepare(db)
        for fail in (False, True):
            xml = seq_package(
                [cm("A", postgres_db.url), cm("B", second.url)],
                ("Into A", "A", "INSERT INTO t1(col1) VALUES (1)", None),
                ("Into B", "B", "INSERT INTO t1(col1) VALUES (2)", None),
                ("Check", "B", "SELECT 1/0" if fail else "SELECT 1", None),
            )
            run = run_xml(tmp_path, xml)
            assert run.result.value == ("Failure" if fail else "Success"), errors(run)
            with postgres.cluster.admin() as admin:
                left = admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()
            assert left == (0,)
        # The first run committed on both; the second rolled both back.
        assert pg_rows(postgres_db, "SELECT col1 FROM t1") == [1]
        assert pg_rows(second, "SELECT col1 FROM t1") == [2]
    finally:
        with postgres.cluster.admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{second.database}" WITH (FORCE)')


def test_postgres_cancellation_rolls_back_within_a_second(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    pg_prepare(postgres_db)
    xml = seq_package(
        [cm("DB", postgres_db.url)],
        ("Insert", "DB", "INSERT INTO t1(col1) VALUES (1)", None),
        ("Sleep", "DB", "SELECT pg_sleep(30)", None),
    )
    cancel = threading.Event()
    canceled_at: list[float] = []

    def cancel_once_sleeping() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sleeping = postgres_db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
            )
            if sleeping:
                break
            time.sleep(0.05)
        canceled_at.append(time.monotonic())
        cancel.set()

    helper = threading.Thread(target=cancel_once_sleeping)
    helper.start()
    run = run_xml(tmp_path, xml, cancel_event=cancel)
    finished = time.monotonic()
    helper.join()
    assert run.result.value == "Canceled"
    assert finished - canceled_at[0] < 3.0  # the statement was interrupted, not waited for
    assert pg_rows(postgres_db, "SELECT col1 FROM t1") == []


def test_odbc_cannot_join_a_required_transaction(
    tmp_path: Path, postgres_odbc: PostgresDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_prepare(postgres_odbc.create_database("tx_odbc"))
    db = postgres_odbc.cluster.database("tx_odbc", postgres_odbc.user, postgres_odbc.password)
    xml = seq_package(
        [cm("Odbc", db.odbc, creation="ODBC")],
        ("Insert", "Odbc", "INSERT INTO t1(col1) VALUES (1)", None),
    )
    path = tmp_path / "odbc.dtsx"
    path.write_text(xml, encoding="utf-8")
    code, out = cli(["run", str(path)], capsys)
    assert code != 0
    assert "0xC002F308" in out
    assert pg_rows(db, "SELECT col1 FROM t1") == []
    assert postgres_odbc.password not in out


# -- a real package --------------------------------------------------------------------------
CONMGR = """<?xml version="1.0"?>
<DTS:ConnectionManager xmlns:DTS="www.microsoft.com/SqlServer/Dts"
  DTS:ObjectName="localhost.Demo" DTS:DTSID="{504476DB-C067-4953-8FA6-436ACB008C6D}"
  DTS:CreationName="OLEDB">
  <DTS:ObjectData>
    <DTS:ConnectionManager DTS:ConnectionString="Data Source=localhost;Initial Catalog=Demo;Provider=SQLNCLI11.1;Integrated Security=SSPI;" />
  </DTS:ObjectData>
</DTS:ConnectionManager>
"""


def test_the_corpus_multiple_transaction_demo_on_postgres(
    tmp_path: Path, postgres_db: PostgresDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    """ProSSIS Ch15 05_MultipleTransactionDemo, unedited: Trans 1 inserts 1 and 2 and commits;
    Trans 2 inserts 3, then fails on VALUES("A") (a column name in T-SQL) and rolls back. Its
    connection manager lives in the project (absent from the corpus: a .conmgr of that DTSID
    stands in), redirected to PostgreSQL with --conn and translated from T-SQL."""
    package_path = require_shared(
        "corpus",
        "dtsx",
        "lucmilot_SSIS_2014_Book_850879_c15_download_ProSSIS_Code_Ch15_05_MultipleTransactionDemo.dtsx",
    )
    (tmp_path / "localhost.Demo.conmgr").write_text(CONMGR, encoding="utf-8")
    with postgres_db.connect() as conn:
        conn.execute("CREATE SCHEMA dbo")
        conn.execute("CREATE TABLE dbo.t1 (col1 integer)")
    code, out = cli(
        [
            "run",
            str(package_path),
            "--project-dir",
            str(tmp_path),
            "--conn",
            f"localhost.Demo={postgres_db.url}",
            "--translate",
            "localhost.Demo=tsql",
        ],
        capsys,
    )
    assert code == 1, out
    assert "Insert A" in out and '"A"' in out
    assert pg_rows(postgres_db, "SELECT col1 FROM dbo.t1 ORDER BY col1") == [1, 2]
    assert postgres_db.password not in out


# -- the package and its child packages ----------------------------------------------------------
def test_a_required_package_rolls_back_when_it_fails(tmp_path: Path, sqlite_db: Path) -> None:
    insert = task("Insert", "Package", "DB", "INSERT INTO T1(col1) VALUES (1)")
    fail = task("Fail", "Package", "DB", "INSERT INTO missing_table(col1) VALUES (1)")
    xml = package([cm("DB", f"sqlite:///{sqlite_db}")], [insert, fail], ["Insert", "Fail"])
    xml = xml.replace(
        'DTS:ObjectName="transactions"', 'DTS:ObjectName="transactions" DTS:TransactionOption="2"'
    )
    run = run_xml(tmp_path, xml)
    assert run.result.value == "Failure"
    assert sqlite_rows(sqlite_db, "SELECT count(*) FROM T1") == [0]


def test_a_child_package_joins_its_callers_transaction(tmp_path: Path, sqlite_db: Path) -> None:
    """Execute Package in process: the child's Supported tasks run in the caller's transaction,
    so the caller's later failure rolls the child's work back too."""
    url = f"sqlite:///{sqlite_db}"
    child = package(
        [cm("DB", url)], [task("Insert", "Package", "DB", "INSERT INTO T1(col1) VALUES (7)")], []
    )
    (tmp_path / "child.dtsx").write_text(child, encoding="utf-8")
    call = (
        '<DTS:Executable DTS:refId="Package\\Seq\\Child" DTS:CreationName="Microsoft.ExecutePackageTask" '
        'DTS:ExecutableType="Microsoft.ExecutePackageTask" DTS:ObjectName="Child">'
        "<DTS:ObjectData><ExecutePackageTask><UseProjectReference>True</UseProjectReference>"
        "<PackageName>child.dtsx</PackageName></ExecutePackageTask></DTS:ObjectData></DTS:Executable>"
    )
    seq = sequence("Seq", [("Fail", "DB", "INSERT INTO missing_table(col1) VALUES (1)", None)])
    seq = seq.replace("<DTS:Executables>", f"<DTS:Executables>{call}", 1)
    seq = seq.replace(
        "<DTS:PrecedenceConstraints>",
        '<DTS:PrecedenceConstraints><DTS:PrecedenceConstraint DTS:refId="Package\\Seq.PrecedenceConstraints[c]" '
        'DTS:From="Package\\Seq\\Child" DTS:To="Package\\Seq\\Fail" DTS:ObjectName="c" />',
        1,
    )
    run = run_xml(tmp_path, package([cm("DB", url)], [seq], ["Seq"]))
    assert results(run)["Package\\Seq\\Child"] == "Success", errors(run)
    assert run.result.value == "Failure"
    assert sqlite_rows(sqlite_db, "SELECT count(*) FROM T1") == [0]


# -- before the run: transactions dtsx cannot honour ----------------------------------------------
def problems(tmp_path: Path, xml: str, **build: Any) -> list[str]:
    path = tmp_path / "check.dtsx"
    path.write_text(xml, encoding="utf-8")
    try:
        plan.build(loader.load(path), **build)
    except PackageValidationError as exc:
        return [p.message for p in exc.problems]
    return []


def two_connections(a: str, b: str, second_option: int | None = None) -> str:
    return seq_package(
        [cm("A", a), cm("B", b)],
        ("Into A", "A", "INSERT INTO T1(col1) VALUES (1)", None),
        ("Into B", "B", "INSERT INTO T1(col1) VALUES (2)", second_option),
    )


def test_two_connections_that_cannot_prepare_are_refused_before_the_run(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, two_connections("sqlite:///a.db", "sqlite:///b.db"))
    assert problem.startswith(
        "the transaction of 'Seq' (TransactionOption=Required) spans the connections 'A' (local), "
        "'B' (local), which cannot commit together"
    )
    # The second task outside the transaction: one connection left in it, nothing to refuse.
    assert problems(tmp_path, two_connections("sqlite:///a.db", "sqlite:///b.db", 0)) == []


def test_two_postgres_connections_may_share_a_transaction(tmp_path: Path) -> None:
    a = "postgresql+psycopg://u@127.0.0.1:5432/a"
    b = "postgresql+psycopg://u@127.0.0.1:5432/b"
    assert problems(tmp_path, two_connections(a, b)) == []
    # --conn decides: B pointed at SQLite cannot prepare.
    (problem,) = problems(tmp_path, two_connections(a, b), connections={"B": "sqlite:///b.db"})
    assert "'A' (two-phase), 'B' (local)" in problem


def test_odbc_in_a_transaction_is_refused_before_the_run_unless_not_supported(
    tmp_path: Path,
) -> None:
    odbc = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=x;Uid=u;"

    def odbc_package(option: int | None) -> str:
        return seq_package(
            [cm("Odbc", odbc, creation="ODBC")],
            ("Insert", "Odbc", "INSERT INTO t1(col1) VALUES (1)", option),
        )

    (problem,) = problems(tmp_path, odbc_package(None))
    assert (
        "task 'Insert' uses the ODBC connection 'Odbc' inside the transaction of 'Seq'" in problem
    )
    assert "0xC002F308" in problem
    assert problems(tmp_path, odbc_package(0)) == []
