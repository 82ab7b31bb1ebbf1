"""A variable's persisted value text is read by the one number reader casts use: no Python-only
spellings (``1_0``, other scripts' digits, ``nan``, ``inf``), no MemoryError on a huge exponent,
no silent infinity for a Double that overflows. Each bad value is a ``bad-value`` problem of
``dtsx validate`` at its line (exit 5, no traceback); .NET's own NaN/Infinity symbols are values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import evaluate

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
CODES = {
    "Int16": 2,
    "Int32": 3,
    "Single": 4,
    "Double": 5,
    "Decimal": 14,
    "Byte": 17,
    "Int64": 20,
    "UInt64": 21,
}


def _package(tmp_path: Path, type_name: str, value: str) -> tuple[Path, int]:
    text = f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="values" DTS:DTSID="{{7B000000-0000-4000-8000-000000000000}}" DTS:ProtectionLevel="0">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{7B000000-0000-4000-8000-000000000001}}" DTS:Namespace="User" DTS:ObjectName="Ok"><DTS:VariableValue DTS:DataType="3">1</DTS:VariableValue></DTS:Variable>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{7B000000-0000-4000-8000-000000000002}}" DTS:Namespace="User" DTS:ObjectName="X"><DTS:VariableValue DTS:DataType="{CODES[type_name]}">{value}</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables />
</DTS:Executable>
"""
    path = tmp_path / "values.dtsx"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if 'DTS:ObjectName="X"' in row)
    return path, line


def _validate(path: Path) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [*DTSX, "validate", "--json", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["packages"][0], proc.stderr


BAD = [
    ("Int32", "1e99999999999", "does not fit into Int32"),
    ("Int64", "1e99999999999", "does not fit into Int64"),
    ("Byte", "1e99999999999", "does not fit into Byte"),
    ("UInt64", "-1e99999999999", "does not fit into UInt64"),
    ("Int32", "1e-99999999999", "is not an integer"),
    ("Int32", "\u0661\u0662", "is not a number"),  # Arabic-Indic digits: int() reads them as 12
    ("Int32", "1_0", "is not a number"),  # int() reads it as 10
    ("Int16", "\uff11", "is not a number"),  # a fullwidth digit
    ("Decimal", "1_0", "is not a number"),
    ("Decimal", "\u0661", "is not a number"),
    ("Double", "1E400", "does not fit into Double"),  # float() gives inf; .NET Framework overflows
    ("Double", "-1e99999999999", "does not fit into Double"),
    ("Single", "1E39", "does not fit into Single"),
    ("Double", "nan", "is not a number"),  # Python's spellings, not .NET's symbols
    ("Double", "inf", "is not a number"),
    ("Double", "infinity", "is not a number"),
    ("Double", "1_0.5", "is not a number"),
]


@pytest.mark.parametrize(("type_name", "value", "reason"), BAD)
def test_a_bad_number_is_a_bad_value_problem_at_its_line(
    tmp_path: Path, type_name: str, value: str, reason: str
) -> None:
    path, line = _package(tmp_path, type_name, value)
    code, entry, _stderr = _validate(path)
    assert code == 5, entry
    (problem,) = entry["problems"]
    assert (
        problem["code"] == "bad-value" and problem["line"] == line and problem["file"] == str(path)
    ), problem
    assert f"the type {type_name}" in problem["message"] and reason in problem["message"], problem[
        "message"
    ]


GOOD = [
    ("Double", "NaN"),
    ("Double", "Infinity"),
    ("Double", "-Infinity"),
    ("Single", "NaN"),  # .NET's symbols
    ("Double", " 1.5e3 "),
    ("Double", "1E-400"),
    ("Double", "1.7976931348623157E+308"),
    ("Int64", "-9223372036854775808"),
    ("Int32", "+12"),
    ("Int32", ""),
    ("Decimal", "1E+28"),
    ("Byte", "255"),
    ("UInt64", "18446744073709551615"),
]


@pytest.mark.parametrize(("type_name", "value"), GOOD)
def test_a_good_number_validates(tmp_path: Path, type_name: str, value: str) -> None:
    path, _line = _package(tmp_path, type_name, value)
    code, entry, _stderr = _validate(path)
    assert code == 0 and entry["valid"] and entry["problems"] == [], entry


def test_the_api_reads_the_same_way() -> None:
    for raw in ("1e99999999999", "1_0", "\u0661\u0662"):
        with pytest.raises(ExpressionError, match="cannot read an Int32 variable value"):
            evaluate("@[User::x]", variables={"User::x": ("Int32", raw)})
    with pytest.raises(ExpressionError, match="does not fit into Double"):
        evaluate("@[User::x]", variables={"User::x": ("Double", "1E400")})
    assert math.isnan(evaluate("@[User::x]", variables={"User::x": ("Double", "NaN")}).value)
    assert evaluate("@[User::x]", variables={"User::x": ("Double", "-Infinity")}).value == -math.inf
    assert evaluate("@[User::x] + 1", variables={"User::x": ("Int64", " 41 ")}).value == 42


def test_a_huge_value_is_not_echoed_in_full(tmp_path: Path) -> None:
    digits = "9" * 200_000
    path, _line = _package(tmp_path, "Decimal", digits)
    code, entry, _stderr = _validate(path)
    assert code == 5 and len(entry["problems"][0]["message"]) < 1000, entry["problems"][0][
        "message"
    ][:300]
