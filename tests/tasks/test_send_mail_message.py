"""Message building for the Send Mail task: headers, encodings, envelope, attachments, refusals."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest
from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.mail_message import (
    Attachment,
    MailSpec,
    attachment_filename,
    build_message,
    html_to_text,
    parse_address,
    split_addresses,
)


def _wire(msg: EmailMessage) -> bytes:
    return msg.as_bytes()


def _reparse(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(_wire(msg), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _spec(**kw: object) -> MailSpec:
    base: dict[str, object] = {
        "sender": "etl@example.org",
        "to": "ops@example.com",
        "subject": "s",
        "body": "b",
    }
    base.update(kw)
    return MailSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a@x.org;b@x.org", ["a@x.org", "b@x.org"]),
        (" a@x.org ; ; b@x.org ;", ["a@x.org", "b@x.org"]),
        ("a@x.org, b@x.org", ["a@x.org", "b@x.org"]),
        ('"Doe, John" <j@x.org>; k@x.org', ['"Doe, John" <j@x.org>', "k@x.org"]),
        ("j@x.org (Doe; John), k@x.org", ["j@x.org (Doe; John)", "k@x.org"]),
        ("", []),
        (" ;, ", []),
    ],
)
def test_split_addresses(line: str, expected: list[str]) -> None:
    assert split_addresses(line) == expected


def test_headers_envelope_and_bcc_only_on_envelope() -> None:
    msg, sender, rcpts = build_message(
        _spec(
            to="a@x.org; B <b@x.org>",
            cc="c@x.org",
            bcc="hidden@y.org;A@x.org",
            subject="Load finished",
        )
    )
    assert sender == "etl@example.org"
    # BCC joins the envelope; a duplicate (case-insensitive) is sent once.
    assert rcpts == ["a@x.org", "b@x.org", "c@x.org", "hidden@y.org"]
    wire = _wire(msg)
    assert b"hidden@y.org" not in wire
    assert b"\nBcc:" not in wire and not wire.startswith(b"Bcc:")
    parsed = _reparse(msg)
    assert parsed["To"] == "a@x.org, B <b@x.org>"
    assert parsed["Cc"] == "c@x.org"
    assert parsed["Subject"] == "Load finished"
    assert parsed["Message-ID"].endswith("@example.org>")
    assert email.utils.parsedate_to_datetime(parsed["Date"]) is not None
    assert parsed["MIME-Version"] == "1.0"
    assert b"\r\n" in wire and b"\n" not in wire.replace(b"\r\n", b"")


def test_fixed_date_is_written_as_given() -> None:
    when = datetime(2024, 2, 29, 13, 5, 9, tzinfo=UTC)
    msg, _, _ = build_message(_spec(date=when))
    assert msg["Date"] == "Thu, 29 Feb 2024 13:05:09 +0000"


def test_cyrillic_subject_and_body_round_trip_and_stay_seven_bit() -> None:
    subject = "Ошибка в ListLoadWoISIN — отчёт № 7"
    body = "Привет!\r\nЗагрузка не удалась.\nСтрока 3\r"
    msg, _, _ = build_message(
        _spec(subject=subject, body=body, sender="Робот ETL <etl@example.org>")
    )
    wire = _wire(msg)
    assert wire.isascii(), "without SMTPUTF8 the message must be 7-bit clean"
    assert b"=?utf-8?" in wire
    parsed = _reparse(msg)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Робот ETL"
    text = parsed.get_content()
    assert text.replace("\r\n", "\n") == "Привет!\nЗагрузка не удалась.\nСтрока 3\n"


def test_ascii_body_is_seven_bit_and_crlf() -> None:
    msg, _, _ = build_message(_spec(body="line1\nline2\rline3\r\nend"))
    wire = _wire(msg)
    assert b"Content-Transfer-Encoding: 7bit" in wire
    assert b"line1\r\nline2\r\nline3\r\nend" in wire


@pytest.mark.parametrize(
    ("priority", "headers"),
    [
        (
            1,
            {
                "X-Priority": "1",
                "Priority": "urgent",
                "Importance": "high",
                "X-MSMail-Priority": "High",
            },
        ),
        (
            5,
            {
                "X-Priority": "5",
                "Priority": "non-urgent",
                "Importance": "low",
                "X-MSMail-Priority": "Low",
            },
        ),
        (3, {}),
    ],
)
def test_priority_headers(priority: int, headers: dict[str, str]) -> None:
    msg, _, _ = build_message(_spec(priority=priority))
    parsed = _reparse(msg)
    for name in ("X-Priority", "Priority", "Importance", "X-MSMail-Priority"):
        assert parsed.get(name) == headers.get(name)


def test_attachments_types_names_and_bytes() -> None:
    blobs = {
        "report.pdf": (b"%PDF-1.4\x00\xff binary", "application/pdf"),
        "data.csv": (b"a;b\r\n1;2\r\n", "text/csv"),
        "blob.zzunknown": (bytes(range(256)), "application/octet-stream"),
        "отчёт за май.txt": ("Привет".encode("cp1251"), "text/plain"),
    }
    items = [Attachment(name, data) for name, (data, _) in blobs.items()]
    msg, _, _ = build_message(_spec(attachments=items))
    assert _wire(msg).isascii()
    parsed = _reparse(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    found = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert set(found) == set(blobs)
    for name, (data, ctype) in blobs.items():
        part = found[name]
        assert part.get_content_type() == ctype
        assert part.get_payload(decode=True) == data
    # RFC 2231 for the non-ASCII name.
    wire = _wire(msg)
    assert b"filename*=utf-8''" in wire or b"filename*0*=utf-8''" in wire
    assert parsed.get_body(("plain",)).get_content().strip() == "b"


def test_html_extension_builds_alternative_with_derived_text() -> None:
    html = (
        "<html><body><h1>Load done</h1><p>Rows: <b>42</b> &amp; more</p><script>x()</script>"
        "</body></html>"
    )
    msg, _, _ = build_message(_spec(body="", html_body=html))
    parsed = _reparse(msg)
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",)).get_content()
    assert "Load done" in plain and "Rows: 42 & more" in plain and "x()" not in plain
    assert parsed.get_body(("html",)).get_content().strip() == html


def test_html_extension_keeps_the_ssis_body_as_text_part() -> None:
    msg, _, _ = build_message(_spec(body="plain words", html_body="<p>rich words</p>"))
    parsed = _reparse(msg)
    assert parsed.get_body(("plain",)).get_content().strip() == "plain words"
    assert "rich words" in parsed.get_body(("html",)).get_content()


def test_html_to_text() -> None:
    assert html_to_text("<p>a</p><p>b<br>c</p>") == "a\n\nb\nc\n"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hello\r\nBcc: victim@evil.org"),
        ("subject", "Hello\nX: y"),
        ("to", "a@x.org\r\nBcc: victim@evil.org"),
        ("sender", "etl@example.org\nBcc: v@evil.org"),
        ("cc", "c@x.org\r"),
    ],
)
def test_header_injection_refused(field: str, value: str) -> None:
    with pytest.raises(TaskFailedError, match="line break"):
        build_message(_spec(**{field: value}))


@pytest.mark.parametrize(
    "bad", ["foo bar", "a@@b.org", "x@", "@y.org", "a b@c.org", "<>", "a@b c.org"]
)
def test_malformed_address_is_named(bad: str) -> None:
    with pytest.raises(TaskFailedError) as info:
        build_message(_spec(to=f"ok@x.org; {bad}"))
    assert repr(bad.strip()) in str(info.value)
    assert "To address" in str(info.value)


def test_missing_sender_and_recipients() -> None:
    with pytest.raises(TaskFailedError, match="no sender"):
        build_message(_spec(sender=" ; "))
    with pytest.raises(TaskFailedError, match="no recipient"):
        build_message(_spec(to="", cc=" ", bcc=";"))
    with pytest.raises(TaskFailedError, match="several addresses"):
        build_message(_spec(sender="a@x.org; b@x.org"))


def test_bcc_only_is_enough_and_has_no_to_header() -> None:
    msg, _, rcpts = build_message(_spec(to="", bcc="secret@x.org"))
    assert rcpts == ["secret@x.org"]
    assert msg["To"] is None and b"secret@x.org" not in _wire(msg)


def test_international_addresses() -> None:
    domain = parse_address("Иван <ivan@пример.рф>", "To")
    assert domain.domain == "xn--e1afmkfd.xn--p1ai"
    msg, _, rcpts = build_message(_spec(to="иван@example.ru"))
    assert rcpts == ["иван@example.ru"]
    assert msg.policy.utf8, "a non-ASCII local part needs SMTPUTF8"


def test_attachment_filename() -> None:
    assert (
        attachment_filename(r"D:\SSIS Tasks\Out\essential grammar.pdf") == "essential grammar.pdf"
    )
    assert attachment_filename("/srv/out/a.xls") == "a.xls"
    assert attachment_filename(r"\\server\share\b.txt") == "b.txt"


@pytest.mark.parametrize(
    "text", ["", "a", "a\n", "a\n\nb\n\n", "x" * 900 + "\nend", "\n\n", "tab\there  \n trailing "]
)
def test_plain_fast_path_matches_the_email_package(text: str) -> None:
    from dtsx.tasks import mail_message

    reference = EmailMessage(policy=policy.SMTP)
    reference.set_content(text, charset="utf-8", cte="7bit")
    fast = EmailMessage(policy=policy.SMTP)
    mail_message._set_plain_7bit(fast, text)
    assert fast.as_bytes() == reference.as_bytes()


def test_long_lines_and_long_subject_stay_within_smtp_limits() -> None:
    body = "x" * 2500 + "\nshort\n"
    subject = "Отчёт " * 40
    msg, _, _ = build_message(_spec(body=body, subject=subject.strip()))
    wire = _wire(msg)
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    assert b"Content-Transfer-Encoding: quoted-printable" in wire
    parsed = _reparse(msg)
    assert parsed["Subject"] == subject.strip()
    assert parsed.get_content().replace("\r\n", "\n") == body
