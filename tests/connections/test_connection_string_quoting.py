"""Issue 9 item 7(b): connection strings follow .NET's rules, and no part of a password leaks.

``Password=Sem;iS3cr3t`` (a ';' inside an unquoted password) once put ``iS3cr3t`` into the error,
the run report and the JSON-lines log. Quoted values (``"a;b"``, ``'a;b'``, doubled quotes) hold
';'; a string that does not parse is refused with the key and position, never a value; the view
of a connection string masks a password whole, tail included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dtsx.connections.base import ConnectionSettings, parse_connection_string
from dtsx.connections.smtp_options import parse_smtp_options
from dtsx.engine.errors import ConnectionManagerError
from dtsx.engine.render import mask_connection_string

from tests._shared import REPO_ROOT
from tests.smtp_servers import LoopbackSmtpServer

SECRET_TAIL = "iS3cr3t"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'SmtpServer=mail;Password="Sem;iS3cr3t";',
            {"SmtpServer": "mail", "Password": "Sem;iS3cr3t"},
        ),
        ("Password='Sem;iS3cr3t'", {"Password": "Sem;iS3cr3t"}),
        ('Password="say ""hi"";ok"', {"Password": 'say "hi";ok'}),
        ("Password='it''s;x'", {"Password": "it's;x"}),
        ("Password='dou\"ble'", {"Password": 'dou"ble'}),
        ('Password=" padded " ;Port=25', {"Password": " padded ", "Port": "25"}),
        (
            "  Data Source = db1 ; Initial Catalog=x;",
            {"Data Source": "db1", "Initial Catalog": "x"},
        ),
        ("Key==Name=v=w", {"Key=Name": "v=w"}),  # '==' in a key is one '='; '=' in a value is plain
        ("smtp.example.com", {"": "smtp.example.com"}),
    ],
)
def test_dotnet_quoting_rules(text: str, expected: dict[str, str]) -> None:
    assert dict(parse_connection_string(text)) == expected


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("SmtpServer=mail;Password=Sem;iS3cr3t;", "text without '=' after the value of Password"),
        ('SmtpServer=mail;Password="Sem;iS3cr3t', 'no closing " for the quoted value of Password'),
        (
            "SmtpServer=mail;Password='Sem'iS3cr3t;Port=25",
            "more text after the closing ' of the value of Password",
        ),
        ("SmtpServer=mail;=iS3cr3t", "a value without a key after the value of SmtpServer"),
    ],
)
def test_a_parse_error_names_the_key_never_the_value(text: str, what: str) -> None:
    with pytest.raises(ConnectionManagerError) as info:
        parse_connection_string(text)
    message = str(info.value)
    assert what in message and "enclose a value that holds ';' in quotes" in message
    assert SECRET_TAIL not in message and "Sem" not in message


def test_an_unknown_key_right_after_a_password_is_not_echoed() -> None:
    settings = ConnectionSettings(
        "Mail", "SMTP", "SmtpServer=mail;UserName=u;Password=Sem;iS3cr3t=x;"
    )
    with pytest.raises(ConnectionManagerError) as info:
        parse_smtp_options(settings)
    assert "the connection string key after Password is not an SMTP key" in str(info.value)
    assert SECRET_TAIL not in str(info.value)


def test_quoted_password_keeps_its_spaces_and_semicolon() -> None:
    options = parse_smtp_options(
        ConnectionSettings("Mail", "SMTP", 'SmtpServer=mail;UserName=u;Password=" a;b ";')
    )
    assert options.password is not None and options.password.reveal() == " a;b "


@pytest.mark.parametrize(
    "value", ["a;b", " lead", "trail ", '"starts', "'starts", "both'\"", "x\ty", "", "plain"]
)
def test_render_round_trips_any_value(value: str) -> None:
    parsed = parse_connection_string("SmtpServer=mail;")
    parsed["Password"] = value
    again = parse_connection_string(parsed.render(hide=frozenset()))
    assert dict(again) == {"SmtpServer": "mail", "Password": value}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SmtpServer=x;Password=Sem;iS3cr3t;Port=25;", "SmtpServer=x;Password=********;Port=25;"),
        ("Password=Sem;iS3cr3t", "Password=********"),
        ('Password="Sem;iS3cr3t', "Password=********"),  # no closing quote: all of it
        ("Password='Sem'iS3cr3t;Port=25", "Password=********;Port=25"),
        ('PWD = "a"";iS3cr3t" ;Port=25', "PWD = ********;Port=25"),
    ],
)
def test_the_masker_never_leaks_a_tail(text: str, expected: str) -> None:
    assert mask_connection_string(text) == expected


def test_cli_run_keeps_the_tail_out_of_stderr_report_and_log(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    """Through ``dtsx run --conn``: the error reaches stderr, the report and the log, without the
    tail."""
    conn = f"SmtpServer=127.0.0.1;Port={smtp_server.port};UserName=etl;Password=Sem;{SECRET_TAIL};"
    report, log = tmp_path / "run.json", tmp_path / "run.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "run",
            str(REPO_ROOT / "samples" / "hello-mail.dtsx"),
            "--conn",
            f"SMTP Connection Manager={conn}",
            "--report-json",
            str(report),
            "--log-jsonl",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode != 0
    seen = (
        proc.stdout
        + proc.stderr
        + (report.read_text() if report.exists() else "")
        + (log.read_text() if log.exists() else "")
    )
    assert "text without '=' after the value of Password" in seen, seen
    assert SECRET_TAIL not in seen
    assert "Traceback" not in seen
    assert smtp_server.messages == []
    if report.exists():
        json.loads(report.read_text())
