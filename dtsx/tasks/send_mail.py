"""The Send Mail task (``Microsoft.SendMailTask``).

Reads ``SendMailTask:SendMailTaskData`` (every format: v2/v3 write all attributes, v6/v8 omit
defaults), resolves the body (direct text, a variable, or a FILE/FLATFILE connection's file)
and the attachments, builds one MIME message with :mod:`dtsx.tasks.mail_message`, and hands it
to the SMTP connection manager's session. Property expressions use the runtime names
(``ToLine``, ``FromLine``, ``Subject``, ``MessageSource``, ``FileAttachments``...); the executor
applies them with :meth:`Task.set_property` before :meth:`SendMailTask.execute`.

Extension (SSIS ignores it): ``dtsx:HtmlMessageSource`` on ``SendMailTaskData``, in namespace
``urn:dtsx:extensions``, or a property expression on ``HtmlMessageSource``, adds an HTML body.
The message becomes multipart/alternative: the SSIS body (MessageSource, whatever its type) is
the text/plain part, or, when that is empty, a plain-text rendering of the HTML. Under SSIS the
same package sends the plain-text body alone.

Extension: ``dtsx:MaxFileBytes`` (or a ``MaxFileBytes`` property expression) bounds the bytes one
message reads from files, its body file and attachments together; the default,
:data:`DEFAULT_MAX_FILE_BYTES`, is the 25 MB attachment limit of Gmail and Exchange Online. Only
regular files are read: a device (``/dev/zero``), a FIFO, a socket or a directory is refused
before it is read, a FIFO without waiting for a writer. Reading checks the cancel event
between chunks. It is a task setting, not an SMTP one, because it guards what the task reads
before any connection is made; the server's own size limit (SIZE) is the session's business.

This module imports neither smtplib nor socket: sending is the connection manager's job.
"""

from __future__ import annotations

import os
import threading
from email.message import EmailMessage
from enum import Enum
from typing import Annotated, Any, cast

from dtsx.connections.base import MailSession, SendReport
from dtsx.engine.errors import ConnectionManagerError, TaskFailedError
from dtsx.engine.files import NotARegularFile, decode_marked_or_utf8, open_regular
from dtsx.engine.model import LOCAL_NAMES, XmlNode
from dtsx.engine.paths import unmapped_windows_path
from dtsx.tasks.base import (
    Task,
    TaskContext,
    TaskProperties,
    ValidationContext,
    register_task,
)
from dtsx.tasks.mail_message import (
    Attachment,
    MailSpec,
    attachment_filename,
    build_message,
)
from pydantic import AliasChoices, BeforeValidator, Field, Strict, field_validator

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "EXTENSION_NAMESPACE",
    "SENDMAIL_NAMESPACE",
    "MailPriority",
    "MessageSourceType",
    "SendMailProperties",
    "SendMailTask",
    "decode_text_file",
]

SENDMAIL_NAMESPACE = "www.microsoft.com/sqlserver/dts/tasks/sendmailtask"
EXTENSION_NAMESPACE = "urn:dtsx:extensions"
_FILE_TYPES = frozenset({"FILE", "FLATFILE"})
DEFAULT_MAX_FILE_BYTES = 25 * 1024 * 1024  # body file plus attachments of one message
_CHUNK = 1 << 20  # bytes read between two looks at the cancel event


class MailPriority(str, Enum):
    """The task's own enum: High = 1, Normal = 3, Low = 5 (not System.Net.Mail's numbering)."""

    HIGH = "High"
    NORMAL = "Normal"
    LOW = "Low"

    @property
    def code(self) -> int:
        return {"High": 1, "Normal": 3, "Low": 5}[self.value]


class MessageSourceType(str, Enum):
    """``SendMailMessageSourceType``: DirectInput = 0, FileConnection = 1, Variable = 2."""

    DIRECT_INPUT = "DirectInput"
    FILE_CONNECTION = "FileConnection"
    VARIABLE = "Variable"


def _enum_value(enum: type[Enum], codes: dict[int, str], value: Any) -> Any:
    """Accept the enum, its name in any case, or its integer code (as int or digits)."""
    if isinstance(value, enum) or value is None:
        return value
    if isinstance(value, bool):
        return value  # let pydantic refuse it with its own message
    if isinstance(value, (int, float)) and float(value).is_integer() and int(value) in codes:
        return codes[int(value)]
    text = str(value).strip()
    if text.lstrip("-").isdigit() and int(text) in codes:
        return codes[int(text)]
    for member in enum:
        if member.value.lower() == text.lower():
            return member.value
    return value


def _as_text(value: Any) -> Any:
    # Expressions may yield numbers or NULL; SSIS converts them to strings for these properties.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else str(value)


# A text property: a str is taken as is (checked in pydantic's core, no Python call: planning
# validates every task's properties), anything else goes through _as_text first. Strict, so
# bytes are not decoded by the first branch but shown by _as_text as before.
_Text = Annotated[
    Annotated[str, Strict()] | Annotated[str, BeforeValidator(_as_text)],
    Field(union_mode="left_to_right"),
]


class SendMailProperties(TaskProperties):
    """Send Mail settings; each field answers to its XML attribute and its runtime name."""

    smtp_connection: _Text = Field(
        "", validation_alias=AliasChoices("SMTPServer", "SmtpConnection")
    )
    from_line: _Text = Field("", validation_alias=AliasChoices("From", "FromLine"))
    to_line: _Text = Field("", validation_alias=AliasChoices("To", "ToLine"))
    cc_line: _Text = Field("", validation_alias=AliasChoices("CC", "CCLine"))
    bcc_line: _Text = Field("", validation_alias=AliasChoices("BCC", "BCCLine"))
    subject: _Text = Field("", validation_alias=AliasChoices("Subject"))
    priority: MailPriority = Field(MailPriority.NORMAL, validation_alias=AliasChoices("Priority"))
    message_source_type: MessageSourceType = Field(
        MessageSourceType.DIRECT_INPUT, validation_alias=AliasChoices("MessageSourceType")
    )
    message_source: _Text = Field("", validation_alias=AliasChoices("MessageSource"))
    file_attachments: _Text = Field("", validation_alias=AliasChoices("FileAttachments"))
    html_message_source: _Text = Field("", validation_alias=AliasChoices("HtmlMessageSource"))
    max_file_bytes: int = Field(
        DEFAULT_MAX_FILE_BYTES, gt=0, validation_alias=AliasChoices("MaxFileBytes")
    )

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> Any:
        return _enum_value(MailPriority, {1: "High", 3: "Normal", 5: "Low"}, value)

    @field_validator("message_source_type", mode="before")
    @classmethod
    def _source_type(cls, value: Any) -> Any:
        return _enum_value(
            MessageSourceType, {0: "DirectInput", 1: "FileConnection", 2: "Variable"}, value
        )


def decode_text_file(data: bytes, where: str, warn: Any = None) -> str:
    """File bytes as text: a BOM decides (UTF-8, UTF-16); else UTF-8; else Windows-1252 with a
    warning."""
    text = decode_marked_or_utf8(data)
    if text is not None:
        return text
    if warn is not None:
        warn(f"{where} is not UTF-8 and has no byte-order mark; it was read as Windows-1252.")
    return data.decode("cp1252", errors="replace")


def _to_text(value: Any) -> str:
    """A variable's value as the body text, as .NET's ToString() shows the common types."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _split_pipes(text: str) -> list[str]:
    return [p.strip() for p in text.split("|") if p.strip()]


def _local_attributes(attrs: dict[str, str]) -> dict[str, Any]:
    """``attrs`` keyed by local name; a later key wins on a clash, as in the generic reader."""
    names = LOCAL_NAMES  # the model's one cache of Clark key -> local name
    return {names[key]: value for key, value in attrs.items()}


class _FileBudget:
    """Reads the files of one message: regular files only, all of them together within
    ``limit`` bytes, in chunks that look at the run's cancel event."""

    def __init__(self, limit: int, cancel: threading.Event) -> None:
        self.limit = limit
        self.used = 0
        self.cancel = cancel

    def read(self, path: str, what: str, *, original: str | None = None) -> bytes:
        try:
            fd = open_regular(path)
        except NotARegularFile as exc:
            where = "" if path in what else f" ({path})"
            raise TaskFailedError(
                f"{what} is {exc.kind}{where}, not a regular file; Send Mail reads only regular "
                "files, "
                "so write the content to a file and name that file."
            ) from exc
        except FileNotFoundError as exc:
            where = f" (looked for {path})" if original is not None and path != original else ""
            hint = "check the --path-map rule that maps it" if where else "check the path"
            raise TaskFailedError(f"{what} does not exist{where}; {hint}.") from exc
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise TaskFailedError(
                f"{what} cannot be read ({path!r}): {getattr(exc, 'strerror', None) or exc}."
            ) from exc
        try:
            status = os.fstat(fd)
            if status.st_size > self.limit - self.used:
                raise self._too_big(what, f"{status.st_size:,}")
            return self._chunks(fd, path, what)
        finally:
            os.close(fd)

    def _chunks(self, fd: int, path: str, what: str) -> bytes:
        room = self.limit - self.used
        parts: list[bytes] = []
        size = 0
        while True:
            if self.cancel.is_set():
                raise TaskFailedError(f"the Send Mail task was canceled while reading {what}.")
            try:
                chunk = os.read(
                    fd, min(_CHUNK, room - size + 1)
                )  # one byte more shows a file that grew
            except OSError as exc:
                raise TaskFailedError(
                    f"{what} cannot be read ({path}): {exc.strerror or exc}."
                ) from exc
            if not chunk:
                break
            size += len(chunk)
            if size > room:
                raise self._too_big(what, f"more than {room:,}")
            parts.append(chunk)
        self.used += size
        return b"".join(parts)

    def _too_big(self, what: str, size: str) -> TaskFailedError:
        already = (
            f" and {self.used:,} bytes of this message's other files were already read"
            if self.used
            else ""
        )
        return TaskFailedError(
            f"{what} is {size} bytes{already}, over the Send Mail limit of {self.limit:,} bytes "
            "for the files "
            "of one message (body file and attachments); send smaller files, or raise the limit "
            "with the "
            "dtsx:MaxFileBytes attribute of the task (or a MaxFileBytes property expression)."
        )


@register_task("Microsoft.SendMailTask")
class SendMailTask(Task):
    """Sends one message through an SMTP connection manager."""

    Properties = SendMailProperties
    props: SendMailProperties
    validates_connections = True  # SMTPServer, and a FileConnection MessageSource

    @classmethod
    def properties_from_node(cls, node: XmlNode | None) -> dict[str, Any]:
        """Attributes by local name, plus ``<SendMailTask:Attachments FileName=…/>`` children."""
        inner = node.children[0] if node is not None and node.children else None
        if inner is None:
            return {}
        if inner.children:
            data = super().properties_from_node(node)
            data.pop("Attachments", None)
            names = [c.get("FileName") or "" for c in inner.findall("Attachments")]
        else:
            # The common case (no child elements): one pass over the attributes, with each
            # Clark key's local name cached, instead of the generic walk and a findall.
            data = _local_attributes(inner.attrs)
            if "FileAttachments" not in data:
                return data
            names = []
        paths = _split_pipes(str(data.get("FileAttachments", ""))) + [n for n in names if n.strip()]
        if paths:
            data["FileAttachments"] = "|".join(paths)
        return data

    # ---- validation -------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        """SSIS's checks before the run, skipping properties a property expression sets."""
        problems = self._connection_problems(vctx)
        p = self.props
        if not p.from_line.strip() and not vctx.is_dynamic("FromLine", "From"):
            problems.append("the Send Mail task has no sender: set From (FromLine) to an address.")
        # Each check looks at the values first: is_dynamic is asked only when a value is missing.
        if not (
            p.to_line.strip() or p.cc_line.strip() or p.bcc_line.strip()
        ) and not vctx.is_dynamic("ToLine", "CCLine", "BCCLine", "To", "CC", "BCC"):
            problems.append(
                "the Send Mail task has no recipient: set To, CC or BCC (ToLine, CCLine, BCCLine)."
            )
        # A direct-input body has nothing to check (_source_problems finds nothing for it).
        if p.message_source_type is not MessageSourceType.DIRECT_INPUT and not vctx.is_dynamic(
            "MessageSource", "MessageSourceType"
        ):
            problems.extend(self._source_problems(vctx))
        return problems

    def _connection_problems(self, vctx: ValidationContext) -> list[str]:
        ref = self.props.smtp_connection.strip()
        if vctx.is_dynamic("SmtpConnection", "SMTPServer"):
            return []
        if not ref:
            return [
                "the Send Mail task has no SMTP connection manager: set SMTPServer "
                "(SmtpConnection)."
            ]
        kind = vctx.connection_type(ref)
        if kind is None:
            return [
                f"the Send Mail task's SMTPServer {ref} matches no connection manager in the "
                "package or project."
            ]
        if kind.upper() != "SMTP":
            return [
                f"the Send Mail task's SMTPServer {ref} names a {kind} connection manager, not an "
                "SMTP one."
            ]
        return []

    def _source_problems(self, vctx: ValidationContext) -> list[str]:
        p = self.props
        source = p.message_source.strip()
        if p.message_source_type is MessageSourceType.VARIABLE:
            if not source:
                return [
                    "the Send Mail task's MessageSourceType is Variable but MessageSource names no "
                    "variable."
                ]
            if not vctx.has_variable(source):
                return [
                    f"the Send Mail task's MessageSource names the variable {source!r}, which is "
                    "not in scope."
                ]
        elif p.message_source_type is MessageSourceType.FILE_CONNECTION:
            kind = vctx.connection_type(source) if source else None
            if kind is None:
                return [
                    (
                        f"the Send Mail task's MessageSource {source!r} names no FILE connection "
                        "manager "
                        "(with MessageSourceType FileConnection it must name one)."
                    )
                ]
            if kind.upper() not in _FILE_TYPES:
                return [
                    f"the Send Mail task's MessageSource {source!r} is a {kind} connection "
                    "manager, not a FILE one."
                ]
        return []

    # ---- building -----------------------------------------------------------------------

    def build_message(self, ctx: TaskContext) -> tuple[EmailMessage, str, list[str]]:
        """Dry run: the message, envelope sender and envelope recipients, without sending."""
        p = self.props
        files = _FileBudget(p.max_file_bytes, ctx.cancel_event)
        spec = MailSpec(
            sender=p.from_line,
            to=p.to_line,
            cc=p.cc_line,
            bcc=p.bcc_line,
            subject=p.subject,
            body=self._body(ctx, files),
            html_body=p.html_message_source,
            priority=p.priority.code,
            attachments=self._attachments(ctx, files),
        )
        return build_message(spec)

    def _body(self, ctx: TaskContext, files: _FileBudget) -> str:
        p = self.props
        if p.message_source_type is MessageSourceType.DIRECT_INPUT:
            return p.message_source
        if p.message_source_type is MessageSourceType.VARIABLE:
            return self._variable_body(ctx, p.message_source.strip())
        return self._file_body(ctx, p.message_source.strip(), files)

    def _variable_body(self, ctx: TaskContext, name: str) -> str:
        if not name:
            raise TaskFailedError(
                "the Send Mail task's MessageSourceType is Variable but MessageSource names no "
                "variable."
            )
        if name not in ctx.variables:
            raise TaskFailedError(
                f"the Send Mail task's MessageSource names the variable {name!r}, which is not in "
                "scope."
            )
        return _to_text(ctx.variables.get(name))

    def _file_body(self, ctx: TaskContext, name: str, files: _FileBudget) -> str:
        if not name:
            raise TaskFailedError(
                "the Send Mail task's MessageSourceType is FileConnection but MessageSource is "
                "empty."
            )
        try:
            path = ctx.connections.acquire(name)
        except ConnectionManagerError as exc:
            raise TaskFailedError(
                f"the Send Mail task cannot open its message file connection {name!r}: {exc}"
            ) from exc
        if not isinstance(path, (str, os.PathLike)):
            raise TaskFailedError(
                f"the Send Mail task's MessageSource {name!r} is not a FILE connection manager."
            )
        data = files.read(str(path), f"the message file {path} (connection {name!r})")
        return decode_text_file(data, f"the message file {path}", ctx.events.warning)

    def _attachments(self, ctx: TaskContext, files: _FileBudget) -> list[Attachment]:
        found: list[Attachment] = []
        for original in _split_pipes(self.props.file_attachments):
            local = ctx.local_path(original)
            problem = unmapped_windows_path(original, local)
            if problem is not None:
                raise TaskFailedError(f"the attachment {problem}.")
            data = files.read(local, f"the attachment {original}", original=original)
            found.append(Attachment(attachment_filename(original), data))
        return found

    # ---- execution ----------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        """Build the message, then send it through the SMTP connection manager's session."""
        ref = self._smtp_ref(ctx)
        message, sender, recipients = self.build_message(ctx)
        if ctx.cancelled:
            raise TaskFailedError("the Send Mail task was canceled before it sent its message.")
        session = ctx.connections.acquire(ref)
        # What MailSession asks for, checked by hand: isinstance() with a runtime-checkable
        # Protocol costs about 10 us, a measurable part of one message's whole send.
        if not callable(getattr(session, "send", None)):
            raise TaskFailedError(
                f"the Send Mail task's SMTPServer {ref} is not an SMTP connection manager."
            )
        mail = cast(MailSession, session)
        try:
            report = mail.send(
                message, sender=sender, recipients=recipients, cancel=ctx.cancel_event
            )
        except ConnectionManagerError as exc:
            # A partial delivery fails the task (as .NET's SmtpFailedRecipientsException does),
            # but who did get the message is worth an event of its own. The report rides on the
            # error of a refusal (SMTP's SmtpRecipientsRefused), which this task cannot import.
            partial: SendReport | None = getattr(exc, "report", None)
            if partial is not None and partial.accepted:
                self._report(ctx, message, partial)
            raise
        self._report(ctx, message, report)

    def _smtp_ref(self, ctx: TaskContext) -> str:
        ref = self.props.smtp_connection.strip()
        if not ref:
            raise TaskFailedError(
                "the Send Mail task has no SMTP connection manager: set SMTPServer "
                "(SmtpConnection)."
            )
        find = getattr(ctx.connections, "find", None)
        spec = find(ref) if find is not None else None
        if find is not None and spec is None:
            raise TaskFailedError(
                f"the Send Mail task's SMTPServer {ref} matches no connection manager in the "
                "package or project."
            )
        kind = getattr(spec, "type_key", "SMTP") or "SMTP"
        if kind.upper() != "SMTP":
            raise TaskFailedError(
                f"the Send Mail task's SMTPServer {ref} names a {kind} connection manager, not an "
                "SMTP one."
            )
        return ref

    @staticmethod
    def _report(ctx: TaskContext, message: EmailMessage, report: SendReport) -> None:
        """Events for a send: who got it and through which server (never credentials)."""
        server = report.server or "the SMTP server"
        accepted = list(report.accepted)
        ctx.events.information(
            f"sent message {message['Message-ID']} to {len(accepted)} recipients via {server}"
        )
        refused = report.refused
        if refused:
            detail = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in refused.items())
            ctx.events.warning(
                f"message {message['Message-ID']} was delivered to {', '.join(accepted)} "
                f"but refused for {detail}."
            )
