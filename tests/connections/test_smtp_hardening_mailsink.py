"""Issue 9 (smaller items): the mail sink on an unusable folder, its message-size limit, and what
a server's size limit (SIZE, 552) looks like to the user.

Before: ``dtsx mailsink --dir`` on an unusable folder was a traceback; the sink capped messages
at aiosmtpd's 32 MiB; and a too-large message was blamed on the sender's address.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from dtsx.mailsink import MailSink
from dtsx.connections.smtp import SmtpSession
from dtsx.engine.errors import ConnectionManagerError, DtsxError

from tests.smtp_servers import LoopbackSmtpServer, RecordingHandler

SENDER, RCPT = "etl@example.test", "ops@example.test"


def _message(body_bytes: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, RCPT, "big"
    msg.set_content(("y" * 75 + "\n") * (body_bytes // 76 + 1))
    return msg


def test_an_unusable_folder_is_one_dtsx_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for folder, why in [
        (blocker, "it exists and is not a folder"),
        (blocker / "inbox", "not a directory"),
    ]:
        with pytest.raises(DtsxError) as info:
            MailSink(folder).start()
        assert isinstance(info.value, ConnectionManagerError)
        assert f"the mail sink folder {folder} cannot be used: {why}" in str(info.value)
        assert isinstance(info.value.__cause__, OSError)  # kept for --debug


def test_cli_mailsink_on_an_unusable_folder_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "mailsink",
            "--port",
            "0",
            "--dir",
            str(blocker / "inbox"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert (
        f"the mail sink folder {blocker / 'inbox'} cannot be used: not a directory" in proc.stderr
    )


def test_the_sink_takes_more_than_32_mib_and_its_limit_is_an_option(tmp_path: Path) -> None:
    with (
        MailSink(tmp_path / "default") as sink,
        smtplib.SMTP(sink.host, sink.port, timeout=5) as client,
    ):
        client.ehlo()
        assert int(client.esmtp_features["size"]) >= 100 * 1024 * 1024
    with (
        MailSink(tmp_path / "small", max_message_size=4096) as sink,
        smtplib.SMTP(sink.host, sink.port, timeout=5) as client,
    ):
        client.ehlo()
        assert client.esmtp_features["size"] == "4096"


def test_over_the_advertised_size_is_refused_before_anything_is_sent(
    tmp_path: Path, open_session: Callable[[str], SmtpSession]
) -> None:
    with MailSink(tmp_path / "small", max_message_size=4096) as sink:
        session = open_session(f"SmtpServer=127.0.0.1;Port={sink.port};Timeout=5000;")
        with pytest.raises(ConnectionManagerError) as info:
            session.send(_message(20_000), sender=SENDER, recipients=[RCPT])
        text = str(info.value)
        assert "cannot take this message: the message is larger than the server accepts (" in text
        assert ", limit 4096)" in text and "sender" not in text and "relay" not in text
        assert sink.messages() == []
        session.send(_message(1000), sender=SENDER, recipients=[RCPT])  # a small one still goes
        assert len(sink.messages()) == 1


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
def test_a_552_names_the_size_not_the_sender(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
    stage: str,
) -> None:
    handler = RecordingHandler()
    refusal = "552 5.3.4 Message size exceeds fixed maximum message size"
    if stage == "MAIL":
        handler.mail_replies = [refusal]
    else:
        handler.data_replies = [refusal]
    server = smtp_server_factory(handler)
    with pytest.raises(ConnectionManagerError) as info:
        open_session(server.connection_string()).send(
            _message(2000), sender=SENDER, recipients=[RCPT]
        )
    text = str(info.value)
    assert "cannot take this message: the message is larger than the server accepts (" in text
    assert "bytes, limit 33554432)" in text and refusal in text
    assert "refused the sender" not in text and "check the address" not in text
    assert info.value.code == 552


def test_cli_mailsink_takes_its_size_limit_as_an_option(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "mailsink",
            "--port",
            "0",
            "--max-size",
            "5000",
            "--dir",
            str(tmp_path / "inbox"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "dtsx mailsink: listening on 127.0.0.1:PORT; ..."
        port = int(first.split("listening on 127.0.0.1:")[1].split(";")[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "5000"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
