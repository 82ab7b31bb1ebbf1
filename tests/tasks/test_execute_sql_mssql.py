"""SQL Server: no server can run here (spec §4.9), so the rewrite of Output and ReturnValue
markers into local variables is pinned as golden text (what goes to the driver, and in which order
the values go), and a live test runs when DTSX_TEST_MSSQL_URL names a server."""

from __future__ import annotations

import os

import pytest
from dtsx.engine.sqltext import bind_markers, find_markers
from dtsx.tasks.execute_sql_bindings import Direction, ParameterBinding
from dtsx.tasks.execute_sql_run import odbc_call_as_exec, sql_server_outputs

from tests.tasks._execute_sql_kit import INT32, Param, Sql, errors_of, package, run_xml

IN, OUT, RET = Direction.INPUT, Direction.OUTPUT, Direction.RETURN_VALUE


def _b(
    name: str, variable: str, direction: Direction, code: int, size: int = -1
) -> ParameterBinding:
    return ParameterBinding(name, f"User::{variable}", direction, code, size)


@pytest.mark.parametrize(
    ("sql", "family", "bindings", "expected", "order", "outputs"),
    [
        (  # crulises: Execute spStagingBeginAuditLog ? OUTPUT, ?
            "EXEC spStagingBeginAuditLog ? OUTPUT, ?;", "OLEDB",
            [_b("0", "AuditId", OUT, 3), _b("1", "Name", IN, 130)],
            ["DECLARE @dtsx_p1 int = ?;", "EXEC spStagingBeginAuditLog @dtsx_p1 OUTPUT, ?;",
             "SELECT @dtsx_p1;"],
            ["AuditId", "Name"], ["AuditId"],
        ),
        (  # a return value, an output with its size, inputs around it
            "EXEC ? = dbo.p ?, ? OUTPUT, ?", "OLEDB",
            [_b("0", "Rc", RET, 3), _b("1", "A", IN, 3), _b("2", "Name", OUT, 130, 50),
             _b("3", "B", IN, 20)],
            ["DECLARE @dtsx_p1 int;", "DECLARE @dtsx_p2 nvarchar(50) = ?;",
             "EXEC @dtsx_p1 = dbo.p ?, @dtsx_p2 OUTPUT, ?;", "SELECT @dtsx_p1, @dtsx_p2;"],
            ["Name", "A", "B"], ["Rc", "Name"],
        ),
        (  # ODBC's call escape, whose output argument has no OUTPUT
            odbc_call_as_exec("{? = call dbo.p(?, ?)}"), "ODBC",
            [_b("1", "Rc", RET, 4), _b("2", "A", IN, 4), _b("3", "B", OUT, 4)],
            ["DECLARE @dtsx_p1 int;", "DECLARE @dtsx_p2 int = ?;",
             "EXEC @dtsx_p1 = dbo.p ?, @dtsx_p2 OUTPUT;", "SELECT @dtsx_p1, @dtsx_p2;"],
            ["B", "A"], ["Rc", "B"],
        ),
    ],
)  # fmt: skip
def test_outputs_become_declared_variables_read_by_a_final_select(
    sql: str, family: str, bindings: list, expected: list, order: list, outputs: list
) -> None:
    text, got_order, got_outputs = sql_server_outputs(sql, find_markers(sql, "?"), bindings, family)
    assert text == "\n".join(expected)
    assert [b.variable for b in got_order] == [f"User::{v}" for v in order]
    assert [b.variable for b in got_outputs] == [f"User::{v}" for v in outputs]
    # pymssql takes %s: the markers are rewritten, nothing else changes.
    bound = bind_markers(text, "?", "pyformat", dialect="mssql")
    assert bound.sql.count("%s") == len(order) and "OUTPUT" in bound.sql


def test_odbc_call_escape_becomes_exec() -> None:
    assert odbc_call_as_exec("{? = call dbo.p(?, ?)}") == "EXEC ? = dbo.p ?, ?"
    assert odbc_call_as_exec("{call p}") == "EXEC p"
    assert odbc_call_as_exec("select '{call p}'") == "select '{call p}'"


def test_ado_net_output_names_are_declared_from_their_own_marker() -> None:
    sql = "EXEC dbo.p @Id, @Total OUTPUT"
    bindings = [_b("Id", "Id", IN, 11), _b("@Total", "Total", OUT, 7)]
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
                             "User::B": (INT32, 0)})  # fmt: skip
    result = run_xml(xml)
    assert not errors_of(result, "Call")
    assert result.variables["User::B"] == 42 and result.variables["User::Rc"] == 7
