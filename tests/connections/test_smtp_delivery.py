"""Sending through the SMTP session against real servers on loopback: reuse and the fault matrix.

Every test on the ``smtp_server`` fixture runs twice: against a server that takes one command
at a time, and against one that offers PIPELINING, where MAIL, RCPT and DATA go out together
and the same outcomes must follow from replies read in a batch.
"""

from __future__ import annotations

import email
import email.policy
import functools
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from dtsx.connections.base import ConnectionSettings
from dtsx.connections.smtp import (
    SmtpConnectionManager,
    SmtpRecipientsRefused,
    SmtpSession,
)
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import (
    LoopbackSmtpServer,
    RecordingHandler,
    ScriptedServer,
    script_drop_mid_data,
    script_greet_421,
    script_silent,
    script_smtp,
)


@pytest.fixture(params=["one-at-a-time", "pipelining"])
def smtp_server(
    request: pytest.FixtureRequest, smtp_server_factory: Callable[..., LoopbackSmtpServer]
) -> LoopbackSmtpServer:
    handler = RecordingHandler()
    handler.pipelining = request.param == "pipelining"
    return smtp_server_factory(handler)


def message(subject: str = "Load finished", body: str = "All rows loaded.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "etl@example.test"
    msg["To"] = "ops@example.test"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def test_messages_reuse_one_connection(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(
        smtp_server.connection_string(UseWindowsAuthentication="False", EnableSsl="False")
    )
    reports = [
        session.send(message(f"n{i}"), sender="etl@example.test", recipients=["ops@example.test"])
        for i in range(5)
    ]
    assert smtp_server.connections == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ops@example.test"]] * 5
    assert [r.reused_connection for r in reports] == [False, True, True, True, True]
    assert all(
        r.accepted == ("ops@example.test",) and r.attempts == 1 and r.mechanism is None
        for r in reports
    )
    assert smtp_server.handler.tried_mechanisms == []  # anonymous: no AUTH at all


def test_acquire_returns_the_same_session_until_close(smtp_server: LoopbackSmtpServer) -> None:
    manager = SmtpConnectionManager(
        ConnectionSettings("cm", "SMTP", smtp_server.connection_string())
    )
    first = manager.acquire()
    assert manager.acquire() is first
    first.send(message(), sender="a@example.test", recipients=["b@example.test"])
    manager.close()
    second = manager.acquire()
    assert second is not first
    second.send(message(), sender="a@example.test", recipients=["b@example.test"])
    manager.close()
    assert smtp_server.connections == 2 and len(smtp_server.messages) == 2


def test_bcc_is_in_the_envelope_not_the_headers_and_dots_are_stuffed(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    msg = message(body="line one\n.\n..two dots\nend\n")
    msg["Bcc"] = "hidden@example.test"
    session = open_session(smtp_server.connection_string())
    session.send(
        msg,
        sender="etl@example.test",
        recipients=["ops@example.test", "hidden@example.test", "OPS@example.test"],
    )
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["ops@example.test", "hidden@example.test"]  # duplicates dropped
    assert b"hidden@example.test" not in got.content and b"Bcc" not in got.content
    assert (
        b"\r\n.\r\n..two dots\r\nend\r\n" in got.content
    )  # unstuffed by the server: exactly the body
    assert msg["Bcc"] == "hidden@example.test"  # the caller's message is untouched


def test_reconnects_after_the_server_dropped_an_idle_connection(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.close_after_message = True
    session = open_session(smtp_server.connection_string())
    session.send(message("one"), sender="a@example.test", recipients=["b@example.test"])
    time.sleep(0.2)  # the server closes 50 ms after accepting
    report = session.send(message("two"), sender="a@example.test", recipients=["b@example.test"])
    assert len(smtp_server.messages) == 2 and smtp_server.connections == 2
    assert report.attempts == 1 and not report.reused_connection


def test_one_of_three_recipients_refused_is_partly_delivered(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.refuse["bad@example.test"] = (
        "550 5.1.1 <bad@example.test>: Recipient address rejected"
    )
    session = open_session(smtp_server.connection_string())
    with pytest.raises(SmtpRecipientsRefused) as info:
        session.send(
            message(),
            sender="a@example.test",
            recipients=["x@example.test", "bad@example.test", "y@example.test"],
        )
    err = info.value
    assert err.report.accepted == ("x@example.test", "y@example.test")
    assert list(err.report.refused) == ["bad@example.test"] and err.report.partly_delivered
    assert (err.code, err.host, err.port) == (550, "127.0.0.1", smtp_server.port)
    text = str(err)
    assert f"127.0.0.1:{smtp_server.port}" in text and "refused 1 of 3 recipients" in text
    assert "bad@example.test ('550 5.1.1 <bad@example.test>: Recipient address rejected')" in text
    assert "partly delivered" in text and "x@example.test, y@example.test" in text
    assert len(smtp_server.messages) == 1 and smtp_server.messages[0].rcpt_tos == [
        "x@example.test",
        "y@example.test",
    ]


def test_all_recipients_refused_sends_nothing(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.refuse["bad@example.test"] = "550 5.1.1 no such user"
    session = open_session(smtp_server.connection_string())
    with pytest.raises(SmtpRecipientsRefused) as info:
        session.send(message(), sender="a@example.test", recipients=["bad@example.test"])
    assert "not delivered to anyone" in str(info.value) and not info.value.report.delivered
    assert smtp_server.messages == []
    # The session is still usable afterwards (RSET, same connection).
    session.send(message(), sender="a@example.test", recipients=["ok@example.test"])
    assert len(smtp_server.messages) == 1 and smtp_server.connections == 1


def test_451_on_data_is_retried_once_and_delivered_once(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.data_replies = ["451 4.3.0 Temporary local problem, try again later"]
    session = open_session(smtp_server.connection_string())
    report = session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    assert report.attempts == 2 and report.accepted == ("b@example.test",)
    assert len(smtp_server.messages) == 1


def test_persistent_451_fails_after_three_attempts(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.data_replies = ["451 4.3.0 Try later"] * 5
    session = open_session(smtp_server.connection_string())
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    assert (
        info.value.code == 451
        and "after 3 attempts" in str(info.value)
        and "'451 4.3.0 Try later'" in str(info.value)
    )
    assert (
        smtp_server.handler.data_replies == ["451 4.3.0 Try later"] * 2
        and smtp_server.messages == []
    )


def test_554_on_data_is_permanent_and_not_retried(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.data_replies = ["554 5.7.1 Message rejected as spam", "250 OK"]
    session = open_session(smtp_server.connection_string())
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    assert info.value.code == 554 and "refused the message" in str(info.value)
    assert smtp_server.handler.data_replies == ["250 OK"]  # exactly one DATA


def test_421_greeting_is_retried_then_fails_with_the_reply(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_greet_421)
    session = open_session(server.connection_string())
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    err = info.value
    assert (err.code, err.port) == (421, server.port) and server.connections == 3
    assert str(err).startswith(
        f"SMTP server 127.0.0.1:{server.port} refused the session at its greeting: "
        "the server replied '421 4.3.2 Service not available, closing transmission channel'"
    )
    assert "Traceback" not in str(err)


def test_421_greeting_then_a_working_server_delivers(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_greet_421, script_smtp)
    report = open_session(server.connection_string()).send(
        message(), sender="a@example.test", recipients=["b@example.test"]
    )
    assert report.attempts == 2 and server.connections == 2 and len(server.messages) == 1


def test_drop_mid_data_is_resent_once(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_drop_mid_data, script_smtp)
    # Far larger than the socket buffers, so the reset hits the send before the final dot is
    # out: only then is a resend safe (after the dot, the message may have been queued).
    body = (
        "x" * 70 + "\n"
    ) * 120_000  # 8.5 MB: more than the kernel buffers (4 MB send, 128 KB receive)
    report = open_session(server.connection_string()).send(
        message(body=body), sender="a@example.test", recipients=["b@example.test"]
    )
    assert report.attempts == 2 and server.connections == 2
    assert len(server.messages) == 1 and server.messages[0].count(b"x" * 70 + b"\r\n") == 120_000


def test_drop_mid_data_every_time_fails_naming_the_drop(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_drop_mid_data)
    body = ("x" * 70 + "\n") * 120_000  # the reset hits the send, before the final dot (see above)
    with pytest.raises(ConnectionManagerError) as info:
        open_session(server.connection_string()).send(
            message(body=body), sender="a@example.test", recipients=["b@example.test"]
        )
    assert "closed the connection" in str(info.value) and "after 3 attempts" in str(info.value)
    assert server.connections == 3 and server.messages == []


def test_a_silent_server_times_out_within_the_timeout(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_silent)
    session = open_session(server.connection_string(Timeout=1000))
    started = time.monotonic()
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    elapsed = time.monotonic() - started
    assert 0.8 < elapsed < 6.0  # Timeout=1000 ms bounds the whole send, retries included
    assert "did not answer within Timeout (1 s)" in str(info.value) and "Security=Tls" in str(
        info.value
    )
    assert server.connections == 1


def test_no_reply_after_the_data_is_not_resent(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.data_delay = 30  # the server sits on the message
    session = open_session(smtp_server.connection_string(Timeout=1000))
    started = time.monotonic()
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    assert time.monotonic() - started < 6.0
    assert "did not confirm the message within Timeout (1 s)" in str(info.value)
    assert "it may have been delivered — not resent" in str(info.value)
    assert smtp_server.connections == 1  # no second attempt


def test_connection_refused_names_host_and_port(open_session: Callable[[str], SmtpSession]) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = open_session(f"SmtpServer=127.0.0.1;Port={port};Timeout=3000;")
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    assert (info.value.host, info.value.port) == ("127.0.0.1", port)
    assert f"127.0.0.1:{port} refused the connection" in str(info.value)


def test_no_recipient_fails_before_connecting(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(smtp_server.connection_string())
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=[" "])
    assert "no recipient" in str(info.value)
    assert smtp_server.connections == 0


def test_sender_refused_is_permanent_with_advice(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.mail_replies = ["530 5.7.0 Authentication required"]
    session = open_session(smtp_server.connection_string())
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender="a@example.test", recipients=["b@example.test"])
    text = str(info.value)
    assert info.value.code == 530 and "refused the sender a@example.test" in text
    assert "UseWindowsAuthentication=True" in text and smtp_server.connections == 1


def test_421_on_mail_reconnects_and_sends_once(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.mail_replies = ["421 4.3.2 Shutting down"]
    report = open_session(smtp_server.connection_string()).send(
        message(), sender="a@example.test", recipients=["b@example.test"]
    )
    assert report.attempts == 2 and smtp_server.connections == 2 and len(smtp_server.messages) == 1


def test_temporarily_refused_recipient_gets_a_later_transaction_and_nobody_gets_two(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.refuse_once["later@example.test"] = "452 4.5.3 Too many recipients"
    report = open_session(smtp_server.connection_string()).send(
        message(),
        sender="a@example.test",
        recipients=["a1@example.test", "later@example.test", "a2@example.test"],
    )
    assert (
        report.accepted == ("a1@example.test", "a2@example.test", "later@example.test")
        and report.attempts == 2
    )
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["a1@example.test", "a2@example.test"],
        ["later@example.test"],
    ]


def test_persistently_deferred_recipient_is_reported_refused_and_partly_delivered(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.refuse["later@example.test"] = "450 4.2.1 Mailbox busy"
    with pytest.raises(SmtpRecipientsRefused) as info:
        open_session(smtp_server.connection_string()).send(
            message(), sender="a@example.test", recipients=["a1@example.test", "later@example.test"]
        )
    assert info.value.report.accepted == ("a1@example.test",) and info.value.report.attempts == 3
    assert "later@example.test ('450 4.2.1 Mailbox busy')" in str(
        info.value
    ) and "partly delivered" in str(info.value)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["a1@example.test"]]


def test_concurrent_senders_share_at_most_max_connections(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(smtp_server.connection_string(MaxConnections=2))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                session.send(
                    message(f"t{n}-{i}"), sender="a@example.test", recipients=[f"r{n}@example.test"]
                )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(smtp_server.messages) == 20
    assert 1 <= smtp_server.connections <= 2  # four threads, a pool of two: never more, each reused


def test_non_ascii_address_uses_smtputf8(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(smtp_server.connection_string())
    session.send(message(), sender="a@example.test", recipients=["jürgen@example.test"])
    assert smtp_server.messages[0].rcpt_tos == ["jürgen@example.test"]


def test_non_ascii_address_without_smtputf8_is_a_clear_error(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_smtp)
    with pytest.raises(ConnectionManagerError) as info:
        open_session(server.connection_string()).send(
            message(), sender="a@example.test", recipients=["jürgen@example.test"]
        )
    assert "does not support SMTPUTF8" in str(info.value) and "jürgen@example.test" in str(
        info.value
    )
    assert server.messages == []


def test_eight_bit_body_is_made_seven_bit_for_an_old_server(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(
        functools.partial(script_smtp, esmtp=False)
    )  # EHLO 502: HELO, no 8BITMIME
    open_session(server.connection_string()).send(
        message(body="Grüße\n"), sender="a@example.test", recipients=["b@example.test"]
    )
    [raw] = server.messages
    assert raw.isascii() and (
        b"Content-Transfer-Encoding: base64" in raw or b"quoted-printable" in raw
    )
    assert "Grüße" in email.message_from_bytes(raw, policy=email.policy.default).get_content()


def test_connect_checks_the_server_without_sending(
    smtp_server: LoopbackSmtpServer,
    scripted_smtp_factory: Callable[..., ScriptedServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    open_session(smtp_server.connection_string()).connect()
    assert smtp_server.connections == 1 and smtp_server.messages == []
    with pytest.raises(ConnectionManagerError, match="refused the session at its greeting"):
        open_session(scripted_smtp_factory(script_greet_421).connection_string()).connect()


def test_an_address_with_a_line_break_is_refused_before_sending(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(smtp_server.connection_string())
    with pytest.raises(ConnectionManagerError, match="malformed address"):
        session.send(
            message(),
            sender="a@example.test",
            recipients=["b@example.test\r\nRCPT TO:<evil@example.test>"],
        )
    assert smtp_server.connections == 0 and smtp_server.messages == []


def test_after_an_unanswered_message_the_next_one_uses_a_fresh_connection(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    smtp_server.handler.data_delay = 1.5  # longer than Timeout: the first reply arrives too late
    session = open_session(smtp_server.connection_string(Timeout=1000))
    with pytest.raises(ConnectionManagerError, match="may have been delivered — not resent"):
        session.send(message("first"), sender="a@example.test", recipients=["b@example.test"])
    smtp_server.handler.data_delay = 0
    report = session.send(message("second"), sender="a@example.test", recipients=["b@example.test"])
    assert not report.reused_connection and smtp_server.connections == 2
