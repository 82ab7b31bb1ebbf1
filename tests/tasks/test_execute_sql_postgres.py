"""The Execute SQL task against a live PostgreSQL cluster (tests/dbservers.py), through psycopg
and through unixODBC's PostgreSQL driver: values, outputs, statements with values, TimeOut,
cancellation, RetainSameConnection, errors that name the server but never the password."""

from __future__ import annotations

import datetime as dt
import decimal
import time

import pytest

from tests.dbservers import PostgresDatabase, odbc_missing
from tests.tasks import _execute_sql_kit as kit
from tests.tasks._execute_sql_kit import Param, Sql


_NPGSQL = "ADO.NET:Npgsql.NpgsqlConnection, Npgsql, Version=4.1.0.0, Culture=neutral"


def _run(db: PostgresDatabase, steps: list, *, creation: str = "OLEDB", string: str = "",
         retain: bool = False, **variables: tuple) -> tuple:  # fmt: skip
    names = {k.replace("__", "::"): v for k, v in variables.items()}
    cms = {"DB": (creation, string or db.url)}
    result = kit.run_xml(kit.package(steps, connections=cms, variables=names, retain=retain))
    return result, result.variables


def test_values_round_trip_exactly(postgres_db: PostgresDatabase) -> None:
    with postgres_db.connect() as conn:
        conn.execute("create table v(d numeric(18,4), s text, t timestamp(3), n text)")
        conn.execute("create table v2(d numeric(18,4), t timestamp(3))")
    params = [Param("0", "User::D", 131), Param("1", "User::S", 130), Param("2", "User::T", 135),
              Param("3", "User::Null", 12)]  # fmt: skip
    null = Sql("Null", "select null::text", result="ResultSetType_SingleRow",
               results=[("0", "User::Null")])  # fmt: skip
    insert = Sql("Insert", "insert into v values (?, ?, ?, ?)", params=params)
    back = Sql("Back", "select d, s, t, n from v", result="ResultSetType_SingleRow",
               results=[("0", "User::D2"), ("s", "User::S2"), ("T", "User::T2"),
                        ("3", "User::Null2")])  # fmt: skip
    # The report shows a Decimal as a float: the exact value goes back to the server instead.
    again = Sql("Again", "insert into v2 values (?, ?)",
                params=[Param("0", "User::D2", 131), Param("1", "User::T2", 135)])  # fmt: skip
    result, values = _run(
        postgres_db, [null, insert, back, again],
        User__D=(kit.DECIMAL, "12345678901234.5678"), User__S=(kit.STRING, "Привет, мир ✓"),
        User__T=(kit.DATETIME, "2024-05-06 07:08:09.123"), User__Null=(kit.OBJECT, None),
        User__D2=(kit.DECIMAL, "0"), User__S2=(kit.STRING, ""), User__T2=(kit.DATETIME, "2000-01-01"),
        User__Null2=(kit.OBJECT, None),
    )  # fmt: skip
    assert kit.result_of(result, "Again") == "Success", result.executables
    row = postgres_db.connect().execute("select d, s, t, n from v").fetchone()
    assert row == (decimal.Decimal("12345678901234.5678"), "Привет, мир ✓",
                   dt.datetime(2024, 5, 6, 7, 8, 9, 123000), None)  # fmt: skip
    assert values["User::S2"] == "Привет, мир ✓" and values["User::Null2"] is None
    assert postgres_db.connect().execute("select d, t from v2").fetchone() == row[::2]


def test_several_statements_with_values_run_one_by_one(postgres_db: PostgresDatabase) -> None:
    # psycopg refuses several commands in one prepared statement: the task splits on ";".
    sql = "create table w(a int); insert into w values (?); insert into w values (? + 1)"
    params = [Param("0", "User::N", 3), Param("1", "User::N", 3)]
    result, _ = _run(postgres_db, [Sql("T", sql, params=params)], User__N=(kit.INT32, 41))
    assert kit.result_of(result, "T") == "Success", kit.errors_of(result, "T")
    assert postgres_db.connect().execute("select array_agg(a order by a) from w").fetchone() == (
        [41, 42],
    )


def test_output_parameter_from_a_procedure(postgres_db: PostgresDatabase) -> None:
    with postgres_db.connect() as conn:
        conn.execute(
            "create procedure twice(a int, inout b int) language plpgsql as "
            "$$ begin b := a * 2; end $$"
        )
    params = [Param("0", "User::A", 3), Param("1", "User::B", 3, direction="Output")]
    result, values = _run(postgres_db, [Sql("T", "call twice(?, ?)", params=params)],
                          User__A=(kit.INT32, 21), User__B=(kit.INT32, 0))  # fmt: skip
    assert kit.result_of(result, "T") == "Success", kit.errors_of(result, "T")
    assert values["User::B"] == 42


def test_ado_net_at_names_on_postgresql(postgres_db: PostgresDatabase) -> None:
    step = Sql("T", "select @x::int + @X::int as total", result="ResultSetType_SingleRow",
               params=[Param("x", "User::A", 11)], results=[("Total", "User::B")])  # fmt: skip
    result, values = _run(postgres_db, [step], creation=_NPGSQL, string=postgres_db.npgsql,
                          User__A=(kit.INT32, 4), User__B=(kit.INT32, 0))  # fmt: skip
    assert kit.result_of(result, "T") == "Success", kit.errors_of(result, "T")
    assert values["User::B"] == 8


def test_error_names_connection_server_statement_and_sqlstate_never_the_password(
    postgres_db: PostgresDatabase,
) -> None:
    result, _ = _run(postgres_db, [Sql("T", "select * from missing_table\nwhere 1 = 1")])
    (error,) = kit.errors_of(result, "T")
    assert error.startswith('Executing the query "select * from missing_table" on connection')
    assert f"'DB' (127.0.0.1:{postgres_db.port}/{postgres_db.database})" in error
    assert "SQLSTATE 42P01" in error and 'relation "missing_table" does not exist' in error
    assert postgres_db.password not in str(result.to_json())


def test_timeout_fails_a_longer_statement_and_zero_waits(postgres_db: PostgresDatabase) -> None:
    short = Sql("Short", "select pg_sleep(3)", attrs={"TimeOut": "1"})
    started = time.monotonic()
    result, _ = _run(postgres_db, [short])
    assert time.monotonic() - started < 2.5
    assert "SQLSTATE 57014" in kit.errors_of(result, "Short")[0]
    result, _ = _run(postgres_db, [Sql("Wait", "select pg_sleep(1.2)", attrs={"TimeOut": "0"})])
    assert kit.result_of(result, "Wait") == "Success"


def test_cancel_interrupts_pg_sleep_within_a_second(postgres_db: PostgresDatabase) -> None:
    plan = kit.plan_of(kit.package([Sql("T", "select pg_sleep(30)")],
                           connections={"DB": ("OLEDB", postgres_db.url)}))  # fmt: skip
    result, ending = kit.run_canceled(plan)
    assert ending < 1.0, ending
    assert kit.result_of(result, "T") == "Canceled"


@pytest.mark.parametrize("retain", [True, False])
def test_retain_same_connection_keeps_an_open_transaction_across_tasks(
    postgres_db: PostgresDatabase, retain: bool
) -> None:
    with postgres_db.connect() as conn:
        conn.execute("create table r(a int)")
    steps = [
        Sql("Begin", "begin"),
        Sql("Work", "insert into r values (1)"),
        Sql("Rollback", "rollback"),
        Sql("Temp", "create temp table tt(a int)"),
        Sql("UseTemp", "insert into tt values (1)"),
    ]
    result, _ = _run(postgres_db, steps, retain=retain)
    count = postgres_db.connect().execute("select count(*) from r").fetchone()[0]
    # Retained: the rollback undoes the insert and the temp table survives; a fresh
    # connection per task commits the insert and forgets the temp table.
    assert count == (0 if retain else 1)
    assert kit.result_of(result, "UseTemp") == ("Success" if retain else "Failure")


@pytest.mark.skipif(odbc_missing() is not None, reason=str(odbc_missing()))
def test_odbc_numbers_markers_from_one(postgres_db: PostgresDatabase) -> None:
    step = Sql("T", "select cast(? as int) * 10 + cast(? as int)", result="ResultSetType_SingleRow",
               params=[Param("2", "User::B", 4), Param("1", "User::A", 4)],
               results=[("0", "User::N")])  # fmt: skip
    result, values = _run(postgres_db, [step], creation="ODBC", string=postgres_db.odbc,
                          User__A=(kit.INT32, 4), User__B=(kit.INT32, 2), User__N=(kit.INT32, 0))  # fmt: skip
    assert kit.result_of(result, "T") == "Success", kit.errors_of(result, "T")
    assert values["User::N"] == 42
    bad, _ = _run(postgres_db, [Sql("Bad", "select * from nowhere")], creation="ODBC",
                  string=postgres_db.odbc)  # fmt: skip
    (error,) = kit.errors_of(bad, "Bad")
    assert "SQLSTATE 42P01" in error and postgres_db.password not in error


def test_dates_times_and_output_conversions(postgres_db: PostgresDatabase) -> None:
    with postgres_db.connect() as conn:
        conn.execute(
            "create procedure info(inout n bigint, inout s text) language plpgsql as "
            "$$ begin n := 2147483648; s := 'ok'; end $$"
        )
    read = Sql("Read", "select date '2024-02-29', time '13:14:15.5', timestamptz "
               "'2024-01-01 10:00+02'::text", result="ResultSetType_SingleRow",
               results=[("0", "User::D"), ("1", "User::T"), ("2", "User::Z")])  # fmt: skip
    out = Sql("Out", "call info(?, ?)",
              params=[Param("0", "User::Big", 20, "Output"), Param("1", "User::Text", 130,
                                                                   "Output")])  # fmt: skip
    result, values = _run(
        postgres_db, [read, out], User__D=(kit.DATETIME, "2000-01-01"), User__T=(kit.STRING, ""),
        User__Z=(kit.STRING, ""), User__Big=(kit.STRING, ""), User__Text=(kit.STRING, ""),
    )  # fmt: skip
    assert kit.result_of(result, "Out") == "Success", kit.errors_of(result, "Read") + kit.errors_of(
        result, "Out"
    )
    assert values["User::D"] == "2024-02-29T00:00:00" and values["User::T"] == "13:14:15.500000"
    assert values["User::Z"].startswith("2024-01-01 08:00:00")
    # LONG into a String under TypeConversionMode Allowed: converted.
    assert values["User::Big"] == "2147483648" and values["User::Text"] == "ok"
    strict = Sql("Strict", "call info(?, ?)", attrs={"TypeConversionMode": "None"},
                 params=[Param("0", "User::Big", 20, "Output"),
                         Param("1", "User::Text", 130, "Output")])  # fmt: skip
    result, _ = _run(postgres_db, [strict], User__Big=(kit.STRING, ""), User__Text=(kit.STRING, ""))
    assert "under TypeConversionMode None" in kit.errors_of(result, "Strict")[0]


@pytest.mark.parametrize(("creation", "outcome"), [("OLEDB", "Success"), (_NPGSQL, "Failure")])
def test_error_after_the_first_result_set_on_postgresql(
    postgres_db: PostgresDatabase, creation: str, outcome: str
) -> None:
    step = Sql("T", "select 5; select * from nowhere", result="ResultSetType_SingleRow",
               results=[("0", "User::N")])  # fmt: skip
    string = postgres_db.url if creation == "OLEDB" else postgres_db.npgsql
    result, values = _run(postgres_db, [step], creation=creation, string=string,
                          User__N=(kit.INT32, 0))  # fmt: skip
    assert kit.result_of(result, "T") == outcome
    assert values["User::N"] == (5 if outcome == "Success" else 0)


def test_each_statement_of_a_batch_commits_on_its_own(postgres_db: PostgresDatabase) -> None:
    # As on SQL Server in autocommit: the failing second statement does not undo the first.
    with postgres_db.connect() as conn:
        conn.execute("create table k(a int)")
    result, _ = _run(
        postgres_db, [Sql("T", "insert into k values (1); insert into nowhere values (2)")]
    )
    assert kit.result_of(result, "T") == "Failure"
    assert postgres_db.connect().execute("select count(*) from k").fetchone() == (1,)


def test_is_stored_procedure_calls_the_named_procedure(postgres_db: PostgresDatabase) -> None:
    with postgres_db.connect() as conn:
        conn.execute(
            "create procedure twice(a int, inout b int) language plpgsql as "
            "$$ begin b := a * 2; end $$"
        )
    step = Sql("T", "twice", attrs={"IsStoredProc": "True"},
               params=[Param("@a", "User::A", 11), Param("@b", "User::B", 11, "Output")])  # fmt: skip
    result, values = _run(postgres_db, [step], creation=_NPGSQL, string=postgres_db.npgsql,
                          User__A=(kit.INT32, 5), User__B=(kit.INT32, 0))  # fmt: skip
    assert kit.result_of(result, "T") == "Success", kit.errors_of(result, "T")
    assert values["User::B"] == 10
