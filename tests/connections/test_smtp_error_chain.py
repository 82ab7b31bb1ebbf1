"""SMTP errors keep their cause (``raise ... from exc``) and no exception in the chain, nor the
message, shows the password in any form it went on the wire (plain, or base64 in AUTH PLAIN and
LOGIN), even when a server echoes the command it refuses."""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import traceback
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import SmtpSession
from dtsx.connections.smtp_auth import AuthProblem
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import LoopbackSmtpServer, ScriptedServer, script_smtp

PASSWORD = "Echoed-Secret-42"
USER = "alice"


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "etl@example.test", "ops@example.test", "chain"
    msg.set_content("hello\n")
    return msg


def send(session: SmtpSession, msg: EmailMessage | None = None) -> None:
    session.send(msg or message(), sender="etl@example.test", recipients=["ops@example.test"])


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception under it (cause, else context), as a traceback walks them."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def secret_forms() -> list[str]:
    plain_blob = b"\0" + USER.encode() + b"\0" + PASSWORD.encode()
    return [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(plain_blob).decode(),
    ]


def everything_shown(exc: BaseException) -> str:
    """The full --debug traceback, plus each chained exception's args and attributes."""
    parts = traceback.format_exception(exc)
    for link in chain(exc):
        parts += [repr(link.args), repr(vars(link))]
    return "".join(parts)


async def _echo_refusal(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes
) -> bool:
    """A server that quotes what it refuses: AUTH PLAIN's line, or LOGIN's password answer."""
    if line.split()[1].upper() == b"LOGIN":
        for prompt in (b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"):
            writer.write(b"334 " + prompt + b"\r\n")
            await writer.drain()
            answer = (await reader.readline()).strip()
        writer.write(b"535 5.7.8 credentials " + answer + b" rejected\r\n")
    else:
        writer.write(b"535 5.7.8 cannot verify '" + line + b"'\r\n")
    return False


@pytest.mark.parametrize("mechanism", ["Plain", "Login"])
def test_a_server_echoing_the_credentials_shows_them_nowhere(
    mechanism: str,
    scripted_smtp_factory: Callable[..., ScriptedServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    script = functools.partial(script_smtp, extensions=(b"AUTH PLAIN LOGIN",), auth=_echo_refusal)
    server = scripted_smtp_factory(script)
    session = open_session(
        server.connection_string(
            UserName=USER, Password=PASSWORD, AuthMechanism=mechanism, AllowPlainTextAuth="True"
        )
    )
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    err = info.value
    assert err.code == 535 and f"refused authentication with {mechanism.upper()}" in str(err)
    assert "********" in str(err)  # the echo is quoted, masked
    assert any(isinstance(link, AuthProblem) for link in chain(err))  # the cause is kept
    shown = everything_shown(err)
    for form in secret_forms():
        assert form not in shown


def test_a_refused_connection_keeps_the_os_error_as_its_cause(
    open_session: Callable[[str], SmtpSession],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = open_session(f"SmtpServer=127.0.0.1;Port={port};Timeout=2000;")
    for attempt in (session.connect, lambda: send(session)):
        with pytest.raises(ConnectionManagerError) as info:
            attempt()
        assert "refused the connection" in str(info.value)
        assert info.value.__cause__ is not None  # raise ... from, not from None
        assert any(isinstance(link, ConnectionRefusedError) for link in chain(info.value))


def test_an_internal_error_keeps_its_traceback(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    broken = message()
    broken.set_payload(12345)  # not text: the email generator fails while flattening it
    with pytest.raises(ConnectionManagerError) as info:
        send(open_session(smtp_server.connection_string()), broken)
    assert "internal error (AttributeError" in str(info.value)
    root = list(chain(info.value))[-1]
    assert isinstance(root, AttributeError) and root.__traceback__ is not None
    assert "in _flatten" in "".join(traceback.format_exception(info.value))
    assert smtp_server.messages == []
