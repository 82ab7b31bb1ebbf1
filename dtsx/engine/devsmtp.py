"""``dtsx run --dev-smtp DIR``: the development mail sink, run as ``dtsx mailsink`` in a child
process for the length of one run.

Why a child process rather than a thread: the sink's libraries (asyncio, aiosmtpd) load in the
child while this process loads and plans the package, on another core, instead of adding their
import to every development run (about a fifth of hello-mail's start-up); and the sink's event
loop does not compete with the run's tasks for this interpreter's lock.

The child runs :func:`dtsx.mailsink.serve_for_parent`, which imports only the sink. It dies with
dtsx: it runs in a session of its own (a Ctrl-C at the terminal is dtsx's to
handle: the sink must keep taking the mail of tasks that are winding down), and it stops when its
standard input closes, which the kernel does when dtsx exits, however it exits (SIGKILL
included). Only the standard library is imported here.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from dtsx.engine.errors import DtsxError

__all__ = ["DevSmtp", "DevSmtpError"]

# How long the child may take to start listening (it imports the sink's libraries first).
START_TIMEOUT_S = 30.0
# How long it may take to stop once told (it finishes a message it is receiving).
STOP_TIMEOUT_S = 10.0

_CHILD = (
    "import sys\n"
    "from dtsx.mailsink import serve_for_parent\n"
    "sys.exit(serve_for_parent(sys.argv[1]))\n"
)
_LISTENING = re.compile(r"listening on \S+:(\d+);")


class DevSmtpError(DtsxError):
    """The development sink could not be started."""


class DevSmtp:
    """One run's development sink: started at once, its port asked for when the run needs it."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory).resolve()
        self.stored = 0  # messages the sink stored during this run
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._port: int | None = None
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, directory],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._said: list[str] = []  # the child's last lines on stderr (its error, if any)
        self._reader = threading.Thread(target=self._read, name="dtsx-dev-smtp", daemon=True)
        self._reader.start()
        # Drained as it comes, so that nothing the child logs can fill the pipe and stall it.
        self._errors = threading.Thread(target=self._read_errors, name="dtsx-dev-smtp-err")
        self._errors.daemon = True
        self._errors.start()

    def port(self) -> int:
        """The port the sink listens on (127.0.0.1), once it does; DevSmtpError if it cannot."""
        if self._port is None:
            self._port = self._wait_listening()
        return self._port

    def stop(self) -> int:
        """Stop the sink (it finishes a message in progress) and return how many it stored."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()  # the child's signal to stop
            except OSError:
                pass
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._reader.join(STOP_TIMEOUT_S)
        self._errors.join(STOP_TIMEOUT_S)
        while not self._lines.empty():
            self._take(self._lines.get_nowait())
        return self.stored

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)  # the child closed its output: it has exited

    def _read_errors(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._said = [*self._said[-19:], line.rstrip("\n")]

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise DevSmtpError(
                    f"the local SMTP sink did not start within {START_TIMEOUT_S:.0f} s"
                ) from None
            if line is None:
                raise DevSmtpError(self._why_not_started())
            found = _LISTENING.search(line)
            if found:
                return int(found.group(1))

    def _take(self, line: str | None) -> None:
        if line is not None and line.startswith("received "):
            self.stored += 1

    def _why_not_started(self) -> str:
        self._proc.wait(STOP_TIMEOUT_S)
        self._errors.join(STOP_TIMEOUT_S)
        said = [line for line in self._said if line.strip()]
        # The child's own sentence (its last line, without its program prefix).
        last = said[-1] if said else f"it exited with status {self._proc.returncode}"
        return "cannot start the local SMTP sink: " + re.sub(r"^(dtsx: )?(mailsink: )?", "", last)
