"""Connection reuse on the wire: RSET between messages, one command in flight, stale connections.

The session writes RSET as soon as a message is accepted and reads its reply when the next
message (or close) comes, so these tests watch the exact command sequence a real server sees.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import SmtpConnectionManager, SmtpSession, _stuff

from tests.smtp_servers import LoopbackSmtpServer, ScriptedServer, read_data

# What the server did with every command, per connection: "MAIL", "RSET", ... and "PIPELINED"
# when a command arrived while RSET was still unanswered.
Transcript = list[list[str]]


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "etl@example.test"
    msg["To"] = "ops@example.test"
    msg["Subject"] = subject
    msg.set_content("body\n")
    return msg


def recording_script(
    transcript: Transcript,
    *,
    after_rset: str = "",
    mail_421_on_reuse: bool = False,
    close_after_accept: bool = False,
) -> Callable[..., object]:
    """A correct SMTP server that records commands; optional faults for a reused connection.

    ``after_rset="close"``: answer RSET, then close. ``after_rset="421"``: answer RSET with 421
    and close. ``mail_421_on_reuse``: answer the MAIL after a RSET with 421 and close.
    ``close_after_accept``: close right after accepting a message.
    """

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
    ) -> None:
        seen: list[str] = []
        transcript.append(seen)
        writer.write(b"220 recording.test ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].decode("ascii", "replace").upper()
            seen.append(verb)
            if verb == "EHLO":
                writer.write(b"250-recording.test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            elif verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                srv.messages.append(await read_data(reader))
                writer.write(b"250 2.0.0 OK queued\r\n")
                if close_after_accept:
                    await writer.drain()
                    return
            elif verb == "RSET":
                # A client that pipelined would have its next command here already.
                try:
                    early = await asyncio.wait_for(reader.readline(), timeout=0.1)
                except TimeoutError:
                    early = b""
                if early:
                    seen.append("PIPELINED")
                if after_rset == "421":
                    writer.write(b"421 4.3.2 Shutting down\r\n")
                    await writer.drain()
                    return
                writer.write(b"250 2.0.0 OK\r\n")
                if after_rset == "close":
                    await writer.drain()
                    return
            elif verb == "MAIL" and mail_421_on_reuse and "RSET" in seen:
                writer.write(b"421 4.3.2 Idle too long\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"250 2.0.0 OK\r\n")
            await writer.drain()

    return script


def _send(session: SmtpSession, subject: str) -> bool:
    report = session.send(
        message(subject), sender="etl@example.test", recipients=["ops@example.test"]
    )
    assert report.accepted == ("ops@example.test",) and report.attempts == 1
    return report.reused_connection


def test_rset_between_messages_one_command_at_a_time_and_quit_at_close(
    scripted_smtp_factory: Callable[..., ScriptedServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    transcript: Transcript = []
    server = scripted_smtp_factory(recording_script(transcript))
    manager = smtp_manager(server.connection_string())
    session = manager.acquire()
    assert [_send(session, f"m{i}") for i in range(3)] == [False, True, True]
    manager.close()
    one = ["MAIL", "RCPT", "DATA", "RSET"]
    assert transcript == [["EHLO", *one, *one, *one, "QUIT"]]  # nothing pipelined, RSET after each
    assert len(server.messages) == 3 and server.connections == 1


@pytest.mark.parametrize("fault", ["rset-then-close", "rset-421", "close-after-accept", "mail-421"])
def test_a_reused_connection_that_went_away_is_replaced_without_a_retry(
    fault: str,
    scripted_smtp_factory: Callable[..., ScriptedServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    transcript: Transcript = []
    faulty = recording_script(
        transcript,
        after_rset={"rset-then-close": "close", "rset-421": "421"}.get(fault, ""),
        mail_421_on_reuse=fault == "mail-421",
        close_after_accept=fault == "close-after-accept",
    )
    server = scripted_smtp_factory(faulty, faulty, faulty)
    session = smtp_manager(server.connection_string()).acquire()
    assert (
        _send(session, "first") is False
    )  # accepted, whatever happens to the connection afterwards
    assert _send(session, "second") is False  # a fresh connection, first attempt, no backoff
    assert len(server.messages) == 2 and server.connections == 2  # each message exactly once
    assert all("PIPELINED" not in seen for seen in transcript)


def test_smtputf8_ends_with_its_transaction(
    smtp_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    session = smtp_manager(smtp_server.connection_string()).acquire()
    session.send(message("utf8"), sender="etl@example.test", recipients=["jürgen@example.test"])
    report = session.send(
        message("ascii"), sender="etl@example.test", recipients=["ops@example.test"]
    )
    assert report.reused_connection and smtp_server.connections == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["jürgen@example.test"],
        ["ops@example.test"],
    ]


def _reference_stuff(data: bytes) -> bytes:
    """The plain two-regex form the fast paths must agree with."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return (data if data.endswith(b"\r\n") else data + b"\r\n") + b".\r\n"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a\r\nb\r\n",
        b"a\nb",
        b"a\rb\r\n",
        b"a\r\r\nb",
        b"a\n\r\nb",
        b".a\r\n",
        b"a\r\n.\r\n..b\r\n",
        b"a\n.b\n",
        b"a\r.b",
        b"\r\n.",
        b"x" * 100 + b"\r\n.\r\n" * 3,
        "Grüße\r\n.\r\n".encode(),
    ],
)
def test_stuffing_fast_paths_match_the_plain_rules(data: bytes) -> None:
    assert _stuff(data) == _reference_stuff(data)
