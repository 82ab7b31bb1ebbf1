"""Messages from build_message fold their headers exactly as the plain email package does,
whichever wire policy writes them and in whatever order: header objects are shared between a
loop's messages and remember their folded text per policy, so a memo keyed too loosely would
leak one policy's folding (say, UTF-8 display names) into another's (encoded words)."""

from __future__ import annotations

import io
from email import _header_value_parser as _parser
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from dtsx.engine.errors import TaskFailedError
from dtsx.tasks import mail_message
from dtsx.tasks.mail_message import MailSpec, build_message
from hypothesis import given, settings
from hypothesis import strategies as st

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


# The one-line fold of a Subject or Message-ID (mail_message._one_line_fold) against the email
# package's own BaseHeader.fold, under every policy a message may be folded with.
FOLD_POLICIES = [
    policy.SMTP,
    policy.SMTPUTF8,
    policy.SMTP.clone(max_line_length=20),
    policy.SMTP.clone(max_line_length=None),
    policy.default,
]
ONE_LINE_VALUES = [
    "Message file00001.txt",
    "x",
    " ",
    "  leading and trailing  ",
    "a" * 65,  # "Subject: " + 65 = 74: fits in 78
    "a" * 69,  # 78: the limit exactly
    "a" * 70,  # 79: one over
    "word " * 15,
    'specials ()<>@,;:\\".[] and a \t tab',
    "=?utf-8?q?encoded_word?= and =?utf-8?b?w7w=?=",
    "=?utf-8?q?=0D=0ABcc:_x@example.com?=",  # decodes to a line break: refused either way
    "=?utf-8?q??=",  # an encoded word that decodes to nothing
    "Zoë and Иван",
    "\x0b vertical tab",
    "x" * 1200,
    "<173311234512.4242.1234567890123456789@example.org>",
]


def _library_fold(header: Any, fold_policy: Any) -> str | type[Exception]:
    try:
        folded = BaseHeader.fold(header, policy=fold_policy)
    except Exception as exc:
        return type(exc)
    return folded


def _our_fold(name: str, value: str, fold_policy: Any) -> str | type[Exception]:
    try:
        return mail_message._REGISTRY(name, value).fold(policy=fold_policy)
    except TaskFailedError:
        return TaskFailedError


@pytest.mark.parametrize("fold_policy", FOLD_POLICIES, ids=lambda p: repr(p)[:40])
@pytest.mark.parametrize("name", ["Subject", "Message-ID", "X-Note"])
def test_one_line_fold_is_the_email_packages_fold(name: str, fold_policy: Any) -> None:
    for value in ONE_LINE_VALUES:
        header = mail_message._REGISTRY(name, value)
        theirs = _library_fold(header, fold_policy)
        ours = _our_fold(name, value, fold_policy)
        if ours is TaskFailedError:  # refused: the library's fold is unsafe to write
            assert isinstance(theirs, str)
            assert mail_message._fold_problem(str(header), theirs, fold_policy.linesep)
        else:
            assert ours == theirs, (name, value)


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(
        alphabet=st.sampled_from(list(' \t()<>@,;:\\".[]=?_-abcXYZ019é\r\n')), max_size=90
    ),
    fold_policy=st.sampled_from(FOLD_POLICIES),
)
def test_one_line_fold_agrees_on_generated_subjects(value: str, fold_policy: Any) -> None:
    header = mail_message._REGISTRY("Subject", value)
    fast = mail_message._one_line_fold(header, fold_policy)
    if fast is not None:
        assert fast == BaseHeader.fold(header, policy=fold_policy)


# Message-ID: the tree mail_message builds for a plain msg-id against the email package's parse.
def _same_tree(ours: Any, theirs: Any) -> None:
    assert ours.ppstr() == theirs.ppstr()
    assert str(ours) == str(theirs)
    assert [type(d) for d in ours.all_defects] == [type(d) for d in theirs.all_defects] == []
    assert ours.fold(policy=policy.SMTP) == theirs.fold(policy=policy.SMTP)


@pytest.mark.parametrize(
    "domain", ["example.org", "a", "mail-1.Example.COM", "x" * 63 + ".example", "_bad.example"]
)
def test_plain_message_id_tree_is_the_parsers(domain: str) -> None:
    for _ in range(20):
        value = make_msgid(domain=domain)
        ours = mail_message._plain_msg_id_tree(value)
        theirs = _parser.parse_message_id(value)
        if "_" in domain:
            assert ours is None  # not plain: the email package parses it
            continue
        _same_tree(ours, theirs)
        header = mail_message._REGISTRY("Message-ID", value)
        plain = HeaderRegistry()("Message-ID", value)
        assert str(header) == str(plain) and header.defects == plain.defects == ()


@settings(max_examples=400, deadline=None)
@given(value=st.text(alphabet=st.sampled_from(list('<>@.01a-Z_ ()"[]é')), max_size=30))
def test_plain_message_id_tree_agrees_on_generated_values(value: str) -> None:
    ours = mail_message._plain_msg_id_tree(value)
    if ours is not None:
        _same_tree(ours, _parser.parse_message_id(value))


@pytest.mark.parametrize(
    "value", ["<1.2@example.org>", "<1..2@x>", "<.1@x>", "<1@x.>", " <1@x>", "<1@x> ", "<a@x>"]
)
def test_message_id_header_is_the_email_packages(value: str) -> None:
    ours = mail_message._REGISTRY("Message-ID", value)
    plain = HeaderRegistry()("Message-ID", value)
    assert str(ours) == str(plain)
    assert [type(d) for d in ours.defects] == [type(d) for d in plain.defects]
    assert ours._parse_tree.ppstr() == plain._parse_tree.ppstr()
