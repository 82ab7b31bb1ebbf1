"""The public API: compile/evaluate, Value, the .NET conversions, errors with offsets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

import dtsx.engine.expressions as expressions
from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import (
    Value,
    compile,
    dotnet_type_of_typecode,
    dotnet_type_of_vartype,
    evaluate,
    format_value_for_display,
    value_from_dotnet,
    value_to_dotnet,
)


def test_exported_names_are_pinned() -> None:
    assert sorted(expressions.__all__) == sorted(
        [
            "compile",
            "evaluate",
            "CompiledExpression",
            "Value",
            "value_from_dotnet",
            "value_to_dotnet",
            "dotnet_type_of_vartype",
            "dotnet_type_of_typecode",
            "format_value_for_display",
        ]
    )


def test_compiled_expression_metadata() -> None:
    expr = compile('@[User::a] + @b > @[$Package::P] ? "x" : "y"')
    assert expr.text.startswith("@[User::a]")
    assert expr.variables == frozenset({"User::a", "b", "$Package::P"})
    assert expr.target is None
    loop = compile("@[User::i] = @[User::i] + 1", assignment=True)
    assert loop.target == "User::i"
    assert loop.variables == frozenset({"User::i"})


def test_lookup_receives_names_as_written() -> None:
    seen: list[str] = []

    def lookup(name: str) -> Value:
        seen.append(name)
        return Value("DT_I4", 2)

    assert compile("@x * @[Ns::y]").evaluate(lookup) == Value("DT_I4", 4)
    assert sorted(seen) == ["Ns::y", "x"]


def test_evaluate_many_times_with_changing_types() -> None:
    expr = compile("@[User::v] + 1")
    assert expr.evaluate(lambda n: Value("DT_I4", 1)) == Value("DT_I4", 2)
    assert expr.evaluate(lambda n: Value("DT_R8", 1.5)) == Value("DT_R8", 2.5)
    with pytest.raises(ExpressionError):
        expr.evaluate(lambda n: Value("DT_WSTR", "a"))
    assert expr.evaluate(lambda n: Value("DT_I8", 2**40)) == Value("DT_I8", 2**40 + 1)


def test_unknown_variable_names_it_with_offset() -> None:
    expr = compile("1 + @[User::Missing]")

    def lookup(name: str) -> Value:
        raise KeyError(name)

    with pytest.raises(ExpressionError) as info:
        expr.evaluate(lookup)
    assert info.value.offset == 4 and "User::Missing" in str(info.value)


def test_ambiguous_bare_name() -> None:
    with pytest.raises(ExpressionError, match="multiple variables"):
        evaluate("@Count", {"User::Count": ("Int32", 1), "Other::Count": ("Int32", 2)})


def test_parse_error_offsets() -> None:
    cases = {"1 +": 3, "5 = 5": 2, "'a'": 0, '"\\q"': 1, "(5 + 3": 6, "@ x": 0, "FOO(1)": 0}
    for text, offset in cases.items():
        with pytest.raises(ExpressionError) as info:
            compile(text)
        assert info.value.offset == offset, text
        assert info.value.text == text


def test_static_types_report_type_errors_at_compile_time() -> None:
    compile("@[User::s] + 1")  # unknown type: fine without types
    with pytest.raises(ExpressionError, match="DT_WSTR"):
        compile("@[User::s] + 1", types={"User::s": "String"})
    with pytest.raises(ExpressionError):
        compile("@n && TRUE", types={"User::n": "Int32"})
    assert (
        compile("@n + 1", types={"User::n": "Int32"}).evaluate(lambda _: Value("DT_I4", 1)).value
        == 2
    )
    with pytest.raises(ExpressionError):
        compile("@[User::o] == 1", types={"User::o": "System.Object"})
    with pytest.raises(ExpressionError):
        compile("LEN(@d)", types={"d": "DT_DBDATE"})
    compile("ISNULL(@[User::o])", types={"User::o": "Object"})


def test_compile_without_types_still_rejects_what_no_type_can_fix() -> None:
    for text in [
        "(DT_WSTR,5)@x + 1",
        "1/0",
        "LEN(5)",
        "TRUE + @x",
        'SUBSTRING(@s, "a", 1)',
        '@b ? 1 : "a"',
    ]:
        with pytest.raises(ExpressionError):
            compile(text)
    for text in ["@x + 1", "@x == @y", "LEN(@s) > @n", "@flag ? @a : @b", "-@x", "ISNULL(@o)"]:
        compile(text)


def test_assignment_converts_to_the_target_type() -> None:
    expr = compile("@[User::n] = 2.6", assignment=True)
    assert expr.evaluate(lambda _: Value("DT_I4", 0)) == Value("DT_I4", 3)
    as_text = compile("@s = 5 + 1", assignment=True)
    assert as_text.evaluate(lambda _: Value("DT_WSTR", "")) == Value("DT_WSTR", "6")
    with pytest.raises(ExpressionError):
        compile('@d = "abc"', assignment=True).evaluate(
            lambda _: Value("DT_DATE", datetime(2000, 1, 1))
        )
    with pytest.raises(ExpressionError):
        compile("@n = NULL(DT_I4)", assignment=True).evaluate(lambda _: Value("DT_I4", 0))
    with pytest.raises(ExpressionError):
        compile("@n = 1")  # outside a For Loop


@pytest.mark.parametrize(
    ("init", "condition", "step", "variables", "iterations"),
    [
        ("@Counter = 0", "@Counter < 4", "@Counter = @Counter + 1", {"Counter": 0}, 4),
        (
            "@varCount = 2",
            "@varCount < @varMaxCount",
            "@varCount = @varCount + 1",
            {"varCount": 0, "varMaxCount": 10},
            8,
        ),
    ],
)
def test_for_loop_documented_examples(
    init: str, condition: str, step: str, variables: dict[str, int], iterations: int
) -> None:
    store = {f"User::{k}": value_from_dotnet("Int32", v) for k, v in variables.items()}

    def lookup(name: str) -> Value:
        return store[name if "::" in name else f"User::{name}"]

    init_expr, eval_expr = compile(init, assignment=True), compile(condition)
    step_expr = compile(step, assignment=True)
    store[f"User::{init_expr.target}"] = init_expr.evaluate(lookup)
    count = 0
    while eval_expr.evaluate(lookup).value and count < 100:
        count += 1
        store[f"User::{step_expr.target}"] = step_expr.evaluate(lookup)
    assert count == iterations


def test_object_variables() -> None:
    rows = [("a", 1)]
    obj = value_from_dotnet("Object", rows)
    assert obj.value is rows
    assert evaluate("ISNULL(@o)", {"o": obj}).value is False
    with pytest.raises(ExpressionError, match="Object"):
        evaluate("@o == 1", {"o": obj})


def test_value_copies_and_pickles() -> None:
    import copy
    import pickle

    value = Value("DT_WSTR", "x")
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value and type(copy.copy(value)) is Value


def test_date_functions_convert_string_variables_but_not_literals() -> None:
    assert evaluate("YEAR(@s)", {"s": ("String", "2003-08-06")}).value == 2003
    assert evaluate('DATEPART("m", @s)', {"s": ("String", "8/6/2003")}).value == 8
    for text in ['YEAR("2003-08-06")', 'DATEDIFF("d", @s, @s)']:
        with pytest.raises(ExpressionError):
            evaluate(text, {"s": ("String", "2003-08-06")})


@pytest.mark.parametrize(
    "text", ["1e400", "3e38f * 10", "1e39f", "1" * 39 + ".5", "2147483648", "0x100000000"]
)
def test_literal_limits(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile(text)


def test_value_is_immutable_and_serialises() -> None:
    value = evaluate("CEILING(123.74)")
    with pytest.raises(AttributeError):
        value.value = 1  # type: ignore[misc]
    assert value.to_json() == Decimal("124.00") and value.json_text() == "124.00"
    assert evaluate("NULL(DT_I4)").is_null and evaluate("NULL(DT_I4)").to_json() is None
    assert (
        evaluate('(DT_DBTIMESTAMP)"2003-08-06 00:00:00.5"').to_json() == "2003-08-06 00:00:00.500"
    )
    assert evaluate('"a\\"b"').json_text() == '"a\\"b"'
    assert format_value_for_display(evaluate("TRUE")) == "True"
    assert format_value_for_display(evaluate("NULL(DT_I4)")) == "NULL(DT_I4)"


@pytest.mark.parametrize(
    ("type_name", "raw", "expected"),
    [
        ("Boolean", "True", Value("DT_BOOL", True)),
        ("Boolean", "-1", Value("DT_BOOL", True)),
        ("Boolean", "0", Value("DT_BOOL", False)),
        ("Int32", "42", Value("DT_I4", 42)),
        ("Int64", 5_000_000_000, Value("DT_I8", 5_000_000_000)),
        ("Byte", "255", Value("DT_UI1", 255)),
        ("SByte", -1, Value("DT_I1", -1)),
        ("Char", "A", Value("DT_UI2", 65)),
        ("Double", "1.5", Value("DT_R8", 1.5)),
        ("Decimal", "1.50", Value("DT_DECIMAL", Decimal("1.50"))),
        ("String", "E:\\Data", Value("DT_WSTR", "E:\\Data")),
        ("System.String", None, Value("DT_WSTR", "")),
        ("DateTime", "11/28/2026 3:04:05 AM", Value("DT_DATE", datetime(2026, 11, 28, 3, 4, 5))),
        ("DateTime", "2026-11-28T15:04:05", Value("DT_DATE", datetime(2026, 11, 28, 15, 4, 5))),
        ("DateTime", "2005-03-04 11:06:18", Value("DT_DATE", datetime(2005, 3, 4, 11, 6, 18))),
        ("DateTime", "2026-11-28T03:04:05Z", Value("DT_DATE", datetime(2026, 11, 28, 3, 4, 5))),
        ("DateTime", "1/1/2009", Value("DT_DATE", datetime(2009, 1, 1))),
        ("DBNull", None, Value("DT_NULL", None)),
    ],
)
def test_value_from_dotnet(type_name: str, raw: object, expected: Value) -> None:
    assert value_from_dotnet(type_name, raw) == expected


@pytest.mark.parametrize(
    ("type_name", "raw"),
    [
        ("Int32", "abc"),
        ("Int32", "2147483648"),
        ("Byte", -1),
        ("Boolean", "maybe"),
        ("Widget", 1),
        ("DateTime", "not a date"),
    ],
)
def test_value_from_dotnet_errors(type_name: str, raw: object) -> None:
    with pytest.raises(ExpressionError):
        value_from_dotnet(type_name, raw)


def test_value_to_dotnet() -> None:
    assert value_to_dotnet(Value("DT_NUMERIC", Decimal("2.5")), "Int32") == Value("DT_I4", 3)
    assert value_to_dotnet(Value("DT_I4", 7), "String") == Value("DT_WSTR", "7")
    assert value_to_dotnet(Value("DT_I4", 7), "Double") == Value("DT_R8", 7.0)
    assert value_to_dotnet(Value("DT_WSTR", "True"), "Boolean") == Value("DT_BOOL", True)
    assert value_to_dotnet(Value("DT_I4", 7), "Decimal") == Value("DT_DECIMAL", Decimal(7))
    moment = value_to_dotnet(Value("DT_DBTIMESTAMP", datetime(2003, 8, 6)), "DateTime")
    assert moment == Value("DT_DATE", datetime(2003, 8, 6))
    for value, type_name in [
        (Value("DT_I4", 300), "Byte"),
        (Value("DT_WSTR", "x"), "Int32"),
        (Value("DT_I4", None), "Int32"),
        (Value("DT_DBDATE", datetime(2003, 1, 1).date()), "Int32"),
    ]:
        with pytest.raises(ExpressionError):
            value_to_dotnet(value, type_name)


def test_type_code_tables() -> None:
    assert [
        dotnet_type_of_vartype(c) for c in (2, 3, 4, 5, 7, 8, 11, 13, 14, 16, 17, 18, 19, 20, 21, 1)
    ] == [
        "Int16",
        "Int32",
        "Single",
        "Double",
        "DateTime",
        "String",
        "Boolean",
        "Object",
        "Decimal",
        "SByte",
        "Byte",
        "Char",
        "UInt32",
        "Int64",
        "UInt64",
        "DBNull",
    ]
    assert dotnet_type_of_vartype(6) == "Decimal"
    assert [
        dotnet_type_of_typecode(c) for c in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18)
    ] == [
        "Boolean",
        "Char",
        "SByte",
        "Byte",
        "Int16",
        "UInt16",
        "Int32",
        "UInt32",
        "Int64",
        "UInt64",
        "Single",
        "Double",
        "Decimal",
        "DateTime",
        "String",
    ]
    with pytest.raises(ExpressionError):
        dotnet_type_of_vartype(99)
    with pytest.raises(ExpressionError):
        dotnet_type_of_typecode("x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ("HEX(-1)", "FFFFFFFF"),
        ("HEX((DT_I1)-2)", "FE"),
        ('DATEADD("m", 1, (DT_DBTIMESTAMP)"2004-01-31")', datetime(2004, 2, 29)),
        ('DATEDIFF("mm", (DT_DBTIMESTAMP)"2003-08-31", (DT_DBTIMESTAMP)"2003-09-01")', 1),
        ('DATEPART("dw", (DT_DBDATE)"2003-08-03")', 1),
        ('DATEPART("y", (DT_DBDATE)"2003-02-01")', 32),
        ('FINDSTRING("abc", "", 1)', 0),
        ('TOKEN("a,,b", ",", 2)', "b"),
        ("ROUND(-2.5, 0)", Decimal("-3.0")),
        ("FALSE && 1/@z == 1", False),
        ('(DT_WSTR,30)(DT_DATE)"2009-01-01"', "1/1/2009"),
        ('(DT_WSTR,30)(DT_DATE)"2009-01-01 13:05:00"', "1/1/2009 1:05:00 PM"),
    ],
)
def test_choices_where_ssis_is_undocumented(text: str, expected: object) -> None:
    assert evaluate(text, {"z": ("Int32", 0)}).value == expected


def test_lookup_failures_become_expression_errors() -> None:
    from dtsx.engine.errors import TaskFailedError

    def broken(name: str) -> Value:
        raise TaskFailedError("the variable's own expression failed")

    def inner(name: str) -> Value:
        raise ExpressionError("bad inner", text="@[User::y] + 1", offset=0)

    with pytest.raises(ExpressionError, match="could not be read"):
        compile("@x + 1").evaluate(broken)
    with pytest.raises(ExpressionError) as info:
        compile("@x + 1").evaluate(inner)
    assert info.value.text == "@[User::y] + 1"  # the failing inner expression is kept
