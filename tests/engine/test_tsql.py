"""engine.tsql: strict T-SQL translation (spec execute-sql.md §4.8), checked live on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dtsx.engine.errors import DtsxError
from dtsx.engine.sqltext import bind_markers, statements
from dtsx.engine.tsql import Finding, TranslationError, check, translator

# The constructs the spec names (§4.8) as ones sqlglot raises on or silently gets wrong, and the
# construct each must be refused as.
LOSSY = [
    ("EXEC p ?, ?", "EXEC"),
    ("EXEC p ?, ? OUTPUT", "EXEC"),
    ("IF OBJECT_ID('t') IS NOT NULL DROP TABLE t", "IF"),
    ("WHILE 1 = 1 SELECT 1", "WHILE"),
    ("DECLARE @d datetime = GETDATE()", "DECLARE"),
    ("SET XACT_ABORT ON", "SET"),
    ("SELECT GETDATE()-1", "datetime +/- a number"),
    ("INSERT INTO t VALUES (1); SELECT SCOPE_IDENTITY()", "SCOPE_IDENTITY()"),
    ("SELECT name FROM sys.databases", "sys.databases"),
    ("SELECT * INTO #tmp FROM t", "#tmp (temp table)"),
    ("SELECT a FROM ##g", "##g (temp table)"),
    ("SELECT * FROM tempdb..x", "tempdb..x"),
    ("SELECT @@ROWCOUNT", "@@ROWCOUNT"),
    ("INSERT INTO t (a) OUTPUT inserted.id VALUES (1)", "OUTPUT clause"),
    ("SELECT TOP 10 PERCENT a FROM t", "TOP ... PERCENT"),
    ("SELECT '1' + 1", "string + number"),
    ("SELECT p.Location + p.Name FROM p", "+ of two values of unknown type"),
    ("SELECT OBJECT_ID('t')", "OBJECT_ID()"),
    ("SELECT DATEDIFF(day, a, b) FROM t", "DATEDIFF"),
    ("SELECT a FROM t WITH (HOLDLOCK)", "WITH (HOLDLOCK)"),
    ("PRINT 'x'", "PRINT"),
    ("SELECT @total = SUM(a) FROM t", "assignment to a variable"),  # sqlglot: an alias
    ("UPDATE t SET @last = a", "assignment to a variable"),
    ("SELECT * FROM @rows", "table variable"),
    ("USE other", "USE"),
    ("SELECT a FROM t FOR XML PATH('')", "FOR XML / OPTION"),
]


@pytest.mark.parametrize(("sql", "construct"), LOSSY)
@pytest.mark.parametrize("target", ["postgres", "sqlite", "duckdb", "mysql"])
def test_lossy_constructs_are_refused_by_name(sql: str, construct: str, target: str) -> None:
    if construct == "USE" and target in ("mysql", "duckdb"):
        pytest.skip("USE exists there")
    findings = check(sql, target)
    assert construct in [f.construct for f in findings], findings
    with pytest.raises(TranslationError) as caught:
        translator(target)(sql)
    assert construct in str(caught.value)
    assert caught.value.findings == tuple(findings)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT TOP 5 a FROM t WHERE b = ?", "SELECT a FROM t WHERE b = ? LIMIT 5"),
        (
            "SELECT ISNULL(a, 0) FROM [dbo].[My Table]",
            'SELECT COALESCE(a, 0) FROM "dbo"."My Table"',
        ),
        ("SELECT a + ' ' + b FROM t", "SELECT a || ' ' || b FROM t"),
        ("SELECT N'Ünïcødé ✓' + name FROM t", "SELECT 'Ünïcødé ✓' || name FROM t"),
        ("SET NOCOUNT ON;\nSELECT 1", "SELECT 1"),
        ("BEGIN TRAN", "BEGIN"),
        ("COMMIT TRANSACTION", "COMMIT"),
        ("SELECT a FROM t WITH (NOLOCK)", "SELECT a FROM t"),
        ("UPDATE t SET a = @a WHERE id = @Id", "UPDATE t SET a = @a WHERE id = @Id"),
        (
            "SELECT a FROM t WHERE b LIKE '%?%' AND c = ?",
            "SELECT a FROM t WHERE b LIKE '%?%' AND c = ?",
        ),
        (
            "DELETE FROM t WHERE d < DATEADD(day, -?, GETDATE())",
            "DELETE FROM t WHERE d < (CURRENT_TIMESTAMP + (INTERVAL '1 DAY' * -?))",
        ),
    ],
)
def test_exact_translations_to_postgres(sql: str, expected: str) -> None:
    assert check(sql, "postgres") == []
    assert translator("postgresql")(sql) == expected


def test_markers_come_back_as_markers_not_as_driver_placeholders() -> None:
    # sqlglot alone turns ? into %s and @a into $a for postgres; binding happens after translation.
    out = translator("postgresql")("SELECT a FROM t WHERE b = ? AND c IN (?, ?)")
    assert out == "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"
    assert "%s" not in out


def test_per_target_gaps() -> None:
    assert [f.construct for f in check("TRUNCATE TABLE t", "sqlite")] == ["TRUNCATE TABLE"]
    assert check("TRUNCATE TABLE t", "postgres") == []
    merge = "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET t.a = s.a;"
    assert [f.construct for f in check(merge, "sqlite")] == ["MERGE"]
    assert [f.construct for f in check(merge, "mysql")] == ["MERGE"]
    assert check(merge, "postgres") == []
    apply = "SELECT a FROM t CROSS APPLY (SELECT 1 AS x) z"
    assert [f.construct for f in check(apply, "sqlite")] == ["CROSS/OUTER APPLY"]
    # SQLite's DATE(d, '-1 day') drops the time; VARCHAR(n) cuts nothing there.
    assert [f.construct for f in check("SELECT DATEADD(day, -1, GETDATE())", "sqlite")] == [
        "DATEADD"
    ]
    assert check("SELECT DATEADD(day, -1, GETDATE())", "postgres") == []
    cut = "SELECT CONVERT(varchar(10), GETDATE(), 120)"
    assert [f.construct for f in check(cut, "sqlite")] == ["CAST/CONVERT to VARCHAR(n)"]
    assert check(cut, "postgres") == []


def test_string_semantics_of_t_sql_are_kept() -> None:
    # LEN ignores trailing spaces; CAST/CONVERT to a string without a length cut to 30.
    assert translator("postgresql")(
        "SELECT LEN(a), CAST(n AS varchar), CONVERT(nchar, n) FROM t"
    ) == (
        "SELECT LENGTH(RTRIM(CAST(a AS TEXT))), CAST(n AS VARCHAR(30)), CAST(n AS CHAR(30)) FROM t"
    )
    for target in ("sqlite", "duckdb"):  # their casts cut nothing
        assert [f.construct for f in check("SELECT CAST(n AS varchar) FROM t", target)] == [
            "CAST/CONVERT to VARCHAR"
        ]
    assert [f.construct for f in check("SELECT CONVERT(int, s) FROM t", "duckdb")] == ["CONVERT()"]


def test_len_counts_no_trailing_spaces_on_postgres(postgres_db: Any) -> None:
    con = postgres_db.connect(autocommit=True)
    try:
        sql = translator("postgresql")(
            "SELECT LEN('ab  '), LEN('  '), CAST(REPLICATE('x', 40) AS varchar)"
        )
        assert con.execute(sql).fetchone() == (2, 0, "x" * 30)
    finally:
        con.close()


def test_findings_name_the_line_of_the_construct() -> None:
    sql = "SELECT a\nFROM t\nWHERE d < GETDATE() - 1"
    assert check(sql, "postgres") == [
        Finding(3, "datetime +/- a number", "write DATEADD(day, n, d)")
    ]
    assert (
        str(check(sql, "postgres")[0]) == "line 3: datetime +/- a number: write DATEADD(day, n, d)"
    )


def test_every_construct_of_a_batch_is_listed() -> None:
    found = check("SELECT SCOPE_IDENTITY(), @@ROWCOUNT FROM sys.objects", "postgres")
    assert {f.construct for f in found} == {"SCOPE_IDENTITY()", "@@ROWCOUNT", "sys.objects"}
    message = str(TranslationError.of(tuple(found), "postgres"))
    assert message.startswith("T-SQL does not translate exactly to postgres: line 1: ")
    assert "(and 2 more)" in message


def test_a_statement_sqlglot_cannot_read_is_a_syntax_finding() -> None:
    [finding] = check("SELECT FROM WHERE (", "postgres")
    assert finding.construct == "syntax"
    assert "cannot be read as T-SQL" in finding.detail


def test_the_reserved_marker_name_is_refused() -> None:
    assert [f.construct for f in check("SELECT dtsx_marker_0 FROM t", "postgres")] == [
        "dtsx_marker_N"
    ]


def test_targets() -> None:
    assert translator("mssql")("EXEC p ?") == "EXEC p ?"  # SQL Server reads T-SQL as it is
    with pytest.raises(TranslationError, match="cannot translate T-SQL to 'oracle'"):
        translator("oracle")
    assert issubclass(TranslationError, DtsxError)
    assert translator("mariadb")("SELECT a + ' ' + b FROM t") == "SELECT CONCAT(a, ' ', b) FROM t"


# -- live: the translated SQL runs and gives T-SQL's answers --------------------------------------

LIVE_BATCH = (
    "SET NOCOUNT ON;\n"
    "INSERT INTO people (first, last, born) VALUES (?, ?, ?);\n"
    "SELECT TOP 1 ISNULL(first, 'x') + ' ' + last AS full_name, born FROM people "
    "WHERE last = ? ORDER BY born"
)
VALUES = ["Ада", "Lovelace", "1815-12-10", "Lovelace"]


@dataclass
class Live:
    """A live engine for one test: its names and an open DB-API connection."""

    target: str  # sql-check's name
    dialect: str  # SQLAlchemy's name, as a session has it
    paramstyle: str
    con: Any


@pytest.fixture(params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    if request.param == "sqlite":
        engine = Live("sqlite", "sqlite", sqlite3.paramstyle, sqlite3.connect(tmp_path / "l.db"))
    else:
        import psycopg

        con = request.getfixturevalue("postgres_db").connect(autocommit=True)
        engine = Live("postgres", "postgresql", psycopg.paramstyle, con)
    try:
        yield engine
    finally:
        engine.con.close()


def test_translated_batch_runs_live(live: Live) -> None:
    """As Execute SQL does: translate, split for one statement per call, bind each."""
    live.con.execute("CREATE TABLE people (first text, last text, born date)")
    values = iter(VALUES)
    rows: list[tuple[Any, ...]] = []
    for statement in statements(translator(live.dialect)(LIVE_BATCH), live.dialect):
        bound = bind_markers(statement.text, "?", live.paramstyle, dialect=live.dialect)
        cur = live.con.execute(bound.sql, bound.arguments([next(values) for _ in bound.markers]))
        if cur.description is not None:
            rows = [(name, str(born)) for name, born in cur.fetchall()]
    assert rows == [("Ада Lovelace", "1815-12-10")]


def test_a_translation_that_reorders_question_marks_is_refused() -> None:
    # sqlglot writes DATEADD(day, -?, ?) as "? + INTERVAL '1 DAY' * -?": the values would swap.
    [finding] = check("SELECT 1 FROM t WHERE at >= DATEADD(day, -?, ?)", "postgres")
    assert finding.construct == "? markers"
    assert "reorders" in finding.detail


def test_named_markers_may_move_and_run_on_postgres(postgres_db: Any) -> None:
    sql = translator("postgresql")("SELECT COUNT(*) FROM events WHERE at >= DATEADD(day, -@n, @d)")
    assert sql.index("@d") < sql.index("@n")  # moved, and harmless: they bind by name
    con = postgres_db.connect(autocommit=True)
    try:
        con.execute("CREATE TABLE events (at timestamp)")
        con.execute("INSERT INTO events VALUES ('2024-01-09 12:00'), ('2024-01-01 12:00')")
        bound = bind_markers(sql, "@", "pyformat", names=["n", "d"], dialect="postgresql")
        given = {"n": 3, "d": dt.datetime(2024, 1, 10, 0, 0)}
        cur = con.execute(bound.sql, bound.arguments([given[str(m.name)] for m in bound.markers]))
        assert cur.fetchone() == (1,)
    finally:
        con.close()


def test_statements_without_semicolons_are_read_one_by_one() -> None:
    sql = "DELETE FROM a\nDELETE b\ninsert into c (x)\nselect y from d\nupdate e\nset z = 1"
    assert translator("postgresql")(sql) == (
        "DELETE FROM a;\nDELETE FROM b;\nINSERT INTO c (x) SELECT y FROM d;\nUPDATE e SET z = 1"
    )
    assert translator("postgresql")("INSERT INTO t VALUES (1)\nSELECT 5\nSELECT a\nFROM t") == (
        "INSERT INTO t VALUES (1);\nSELECT 5;\nSELECT a FROM t"
    )
    assert [
        f.construct for f in check("INSERT t VALUES (1)\nSELECT SCOPE_IDENTITY()", "sqlite")
    ] == ["SCOPE_IDENTITY()"]
    # A line break that would cut a statement in two is not taken: sqlglot reads a cut-off
    # "WITH c AS (...)" as nothing, so the batch stays unread rather than half-translated.
    assert check("with c as (select 1 a)\ninsert into t select a from c\ndelete from x", "postgres")


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("up_ExchangeIndexInsert", "EXEC"),
        ("rpl.INS_Log ?, ?, @Status = 4", "EXEC"),
        ("usp_GetReorderQuantity ?, ? OUTPUT", "EXEC"),
        ("waitfor delay '00:00:01'", "WAITFOR"),
        ("select 1\nwhile 1=1 begin select 2 end", "WHILE"),
        ("SELECT SYSDATETIMEOFFSET()", "SYSDATETIMEOFFSET()"),
    ],
)
def test_what_sqlglot_cannot_read_or_misreads_is_named(sql: str, construct: str) -> None:
    assert construct in [f.construct for f in check(sql, "postgres")]


def test_mysql_division_is_refused() -> None:
    assert [f.construct for f in check("SELECT 7 / 2", "mysql")] == ["/"]
    assert check("SELECT 7 / 2", "postgres") == []


# T-SQL functions packages use; each must be refused or translate to SQL the engine runs.
FUNCTIONS = [
    "GETDATE()", "GETUTCDATE()", "SYSDATETIME()", "SYSDATETIMEOFFSET()", "CURRENT_TIMESTAMP",
    "NEWID()", "LEN(s)", "DATALENGTH(s)", "LEFT(s, 2)", "RIGHT(s, 2)", "SUBSTRING(s, 1, 2)",
    "CHARINDEX('a', s)", "REPLACE(s, 'a', 'b')", "UPPER(s)", "LOWER(s)", "LTRIM(s)", "RTRIM(s)",
    "TRIM(s)", "REVERSE(s)", "REPLICATE(s, 2)", "SPACE(3)", "STUFF(s, 1, 1, 'x')",
    "CONCAT(s, 'a')", "ISNULL(s, 'a')", "COALESCE(s, 'a')", "NULLIF(s, 'a')", "IIF(n > 0, 1, 0)",
    "CAST(n AS varchar(10))", "CONVERT(varchar(10), d, 120)", "CONVERT(int, s2)",
    "CONVERT(date, d)", "YEAR(d)", "MONTH(d)", "DAY(d)", "DATEPART(hour, d)",
    "DATEADD(month, 1, d)", "EOMONTH(d)", "DATEFROMPARTS(2020, 1, 2)", "ROUND(f, 1)",
    "CEILING(f)", "FLOOR(f)", "ABS(f)", "POWER(f, 2)", "SQRT(f)", "SIGN(f)", "CHAR(65)",
    "ASCII(s)", "UNICODE(s)", "LOG10(f)", "PI()", "COUNT_BIG(*)", "STRING_AGG(s, ',')",
    "ROW_NUMBER() OVER (ORDER BY n)", "LAG(n) OVER (ORDER BY n)", "HASHBYTES('MD5', s)",
    "SUSER_SNAME()", "CURRENT_USER", "SYSTEM_USER", "TRANSLATE(s, 'a', 'b')",
    "CONCAT_WS(',', s, s)", "SOUNDEX(s)",
]  # fmt: skip


def test_functions_are_refused_or_run_live(live: Live) -> None:
    live.con.execute("CREATE TABLE t (s text, s2 text, n int, f numeric, d timestamp)")
    live.con.execute("INSERT INTO t VALUES ('abc', '12', 1, 2.5, '2024-01-31 10:00:00')")
    wrong = []
    for function in FUNCTIONS:
        sql = f"SELECT {function} FROM t"
        if check(sql, live.target):
            continue
        translated = translator(live.dialect)(sql)
        try:
            live.con.execute(translated).fetchall()
        except Exception as exc:  # noqa: BLE001 - any engine error is a wrong translation
            wrong.append(f"{function} -> {translated}: {exc}")
    assert wrong == []


# -- --translate NAME=tsql through a run ----------------------------------------------------------

T_SQL = (
    "CREATE TABLE people (first varchar(20), last varchar(20))\nGO\n"
    "INSERT INTO people VALUES ('Ada', 'Lovelace')\nGO\n"
    "SELECT TOP 1 ISNULL(first, '') + ' ' + last AS name INTO names FROM people"
)


def _run(tmp_path: Path, sql: str, *options: str) -> subprocess.CompletedProcess[str]:
    from tests.engine.test_sql_check import _package, _task, dtsx

    package = _package(tmp_path, _task("Load", sql))
    conn = f"Warehouse=sqlite:///{tmp_path}/w.db"
    return dtsx("run", str(package), "--conn", conn, *options, cwd=tmp_path)


def test_translate_option_runs_t_sql_on_sqlite(tmp_path: Path) -> None:
    done = _run(tmp_path, T_SQL, "--translate", "Warehouse=tsql")
    assert done.returncode == 0, done.stdout + done.stderr
    con = sqlite3.connect(tmp_path / "w.db")
    try:
        assert con.execute("SELECT name FROM names").fetchall() == [("Ada Lovelace",)]
    finally:
        con.close()


def test_without_translate_the_t_sql_reaches_sqlite_as_written(tmp_path: Path) -> None:
    done = _run(tmp_path, T_SQL)
    assert done.returncode == 1
    assert 'near "1": syntax error' in done.stdout + done.stderr  # TOP 1 is no SQLite


def test_translate_refuses_a_lossy_batch_before_it_runs(tmp_path: Path) -> None:
    sql = "CREATE TABLE t (a int)\nGO\nINSERT INTO t VALUES (1)\nSELECT SCOPE_IDENTITY()"
    done = _run(tmp_path, sql, "--translate", "Warehouse=tsql")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "SCOPE_IDENTITY()" in out and "does not translate exactly to sqlite" in out
    con = sqlite3.connect(tmp_path / "w.db")
    try:  # batch 1 ran, batch 2 was refused whole: not even its INSERT ran
        assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    finally:
        con.close()


def test_translate_option_on_a_url_stored_in_the_package(tmp_path: Path) -> None:
    from tests.engine.test_sql_check import _package, _task, dtsx

    url = f"sqlite:///{tmp_path}/stored.db"
    package = _package(tmp_path, _task("Load", T_SQL), connection_string=url)
    done = dtsx("run", str(package), "--translate", "Warehouse=tsql", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    con = sqlite3.connect(tmp_path / "stored.db")
    try:
        assert con.execute("SELECT name FROM names").fetchall() == [("Ada Lovelace",)]
    finally:
        con.close()


def test_translate_option_usage(tmp_path: Path) -> None:
    done = _run(tmp_path, "SELECT 1", "--translate", "Warehouse=plsql")
    assert done.returncode == 6
    assert "dtsx translates from T-SQL only; write --translate Warehouse=tsql." in done.stderr
    done = _run(tmp_path, "SELECT 1", "--translate", "Nope=tsql")
    assert done.returncode == 6
    assert "no connection manager 'Nope' to set Translate on" in done.stdout + done.stderr


def test_sqlglot_fallback_warnings_stay_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert [f.construct for f in check("PRINT 'x'", "postgres")] == ["PRINT"]
        check("PRINT 'y'", "postgres")
    assert "Falling back" not in caplog.text
