"""SQL Server: no server can run here (spec §4.9), so the rewrite of Output and ReturnValue
markers into local variables is pinned as golden text (what goes to the driver, and in which order
the values go), and a live test runs when DTSX_TEST_MSSQL_URL names a server."""

from __future__ import annotations

import os

import pytest
from dtsx.engine.sqltext import bind_markers, find_markers
from dtsx.tasks.execute_sql_bindings import Direction, ParameterBinding
from dtsx.tasks.execute_sql_run import sql_server_outputs

from tests.tasks._execute_sql_kit import INT32, STRING, Param, Sql, errors_of, package, run_xml

IN, OUT, RET = Direction.INPUT, Direction.OUTPUT, Direction.RETURN_VALUE


def test_output_marker_becomes_a_declared_variable_read_by_a_final_select() -> None:
    sql = "EXEC spStagingBeginAuditLog ? OUTPUT, ?;"
    markers = find_markers(sql, "?")
    audit = ParameterBinding("0", "User::vAuditId", OUT, 3)
    name = ParameterBinding("1", "System::PackageName", IN, 130)
    text, order, outputs = sql_server_outputs(sql, markers, [audit, name], "OLEDB")
    assert text == (
        "DECLARE @dtsx_p1 int = ?;\n"
        "EXEC spStagingBeginAuditLog @dtsx_p1 OUTPUT, ?;\n"
        "SELECT @dtsx_p1;"
    )
    assert order == [audit, name] and outputs == [audit]
    # pymssql takes %s: the markers are rewritten, nothing else changes.
    bound = bind_markers(text, "?", "pyformat", dialect="mssql")
    assert bound.sql.count("%s") == 2 and "@dtsx_p1 OUTPUT" in bound.sql


def test_return_value_and_outputs_keep_the_inputs_in_order() -> None:
    sql = "EXEC ? = dbo.p ?, ? OUTPUT, ?"
    bindings = [
        ParameterBinding("0", "User::Rc", RET, 3),
        ParameterBinding("1", "User::A", IN, 3),
        ParameterBinding("2", "User::Name", OUT, 130, 50),
        ParameterBinding("3", "User::B", IN, 20),
    ]
    text, order, outputs = sql_server_outputs(sql, find_markers(sql, "?"), bindings, "OLEDB")
    assert text == (
        "DECLARE @dtsx_p1 int;\n"
        "DECLARE @dtsx_p2 nvarchar(50) = ?;\n"
        "EXEC @dtsx_p1 = dbo.p ?, @dtsx_p2 OUTPUT, ?;\n"
        "SELECT @dtsx_p1, @dtsx_p2;"
    )
    assert [b.variable for b in order] == ["User::Name", "User::A", "User::B"]
    assert [b.variable for b in outputs] == ["User::Rc", "User::Name"]


def test_ado_net_output_names_are_declared_from_their_own_marker() -> None:
    sql = "EXEC dbo.p @Id, @Total OUTPUT"
    bindings = [ParameterBinding("Id", "User::Id", IN, 11),
                ParameterBinding("@Total", "User::Total", OUT, 7)]  # fmt: skip
    markers = find_markers(sql, "@", {"id", "total"})
    text, _, outputs = sql_server_outputs(sql, markers, bindings, "ADO.NET")
    assert text == (
        "DECLARE @dtsx_p1 decimal(38, 10) = @Total;\n"
        "EXEC dbo.p @Id, @dtsx_p1 OUTPUT;\n"
        "SELECT @dtsx_p1;"
    )
    assert outputs == [bindings[1]]
    bound = bind_markers(text, "@", "pyformat", {"id", "total"}, dialect="mssql")
    assert [m.name for m in bound.markers] == ["Total", "Id"]


MSSQL = os.environ.get("DTSX_TEST_MSSQL_URL", "")


@pytest.mark.skipif(not MSSQL, reason="no SQL Server: set DTSX_TEST_MSSQL_URL=mssql+pymssql://...")
def test_live_sql_server_output_and_return_value() -> None:
    setup = Sql("Setup", "IF OBJECT_ID('dbo.dtsx_twice') IS NOT NULL DROP PROCEDURE dbo.dtsx_twice\n"
                "GO\nCREATE PROCEDURE dbo.dtsx_twice @a int, @b int OUTPUT AS "
                "BEGIN SELECT 1 AS noise; SET @b = @a * 2; RETURN 7; END")  # fmt: skip
    call = Sql("Call", "EXEC ? = dbo.dtsx_twice ?, ? OUTPUT",
               params=[Param("0", "User::Rc", 3, "ReturnValue"), Param("1", "User::A", 3),
                       Param("2", "User::B", 3, "Output")])  # fmt: skip
    xml = package([setup, call], connections={"DB": ("OLEDB", MSSQL)},
                  variables={"User::Rc": (INT32, 0), "User::A": (INT32, 21),
                             "User::B": (INT32, 0), "User::S": (STRING, "")})  # fmt: skip
    result = run_xml(xml)
    assert not errors_of(result, "Call")
    assert result.variables["User::B"] == 42 and result.variables["User::Rc"] == 7


def test_odbc_call_escape_becomes_exec_with_output_written() -> None:
    from dtsx.tasks.execute_sql_run import odbc_call_as_exec

    sql = odbc_call_as_exec("{? = call dbo.p(?, ?)}")
    assert sql == "EXEC ? = dbo.p ?, ?"
    assert odbc_call_as_exec("{call p}") == "EXEC p"
    assert odbc_call_as_exec("select '{call p}'") == "select '{call p}'"
    bindings = [ParameterBinding("1", "User::Rc", RET, 4), ParameterBinding("2", "User::A", IN, 4),
                ParameterBinding("3", "User::B", OUT, 4)]  # fmt: skip
    text, order, outputs = sql_server_outputs(sql, find_markers(sql, "?"), bindings, "ODBC")
    assert text == (
        "DECLARE @dtsx_p1 int;\n"
        "DECLARE @dtsx_p2 int = ?;\n"
        "EXEC @dtsx_p1 = dbo.p ?, @dtsx_p2 OUTPUT;\n"
        "SELECT @dtsx_p1, @dtsx_p2;"
    )
    assert [b.variable for b in order] == ["User::B", "User::A"]
    assert [b.variable for b in outputs] == ["User::Rc", "User::B"]
