"""engine.sqltext: GO batches, markers and statements (spec execute-sql.md §2.2, §2.3, §4.3, §4.5)."""

from __future__ import annotations

import sqlite3

import pytest

from dtsx.engine.errors import DtsxError
from dtsx.engine.sqltext import (
    Batch,
    SqlTextError,
    Statement,
    bind_markers,
    code_spans,
    find_markers,
    split_batches,
    statements,
)

# -- GO ------------------------------------------------------------------------------------------


def test_go_variants_split_batches_and_keep_their_lines() -> None:
    text = "select 1\nGO\ninsert t values (2)\n  go  \nselect 3\nGO -- the end\nselect 4\nGo\n"
    assert split_batches(text) == [
        Batch("select 1", 1),
        Batch("insert t values (2)", 3),
        Batch("select 3", 5),
        Batch("select 4", 7),
    ]


def test_go_count_repeats_the_batch() -> None:
    assert split_batches("insert t default values\nGO 3\nselect 1") == [
        Batch("insert t default values", 1, 3),
        Batch("select 1", 3, 1),
    ]


def test_go_zero_is_refused_with_its_line() -> None:
    with pytest.raises(SqlTextError, match="line 2: GO takes a positive count"):
        split_batches("select 1\nGO 0\n")
    assert issubclass(SqlTextError, DtsxError)


@pytest.mark.parametrize(
    "line", ["GO;", "GOTO done", "select go_col from t", "GO /* c */", "GO x", "GO -3", "GOGO"]
)
def test_lines_that_are_not_separators(line: str) -> None:
    text = f"select 1\n{line}\nselect 2"
    assert split_batches(text) == [Batch(text, 1)]


def test_go_inside_a_block_comment_or_a_string_is_text() -> None:
    text = "select 1 /*\nGO\n*/\nselect 'a\nGO\nb'\nselect [x\nGO\n]"
    assert split_batches(text) == [Batch(text, 1)]


def test_go_after_a_nested_comment_closes() -> None:
    text = "/* outer /* inner */ still\nGO\n*/ select 1\nGO\nselect 2"
    assert split_batches(text) == [
        Batch("/* outer /* inner */ still\nGO\n*/ select 1", 1),
        Batch("select 2", 5),
    ]


def test_go_after_a_line_comment_with_a_quote_still_splits() -> None:
    # The apostrophe of a -- comment opens no string.
    text = "select 1 -- it's fine\nGO\nselect 2"
    assert split_batches(text) == [Batch("select 1 -- it's fine", 1), Batch("select 2", 3)]


def test_blank_and_comment_only_batches_are_dropped() -> None:
    text = "\n\nGO\n  \nGO\n-- nothing here\nGO\n\n  select 1  \n\nGO\n"
    assert split_batches(text) == [Batch("select 1", 9)]


def test_crlf_lines() -> None:
    assert split_batches("select 1\r\nGO\r\nselect 2\r\n") == [
        Batch("select 1", 1),
        Batch("select 2", 3),
    ]


# -- markers -------------------------------------------------------------------------------------


def test_question_marks_in_literals_comments_and_names_are_not_markers() -> None:
    sql = (
        "select ?, '?', N'it''s ?', \"?\", [a?b] -- ?\n"
        "/* ? /* ? */ ? */ from t where a = ? and b like '%?%'"
    )
    markers = find_markers(sql, "?")
    assert [m.name for m in markers] == [0, 1]
    assert [sql[m.start : m.end] for m in markers] == ["?", "?"]
    assert markers[1].start == sql.index("a = ?") + 4


def test_output_and_return_value_shapes() -> None:
    markers = find_markers("EXEC ? = dbo.p ?, ? OUTPUT, ? out", "?")
    assert [(m.output, m.return_value) for m in markers] == [
        (False, True),
        (False, False),
        (True, False),
        (True, False),
    ]
    odbc = find_markers("{? = call p(?)}", "?")
    assert [m.return_value for m in odbc] == [True, False]
    assert not find_markers("select a from t where b = ?", "?")[0].return_value


def test_at_names_only_the_bound_ones_and_never_system_variables() -> None:
    sql = "DECLARE @d int = @Day; select @d, @@ROWCOUNT, '@Day', @day, x@Day"
    assert [m.name for m in find_markers(sql, "@", names=["Day"])] == ["Day", "day"]
    assert [m.name for m in find_markers(sql, "@", names=["@DAY"])] == ["Day", "day"]
    assert [m.name for m in find_markers(sql, "@")] == ["d", "Day", "d", "day"]


@pytest.mark.parametrize(
    ("paramstyle", "expected", "arguments"),
    [
        ("qmark", "select ?, '%' from t where a = ?", (1, 2)),
        ("format", "select %s, '%%' from t where a = %s", (1, 2)),
        ("pyformat", "select %s, '%%' from t where a = %s", (1, 2)),
        ("numeric", "select :1, '%' from t where a = :2", (1, 2)),
        ("named", "select :p1, '%' from t where a = :p2", {"p1": 1, "p2": 2}),
    ],
)
def test_bind_markers_each_paramstyle(
    paramstyle: str, expected: str, arguments: tuple[int, ...] | dict[str, int]
) -> None:
    bound = bind_markers("select ?, '%' from t where a = ?", "?", paramstyle)
    assert bound.sql == expected
    assert bound.arguments([1, 2]) == arguments


def test_without_markers_percent_stays_and_no_arguments_are_passed() -> None:
    bound = bind_markers("select '100%' -- ?\n", "@", "pyformat", names=["x"])
    assert bound.sql == "select '100%' -- ?\n"
    assert bound.markers == ()
    assert bound.arguments([]) is None


def test_named_markers_keep_their_order_and_repeats() -> None:
    bound = bind_markers(
        "update t set a = @A where id = @Id or parent = @id", "@", "format", ["a", "id"]
    )
    assert bound.sql == "update t set a = %s where id = %s or parent = %s"
    assert [m.name for m in bound.markers] == ["A", "Id", "id"]


def test_arguments_must_match_the_markers() -> None:
    with pytest.raises(ValueError, match="2 markers, 1 values"):
        bind_markers("select ?, ?", "?", "qmark").arguments([1])


def test_unknown_paramstyle_and_style() -> None:
    with pytest.raises(ValueError, match="paramstyle"):
        bind_markers("select ?", "?", "percent")
    with pytest.raises(ValueError, match="marker style"):
        find_markers("select ?", ":")  # type: ignore[arg-type]


def test_the_same_bindings_apply_to_each_batch() -> None:
    """Numbering restarts in every batch: both batches take marker 0 and 1 (spec §2.2)."""
    batches = split_batches("insert t values (?, ?)\nGO\nupdate t set b = ? where a = ?")
    names = [[m.name for m in find_markers(b.text, "?")] for b in batches]
    assert names == [[0, 1], [0, 1]]


def test_bound_values_reach_sqlite_as_values_never_as_sql() -> None:
    """A value that looks like SQL is data: the rewrite binds it (and '?' in a literal stays)."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("create table t (a text, b text)")
        hostile = "x'); drop table t; --"
        bound = bind_markers("insert into t values (?, '?')", "?", sqlite3.paramstyle)
        con.execute(bound.sql, bound.arguments([hostile]))
        assert con.execute("select a, b from t").fetchall() == [(hostile, "?")]
    finally:
        con.close()


# -- statements ----------------------------------------------------------------------------------


def test_statements_split_on_semicolons_outside_literals_and_comments() -> None:
    sql = (
        "insert into t values (';');\n-- a; comment\nselect 1 /* ; */ ;\n\n  select 2;  ;\n-- tail"
    )
    assert statements(sql, "sqlite") == [
        Statement("insert into t values (';')", 1),
        Statement("-- a; comment\nselect 1 /* ; */", 2),
        Statement("select 2", 5),
    ]


def test_a_sqlite_trigger_body_stays_whole() -> None:
    sql = (
        "create table t (a int, b int);\n"
        "create trigger tr after insert on t begin\n"
        "  update t set b = case when new.a > 0 then 1 else 0 end where rowid = new.rowid;\n"
        "  select 1;\n"
        "end;\n"
        "insert into t (a) values (5)"
    )
    found = statements(sql, "sqlite")
    assert [s.line for s in found] == [1, 2, 6]
    con = sqlite3.connect(":memory:")
    try:
        for statement in found:
            con.execute(statement.text)  # sqlite3 runs one statement per call
        assert con.execute("select a, b from t").fetchall() == [(5, 1)]
    finally:
        con.close()


def test_postgresql_dollar_quotes_hold_semicolons() -> None:
    sql = "do $body$ begin perform 1; end $body$; select $$a;b$$; select 3"
    assert [s.text for s in statements(sql, "postgresql")] == [
        "do $body$ begin perform 1; end $body$",
        "select $$a;b$$",
        "select 3",
    ]
    # In T-SQL a $ is no quote.
    assert len(statements("select $a; select $b", "tsql")) == 2


def test_mysql_backslash_escapes_and_hash_comments() -> None:
    sql = "select 'it\\'s; fine'; # a; comment\nselect `a;b` from t"
    assert [s.text for s in statements(sql, "mysql")] == [
        "select 'it\\'s; fine'",
        "# a; comment\nselect `a;b` from t",
    ]


def test_code_spans_skip_an_unterminated_literal_to_the_end() -> None:
    text = "select 1, 'open ? ; "
    assert code_spans(text) == [(0, 10)]
    assert find_markers(text, "?") == []
