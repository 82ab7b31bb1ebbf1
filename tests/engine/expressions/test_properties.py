"""Property-based tests: nothing but ExpressionError ever escapes, and nothing hangs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import Value, compile
from dtsx.engine.expressions.functions import FUNCTION_NAMES

_VARIABLES = {
    "User::i": Value("DT_I4", 7),
    "User::n": Value("DT_I4", 0),
    "User::big": Value("DT_I8", 2**62),
    "User::u": Value("DT_UI4", 4_000_000_000),
    "User::r": Value("DT_R8", -2.5),
    "User::f": Value("DT_R4", 0.5),
    "User::m": Value("DT_DECIMAL", Decimal("12.345")),
    "User::s": Value("DT_WSTR", "a,b c"),
    "User::e": Value("DT_WSTR", ""),
    "User::b": Value("DT_BOOL", True),
    "User::d": Value("DT_DATE", datetime(2003, 8, 6, 10, 20, 30)),
    "User::o": Value("Object", [1, 2]),
}
_NAMES = [
    "@i",
    "@n",
    "@[User::big]",
    "@u",
    "@r",
    "@f",
    "@m",
    "@s",
    "@e",
    "@b",
    "@[User::d]",
    "@o",
    "@missing",
]
_TYPES = [
    "DT_I1",
    "DT_I2",
    "DT_I4",
    "DT_I8",
    "DT_UI1",
    "DT_UI2",
    "DT_UI4",
    "DT_UI8",
    "DT_R4",
    "DT_R8",
    "DT_CY",
    "DT_DECIMAL,2",
    "DT_NUMERIC,10,3",
    "DT_BOOL",
    "DT_WSTR,10",
    "DT_STR,5,1252",
    "DT_DATE",
    "DT_DBDATE",
    "DT_DBTIME",
    "DT_DBTIME2,3",
    "DT_DBTIMESTAMP",
    "DT_DBTIMESTAMP2,7",
    "DT_DBTIMESTAMPOFFSET,2",
    "DT_FILETIME",
    "DT_GUID",
    "DT_BYTES,4",
]
_LITERALS = [
    "0",
    "1",
    "-1",
    "2147483647",
    "2147483648",
    "7u",
    "9L",
    "3UL",
    "0x1F",
    "1.5",
    ".5",
    "6.",
    "1e3",
    "2.5f",
    "1E400",
    "TRUE",
    "false",
    '""',
    '"abc"',
    '"2003-08-06"',
    '"10:20:30"',
    '"\\x0041"',
    '"\\q"',
    '"unterminated',
    "'x'",
    "#12",
    "[col]",
    "col",
    "NULL(DT_I4)",
    "NULL(DT_WSTR,3)",
    "NULL(DT_STR,3,1252)",
    "GETDATE()",
    '"dd"',
    '"mm"',
    '"y"',
    "99999999999999999999999999999999999999.5",
]
_OPERATORS = [
    "+",
    "-",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "&&",
    "||",
    "&",
    "|",
    "^",
    "?",
    ":",
    "!",
    "~",
    "=",
    "(",
    ")",
    ",",
    "@",
    "!>",
]


def _lookup(name: str) -> Value:
    return _VARIABLES[name if "::" in name else f"User::{name}"]


def _check(text: str, assignment: bool = False) -> None:
    try:
        compiled = compile(text, assignment=assignment)
        compiled.evaluate(_lookup)
        compiled.evaluate(_lookup)  # the cached specialisation path
    except ExpressionError as exc:
        assert "internal error" not in str(exc), str(exc)


_TOKEN = st.one_of(
    st.sampled_from(_LITERALS),
    st.sampled_from(_OPERATORS),
    st.sampled_from(_NAMES),
    st.sampled_from(sorted(FUNCTION_NAMES) + ["NULL", "FOO"]),
    st.sampled_from(_TYPES).map(lambda t: f"({t})"),
)
# derandomize: CI sees the same examples every run (a wider random search found nothing more).
_SETTINGS = settings(
    max_examples=1200,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,
)


@_SETTINGS
@given(st.lists(_TOKEN, max_size=25), st.sampled_from([" ", "", "\n"]), st.booleans())
def test_token_soup_raises_only_expression_errors(
    tokens: list[str], sep: str, assignment: bool
) -> None:
    _check(sep.join(tokens), assignment)


@_SETTINGS
@given(st.text(max_size=40))
def test_arbitrary_text_raises_only_expression_errors(text: str) -> None:
    _check(text)


def _expression(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(_OPERATORS[:16]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    unary = st.tuples(st.sampled_from(["-", "!", "~"]), children).map(lambda t: f"{t[0]}({t[1]})")
    cast = st.tuples(st.sampled_from(_TYPES), children).map(lambda t: f"({t[0]})({t[1]})")
    conditional = st.tuples(children, children, children).map(
        lambda t: f"({t[0]} ? {t[1]} : {t[2]})"
    )
    call = st.tuples(
        st.sampled_from(sorted(FUNCTION_NAMES)), st.lists(children, min_size=0, max_size=3)
    ).map(lambda t: f"{t[0]}({', '.join(t[1])})")
    return st.one_of(binary, unary, cast, conditional, call)


_LEAF = st.one_of(
    st.sampled_from(
        [x for x in _LITERALS if x not in ('"unterminated', "'x'", "#12", "[col]", "col")]
    ),
    st.sampled_from(_NAMES[:-2]),
)
_WELL_FORMED = st.recursive(_LEAF, _expression, max_leaves=12)


@_SETTINGS
@given(_WELL_FORMED)
def test_well_formed_expressions_raise_only_expression_errors(text: str) -> None:
    _check(text)
    _check(f"@i = {text}", assignment=True)
    _check(f"@s = {text}", assignment=True)


def test_deep_nesting_is_an_expression_error_not_a_crash() -> None:
    for depth in (50, 500, 3000):
        for text in (
            "(" * depth + "1" + ")" * depth,
            "-" * depth + "1",
            "!" * depth + "TRUE",
            "(DT_I4)" * depth + "1",
            "1" + " + 1" * depth,
            "TRUE ? " * depth + "1" + " : 2" * depth,
        ):
            _check(text)


def test_huge_results_are_refused_quickly() -> None:
    for text in (
        'REPLICATE("abc", 2147483647)',
        'REPLICATE(REPLICATE("ab", 1000000), 1000)',
        "POWER(10, 400)",
        'DATEADD("yy", 2147483647, GETDATE())',
        "EXP(1000)",
    ):
        try:
            compile(text).evaluate(_lookup)
        except ExpressionError as exc:
            assert "internal error" not in str(exc), str(exc)
            continue
        raise AssertionError(f"{text} should have failed")
