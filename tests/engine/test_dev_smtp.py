"""``dtsx run --dev-smtp``: every message of the run lands in the local sink, whatever the package
says.

The packages here name hosts that do not exist, set ``SmtpServer`` by a property expression, and
send from a child package with Windows authentication and TLS; a dev run must deliver all of it
to the loopback sink and nothing anywhere else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "devsmtp"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, "run", *args], capture_output=True, text=True, timeout=120)


def test_expression_and_child_package_mail_go_to_the_sink(tmp_path: Path) -> None:
    outbox, report = tmp_path / "outbox", tmp_path / "report.json"
    done = _run(
        str(DATA / "mail_by_expression.dtsx"),
        "--dev-smtp",
        str(outbox),
        "--report-json",
        str(report),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    subjects = sorted(message_from_bytes(p.read_bytes())["Subject"] for p in outbox.glob("*.eml"))
    assert subjects == ["child notice", "parent notice"]
    envelopes = sorted(
        json.loads(p.read_text())["rcpt_tos"][0] for p in outbox.glob("*.envelope.json")
    )
    assert envelopes == ["child@example.com", "ops@example.com"]
    assert json.loads(report.read_text())["result"] == "Success"


def test_without_dev_smtp_the_expression_host_is_used(tmp_path: Path) -> None:
    # The same package without the sink tries the host the expression names, and fails saying so:
    # this is what proves the redirect above beat the property expression.
    done = _run(
        str(DATA / "mail_by_expression.dtsx"),
        "--conn",
        "Corporate SMTP=SmtpServer=127.0.0.1;Port=1;Timeout=2000;",
    )
    assert done.returncode == 1
    assert "mail.corp.invalid" in done.stdout + done.stderr
