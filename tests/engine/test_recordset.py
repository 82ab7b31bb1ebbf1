"""The Recordset value of a full result set, and the Foreach ADO enumerator over it (spec §2.6)."""

from __future__ import annotations

import copy

import pytest
from dtsx.engine.enumerators import ado_items
from dtsx.engine.errors import ExecutionError
from dtsx.engine.model import ForEachEnumerator
from dtsx.engine.recordset import Column, Recordset, Table

ENUM = ForEachEnumerator(ref_id="Package\\Loop", raw_type="Microsoft.ForEachADOEnumerator",
                         type_key="Microsoft.ForEachADOEnumerator")  # fmt: skip


def _dataset() -> Recordset:
    first = Table([Column("id"), Column("Name")], [(1, "a"), (2, "b")])
    second = Table([Column("x")], [(9,)], name="Table1")
    return Recordset.dataset([first, second])


def test_table_finds_columns_case_insensitively() -> None:
    table = Table([Column("id"), Column("Name")], [[1, "a"]])
    assert table.column_index("NAME") == 1 and table.column_index("nope") is None
    assert table.rows == [(1, "a")] and table.column_names == ["id", "Name"]


def test_a_recordset_is_read_once() -> None:
    rs = Recordset.recordset([Column("id")], [(1,), (2,)])
    assert rs.first_table_rows() == [(1,), (2,)]
    assert rs.first_table_rows() == [] and list(rs) == []
    assert rs.rows == [(1,), (2,)]  # inspection does not consume


def test_a_dataset_re_iterates() -> None:
    ds = _dataset()
    assert ds.first_table_rows() == ds.first_table_rows() == [(1, "a"), (2, "b")]
    assert ds.all_rows() == [(1, "a"), (2, "b"), (9,)]
    assert [t.name for t in ds.all_tables()] == ["Table", "Table1"]


def test_a_deep_copy_keeps_the_read_state() -> None:
    rs = Recordset.recordset([Column("id")], [(1,)])
    rs.first_table_rows()
    assert copy.deepcopy(rs).first_table_rows() == []


@pytest.mark.parametrize(
    ("enum_type", "expected"),
    [
        ("EnumerateRowsInFirstTable", [[1, "a"], [2, "b"]]),
        ("2", [[1, "a"], [2, "b"]]),
        ("EnumerateAllRows", [[1, "a"], [2, "b"], [9]]),
        ("1", [[1, "a"], [2, "b"], [9]]),
    ],
)
def test_foreach_ado_rows_of_a_dataset(enum_type: str, expected: list) -> None:
    assert ado_items(_dataset(), enum_type, ENUM) == expected


def test_foreach_ado_tables_of_a_dataset_then_rows_of_each_table() -> None:
    tables = ado_items(_dataset(), "EnumerateTables", ENUM)
    assert [t[0].name for t in tables] == ["Table", "Table1"]
    assert ado_items(tables[1][0], "EnumerateRowsInFirstTable", ENUM) == [[9]]
    with pytest.raises(ExecutionError, match="EnumerateTables needs a DataSet"):
        ado_items(tables[0][0], "EnumerateTables", ENUM)


@pytest.mark.parametrize("enum_type", ["EnumerateTables", "EnumerateAllRows", ""])
def test_a_recordset_yields_its_rows_whatever_the_mode(enum_type: str) -> None:
    rs = Recordset.recordset([Column("id")], [(1,), (2,)])
    assert ado_items(rs, enum_type, ENUM) == [[1], [2]]


def test_rows_held_as_a_list_keep_working() -> None:
    assert ado_items([(1, 2), {"a": 3}, 4], "", ENUM) == [[1, 2], [3], [4]]


def test_an_unknown_enum_type_is_an_error() -> None:
    with pytest.raises(ExecutionError, match="EnumType 'Sideways'"):
        ado_items([], "Sideways", ENUM)
