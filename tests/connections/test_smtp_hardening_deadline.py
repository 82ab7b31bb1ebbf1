"""Issue 9 items 9 (SMTP part) and 10: the Timeout bounds the whole send, a cancel stops every
network wait within a second, and parallel sends use parallel connections.

Before: a server that drips each reply line made Timeout=6 s last 8.6 s (a socket timeout bounds
one system call, not the send); Ctrl-C during a connect or a reply wait waited the full Timeout
(100 s by default); parallel Send Mail tasks queued on one connection, each with a fresh Timeout.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import SmtpSession
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import (
    LoopbackSmtpServer,
    RecordingHandler,
    ScriptedServer,
    script_silent,
    script_smtp,
    unanswered_listener,
)

SENDER, RCPT = "etl@example.test", "ops@example.test"


def _message(subject: str = "nightly load") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, RCPT, subject
    msg.set_content("done\n")
    return msg


class _Send(threading.Thread):
    """One send in a thread, so a test can cancel it and see how long it takes to stop."""

    def __init__(
        self, session: SmtpSession, cancel: threading.Event | None = None, subject: str = "x"
    ) -> None:
        super().__init__(daemon=True)
        self.session, self.cancel, self.subject = session, cancel, subject
        self.error: BaseException | None = None
        self.report: object = None
        self.elapsed = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            extra = {} if self.cancel is None else {"cancel": self.cancel}
            self.report = self.session.send(
                _message(self.subject), sender=SENDER, recipients=[RCPT], **extra
            )
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            self.error = exc
        self.elapsed = time.monotonic() - started


def _slow_server(
    factory: Callable[..., LoopbackSmtpServer], delay: float
) -> tuple[LoopbackSmtpServer, RecordingHandler]:
    """A server that answers each message's data ``delay`` seconds late."""
    handler = RecordingHandler()
    handler.data_delay = delay
    return factory(handler), handler


def _together(session: SmtpSession, count: int) -> list[_Send]:
    """``count`` sends started at once (as parallel Send Mail tasks), all finished."""
    sends = [_Send(session, subject=f"task {i}") for i in range(count)]
    for send in sends:
        send.start()
    for send in sends:
        send.join(20)
    return sends


def _cancel_after(session: SmtpSession, delay: float) -> tuple[_Send, float]:
    """Start a send, cancel it after ``delay`` s; return the finished send and how long it took
    to stop after the cancel (the thread is given 20 s, far less than the 100 s default Timeout)."""
    cancel = threading.Event()
    send = _Send(session, cancel)
    send.start()
    time.sleep(delay)
    cancel.set()
    canceled_at = time.monotonic()
    send.join(20)
    assert not send.is_alive(), "the send did not stop after the cancel"
    return send, time.monotonic() - canceled_at


def test_a_drip_fed_reply_cannot_stretch_the_timeout(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    # Ten EHLO lines 0.4 s apart: each wait is short, the whole handshake alone takes 4.4 s.
    extensions = tuple(f"X-EXT{i}".encode() for i in range(10))
    server = scripted_smtp_factory(
        functools.partial(script_smtp, reply_delay=0.4, extensions=extensions)
    )
    session = open_session(server.connection_string(Timeout=2000))
    send = _Send(session)
    send.run()
    assert 1.5 < send.elapsed < 3.5  # Timeout=2000 ms bounds the whole send (wide bounds)
    assert isinstance(send.error, ConnectionManagerError)
    assert "did not answer within Timeout (2 s)" in str(send.error)


def test_cancel_during_a_connect_that_never_completes(
    open_session: Callable[[str], SmtpSession],
) -> None:
    with unanswered_listener() as port:
        session = open_session(f"SmtpServer=127.0.0.1;Port={port};")  # default Timeout: 100 s
        send, stopped_in = _cancel_after(session, 0.5)
    assert stopped_in < 2.0
    assert isinstance(send.error, ConnectionManagerError)
    assert "the run was canceled before the message was sent" in str(send.error)


def test_cancel_during_a_reply_wait(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_silent)  # accepts, never greets
    session = open_session(f"SmtpServer=127.0.0.1;Port={server.port};")
    send, stopped_in = _cancel_after(session, 0.5)
    assert stopped_in < 2.0
    assert isinstance(send.error, ConnectionManagerError)
    assert "the run was canceled before the message was sent" in str(send.error)
    assert server.connections == 1  # canceled, not retried


def test_cancel_while_the_server_holds_the_message_is_reported_uncertain(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    handler = RecordingHandler()
    handler.data_delay = 30  # the data is all out; the server sits on its reply
    server = smtp_server_factory(handler)
    session = open_session(f"SmtpServer=127.0.0.1;Port={server.port};")
    send, stopped_in = _cancel_after(session, 1.0)
    assert stopped_in < 2.0
    assert (
        "had not confirmed the message when the run was canceled; it may have been delivered — "
        "not resent" in str(send.error)
    )


class _CancelOnAccept(RecordingHandler):
    """Sets the cancel event the moment it accepts a message, just before its 250 goes out."""

    def __init__(self, cancel: threading.Event) -> None:
        super().__init__()
        self.cancel = cancel

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        reply = await super().handle_DATA(server, session, envelope)
        self.cancel.set()
        return reply


def test_a_message_accepted_before_the_cancel_is_reported_delivered(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    cancel = threading.Event()
    server = smtp_server_factory(_CancelOnAccept(cancel))
    session = open_session(f"SmtpServer=127.0.0.1;Port={server.port};")
    report = session.send(_message(), sender=SENDER, recipients=[RCPT], cancel=cancel)
    assert cancel.is_set() and report.accepted == (RCPT,) and len(server.messages) == 1


def test_parallel_sends_use_parallel_connections(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    server, handler = _slow_server(smtp_server_factory, 0.5)
    session = open_session(server.connection_string())  # MaxConnections: 4 by default
    sends = _together(session, 4)
    assert [s.error for s in sends] == [None] * 4 and len(server.messages) == 4
    assert server.connections > 1 and handler.max_in_flight > 1  # messages were in flight together
    opened = server.connections
    assert opened <= 4
    for i in range(3):  # afterwards, sequential sends reuse an open connection
        session.send(_message(f"after {i}"), sender=SENDER, recipients=[RCPT])
    assert server.connections == opened


def test_a_send_queued_for_a_connection_keeps_its_timeout(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    server, _ = _slow_server(smtp_server_factory, 1.0)
    session = open_session(server.connection_string(Timeout=1500, MaxConnections=1))
    sends = _together(session, 3)
    # One connection for three one-second messages: at most one more fits in 1.5 s; none may
    # take longer than its Timeout (wide bound) - queued sends used to get a fresh Timeout each.
    assert max(s.elapsed for s in sends) < 1.5 + 1.0
    assert any(s.error is None for s in sends)
    assert any(
        "MaxConnections" in str(s.error) or "Timeout (1.5 s)" in str(s.error)
        for s in sends
        if s.error
    )


@pytest.mark.parametrize("security", ["StartTls", "Tls"])
def test_tls_sessions_send_and_stop_under_a_cancel_event(
    request: pytest.FixtureRequest, open_session: Callable[[str], SmtpSession], security: str
) -> None:
    """The TLS socket (handshake, reads, writes) takes the same bounded, sliced waits."""
    server: LoopbackSmtpServer = request.getfixturevalue(
        "starttls_server" if security == "StartTls" else "smtps_server"
    )
    user = "alice"
    from tests.smtp_servers import PASSWORDS

    session = open_session(
        server.connection_string(
            Security=security, CaFile=server.ca_file, UserName=user, Password=PASSWORDS[user]
        )
    )
    cancel = threading.Event()
    for i in range(3):
        report = session.send(_message(f"tls {i}"), sender=SENDER, recipients=[RCPT], cancel=cancel)
        assert report.tls is not None and report.accepted == (RCPT,)
    assert server.connections == 1 and len(server.messages) == 3
    server.handler.data_delay = 30
    send, stopped_in = _cancel_after(session, 0.5)
    assert stopped_in < 2.0 and "when the run was canceled" in str(send.error)
