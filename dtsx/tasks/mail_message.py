"""Build one standards-conformant MIME message from Send Mail settings, with no I/O.

The Send Mail task resolves its properties (body from a variable or file, attachment bytes)
and hands a :class:`MailSpec` to :func:`build_message`, which returns the message and its SMTP
envelope. Everything here uses the ``email`` package only: no sockets, no smtplib, so a dry
run and the tests exercise exactly the bytes that would go on the wire.

Choices, each matching what SSIS (through .NET ``System.Net.Mail``) sends where it matters:

* address lines are split on ``;`` and ``,`` outside quotes and angle brackets, trimmed, and
  empty entries dropped; each entry must be one valid address or the build fails naming it;
* BCC recipients go on the envelope only, never into a header;
* priority High/Low writes ``X-Priority`` (1/5), ``Priority`` (urgent/non-urgent) and
  ``Importance`` (high/low) as .NET does, plus Outlook's ``X-MSMail-Priority``; Normal writes
  none of them, as .NET does;
* a line break in any header value is refused (no header injection), as .NET refuses it, and
  so is every header whose serialised form would start a line the value's author did not write
  (an RFC 2047 encoded word such as ``=?utf-8?q?=0D=0A?=`` decodes before it is written) or hold
  a line over RFC 5322's 998 octets: the check runs on the folded text, for every MIME part;
* one header value (Subject, an address line, an attachment name) is at most
  :data:`MAX_HEADER_VALUE_BYTES` in UTF-8: folding costs more than linear time in its length;
* non-ASCII local parts switch the message to the SMTPUTF8 policy; non-ASCII domains are
  written in IDNA2008 (UTS #46) A-label form, so ``straße.de`` stays itself (Python's own
  ``idna`` codec is IDNA2003, which maps it to ``strasse.de``, another host).
"""

from __future__ import annotations

import mimetypes
import platform
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import _header_value_parser as _parser
from email import policy
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import (
    Address,
    AddressHeader,
    BaseHeader,
    HeaderRegistry,
    MessageIDHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from html.parser import HTMLParser
from ntpath import basename as _win_basename
from posixpath import basename as _posix_basename
from typing import Any, ClassVar, cast

import idna
from dtsx.engine.errors import TaskFailedError

__all__ = [
    "MAX_HEADER_VALUE_BYTES",
    "PRIORITY_HEADERS",
    "Attachment",
    "MailSpec",
    "attachment_filename",
    "build_message",
    "html_to_text",
    "parse_address",
    "split_addresses",
]

# SSIS MailPriority codes (High = 1, Normal = 3, Low = 5) -> headers. Normal writes none (.NET).
PRIORITY_HEADERS: dict[int, list[tuple[str, str]]] = {
    1: [
        ("X-Priority", "1"),
        ("Priority", "urgent"),
        ("Importance", "high"),
        ("X-MSMail-Priority", "High"),
    ],
    3: [],
    5: [
        ("X-Priority", "5"),
        ("Priority", "non-urgent"),
        ("Importance", "low"),
        ("X-MSMail-Priority", "Low"),
    ],
}


# Every character str.splitlines() breaks on. CR and LF end a header line on the wire; the
# others do so for parsers that split as Python does, and the email package refuses them raw.
_LINE_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
MAX_HEADER_VALUE_BYTES = 64 * 1024  # UTF-8 octets of one header value; see the module docstring
_MAX_LINE_OCTETS = 998  # RFC 5322 section 2.1.1, without the CRLF


def _fold_problem(decoded: str, folded: str, linesep: str) -> tuple[str, str] | None:
    """Why a header is unsafe to write and what to do, or None. ``folded`` is its serialised
    form (``Name: value`` and line ends), ``decoded`` its value with encoded words decoded.

    The value may hold no line break at all, decoded or not. Each folded line after the first
    must be a continuation (start with a space or tab and hold more than white space, which
    some servers read as the end of the headers), and none may pass 998 octets.
    """
    breaks = (
        "start a header line its author did not write, through a line break",
        "remove the line break from the value that fills it",
    )
    if _LINE_BREAK.search(decoded):
        return breaks
    lines = (
        folded[: -len(linesep)].split(linesep)
        if folded.endswith(linesep)
        else folded.split(linesep)
    )
    for number, line in enumerate(lines):
        if _LINE_BREAK.search(line) or (
            number and (line[:1] not in (" ", "\t") or not line.strip())
        ):
            return breaks
        if (
            len(line) > _MAX_LINE_OCTETS // 4
            and len(line.encode("utf-8", "surrogateescape")) > _MAX_LINE_OCTETS
        ):
            return (
                f"be written with a line longer than the {_MAX_LINE_OCTETS} octets RFC 5322 allows",
                "shorten the value that fills it, or put spaces in it where it may be folded",
            )
    return None


def _unsafe_header(name: str, value: str, problem: tuple[str, str]) -> str:
    """The sentence for a header that :func:`_fold_problem` refuses."""
    shown = value if len(value) <= 120 else value[:120] + "..."
    what, fix = problem
    return (
        f"the {name} header would {what} ({shown!r}, with RFC 2047 encoded words such as "
        f"=?utf-8?q?...?= decoded); {fix}."
    )


_FOLD_KEYS: dict[Any, tuple[str, bool, int | None]] = {}  # policy -> what its folding depends on


class _FoldOnceHeader(BaseHeader):
    """A header that folds itself once per way of folding, and refuses to fold unsafely.

    Header objects are immutable, and the From, To, Date and MIME headers of a loop's messages
    are shared objects (see ``_header``), so each message would otherwise refold the same
    parse trees: that was half the cost of writing a message to the wire. Folding reads only a
    policy's line end, ``utf8`` and ``max_line_length`` (not ``cte_type``), so the fold that
    :func:`build_message` checks is the one the wire policy (a clone) writes.

    The check runs here, on the serialised text, because the email package decodes encoded
    words before it folds: a value may be free of CR/LF and still write a ``Bcc:`` line.
    """

    def fold(self, *, policy: Any) -> str:
        key = _FOLD_KEYS.get(policy)
        if key is None:
            if len(_FOLD_KEYS) > 64:  # policies made ad hoc: stay bounded
                _FOLD_KEYS.clear()
            key = _FOLD_KEYS[policy] = (
                policy.linesep,
                getattr(policy, "utf8", False),
                policy.max_line_length,
            )
        folds: dict[Any, str] = self.__dict__.setdefault("_folds", {})
        folded = folds.get(key)
        if folded is None:
            folded = _one_line_fold(self, policy)
            if folded is not None:  # safe by construction: no line break, one short line
                folds[key] = folded
                return folded
            folded = super().fold(policy=policy)
            problem = _fold_problem(str(self), folded, policy.linesep)
            if problem is not None:
                raise TaskFailedError(_unsafe_header(self.name, str(self), problem))
            folds[key] = folded
        return folded


# Header kinds whose value (str of the header) is the text of their parse tree, so that a value
# that fits on one line folds to exactly ``Name: value``.
_ONE_LINE_KINDS = (UnstructuredHeader, MessageIDHeader)


def _one_line_fold(header: BaseHeader, policy: Any) -> str | None:
    """Speed: what ``BaseHeader.fold`` writes for a Subject or Message-ID whose ``Name: value``
    line is ASCII, holds no line break and fits in ``max_line_length`` (and 998); else None.

    The email package's refolder then only joins the label, one space and the value: it encodes
    nothing (ASCII, no CR/LF; Python 3.12.5+ encodes a top-level part only for CR/LF) and breaks
    nothing (it fits). Its parse trees cost about 80k instructions a Subject and 100k a
    Message-ID to fold (callgrind), the two headers new in every message. Such a line passes
    :func:`_fold_problem` by construction (no line break, one line, under 998 octets), so the
    check is these conditions. ``tests/tasks/test_mail_message_folding.py`` pins the two folds
    equal.
    """
    if not isinstance(header, _ONE_LINE_KINDS):
        return None
    value = str(header)
    line = f"{header.name}: {value}"
    limit = min(policy.max_line_length or sys.maxsize, _MAX_LINE_OCTETS)
    linesep: str = policy.linesep
    if (
        not value
        or len(line) > limit
        or not line.isascii()
        or _LINE_BREAK.search(line)
        or linesep in line
    ):
        return None
    return line + linesep


# A msg-id of digits and dots at the left and a plain host name at the right, as make_msgid
# writes it for an ASCII domain: dot-atom-text on both sides, no comment, nothing the parser
# could report as a defect.
_PLAIN_MSG_ID = re.compile(r"<([0-9]+(?:\.[0-9]+)*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


def _dot_atom_text(text: str) -> Any:
    tree = _parser.DotAtomText()
    for number, atom in enumerate(text.split(".")):
        if number:
            tree.append(_parser.DOT)
        tree.append(_parser.ValueTerminal(atom, "atext"))
    return tree


def _plain_msg_id_tree(value: str) -> Any:
    """Speed: the parse tree ``parse_message_id`` builds for a plain msg-id (see
    ``_PLAIN_MSG_ID``), built from the match; None for any other value.

    Parsing the Message-ID that every message gets cost about 110k of the 1.3M instructions a
    message of bench/smtp.py's loop took (callgrind: 1.299M -> 1.190M); this builds the same
    tokens directly.
    ``tests/tasks/test_mail_message_folding.py`` pins the two trees equal (tokens, types, text,
    defects) for make_msgid's values and near misses.
    """
    found = _PLAIN_MSG_ID.fullmatch(value)
    if found is None:
        return None
    msg_id = _parser.MsgID(
        [
            _parser.ValueTerminal("<", "msg-id-start"),
            _dot_atom_text(found.group(1)),
            _parser.ValueTerminal("@", "address-at-symbol"),
            _dot_atom_text(found.group(2)),
            _parser.ValueTerminal(">", "msg-id-end"),
        ]
    )
    return _parser.MessageID([msg_id])


class _PlainMessageIDHeader(MessageIDHeader):
    """Message-ID, parsed without the email package's parser when the value is plain."""

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        tree = _plain_msg_id_tree(value)
        if tree is None:
            super().parse(value, kwds)
            return
        kwds["parse_tree"] = tree
        kwds["decoded"] = value  # str(tree): the tokens are the value's characters, in order


class _CachingHeaderRegistry(HeaderRegistry):
    """HeaderRegistry builds a new header class on every lookup, which costs more than parsing
    a short header; the classes are stateless, so one per header name is kept."""

    def __init__(self) -> None:
        super().__init__(base_class=_FoldOnceHeader)
        # A mixin like the stdlib's own kinds (typeshed types these as BaseHeader subclasses).
        self.map_to_type("message-id", cast("type[BaseHeader]", _PlainMessageIDHeader))
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


_REGISTRY = _CachingHeaderRegistry()
_POLICY_7BIT = policy.SMTP.clone(header_factory=_REGISTRY)
_POLICY_UTF8 = policy.SMTPUTF8.clone(header_factory=_REGISTRY)


@dataclass(frozen=True)
class Attachment:
    """One attached file: the name shown to the recipient and its bytes."""

    filename: str
    data: bytes
    content_type: str | None = None  # "maintype/subtype"; guessed from the name when None


@dataclass
class MailSpec:
    """Resolved Send Mail settings: final strings, body text and attachment bytes."""

    sender: str
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    html_body: str = ""
    priority: int = 3
    attachments: list[Attachment] = field(default_factory=list)
    date: datetime | None = None
    message_id_domain: str | None = None


def split_addresses(line: str) -> list[str]:
    """Split an SSIS address line on ``;`` or ``,`` outside quotes, angle brackets and comments."""
    parts: list[str] = []
    current: list[str] = []
    quoted, angle, comment, escaped = False, 0, 0, False
    for ch in line:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or comment):
            escaped = True
        elif ch == '"' and not comment:
            quoted = not quoted
        elif not quoted:
            angle += {"<": 1, ">": -1}.get(ch, 0) if not comment else 0
            comment += {"(": 1, ")": -1}.get(ch, 0)
            if ch in ";," and angle <= 0 and comment <= 0:
                parts.append("".join(current))
                current = []
                continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _check_value(label: str, value: str) -> None:
    """Refuse a header value that holds a line break or is too long to fold in bounded time."""
    size = (
        len(value.encode("utf-8", "surrogatepass"))
        if len(value) > MAX_HEADER_VALUE_BYTES // 4
        else 0
    )
    if size > MAX_HEADER_VALUE_BYTES:  # (a character is at most 4 octets: shorter values cannot be)
        raise TaskFailedError(
            f"the {label} is {size:,} bytes long (UTF-8), over the limit of "
            f"{MAX_HEADER_VALUE_BYTES:,} bytes "
            f"for one mail header value; shorten it (it begins {value[:40]!r})."
        )
    found = _LINE_BREAK.search(value)
    if found is not None:
        raise TaskFailedError(
            f"the {label} contains a line break ({found.group()!r}), which would inject mail "
            "headers; "
            f"remove it from {value!r}."
        )
    _check_encodable(label, value)


# A lone surrogate is not a character: it is how Python keeps a byte that was not valid UTF-8
# (a command-line argument, say), and no mail encoding can write it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_encodable(label: str, value: str) -> None:
    found = _SURROGATE.search(value)
    if found is not None:
        raise TaskFailedError(
            f"the {label} holds {found.group()!r} at character {found.start()}, which is not valid "
            "Unicode "
            "(often a byte that was not UTF-8, e.g. in a command-line value); give the text in "
            "UTF-8."
        )


_MAX_LABEL, _MAX_DOMAIN = 63, 253  # octets of one DNS label and of a whole name (RFC 1035)


def _ascii_domain(domain: str, text: str, label: str) -> str:
    """``domain`` in the ASCII form that goes into headers and the envelope.

    Non-ASCII names go through IDNA2008 with the UTS #46 mapping that browsers and mail
    clients use (case folded, ``ß`` kept); ASCII names are kept as written, underscores and all.
    """
    too_long = TaskFailedError(
        f"the {label} address {text!r} has a domain longer than DNS allows ({_MAX_LABEL} octets a "
        "label, "
        f"{_MAX_DOMAIN} in all, in ASCII form); check its spelling."
    )
    ascii_form = domain
    if not domain.isascii():
        try:
            ascii_form = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            if "too long" in str(exc):
                raise too_long from exc
            raise TaskFailedError(
                f"the {label} address {text!r} has a domain that is not a valid international host "
                "name "
                f"({exc}); check its spelling."
            ) from exc
    name = ascii_form.rstrip(".")
    if len(name) > _MAX_DOMAIN or max(len(part) for part in name.split(".")) > _MAX_LABEL:
        raise too_long
    return ascii_form


@lru_cache(maxsize=1024)
def parse_address(text: str, label: str) -> Address:
    """One address (``a@b.c`` or ``Name <a@b.c>``), validated; ``label`` names the line (To, CC...).

    Cached: a Send Mail task inside a loop sends to the same lines every iteration, and the
    email package's address parser costs more than the rest of the message (Address is immutable).
    """
    _check_value(f"{label} line", text)
    problem = (
        f"the {label} address {text!r} is malformed; write it as name@domain or "
        "Display Name <name@domain>."
    )
    try:
        header = _REGISTRY(label, text)
        addresses = list(cast(AddressHeader, header).addresses)
    except Exception as exc:  # the email parser raises IndexError/HeaderParseError on some garbage
        raise TaskFailedError(problem) from exc
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if defects or len(addresses) != 1:
        raise TaskFailedError(problem)
    found = addresses[0]
    if (
        not found.username
        or not found.domain
        or not re.fullmatch(r"[^\s@<>()\[\]\\,;:\"]+", found.domain)
    ):
        raise TaskFailedError(problem)
    domain = _ascii_domain(found.domain, text, label)
    return Address(display_name=found.display_name, username=found.username, domain=domain)


@lru_cache(maxsize=1024)
def _addresses(line: str, label: str) -> tuple[Address, ...]:
    _check_value(f"{label} line", line)
    return tuple(parse_address(item, label) for item in split_addresses(line))


@lru_cache(maxsize=1024)
def _header(name: str, line: str, label: str) -> Any:
    """A ready header object for an address line or a fixed value. A message stores a header
    object given under its own name as is, so caching it spares the email package re-parsing
    the same From/To/Cc on every message of a loop (header objects are immutable)."""
    value: Any = _addresses(line, label) if label else line
    return _REGISTRY(name, value)


def attachment_filename(path: str) -> str:
    """The file name a recipient sees: the last segment of a Windows or POSIX path."""
    name = (
        _win_basename(path)
        if ("\\" in path or re.match(r"^[A-Za-z]:", path))
        else _posix_basename(path)
    )
    return name or path


class _TextExtractor(HTMLParser):
    """Plain text from HTML: block elements become line breaks, script/style vanish."""

    _BLOCKS: ClassVar[frozenset[str]] = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "hr",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of ``html`` for the text/plain alternative."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _normalise_newlines(text: str) -> str:
    # The generator writes CRLF on the wire (policy.SMTP); give it bare LF to start from.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _cte(text: str) -> str:
    # Never 8bit: a relay without 8BITMIME must still carry the message unchanged. Mostly-ASCII text
    # stays readable as quoted-printable; mostly non-ASCII text (Cyrillic) is smaller in base64.
    if text.isascii():
        return "7bit" if all(len(line) <= 998 for line in text.splitlines()) else "quoted-printable"
    wide = sum(1 for ch in text if not ch.isascii())
    return "base64" if wide * 10 > len(text) else "quoted-printable"


def _set_body(msg: EmailMessage, body: str, html: str) -> None:
    _check_encodable("message body", body)
    _check_encodable("HTML body", html)
    plain = _normalise_newlines(body if body.strip() or not html else html_to_text(html))
    cte = _cte(plain)
    if not html and cte == "7bit":
        _set_plain_7bit(msg, plain)
        return
    msg.set_content(plain, charset="utf-8", cte=cte)
    if html:
        markup = _normalise_newlines(html)
        msg.add_alternative(markup, subtype="html", charset="utf-8", cte=_cte(markup))


def _set_plain_7bit(msg: EmailMessage, text: str) -> None:
    """What ``set_content(text, charset="utf-8", cte="7bit")`` produces, with cached header
    objects: the common ASCII body of a loop's messages skips re-parsing Content-Type each time."""
    msg["Content-Type"] = _header("Content-Type", 'text/plain; charset="utf-8"', "")
    msg["Content-Transfer-Encoding"] = _header("Content-Transfer-Encoding", "7bit", "")
    msg["MIME-Version"] = _header("MIME-Version", "1.0", "")
    # As the content manager does: lines joined by LF with a final LF; the generator writes CRLF.
    msg.set_payload("\n".join(text.splitlines()) + "\n")


def _attach(msg: EmailMessage, item: Attachment) -> None:
    _check_value("attachment file name", item.filename)
    content_type = item.content_type or mimetypes.guess_type(item.filename, strict=False)[0]
    if not content_type or "/" not in content_type:
        content_type = "application/octet-stream"
    maintype, subtype = content_type.split("/", 1)
    # Bytes for every type, text included, so attachments arrive byte for byte as on disk.
    msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)


def _check_serialised(msg: EmailMessage) -> None:
    """Fold every header of every part now, so that one the folder would write unsafely fails
    the build, not the SMTP transaction (the fold is kept and the wire reuses it)."""
    for part in msg.walk():
        policy = part.policy
        for (
            _,
            value,
        ) in part.raw_items():  # header objects as stored: every one is a _FoldOnceHeader
            value.fold(policy=policy)


def _tidy_parts(msg: EmailMessage) -> None:
    # The email package repeats MIME-Version in parts it creates; it belongs on the top only.
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]


def _envelope(sender: Address, recipients: list[Address]) -> tuple[str, list[str]]:
    seen: set[str] = set()
    rcpts: list[str] = []
    for address in recipients:
        key = address.addr_spec.lower()
        if key not in seen:
            seen.add(key)
            rcpts.append(address.addr_spec)
    return sender.addr_spec, rcpts


def build_message(spec: MailSpec) -> tuple[EmailMessage, str, list[str]]:
    """The MIME message, the envelope sender and the envelope recipients (To, CC, BCC)."""
    senders = _addresses(spec.sender, "From")
    if not senders:
        raise TaskFailedError(
            "the Send Mail task has no sender: set From (FromLine) to an address."
        )
    if len(senders) > 1:
        raise TaskFailedError(
            f"the From line {spec.sender!r} holds several addresses; give exactly one sender."
        )
    to, cc, bcc = _addresses(spec.to, "To"), _addresses(spec.cc, "CC"), _addresses(spec.bcc, "BCC")
    if not (to or cc or bcc):
        raise TaskFailedError(
            "the Send Mail task has no recipient: set To, CC or BCC (ToLine, CCLine, BCCLine)."
        )
    _check_value("Subject", spec.subject)
    everyone = [senders[0], *to, *cc, *bcc]
    utf8 = any(not a.username.isascii() for a in everyone)
    msg = EmailMessage(policy=_POLICY_UTF8 if utf8 else _POLICY_7BIT)
    msg["From"] = _header("From", spec.sender, "From")
    if to:
        msg["To"] = _header("To", spec.to, "To")
    if cc:
        msg["Cc"] = _header("Cc", spec.cc, "CC")
    if spec.subject:
        msg["Subject"] = spec.subject
    # Cached: messages sent within the same second share one parsed Date header.
    msg["Date"] = _header("Date", format_datetime(spec.date or datetime.now(UTC).astimezone()), "")
    domain = spec.message_id_domain or senders[0].domain or platform.node() or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    for name, value in PRIORITY_HEADERS.get(spec.priority, []):
        msg[name] = _header(name, value, "")
    _set_body(msg, spec.body, spec.html_body)
    for item in spec.attachments:
        _attach(msg, item)
    _tidy_parts(msg)
    _check_serialised(msg)
    sender, rcpts = _envelope(senders[0], [*to, *cc, *bcc])
    return msg, sender, rcpts
