"""Messages from build_message fold their headers exactly as the plain email package does,
whichever wire policy writes them and in whatever order: header objects are shared between a
loop's messages and remember their folded text per policy, so a memo keyed too loosely would
leak one policy's folding (say, UTF-8 display names) into another's (encoded words)."""

from __future__ import annotations

import io
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage

import pytest
from dtsx.tasks.mail_message import MailSpec, build_message

LONG_TO = ", ".join(f"Recipient Number {i} <recipient.number.{i}@example.com>" for i in range(6))
SPECS = [
    MailSpec(
        sender="bench@example.org", to="sink@example.com", subject="Short subject", body="x\n"
    ),
    MailSpec(
        sender="Иван Петров <ivan@example.org>",
        to=LONG_TO,
        cc="Zoë <zoe@example.net>",
        subject="Отчёт о загрузке " * 6,
        body="тело\n",
    ),
    MailSpec(
        sender="ops@example.org",
        to="a@example.com; b@example.com",
        priority=1,
        subject="A subject long enough that the folder has to break it somewhere " * 3,
        body="y\n",
    ),
]
# The wire policies a session may pick: 7-bit or 8BITMIME, with or without SMTPUTF8.
WIRE = [
    {"linesep": "\r\n", "cte_type": "7bit"},
    {"linesep": "\r\n", "cte_type": "8bit"},
    {"linesep": "\r\n", "cte_type": "8bit", "utf8": True},
]


def _headers(msg: EmailMessage, **wire: object) -> list[bytes]:
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=msg.policy.clone(**wire)).flatten(msg)
    head = buffer.getvalue().split(b"\r\n\r\n", 1)[0]
    lines = head.replace(b"\r\n ", b"\r\n\t").split(b"\r\n")
    return [line for line in lines if not line.lower().startswith((b"date:", b"message-id:"))]


def _reference(msg: EmailMessage) -> EmailMessage:
    """The same headers, as strings, in a message of the email package's own policy."""
    plain = EmailMessage(policy=policy.SMTPUTF8 if msg.policy.utf8 else policy.SMTP)
    for name, value in msg.items():
        plain[name] = str(value)
    plain.set_content("x\n")
    return plain


@pytest.mark.parametrize("order", [WIRE, WIRE[::-1]], ids=["7bit-first", "utf8-first"])
def test_shared_headers_fold_as_the_email_package_does_under_every_policy(
    order: list[dict[str, object]],
) -> None:
    for spec in SPECS * 2:  # twice: the second round meets headers already folded
        msg = build_message(spec)[0]
        reference = _reference(msg)
        for wire in order:
            ours = [
                line for line in _headers(msg, **wire) if not line.lower().startswith(b"content-")
            ]
            theirs = [
                line
                for line in _headers(reference, **wire)
                if not line.lower().startswith(b"content-")
            ]
            assert [line for line in ours if not line.lower().startswith(b"mime-")] == [
                line for line in theirs if not line.lower().startswith(b"mime-")
            ]


def test_non_ascii_display_name_is_an_encoded_word_only_where_utf8_is_off() -> None:
    msg = build_message(SPECS[1])[0]
    utf8 = b"\r\n".join(_headers(msg, **WIRE[2]))
    seven = b"\r\n".join(_headers(msg, **WIRE[0]))
    utf8_again = b"\r\n".join(_headers(msg, **WIRE[2]))
    assert "Иван Петров".encode() in utf8 and utf8 == utf8_again
    assert seven.isascii() and b"=?utf-8?" in seven
