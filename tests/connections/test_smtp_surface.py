"""Architecture pins: who may import the mail stack, and the SMTP module's public names."""

from __future__ import annotations

import re
import subprocess
import sys

from dtsx import mailsink
from dtsx.connections import smtp

from tests._shared import REPO_ROOT

_MAIL_STACK = re.compile(r"^\s*(?:import|from)\s+(smtplib|ssl|spnego)\b", re.MULTILINE)


def test_only_the_smtp_modules_import_smtplib_ssl_or_spnego() -> None:
    offenders = []
    for folder in ("engine", "tasks", "connections"):
        for path in sorted((REPO_ROOT / "dtsx" / folder).rglob("*.py")):
            if (
                folder == "connections"
                and path.parent.name == "connections"
                and path.name.startswith("smtp")
            ):
                continue
            found = _MAIL_STACK.findall(path.read_text(encoding="utf-8"))
            if found:
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {', '.join(sorted(set(found)))}")
    assert offenders == []


def test_public_names() -> None:
    assert sorted(smtp.__all__) == sorted(
        [
            "SmtpConnectionManager",
            "SmtpSession",
            "SendReport",
            "SmtpReply",
            "SmtpRecipientsRefused",
        ]
    )
    assert sorted(mailsink.__all__) == ["MailSink", "ServerThread"]
    assert all(hasattr(smtp, name) for name in smtp.__all__)


def test_the_smtp_module_imports_spnego_only_for_windows_authentication() -> None:
    # A package that sends anonymously or with a password must not pay spnego's import.
    code = (
        "import sys, dtsx.connections.smtp; "
        "sys.exit(1 if any(m.split('.')[0] == 'spnego' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
