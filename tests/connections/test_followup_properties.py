"""``dtsx validate`` checks the names of property expressions on built-in connection managers
against what each type declares (``runtime_properties``): a misspelt SMTP or FILE property is an
``unknown-property`` problem at its line with the nearest valid name; a real one validates clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

VALID = Path(__file__).resolve().parent.parent / "data" / "validate" / "valid.dtsx"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
MAIL = 'DTS:ObjectName="Mail">'
BODY = 'DTS:ObjectName="Body">'


def _package(tmp_path: Path, anchor: str, name: str, expression: str) -> tuple[Path, int]:
    text = VALID.read_text(encoding="utf-8")
    assert anchor in text
    pe = f'\n      <DTS:PropertyExpression DTS:Name="{name}">{expression}</DTS:PropertyExpression>'
    changed = text.replace(anchor, anchor + pe, 1)
    line = next(i for i, row in enumerate(changed.splitlines(), 1) if f'DTS:Name="{name}"' in row)
    path = tmp_path / "cm.dtsx"
    path.write_text(changed, encoding="utf-8")
    return path, line


def _validate(path: Path) -> tuple[int, dict]:
    proc = subprocess.run(
        [*DTSX, "validate", "--json", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["packages"][0]


@pytest.mark.parametrize(
    ("anchor", "wrong", "right"),
    [
        (MAIL, "SmtpServr", "SmtpServer"),
        (MAIL, "Timeuot", "Timeout"),
        (MAIL, "EnableSSl_", "EnableSsl"),
        (MAIL, "TrustServerCertficate", "TrustServerCertificate"),
        (BODY, "FileUsgeType", "FileUsageType"),
    ],
)
def test_a_misspelt_connection_property_is_reported_at_its_line(
    tmp_path: Path, anchor: str, wrong: str, right: str
) -> None:
    path, line = _package(tmp_path, anchor, wrong, '"x"')
    code, entry = _validate(path)
    assert code == 5, entry
    (problem,) = [p for p in entry["problems"] if p["code"] == "unknown-property"]
    assert problem["line"] == line and problem["file"] == str(path), problem
    assert wrong in problem["message"] and f"did you mean '{right}'" in problem["message"], problem[
        "message"
    ]


@pytest.mark.parametrize(
    ("anchor", "name", "expression"),
    [
        (MAIL, "SmtpServer", '"mail.example.invalid"'),
        (MAIL, "Timeout", '"30000"'),
        (MAIL, "EnableSsl", '"False"'),
        (MAIL, "UseWindowsAuthentication", '"False"'),
        (MAIL, "Port", '"25"'),
        (MAIL, "Description", '"d"'),
        (BODY, "FileUsageType", '"0"'),
        (BODY, "ConnectionString", '"/tmp/dtsx-validate-body.txt"'),
    ],
)
def test_a_real_connection_property_validates_clean(
    tmp_path: Path, anchor: str, name: str, expression: str
) -> None:
    path, _line = _package(tmp_path, anchor, name, expression)
    code, entry = _validate(path)
    assert [p for p in entry["problems"] if p["code"] == "unknown-property"] == [], entry
    assert code == 0 and entry["valid"], entry
