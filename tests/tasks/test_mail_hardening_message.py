"""Send Mail hardening, the message (issue 9, items 1, 8 and 11): each package runs through the
real loader, planner and executor against a real aiosmtpd server on 127.0.0.1, and the test
looks at what the server received.

* no value (attribute, variable, property expression, attachment file name) may write a header
  line or body its author did not write, RFC 2047 encoded words included;
* other line-break characters get dtsx's own sentence;
* a non-ASCII domain goes to its IDNA2008 host, and an over-long label is an error;
* header values are bounded, so that no value makes folding take minutes.
"""

from __future__ import annotations

import email
import time
from email import policy
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from tests.smtp_servers import LoopbackSmtpServer

SMTP_ID = "{8A282414-AF37-45D1-B69F-3B215B0441C6}"
# Line breaks in attribute values written as character references, so the parser keeps them.
_LINE_ENDS = {chr(10): "&#10;", chr(13): "&#13;"}

_PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package" DTS:DTSID="{{FEE94A58-974C-4EFA-9DFF-6FB9AE0E7483}}"
  DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="mail-hardening">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[SMTP]" DTS:CreationName="SMTP"
      DTS:DTSID="{smtp}" DTS:ObjectName="SMTP">
      <DTS:ObjectData>
        <SmtpConnectionManager ConnectionString="SmtpServer=localhost;" />
      </DTS:ObjectData>
    </DTS:ConnectionManager>{connections}
  </DTS:ConnectionManagers>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{5AA62D9E-70E5-4E0A-AC56-049DBE8460BF}}"
      DTS:Namespace="User" DTS:ObjectName="Text">
      <DTS:VariableValue DTS:DataType="8">x</DTS:VariableValue>
    </DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Send" DTS:CreationName="Microsoft.SendMailTask"
      DTS:DTSID="{{6D9EB329-A07A-4A3F-B9CF-C4A7683FEDF5}}"
      DTS:ExecutableType="Microsoft.SendMailTask"
      DTS:ObjectName="Send">{expressions}
      <DTS:ObjectData>
        <SendMailTask:SendMailTaskData
          xmlns:SendMailTask="www.microsoft.com/sqlserver/dts/tasks/sendmailtask"
          xmlns:dtsx="urn:dtsx:extensions" {attributes} />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""

_FILE_CONNECTION = """
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[{name}]" DTS:CreationName="FILE"
      DTS:DTSID="{{0D1E8F7A-5B7C-4C43-9D3B-{number:012d}}}" DTS:ObjectName="{name}">
      <DTS:ObjectData>
        <DTS:ConnectionManager DTS:FileUsageType="{usage}" DTS:ConnectionString={path} />
      </DTS:ObjectData>
    </DTS:ConnectionManager>"""


def write_package(
    folder: Path,
    attributes: dict[str, str],
    *,
    expressions: dict[str, str] | None = None,
    files: dict[str, Path] | None = None,
    file_usage: int = 0,
) -> Path:
    """A package with one Send Mail task; ``attributes`` go on SendMailTaskData (a ``dtsx:``
    prefix names the extension namespace), ``files`` become FILE connections by name, with
    ``file_usage`` as their FileUsageType."""
    values = {
        "SMTPServer": SMTP_ID,
        "From": "etl@example.org",
        "To": "ops@example.com",
        "Subject": "Hi",
        "MessageSource": "Body",
    } | attributes
    attrs = " ".join(
        f"{name if ':' in name else 'SendMailTask:' + name}={quoteattr(value, _LINE_ENDS)}"
        for name, value in values.items()
    )
    exprs = "".join(
        f'\n      <DTS:PropertyExpression DTS:Name="{name}">{text}</DTS:PropertyExpression>'
        for name, text in (expressions or {}).items()
    )
    conns = "".join(
        _FILE_CONNECTION.format(
            name=name, number=number, path=quoteattr(str(path)), usage=file_usage
        )
        for number, (name, path) in enumerate((files or {}).items())
    )
    path = folder / "mail-hardening.dtsx"
    path.write_text(
        _PACKAGE.format(smtp=SMTP_ID, attributes=attrs, expressions=exprs, connections=conns),
        encoding="utf-8",
    )
    return path


def run_package(path: Path, server: LoopbackSmtpServer, *sets: str, **options: Any) -> Any:
    """Load, plan and run ``path`` with its SMTP connection pointed at ``server``."""
    from dtsx.engine.executor import RunOptions, parse_set, run
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    conn = server.connection_string(UseWindowsAuthentication=False, EnableSsl=False)
    return run(
        build(load(str(path))),
        RunOptions(connections={"SMTP": conn}, sets=[parse_set(s) for s in sets], **options),
    )


def task_error(result: Any) -> str:
    """The Send Mail task's error text, which must be there: the run failed."""
    assert result.result == "Failure", "the package should have failed"
    (send,) = [e for e in result.executables if e.ref_id.endswith("\\Send")]
    assert send.result == "Failure" and send.errors
    return " ".join(send.errors)


def _only_lines(server: LoopbackSmtpServer) -> list[bytes]:
    return [line for got in server.messages for line in got.content.split(b"\r\n")]


# ---- item 1: header injection through RFC 2047 encoded words ------------------------------

ENCODED_INJECTIONS = [
    "=?utf-8?q?hi=0D=0ABcc:_victim@evil.example?=",
    "=?utf-8?b?aGkNCkJjYzogdmljdGltQGV2aWwuZXhhbXBsZQ==?=",  # base64 of the same
    "=?utf-8?q?hi=0D=0A=0D=0AThis_replaces_the_body?=",
    "=?utf-8?q?hi=0A_folded?=",  # a bare LF before a space: a line the author did not write
    "=?iso-8859-1?q?hi=0DBcc:_victim@evil.example?=",
    "Report =?utf-8?q?=0B?= =?utf-8?q?=C2=85?= =?utf-8?q?=E2=80=A8?=",
]


@pytest.mark.parametrize("subject", ENCODED_INJECTIONS)
def test_encoded_line_break_in_subject_sends_nothing(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, subject: str
) -> None:
    error = task_error(run_package(write_package(tmp_path, {"Subject": subject}), smtp_server))
    assert "Subject header" in error and "line break" in error
    assert smtp_server.messages == [], (
        "nothing may go out: the server would see a Bcc line or a new body"
    )


def test_encoded_line_break_through_a_property_expression(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    package = write_package(tmp_path, {}, expressions={"Subject": '"Load " + @[User::Text]'})
    result = run_package(
        package, smtp_server, "User::Text=done =?utf-8?q?=0D=0ABcc:_victim@evil.example?="
    )
    assert "Subject header" in task_error(result)
    assert smtp_server.messages == []


def test_encoded_line_break_in_display_name_adds_no_recipient(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    package = write_package(
        tmp_path, {"To": "=?utf-8?q?Ops=0D=0ABcc:_victim@evil.example?= <ops@example.com>"}
    )
    assert "To" in task_error(run_package(package, smtp_server))
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?report=0D=0ABcc:_victim@evil.example?=.csv",
        "=?utf-8?q?r=0D=0A=0D=0Anew_body?=.csv",
    ],
)
def test_encoded_line_break_in_attachment_file_name(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, name: str
) -> None:
    attachment = tmp_path / name
    attachment.write_bytes(b"a,b\n")
    error = task_error(
        run_package(write_package(tmp_path, {"FileAttachments": str(attachment)}), smtp_server)
    )
    assert "Content-Disposition header" in error and "line break" in error
    assert smtp_server.messages == []


def test_raw_line_break_in_attachment_file_name(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    attachment = tmp_path / "report\nBcc: victim@evil.example.csv"
    attachment.write_bytes(b"a,b\n")
    package = write_package(tmp_path, {}, expressions={"FileAttachments": "@[User::Text]"})
    error = task_error(run_package(package, smtp_server, f"User::Text={attachment}"))
    assert "attachment file name contains a line break" in error
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "char", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
)
def test_other_line_break_characters_get_dtsx_sentence(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, char: str
) -> None:
    package = write_package(tmp_path, {}, expressions={"Subject": "@[User::Text]"})
    error = task_error(run_package(package, smtp_server, f"User::Text=before{char}after"))
    assert f"the Subject contains a line break ({char!r})" in error
    assert "Header values may not" not in error, (
        "the email library's own ValueError must not surface"
    )
    assert smtp_server.messages == []


def test_harmless_encoded_words_still_go_through(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    package = write_package(
        tmp_path,
        {"Subject": "=?utf-8?q?Caf=C3=A9?= report", "To": "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>"},
    )
    result = run_package(package, smtp_server)
    assert result.result == "Success", [e.errors for e in result.executables]
    (got,) = smtp_server.messages
    assert got.rcpt_tos == ["zoe@example.com"]
    parsed = email.message_from_bytes(got.content, policy=policy.default)
    assert parsed["Subject"] == "Café report"
    assert [
        line
        for line in got.content.split(b"\r\n\r\n")[0].split(b"\r\n")
        if line.lower().startswith(b"bcc")
    ] == []


# ---- item 8: non-ASCII domains go to their IDNA2008 host -----------------------------------


def test_sharp_s_domain_keeps_its_host(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    package = write_package(
        tmp_path, {"To": "Info <info@Straße.de>", "CC": "kontakt@bücher.example"}
    )
    result = run_package(package, smtp_server)
    assert result.result == "Success", [e.errors for e in result.executables]
    (got,) = smtp_server.messages
    # IDNA2003 (Python's codec) maps ß to ss: strasse.de is somebody else's host.
    assert got.rcpt_tos == ["info@xn--strae-oqa.de", "kontakt@xn--bcher-kva.example"]
    parsed = email.message_from_bytes(got.content, policy=policy.default)
    assert parsed["To"].addresses[0].domain == "xn--strae-oqa.de"
    assert b"strasse" not in got.content.lower()


@pytest.mark.parametrize(
    "domain", ["a" * 300 + ".example", "ä" * 300 + ".example", ("abc." * 70) + "example"]
)
def test_domain_over_dns_limits_is_refused(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, domain: str
) -> None:
    error = task_error(run_package(write_package(tmp_path, {"To": f"ops@{domain}"}), smtp_server))
    assert "To address" in error and "63 octets a label" in error
    assert smtp_server.messages == []


def test_invalid_international_domain_is_named(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    error = task_error(
        run_package(write_package(tmp_path, {"To": "ops@-bücher.example"}), smtp_server)
    )
    assert "'ops@-bücher.example'" in error and "not a valid international host name" in error


# ---- item 11: bounded header sizes ---------------------------------------------------------


def test_huge_subject_fails_at_once(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    package = write_package(tmp_path, {}, expressions={"Subject": "@[User::Text]"})
    started = time.monotonic()
    # 9 M characters took 79 s in email.generator.flatten, which cancellation cannot stop.
    result = run_package(package, smtp_server, "User::Text=" + "a word" * 1_500_000)
    assert time.monotonic() - started < 30, "a bounded check, not folding, should refuse it"
    error = task_error(result)
    assert "the Subject is 9,000,000 bytes long" in error and "65,536" in error
    assert smtp_server.messages == []


def test_subject_just_over_the_limit_is_refused_and_at_it_is_sent(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    package = write_package(tmp_path, {}, expressions={"Subject": "@[User::Text]"})
    over = "Отчёт " * 6000  # 66,000 bytes in UTF-8, 36,000 characters
    assert "65,536 bytes" in task_error(run_package(package, smtp_server, "User::Text=" + over))
    result = run_package(package, smtp_server, "User::Text=" + "Отчёт " * 5000)
    assert result.result == "Success", [e.errors for e in result.executables]
    (got,) = smtp_server.messages
    assert max(len(line) for line in got.content.split(b"\r\n")) <= 998


def test_unfoldable_address_over_998_octets_is_refused(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    error = task_error(
        run_package(write_package(tmp_path, {"To": "x" * 1200 + "@example.com"}), smtp_server)
    )
    assert "the To header would be written with a line longer than the 998 octets" in error
    assert smtp_server.messages == []


@pytest.mark.parametrize("field", ["Subject", "MessageSource"])
def test_undecodable_byte_gets_a_sentence(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, field: str
) -> None:
    package = write_package(tmp_path, {}, expressions={field: "@[User::Text]"})
    # How a command-line value holding the byte 0xFF (not UTF-8) reaches Python on POSIX.
    error = task_error(run_package(package, smtp_server, "User::Text=caf\udcff"))
    assert "holds '\\udcff' at character 3, which is not valid Unicode" in error
    assert "UnicodeEncodeError" not in error
    assert smtp_server.messages == []
