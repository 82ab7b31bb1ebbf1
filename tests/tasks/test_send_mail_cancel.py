"""Ctrl-C during a Send Mail task's connect or reply wait stops the run within seconds, not after
the SMTP Timeout (100 s by default), through the whole CLI path: signal -> cancel event -> the
task -> the session's network wait.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.smtp_servers import unanswered_listener

ROOT = Path(__file__).resolve().parents[2]
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word (no greeting): a reply wait that never ends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("wait", ["connect", "reply"])
def test_an_interrupt_stops_a_send_that_is_waiting(tmp_path: Path, wait: str) -> None:
    server = unanswered_listener() if wait == "connect" else silent_server()
    with server as port:
        proc = subprocess.Popen(
            [
                *DTSX,
                "run",
                str(ROOT / "samples" / "hello-mail.dtsx"),
                "--conn",
                f"SMTP Connection Manager=SmtpServer=127.0.0.1;Port={port};",
                "--report-json",
                str(tmp_path / "report.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(3)  # start-up, load and plan: the task is then waiting on the server
            assert proc.poll() is None, proc.communicate()
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            # Without cancellation the wait lasts the 100 s Timeout; wide bound for a busy machine.
            assert time.monotonic() - sent < 20
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err
    assert (tmp_path / "report.json").exists()
