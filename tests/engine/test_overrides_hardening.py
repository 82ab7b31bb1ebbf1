"""Overrides given bad input: one sentence, the right exit code, no value echoed.

A dtexec path to ``Parameters[...]`` says which form sets a parameter; a ``CM.<conn>.<prop>``
parameter on a connection string that does not parse is a problem naming the connection, not a
traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=60, check=False)


def test_a_parameters_path_says_how_a_parameter_is_set(tmp_path: Path) -> None:
    proc = dtsx(
        "run",
        str(ROOT / "samples" / "hello-mail.dtsx"),
        "--dev-smtp",
        str(tmp_path),
        "--set",
        "\\Package.Parameters[Region].Properties[Value];north",
    )
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "\\Package.Variables[$Package::NAME].Properties[Value]" in proc.stderr


def test_a_connection_parameter_on_a_string_that_does_not_parse_is_one_problem(
    tmp_path: Path,
) -> None:
    text = (ROOT / "tests" / "data" / "devsmtp" / "mail_by_expression.dtsx").read_text(
        encoding="utf-8"
    )
    broken = text.replace(
        'ConnectionString="SmtpServer=smtp.corp.invalid;',
        'ConnectionString="SmtpServer=&apos;smtp.corp.invalid;Password=&apos;Pa55;',
    )
    assert broken != text
    package = tmp_path / "broken.dtsx"
    package.write_text(broken, encoding="utf-8")
    proc = dtsx(
        "run",
        str(package),
        "--dev-smtp",
        str(tmp_path / "out"),
        "--param",
        "CM.Corporate SMTP.Port=2525",
    )
    assert proc.returncode in (1, 5, 6), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "Corporate SMTP" in proc.stderr and "Pa55" not in proc.stdout + proc.stderr
