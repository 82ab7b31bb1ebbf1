"""PIPELINING (RFC 2920) on the wire: which commands travel together, and what a batch of
replies means. A scripted server records each batch of commands it found waiting together:
after a MAIL or RCPT it collects whatever else has already arrived before it answers, so a
client that waits for each reply shows up as batches of one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import (
    PIPELINE_WINDOW,
    SmtpConnectionManager,
    SmtpRecipientsRefused,
    SmtpSession,
)
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import (
    LoopbackSmtpServer,
    RecordingHandler,
    ScriptedServer,
    TlsMaterial,
    read_data,
)

SENDER = "etl@example.test"


@dataclass
class Behaviour:
    """How the scripted server answers; the lists are used up in order, then the defaults apply."""

    advertise: bool = True
    mail: list[bytes] = field(default_factory=list)  # replies to MAIL (then 250)
    refuse: dict[str, bytes] = field(default_factory=dict)  # RCPT address -> reply (others 250)
    data_despite_no_rcpt: bool = False  # answer DATA 354 even when no recipient was accepted
    close_after_rset: bool = False  # answer RSET, then close (the connection went stale)
    batches: list[list[str]] = field(default_factory=list)  # every connection's command batches
    contents: list[bytes] = field(default_factory=list)  # what came after each 354


def _script(how: Behaviour) -> Callable[..., object]:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
    ) -> None:
        writer.write(b"220 pipe.test ESMTP\r\n")
        mail_ok, rcpts = False, 0
        while True:
            line = await reader.readline()
            if not line:
                return
            batch = [line] + (
                await _waiting(reader) if line[:4].upper() in (b"MAIL", b"RCPT") else []
            )
            how.batches.append([item[:4].decode("ascii", "replace").upper() for item in batch])
            for item in batch:
                verb = item[:4].upper()
                if verb == b"EHLO":
                    extensions = [
                        b"pipe.test",
                        b"8BITMIME",
                        *([b"PIPELINING"] if how.advertise else []),
                        b"SIZE 100000",
                    ]
                    writer.write(
                        b"".join(
                            b"250" + (b" " if i == len(extensions) - 1 else b"-") + e + b"\r\n"
                            for i, e in enumerate(extensions)
                        )
                    )
                elif verb == b"MAIL":
                    reply = how.mail.pop(0) if how.mail else b"250 2.1.0 OK"
                    mail_ok, rcpts = reply.startswith(b"250"), 0
                    writer.write(reply + b"\r\n")
                elif verb == b"RCPT":
                    address = item.split(b"<", 1)[-1].split(b">", 1)[0].decode()
                    reply = (
                        b"503 5.5.1 MAIL first"
                        if not mail_ok
                        else how.refuse.get(address, b"250 2.1.5 OK")
                    )
                    rcpts += reply.startswith(b"250")
                    writer.write(reply + b"\r\n")
                elif verb == b"DATA" and (rcpts or (mail_ok and how.data_despite_no_rcpt)):
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    how.contents.append(await read_data(reader))
                    writer.write(
                        b"250 2.0.0 queued\r\n" if rcpts else b"554 5.5.1 no valid recipients\r\n"
                    )
                elif verb == b"DATA":
                    writer.write(
                        b"554 5.5.1 no valid recipients\r\n"
                        if mail_ok
                        else b"503 5.5.1 MAIL first\r\n"
                    )
                elif verb == b"RSET":
                    mail_ok, rcpts = False, 0
                    writer.write(b"250 2.0.0 OK\r\n")
                    if how.close_after_rset:
                        await writer.drain()
                        return
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 5.5.2 not here\r\n")
            await writer.drain()

    return script


async def _waiting(reader: asyncio.StreamReader) -> list[bytes]:
    """Lines that arrive before this server has answered anything: up to a DATA, which a
    pipelining client always ends its batch with, or until nothing more comes for 0.3 s."""
    more: list[bytes] = []
    while not more or more[-1][:4].upper() != b"DATA":
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=0.3)
        except TimeoutError:
            break
        if not line:
            break
        more.append(line)
    return more


def message(subject: str = "pipelined") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = "ops@example.test"
    msg["Subject"] = subject
    msg.set_content("body\n")
    return msg


@pytest.fixture
def pipe(
    scripted_smtp_factory: Callable[..., ScriptedServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> Callable[[Behaviour], tuple[ScriptedServer, SmtpSession]]:
    def start(how: Behaviour) -> tuple[ScriptedServer, SmtpSession]:
        server = scripted_smtp_factory(_script(how))
        return server, smtp_manager(server.connection_string()).acquire()

    return start


RCPTS = ["a@example.test", "b@example.test", "c@example.test"]


def test_mail_rcpt_and_data_travel_together_and_rset_alone(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour()
    server, session = pipe(how)
    for i in range(2):
        report = session.send(message(f"m{i}"), sender=SENDER, recipients=RCPTS)
        assert report.accepted == tuple(RCPTS)
    session.close()
    group = ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    assert how.batches == [["EHLO"], group, ["RSET"], group, ["RSET"], ["QUIT"]]
    assert len(how.contents) == 2 and b"Subject: m1" in how.contents[1] and server.connections == 1


def test_without_the_offer_each_command_waits_for_its_reply(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour(advertise=False)
    _, session = pipe(how)
    session.send(message(), sender=SENDER, recipients=RCPTS[:2])
    session.close()
    assert how.batches == [["EHLO"], ["MAIL"], ["RCPT"], ["RCPT"], ["DATA"], ["RSET"], ["QUIT"]]


def test_pipelining_false_keeps_one_command_in_flight_although_offered(
    scripted_smtp_factory: Callable[..., ScriptedServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    how = Behaviour()
    server = scripted_smtp_factory(_script(how))
    session = smtp_manager(server.connection_string(Pipelining="False")).acquire()
    session.send(message(), sender=SENDER, recipients=RCPTS[:2])
    session.close()
    assert how.batches == [["EHLO"], ["MAIL"], ["RCPT"], ["RCPT"], ["DATA"], ["RSET"], ["QUIT"]]


def test_many_recipients_go_in_windows_whose_replies_are_read_in_between(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour()
    _, session = pipe(how)
    many = [f"r{i:03d}@example.test" for i in range(150)]
    report = session.send(message(), sender=SENDER, recipients=many)
    assert report.accepted == tuple(many) and len(how.contents) == 1
    groups = how.batches[1:]  # after EHLO; the RSET written after the message may follow
    end = next(i for i, batch in enumerate(groups) if batch[-1] == "DATA")
    assert [len(batch) for batch in groups[: end + 1]] == [
        PIPELINE_WINDOW,
        PIPELINE_WINDOW,
        152 - 2 * PIPELINE_WINDOW,
    ]


def test_a_refused_sender_reads_every_reply_and_keeps_the_connection(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour(mail=[b"550 5.7.1 sender not allowed"])
    server, session = pipe(how)
    with pytest.raises(ConnectionManagerError) as info:
        session.send(message(), sender=SENDER, recipients=RCPTS)
    assert info.value.code == 550 and "refused the sender etl@example.test" in str(info.value)
    # The RCPT and DATA replies (503) were consumed: the next message starts cleanly.
    assert session.send(message(), sender=SENDER, recipients=RCPTS[:1]).accepted == (RCPTS[0],)
    assert server.connections == 1 and len(how.contents) == 1


def test_one_refused_recipient_in_a_batch_is_partly_delivered(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour(refuse={"b@example.test": b"550 5.1.1 no such user"})
    _, session = pipe(how)
    with pytest.raises(SmtpRecipientsRefused) as info:
        session.send(message(), sender=SENDER, recipients=RCPTS)
    report = info.value.report
    assert report.accepted == ("a@example.test", "c@example.test") and list(report.refused) == [
        "b@example.test"
    ]
    assert "partly delivered" in str(info.value) and len(how.contents) == 1


@pytest.mark.parametrize("opens_data", [False, True], ids=["data-refused", "data-opened-anyway"])
def test_every_recipient_refused_sends_no_content(
    opens_data: bool, pipe: Callable[..., tuple[ScriptedServer, SmtpSession]]
) -> None:
    how = Behaviour(
        refuse={r: b"550 5.1.1 no such user" for r in RCPTS}, data_despite_no_rcpt=opens_data
    )
    server, session = pipe(how)
    with pytest.raises(SmtpRecipientsRefused) as info:
        session.send(message(), sender=SENDER, recipients=RCPTS)
    assert "not delivered to anyone" in str(info.value)
    # A server that opened DATA anyway got a lone dot (RFC 2920 §3.1), never the message.
    assert how.contents == ([b""] if opens_data else [])
    how.refuse.clear()
    assert session.send(message(), sender=SENDER, recipients=RCPTS[:1]).reused_connection
    assert server.connections == 1


def test_a_connection_that_went_stale_is_replaced_without_a_retry(
    pipe: Callable[..., tuple[ScriptedServer, SmtpSession]],
) -> None:
    how = Behaviour(
        close_after_rset=True
    )  # answers RSET, then closes: the batch meets a closed socket
    server, session = pipe(how)
    first = session.send(message("first"), sender=SENDER, recipients=RCPTS[:1])
    second = session.send(message("second"), sender=SENDER, recipients=RCPTS[:1])
    assert (first.attempts, second.attempts) == (1, 1) and not second.reused_connection
    assert len(how.contents) == 2 and server.connections == 2


def test_starttls_server_offering_pipelining_gets_every_message_once(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    tls_material: TlsMaterial,
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    handler = RecordingHandler()
    handler.pipelining = True
    handler.refuse["nobody@example.test"] = "550 5.1.1 no such user"
    server = smtp_server_factory(
        handler,
        starttls=tls_material.server_context,
        require_starttls=True,
        ca_file=tls_material.ca_file,
    )
    session = smtp_manager(
        server.connection_string(EnableSsl="True", CaFile=tls_material.ca_file)
    ).acquire()
    for i in range(5):
        assert session.send(message(f"m{i}"), sender=SENDER, recipients=RCPTS).tls is not None
    with pytest.raises(SmtpRecipientsRefused):
        session.send(message("m5"), sender=SENDER, recipients=["nobody@example.test", RCPTS[0]])
    assert [m.rcpt_tos for m in handler.messages] == [RCPTS] * 5 + [[RCPTS[0]]]
    assert all(m.tls for m in handler.messages) and server.connections == 1


def test_a_pipelined_batch_with_a_non_ascii_recipient_is_sent_as_utf8(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    handler = RecordingHandler()
    handler.pipelining = True
    server = smtp_server_factory(handler)
    session = smtp_manager(server.connection_string()).acquire()
    session.send(
        message("utf8"), sender=SENDER, recipients=["jürgen@example.test", "ops@example.test"]
    )
    session.send(message("ascii"), sender=SENDER, recipients=["ops@example.test"])
    assert [m.rcpt_tos for m in handler.messages] == [
        ["jürgen@example.test", "ops@example.test"],
        ["ops@example.test"],
    ]
    assert server.connections == 1
