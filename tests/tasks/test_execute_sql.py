"""The Execute SQL task on real SQLite files, through the loader, planner and executor (spec
execute-sql.md §5: markers per connection type, directions, result sets, GO, errors, TimeOut,
cancellation, validation)."""

from __future__ import annotations

import decimal
import re
import sqlite3
import time
from pathlib import Path

import pytest
from dtsx.engine.errors import PackageValidationError
from dtsx.tasks.execute_sql import ExecuteSqlTask, ResultType, SourceType

from tests.tasks._execute_sql_kit import (
    BOOLEAN,
    DATETIME,
    DECIMAL,
    DOUBLE,
    INT32,
    INT64,
    OBJECT,
    STRING,
    Loop,
    Param,
    Sql,
    errors_of,
    package,
    plan_of,
    result_of,
    run_canceled,
    run_xml,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "test.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "create table t(id integer, name text, amount numeric, at text);"
            "insert into t values (1, 'one', 1.5, '2024-01-02 03:04:05.678');"
            "insert into t values (2, 'two', 2.25, null);"
        )
    conn.close()
    return path


def _cms(db: Path, creation: str = "OLEDB") -> dict[str, tuple[str, str]]:
    return {"DB": (creation, f"sqlite:///{db}")}


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _run(db: Path, steps: list[Sql | Loop], creation: str = "OLEDB", **variables: tuple) -> dict:
    names = {k.replace("__", "::"): v for k, v in variables.items()}
    result = run_xml(package(steps, connections=_cms(db, creation), variables=names))
    return {"result": result, "vars": result.variables}


# ---- properties --------------------------------------------------------------------------------


def test_absent_attributes_take_the_documented_defaults() -> None:
    task = ExecuteSqlTask(ExecuteSqlTask.Properties.model_validate({"Connection": "x"}))
    p = task.props
    assert p.source_type is SourceType.DirectInput and p.result_type is ResultType.None_
    assert p.bypass_prepare is True and p.timeout == 0 and p.is_stored_procedure is False
    assert p.type_conversion_mode == "Allowed"


def test_xml_names_and_api_names_reach_the_same_fields() -> None:
    xml = {
        "SqlStmtSourceType": "Variable",
        "ResultType": "ResultSetType_Rowset",
        "IsStoredProc": "True",
    }
    api = {"SqlStatementSourceType": 3, "ResultSetType": 3, "IsStoredProcedure": -1}
    for data in (xml, api):
        p = ExecuteSqlTask.Properties.model_validate(data)
        assert p.source_type is SourceType.Variable
        assert p.result_type is ResultType.Full and p.is_stored_procedure is True


def test_every_corpus_execute_sql_task_loads(corpus_sql_tasks: list) -> None:
    for exe in corpus_sql_tasks:
        task = ExecuteSqlTask.from_node(exe.object_data)
        assert task.props.connection, exe.ref_id
    assert len(corpus_sql_tasks) >= 100


@pytest.fixture(scope="module")
def corpus_sql_tasks() -> list:
    from tests._shared import REPO_ROOT
    from dtsx.engine.errors import DtsxError
    from dtsx.engine.loader import load

    corpus = REPO_ROOT.parent / "shared" / "corpus" / "dtsx"
    if not corpus.is_dir():
        pytest.skip("the shared corpus is absent")
    found = []

    def walk(exe: object) -> None:
        for child in [*exe.executables, *exe.event_handlers]:  # type: ignore[attr-defined]
            if "executesql" in (child.type_key or "").lower():
                found.append(child)
            walk(child)

    for path in sorted(corpus.glob("*.dtsx")):
        try:
            walk(load(str(path)))
        except DtsxError:
            continue
    return found


def test_bindings_in_any_order_and_the_binding_fields() -> None:
    xml = package(
        [
            Sql(
                "T",
                "select ?",
                result="ResultSetType_SingleRow",
                params=[Param("0", "User::A", 3)],
                results=[("0", "User::B")],
            )
        ],  # fmt: skip
        connections={"DB": ("OLEDB", "sqlite:///:memory:")},
        variables={"User::A": (INT32, 1), "User::B": (INT32, 0)},
    )
    # ResultBinding before ParameterBinding, as in avgrishin CmpPIFAcc2.
    param = re.search(r"<SQLTask:ParameterBinding[^>]*/>", xml).group(0)  # type: ignore[union-attr]
    result = re.search(r"<SQLTask:ResultBinding[^>]*/>", xml).group(0)  # type: ignore[union-attr]
    xml = xml.replace(param + result, result + param)
    task = plan_of(xml).tasks["Package\\T"]
    assert isinstance(task, ExecuteSqlTask)
    (binding,) = task.props.parameters
    assert (binding.name, binding.variable, binding.data_type, binding.size) == (
        "0",
        "User::A",
        3,
        -1,
    )
    assert task.props.results[0].variable == "User::B"
    assert run_xml(xml).variables["User::B"] == 1


# ---- batches -----------------------------------------------------------------------------------


def test_go_batches_run_in_order_and_a_failing_batch_keeps_the_earlier_work(db: Path) -> None:
    sql = "insert into t values (10, 'a', 0, null)\ngo\ninsert into nosuch values (1)\nGO\ninsert into t values (11, 'b', 0, null)"
    run = _run(db, [Sql("T", sql)])
    assert result_of(run["result"], "T") == "Failure"
    assert _rows(db, "select id from t where id >= 10") == [(10,)]
    (error,) = errors_of(run["result"], "T")
    assert 'Executing the query "insert into nosuch values (1)" (batch at line 3)' in error
    assert "no such table: nosuch" in error and "0xC002F210" in error and "'DB'" in error


def test_go_count_repeats_the_batch_and_bindings_apply_to_each_batch(db: Path) -> None:
    sql = "insert into t values (?, 'r', 0, null)\nGO 3\ninsert into t values (?, 's', 0, null) -- again\nGO"
    run = _run(db, [Sql("T", sql, params=[Param("0", "User::N", 3)])], User__N=(INT32, 7))
    assert result_of(run["result"], "T") == "Success"
    assert _rows(db, "select name from t where id = 7 order by name") == [("r",)] * 3 + [("s",)]


def test_question_marks_in_literals_and_comments_are_not_markers(db: Path) -> None:
    sql = "insert into t values (?, 'what?', 0, null) -- why?\n/* ? */"
    _run(db, [Sql("T", sql, params=[Param("0", "User::N", 3)])], User__N=(INT32, 8))
    assert _rows(db, "select name from t where id = 8") == [("what?",)]


# ---- markers per connection type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("creation", "names", "codes"),
    [
        ("OLEDB", ("0", "1"), (3, 130)),
        ("ODBC", ("1", "2"), (4, -9)),
        ("ADO", ("Param1", "Param2"), (3, 202)),
    ],
)
def test_question_mark_names_per_connection_type(
    db: Path, creation: str, names: tuple, codes: tuple
) -> None:
    # Bindings listed in reverse: OLE DB and ODBC bind by number, ADO by list order.
    params = [Param(names[1], "User::S", codes[1]), Param(names[0], "User::N", codes[0])]
    if creation == "ADO":
        params.reverse()
    steps = [Sql("T", "insert into t (id, name) values (?, ?)", params=params)]
    run = _run(db, steps, creation, User__N=(INT32, 20), User__S=(STRING, "twenty"))
    assert result_of(run["result"], "T") == "Success", errors_of(run["result"], "T")
    assert _rows(db, "select id, name from t where id = 20") == [(20, "twenty")]


def test_ado_net_binds_at_names_with_or_without_the_at(db: Path) -> None:
    params = [Param("@Id", "User::N", 11), Param("label", "User::S", 16)]
    sql = "insert into t (id, name) values (@id, @Label); insert into t (id, name) values (@Id + 1, @label)"
    run = _run(
        db, [Sql("T", sql, params=params)], "ADO.NET", User__N=(INT32, 30), User__S=(STRING, "x")
    )
    assert result_of(run["result"], "T") == "Success", errors_of(run["result"], "T")
    assert _rows(db, "select id, name from t where id >= 30") == [(30, "x"), (31, "x")]


# ---- input values ------------------------------------------------------------------------------


def test_input_values_round_trip(db: Path) -> None:
    long_text = "ж" * 5000
    variables = {
        "User::I": (INT32, -5), "User::L": (INT64, 2**40), "User::E": (STRING, ""),
        "User::U": (STRING, "Ünïcødé ✓ Кириллица"), "User::Long": (STRING, long_text),
        "User::B": (BOOLEAN, "True"), "User::D": (DECIMAL, "12345678901234.5678"),
        "User::F": (DOUBLE, 0.1), "User::T": (DATETIME, "2024-05-06 07:08:09.123"),
        "User::G": (STRING, "{0E984725-C51C-4BF4-9960-E1C80E27ABA0}"), "User::O": (OBJECT, None),
        "User::Zero": (INT32, 0),
    }  # fmt: skip
    codes = {"I": 3, "L": 20, "E": 130, "U": 130, "Long": 130, "B": 11, "D": 131, "F": 5,
             "T": 135, "G": 72, "O": 12}  # fmt: skip
    cols = list(codes)
    ddl = "create table v(" + ", ".join(f'"{c}"' for c in cols) + ")"
    insert = "insert into v values (" + ", ".join("?" for _ in cols) + ")"
    params = [Param(str(i), f"User::{c}", codes[c]) for i, c in enumerate(cols)]
    # A NULL input: an Object variable holding the NULL a SingleRow result put there.
    null = Sql("Null", "select null", result="ResultSetType_SingleRow", results=[("0", "User::O")])
    steps = [Sql("DDL", ddl), null, Sql("T", insert, params=params)]
    xml = package(steps, connections=_cms(db), variables=variables)
    result = run_xml(xml)
    assert result_of(result, "T") == "Success", errors_of(result, "T")
    (row,) = _rows(db, "select * from v")
    got = dict(zip(cols, row, strict=True))
    assert got["I"] == -5 and got["L"] == 2**40 and got["E"] == "" and got["Long"] == long_text
    assert got["U"] == "Ünïcødé ✓ Кириллица" and got["B"] == 1 and got["F"] == 0.1
    assert decimal.Decimal(str(got["D"])) == decimal.Decimal("12345678901234.5678")
    assert got["T"] == "2024-05-06 07:08:09.123000"
    assert got["G"] == "{0E984725-C51C-4BF4-9960-E1C80E27ABA0}" and got["O"] is None


def test_a_value_out_of_the_datatype_range_fails_naming_the_parameter(db: Path) -> None:
    steps = [Sql("T", "select ?", params=[Param("0", "User::L", 3)])]  # LONG: 32 bits
    run = _run(db, steps, User__L=(INT64, 2**40))
    (error,) = errors_of(run["result"], "T")
    assert "parameter '0' (variable User::L)" in error and "out of the range of int32" in error


# ---- single row --------------------------------------------------------------------------------


def _single(db: Path, sql: str, results: list, creation: str = "OLEDB", **variables: tuple):
    step = Sql("T", sql, result="ResultSetType_SingleRow", results=results)
    return _run(db, [step], creation, **variables)


def test_single_row_by_name_any_case_ordinal_and_unnamed_count(db: Path) -> None:
    run = _single(
        db, "select count(*), max(NAME) as MaxName, sum(amount) from t",
        [("0", "User::N"), ("maxname", "User::S"), ("2", "User::A")],
        User__N=(INT32, 0), User__S=(STRING, ""), User__A=(DOUBLE, 0),
    )  # fmt: skip
    assert run["vars"]["User::N"] == 2 and run["vars"]["User::S"] == "two"
    assert run["vars"]["User::A"] == 3.75


def test_single_row_takes_the_first_of_several_rows(db: Path) -> None:
    run = _single(db, "select id from t order by id desc", [("0", "User::N")], User__N=(INT32, 0))
    assert run["vars"]["User::N"] == 2


def test_single_row_with_no_rows_fails_as_ssis_does(db: Path) -> None:
    run = _single(db, "select id from t where 0", [("0", "User::N")], User__N=(INT32, 0))
    (error,) = errors_of(run["result"], "T")
    assert error.startswith('An error occurred while assigning a value to variable "User::N"')
    assert "Single Row result set is specified, but no rows were returned" in error


def test_null_goes_into_object_but_not_into_string(db: Path) -> None:
    ok = _single(db, "select at from t where id = 2", [("0", "User::O")], User__O=(OBJECT, None))
    assert result_of(ok["result"], "T") == "Success" and ok["vars"]["User::O"] is None
    bad = _single(db, "select at from t where id = 2", [("0", "User::S")], User__S=(STRING, "x"))
    (error,) = errors_of(bad["result"], "T")
    assert "User::S" in error and "NULL" in error


def test_text_never_goes_into_a_number_but_a_number_goes_into_a_string(db: Path) -> None:
    bad = _single(db, "select '12'", [("0", "User::N")], User__N=(INT32, 0))
    assert "cannot go into a Int32" in errors_of(bad["result"], "T")[0]
    ok = _single(db, "select 12.5", [("0", "User::S")], User__S=(STRING, ""))
    assert ok["vars"]["User::S"] == "12.5"


def test_type_conversion_mode_none_refuses_a_number_into_a_string(db: Path) -> None:
    step = Sql("T", "select 12", result="ResultSetType_SingleRow", results=[("0", "User::S")],
               attrs={"TypeConversionMode": "None"})  # fmt: skip
    run = _run(db, [step], User__S=(STRING, ""))
    assert "TypeConversionMode None" in errors_of(run["result"], "T")[0]


def test_single_row_skips_the_counts_of_statements_before_it(db: Path) -> None:
    # The SQLite form of INSERT ...; SELECT SCOPE_IDENTITY(): the INSERT returns no columns.
    sql = "insert into t (id, name) values (?, 'new'); select max(rowid) from t"
    step = Sql("T", sql, result="ResultSetType_SingleRow", params=[Param("0", "User::N", 3)],
               results=[("0", "User::Id")])  # fmt: skip
    run = _run(db, [step], User__N=(INT32, 50), User__Id=(INT32, 0))
    assert run["vars"]["User::Id"] == 3


def test_result_set_none_ignores_rows(db: Path) -> None:
    run = _run(db, [Sql("T", "select * from t")])
    assert result_of(run["result"], "T") == "Success"


# ---- full result sets and Foreach ADO ----------------------------------------------------------


def _loop_package(db: Path, creation: str, loops: int, enum_type: str, sql: str) -> dict:
    fill = Sql("Fill", sql, result="ResultSetType_Rowset", results=[("0", "User::O")])
    steps: list[Sql | Loop] = [fill]
    for i in range(loops):
        markers = "?, ?" if creation == "OLEDB" else "@a, @b"
        body = [Sql("Copy", f"insert into seen values ({markers})",
                    params=[Param(_first(creation), "User::A", _int(creation)),
                            Param(_second(creation), "User::B", _text(creation))])]  # fmt: skip
        steps.append(Loop(f"Loop{i}", "User::O", {0: "User::A", 1: "User::B"}, body, enum_type))
    with sqlite3.connect(db) as conn:
        conn.execute("create table seen(a, b)")
    conn.close()
    variables = {"User__O": (OBJECT, None), "User__A": (OBJECT, None), "User__B": (OBJECT, None)}
    return _run(db, steps, creation, **variables)


def _first(creation: str) -> str:
    return {"OLEDB": "0", "ADO.NET": "a"}[creation]


def _second(creation: str) -> str:
    return {"OLEDB": "1", "ADO.NET": "b"}[creation]


def _int(creation: str) -> int:
    return 3 if creation == "OLEDB" else 11


def _text(creation: str) -> int:
    return 130 if creation == "OLEDB" else 16


def test_full_result_set_into_object_walked_by_foreach_ado_value_index(db: Path) -> None:
    run = _loop_package(
        db, "OLEDB", 1, "EnumerateRowsInFirstTable", "select id, name from t order by id"
    )
    assert result_of(run["result"], "Loop0") == "Success", run["result"].executables
    assert _rows(db, "select a, b from seen") == [(1, "one"), (2, "two")]


def test_native_recordset_second_loop_sees_no_rows(db: Path) -> None:
    _loop_package(db, "OLEDB", 2, "EnumerateRowsInFirstTable", "select id, name from t order by id")
    assert _rows(db, "select count(*) from seen") == [(2,)]


def test_ado_net_dataset_re_iterates_and_enumerates_all_rows(db: Path) -> None:
    sql = "select id, name from t where id = 1; select id, name from t where id = 2"
    _loop_package(db, "ADO.NET", 2, "EnumerateAllRows", sql)
    assert _rows(db, "select a, b from seen") == [(1, "one"), (2, "two")] * 2


def test_ado_net_full_result_set_holds_every_table(db: Path) -> None:
    sql = "select id from t; select name, amount from t where id = 2"
    step = Sql("T", sql, result="ResultSetType_Rowset", results=[("0", "User::O")])
    result = run_xml(package([step], connections=_cms(db, "ADO.NET"),
                             variables={"User::O": (OBJECT, None)}))  # fmt: skip
    value = result.variables["User::O"]
    assert "DataSet(Table: 1 columns x 2 rows, Table1: 2 columns x 1 rows)" in str(value)


# ---- errors after the first result set ---------------------------------------------------------


@pytest.mark.parametrize(("creation", "outcome"), [("OLEDB", "Success"), ("ADO.NET", "Failure")])
def test_error_after_the_first_result_set(db: Path, creation: str, outcome: str) -> None:
    run = _single(db, "select 5; select * from nosuch", [("0", "User::N")], creation,
                  User__N=(INT32, 0))  # fmt: skip
    assert result_of(run["result"], "T") == outcome
    if outcome == "Success":
        assert run["vars"]["User::N"] == 5


# ---- statement sources -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code_page"),
    [
        (b"\xef\xbb\xbfselect '\xd0\x96'", None),  # UTF-8 with BOM
        ("select 'Ж'".encode("utf-16"), None),  # UTF-16 with BOM
        ("select 'Ж'".encode(), None),
        ("select 'Ж'".encode("cp1251"), "1251"),
    ],
)
def test_statement_from_a_file_connection(
    db: Path, tmp_path: Path, data: bytes, code_page: str | None
) -> None:
    path = tmp_path / "q.sql"
    path.write_bytes(data)
    attrs = {"SqlStmtSourceType": "FileConnection"}
    if code_page:
        attrs["CodePage"] = code_page
    step = Sql("T", "Q", result="ResultSetType_SingleRow", results=[("0", "User::S")], attrs=attrs)
    cms = {**_cms(db), "Q": ("FILE", str(path))}
    result = run_xml(package([step], connections=cms, variables={"User::S": (STRING, "")}))
    assert result_of(result, "T") == "Success", errors_of(result, "T")
    assert result.variables["User::S"] == "Ж"


def test_statement_from_a_variable_and_an_expression_wins(db: Path) -> None:
    from_var = Sql("V", "User::Q", result="ResultSetType_SingleRow", results=[("0", "User::S")],
                   attrs={"SqlStmtSourceType": "Variable"})  # fmt: skip
    run = _run(db, [from_var], User__Q=(STRING, "select 'from variable'"), User__S=(STRING, ""))
    assert run["vars"]["User::S"] == "from variable"
    xml = package([Sql("E", "select 'stored'", result="ResultSetType_SingleRow",
                       results=[("0", "User::S")])],
                  connections=_cms(db), variables={"User::S": (STRING, "")})  # fmt: skip
    xml = xml.replace(
        "<DTS:ObjectData><SQLTask",
        '<DTS:PropertyExpression DTS:Name="SqlStatementSource">'
        "&quot;select 'from expression'&quot;</DTS:PropertyExpression><DTS:ObjectData><SQLTask",
        1,
    )
    assert run_xml(xml).variables["User::S"] == "from expression"


# ---- execution value, timeout, cancel ----------------------------------------------------------


def test_execution_value_is_the_rows_affected(db: Path) -> None:
    step = Sql("T", "update t set name = name; insert into t (id) values (9)",
               host={"ExecValueVariable": "User::N"})  # fmt: skip
    run = _run(db, [step], User__N=(INT32, 0))
    assert run["vars"]["User::N"] == 3


_SLOW = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from (select x from c limit {n})"


def test_timeout_fails_a_statement_that_runs_longer(db: Path) -> None:
    step = Sql("T", _SLOW.format(n=10**10), attrs={"TimeOut": "1"})
    started = time.monotonic()
    run = _run(db, [step])
    assert result_of(run["result"], "T") == "Failure"
    assert time.monotonic() - started < 5
    assert "0xC002F210" in errors_of(run["result"], "T")[0]


def test_timeout_zero_waits(db: Path) -> None:
    step = Sql("T", _SLOW.format(n=3 * 10**6), result="ResultSetType_SingleRow",
               results=[("0", "User::N")])  # fmt: skip
    run = _run(db, [step], User__N=(INT64, 0))
    assert run["vars"]["User::N"] == 3 * 10**6


def test_cancel_interrupts_a_running_statement_within_a_second(db: Path) -> None:
    plan = plan_of(package([Sql("T", _SLOW.format(n=10**11))], connections=_cms(db)))
    result, ending = run_canceled(plan)
    assert ending < 1.0, ending
    assert result_of(result, "T") == "Canceled"


# ---- validation --------------------------------------------------------------------------------


def _problems(db: Path, step: Sql, creation: str = "OLEDB", **variables: tuple) -> list[str]:
    names = {k.replace("__", "::"): v for k, v in variables.items()}
    cms = {**_cms(db, creation), "Mail": ("SMTP", "SmtpServer=localhost;")}
    try:
        plan_of(package([step], connections=cms, variables=names))
    except PackageValidationError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_validation_refuses_bindings_ssis_refuses(db: Path) -> None:
    step = Sql("T", "select ?, ?", params=[Param("0", "User::Missing", 3),
               Param("1", "User::N", 999, size=-2)])  # fmt: skip
    found = " ".join(_problems(db, step, User__N=(INT32, 0)))
    assert "'User::Missing', which is not in the task's scope (0xC0010001)" in found
    assert 'Parameter "1" cannot be negative. (-1) is used for the default value.' in found
    assert "DataType 999, which is no code of the OLE DB DBTYPE space" in found


def test_validation_refuses_full_result_names_other_than_zero(db: Path) -> None:
    step = Sql("T", "select 1", result="ResultSetType_Rowset", results=[("1", "User::O")])
    found = " ".join(_problems(db, step, User__O=(OBJECT, None)))
    assert "the result binding name must be set to zero" in found


def test_validation_names_the_connection_type(db: Path) -> None:
    found = " ".join(_problems(db, Sql("T", "select 1", connection="Mail")))
    assert "is an SMTP connection manager; it needs an OLE DB, ADO.NET, ODBC or ADO one" in found
    found = " ".join(_problems(db, Sql("T", "select 1", connection="Nowhere")))
    assert "matches no connection manager" in found


def test_validation_checks_marker_style_and_numbering(db: Path) -> None:
    at_on_oledb = Sql("T", "select * from t where id = @id", params=[Param("@id", "User::N", 3)])
    assert "binds ? markers in order" in " ".join(_problems(db, at_on_oledb, User__N=(INT32, 0)))
    question_on_adonet = Sql("T", "select ?", params=[Param("id", "User::N", 11)])
    found = " ".join(_problems(db, question_on_adonet, "ADO.NET", User__N=(INT32, 0)))
    assert "an ADO.NET connection binds @name markers" in found
    zero_on_odbc = Sql("T", "select ?", params=[Param("0", "User::N", 4)])
    assert "ODBC parameter names count from 1" in " ".join(
        _problems(db, zero_on_odbc, "ODBC", User__N=(INT32, 0))
    )
    past = Sql("T", "select ?", params=[Param("0", "User::N", 3), Param("1", "User::N", 3)])
    assert "point past the 1 ? marker(s)" in " ".join(_problems(db, past, User__N=(INT32, 0)))


def test_validation_of_statement_sources(db: Path) -> None:
    step = Sql("T", "Mail", attrs={"SqlStmtSourceType": "FileConnection"})
    assert "must name a FILE connection manager" in " ".join(_problems(db, step))
    step = Sql("T", "User::Nope", attrs={"SqlStmtSourceType": "Variable"})
    assert "names the variable 'User::Nope'" in " ".join(_problems(db, step))
    assert "has no SQL statement" in " ".join(_problems(db, Sql("T", "")))


def test_validation_refuses_writing_a_read_only_variable(db: Path) -> None:
    step = Sql("T", "select 1", result="ResultSetType_SingleRow", results=[("0", "User::N")])
    found = " ".join(_problems(db, step, User__N=(INT32, 0, True)))
    assert "writes the variable 'User::N', which is read-only (0xC0010003)" in found


def test_a_dtsid_naming_no_manager_is_the_planners_missing_connection(db: Path) -> None:
    step = Sql("T", "select 1", connection="{BFB76AF5-717F-480D-8C71-4EE6B97EBB80}")
    (problem,) = _problems(db, step)
    assert "matches no connection manager" in problem and "--project-dir" in problem


_SQLITE_ADO_NET = "ADO.NET:System.Data.SQLite.SQLiteConnection, System.Data.SQLite"


def test_t_sql_translation_is_applied_per_batch_before_binding(db: Path) -> None:
    sql = "SELECT TOP 1 ISNULL(name, 'none') FROM t WHERE id > @n ORDER BY id"
    step = Sql("T", sql, result="ResultSetType_SingleRow", params=[Param("n", "User::N", 11)],
               results=[("0", "User::S")])  # fmt: skip
    cms = {"DB": (_SQLITE_ADO_NET, f"Data Source={db};Version=3;")}
    xml = package([step], connections=cms,
                  variables={"User::N": (INT32, 1), "User::S": (STRING, "")})  # fmt: skip
    translated = run_xml(xml, parameters={"CM.DB.Translate": "tsql"})
    assert translated.variables["User::S"] == "two", errors_of(translated, "T")
    assert "0xC002F210" in errors_of(run_xml(xml), "T")[0]  # TOP is no SQLite
    # A batch that cannot be translated exactly fails, naming the batch, the connection and the
    # construct; the batch before it ran.
    two = xml.replace("ORDER BY id", "ORDER BY id&#10;GO&#10;EXEC p")
    result = run_xml(two, parameters={"CM.DB.Translate": "tsql"})
    (error,) = errors_of(result, "T")
    assert "the batch at line 3 of the Execute SQL task's statement does not translate" in error
    assert "EXEC" in error and "'DB'" in error


def test_validation_refuses_what_only_sql_server_gives_on_another_engine(db: Path) -> None:
    xml_result = Sql("T", "select 1 for xml path", result="ResultSetType_XML",
                     results=[("0", "User::S")])  # fmt: skip
    found = " ".join(_problems(db, xml_result, User__S=(STRING, "")))
    assert "ResultSetType is XML, which needs SQL Server's FOR XML" in found
    assert "opens sqlite" in found
    returns = Sql("T", "exec ? = p", params=[Param("0", "User::N", 3, "ReturnValue")])
    found = " ".join(_problems(db, returns, User__N=(INT32, 0)))
    assert "is a ReturnValue, which dtsx reads only from SQL Server" in found


def test_validation_refuses_a_full_result_set_into_a_non_object_variable(db: Path) -> None:
    step = Sql("T", "select 1", result="ResultSetType_Rowset", results=[("0", "User::N")])
    found = " ".join(_problems(db, step, User__N=(INT32, 0)))
    assert "a full result set goes into an Object variable, but User::N is a Int32" in found


def test_the_connection_is_found_by_dtsid_in_any_case(db: Path) -> None:
    xml = package([Sql("T", "select name from t where id = 1", result="ResultSetType_SingleRow",
                       results=[("0", "User::S")], connection="@DTSID@")],
                  connections=_cms(db), variables={"User::S": (STRING, "")})  # fmt: skip
    dtsid = re.search(r'DTS:DTSID="(\{[^"]+\})"', xml).group(1)  # type: ignore[union-attr]
    result = run_xml(xml.replace("@DTSID@", dtsid.lower()))
    assert result.variables["User::S"] == "one", errors_of(result, "T")


def test_translation_keeps_a_url_connection_string_whole(db: Path) -> None:
    step = Sql("T", "SELECT TOP 1 name FROM t ORDER BY id DESC", result="ResultSetType_SingleRow",
               results=[("0", "User::S")])  # fmt: skip
    xml = package([step], connections=_cms(db), variables={"User::S": (STRING, "")})
    result = run_xml(xml, parameters={"CM.DB.Translate": "tsql"})
    assert result.variables["User::S"] == "two", errors_of(result, "T")
