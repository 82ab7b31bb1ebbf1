"""String to number casts on hostile text: each failure is an ExpressionError at the cast's
offset."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import evaluate

NUMERIC_TYPES = [
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
    "DT_DECIMAL,2",
    "DT_NUMERIC,10,2",
    "DT_NUMERIC,38,0",
    "DT_CY",
    "DT_BOOL",
]
PREFIX = "   "  # so that the cast is not at offset 0


def cast(target: str, text: str) -> object:
    """Cast ``text`` (a DT_WSTR variable) to ``target`` through the public evaluate API."""
    return evaluate(f"{PREFIX}({target})@s", variables={"User::s": ("String", text)}).value


def literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


HOSTILE = [
    "1E400",
    "-1E400",
    "1e99999999999",
    "-1e99999999999",
    "1e" + "9" * 5000,
    "9" * 5000,
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "sNaN",
    "1_000",
    "\u0661\u0662",
    "\uff11",
    "\u00b2",
    "\u3000 12",
    "12\u00a0",
    "0x10",
    "1,000",
    "",
    " ",
    ".",
    "+",
    "-",
    "e5",
    "1e",
    "1e+",
    "--1",
    "1 2",
]


@pytest.mark.parametrize("target", NUMERIC_TYPES)
@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
def test_hostile_text_gives_an_expression_error_at_the_cast(target: str, text: str) -> None:
    if target == "DT_BOOL" and text in (
        "1E400",
        "-1E400",
        "1e99999999999",
        "-1e99999999999",
        "1e" + "9" * 5000,
        "9" * 5000,
    ):
        assert cast(target, text) is True  # a number, not zero: True, however large
        return
    with pytest.raises(ExpressionError) as caught:
        cast(target, text)
    error = caught.value
    assert error.offset == len(PREFIX)
    assert error.message.startswith(("the string ", "the value ")), error.message
    assert "operation failed" not in error.message and "InvalidOperation" not in error.message
    assert len(error.message) < 200  # a long value is shortened in the message


@pytest.mark.parametrize("target", ["DT_I4", "DT_R8", "DT_DECIMAL,2", "DT_NUMERIC,10,2", "DT_CY"])
def test_the_same_cast_of_a_literal_fails_at_its_offset(target: str) -> None:
    expression = f"1 + ({target}){literal('1E400')}"
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression)
    assert caught.value.offset == 4 and "does not fit into" in caught.value.message


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        ("DT_I4", "1E-400", 0),
        ("DT_I8", "-1e-99999999999", 0),
        ("DT_NUMERIC,10,2", "1E-400", Decimal("0.00")),
        ("DT_CY", "1e-99999999999", Decimal("0.0000")),
        ("DT_R8", "1E-400", 0.0),
        ("DT_I4", " \t12\r\n", 12),
        ("DT_I4", "+2.5", 3),
        ("DT_NUMERIC,38,0", "1" + "0" * 37, Decimal("1" + "0" * 37)),
        ("DT_DECIMAL,2", "0." + "0" * 5000 + "1", Decimal("0.00")),
        ("DT_R8", "1e+0000000000000000000000000000002", 100.0),
    ],
)
def test_extreme_but_valid_text_converts(target: str, text: str, expected: object) -> None:
    result = evaluate(f"({target})@s", variables={"User::s": ("String", text)}).value
    assert result == expected and type(result) is type(expected)


@settings(max_examples=300, deadline=None)
@given(
    target=st.sampled_from(NUMERIC_TYPES),
    text=st.one_of(
        st.text(max_size=40),
        st.from_regex(
            r"\s*[+-]?[0-9]{0,60}(\.[0-9]{0,60})?([eE][+-]?[0-9]{1,40})?\s*", fullmatch=True
        ),
    ),
)
def test_any_text_cast_to_a_number_raises_only_expression_error(target: str, text: str) -> None:
    for expression, variables in (
        (f"({target})@s", {"User::s": ("String", text)}),
        (f"({target}){literal(text)}", {}),
    ):
        try:
            evaluate(expression, variables=variables)
        except ExpressionError as exc:  # anything else escapes and fails the test
            assert exc.offset == 0
            # The cast's own sentence, never the evaluator's catch-all for an unexpected arithmetic
            # error.
            assert exc.message.startswith(("the string ", "the value ")), exc.message


def test_dtsx_eval_reports_an_overflowing_string_in_one_sentence() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "eval",
            '(DT_NUMERIC,10,2)"1E400"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the value '1E400' does not fit into DT_NUMERIC at offset 0" in done.stderr.replace(
        "DT_NUMERIC(10)", "DT_NUMERIC"
    )


@pytest.mark.parametrize("text", ["1E400", "-1e99999999999", "1" + "0" * 29])
def test_an_exact_value_counts_the_integer_digits_its_exponent_gives(text: str) -> None:
    # A Decimal variable's text is checked by the same rule as a cast: 1E+400 has 401 integer
    # digits.
    with pytest.raises(ExpressionError, match="does not fit into DT_DECIMAL"):
        evaluate("@[User::x]", variables={"User::x": ("Decimal", text)})
    assert evaluate("@[User::x]", variables={"User::x": ("Decimal", "1E+28")}).value == Decimal(
        "1E+28"
    )
