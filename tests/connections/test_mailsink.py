"""MailSink and ``dtsx mailsink``: messages stored as .eml files with an envelope sidecar."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from dtsx.connections.base import ConnectionSettings, mail_sink_redirect
from dtsx.mailsink import MailSink
from dtsx.connections.smtp import SmtpConnectionManager
from dtsx.engine.errors import ConnectionManagerError


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "etl@example.test", "ops@example.test", subject
    msg.set_content("Grüße aus dem Paket\n.leading dot\n")
    return msg


def send_all(port: int, subjects: list[str], bcc: str | None = None) -> None:
    manager = SmtpConnectionManager(
        ConnectionSettings("sink", "SMTP", f"SmtpServer=127.0.0.1;Port={port};Timeout=5000;")
    )
    try:
        session = manager.acquire()
        for subject in subjects:
            rcpts = ["ops@example.test"] + ([bcc] if bcc else [])
            session.send(message(subject), sender="etl@example.test", recipients=rcpts)
    finally:
        manager.close()


def test_messages_are_stored_in_order_with_their_envelope(mail_sink: MailSink) -> None:
    assert mail_sink.port > 0  # bound to a port the OS chose
    send_all(mail_sink.port, [f"run {i}" for i in range(3)], bcc="audit@example.test")
    stored = mail_sink.messages()
    assert [p.suffix for p in stored] == [".eml"] * 3 and stored == sorted(stored)
    assert [re.search(rb"Subject: (.*)\r\n", p.read_bytes()).group(1) for p in stored] == [
        b"run 0",
        b"run 1",
        b"run 2",
    ]
    raw = stored[0].read_bytes()
    assert (
        b"\r\n.leading dot\r\n" in raw and "Grüße".encode() in raw
    )  # exactly the bytes sent (8BITMIME)
    envelope = MailSink.envelope(stored[0])
    assert envelope["mail_from"] == "etl@example.test"
    assert envelope["rcpt_tos"] == ["ops@example.test", "audit@example.test"]  # Bcc only lives here
    assert envelope["size"] == len(raw) and envelope["peer"].startswith("127.0.0.1:")
    assert not list(mail_sink.directory.glob(".*.tmp"))


def test_the_sink_offers_pipelining_as_production_servers_do(mail_sink: MailSink) -> None:
    with smtplib.SMTP(
        mail_sink.host, mail_sink.port, local_hostname="client.test", timeout=5
    ) as client:
        code, _ = client.ehlo()
        assert code == 250 and client.has_extn("pipelining") and client.has_extn("8bitmime")
        # Commands written together are answered in order.
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        assert [client.getreply()[0] for _ in range(3)] == [250, 250, 354]
        client.send(b"Subject: together\r\n\r\nbody\r\n.\r\n")
        assert client.getreply()[0] == 250
    [stored] = mail_sink.messages()
    assert b"Subject: together" in stored.read_bytes()


def test_callback_and_restart(tmp_path: Path) -> None:
    seen: list[Path] = []
    with MailSink(tmp_path / "out", on_message=seen.append) as sink:
        send_all(sink.port, ["a"])
    assert seen == MailSink(tmp_path / "out").messages()
    with MailSink(
        tmp_path / "out"
    ) as again:  # a second sink in the same folder keeps the first files
        send_all(again.port, ["b"])
        assert len(again.messages()) == 2


def test_a_port_in_use_is_a_clear_error(mail_sink: MailSink, tmp_path: Path) -> None:
    with pytest.raises(ConnectionManagerError) as info:
        MailSink(tmp_path / "other", port=mail_sink.port).start()
    assert f"127.0.0.1:{mail_sink.port}" in str(info.value) and "choose another port" in str(
        info.value
    )


def _read_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"dtsx mailsink never printed {pattern!r}")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child differs on Windows")
def test_cli_mailsink_runs_until_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "mailsink",
            "--port",
            "0",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        port = int(
            _read_line(proc, r"listening on 127\.0\.0\.1:(\d+); messages are stored in").group(1)
        )
        send_all(port, ["from the cli"])
        received = _read_line(
            proc, r"received (\S+\.eml) from <etl@example\.test> to ops@example\.test"
        )
        assert (folder / received.group(1)).is_file()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_the_dev_smtp_redirect_beats_property_expressions(mail_sink: MailSink) -> None:
    real = ConnectionSettings(
        "SMTP CM",
        "SMTP",
        "SmtpServer=mail.contoso.com;UseWindowsAuthentication=True;EnableSsl=True;",
        properties={"SmtpServer": "relay.contoso.com"},
    )
    manager = SmtpConnectionManager(mail_sink_redirect("127.0.0.1", mail_sink.port)(real))
    try:
        assert (manager.options.server, manager.options.port) == ("127.0.0.1", mail_sink.port)
        manager.acquire().send(
            message("dev"), sender="etl@example.test", recipients=["ops@example.test"]
        )
    finally:
        manager.close()
    assert len(mail_sink.messages()) == 1 and manager.settings.name == "SMTP CM"


def test_the_dev_smtp_redirect_leaves_other_connection_kinds_alone() -> None:
    settings = ConnectionSettings("Input", "FILE", r"C:\data\in.csv")
    assert mail_sink_redirect("127.0.0.1", 2525)(settings) is settings
