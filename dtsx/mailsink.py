"""A local SMTP server that stores every message it receives as a file: ``dtsx mailsink``.

Used to try packages without a real mail server (``dtsx run --dev-smtp DIR``) and by tests. It
is a development tool, not a connection manager, and imports nothing from dtsx but the errors.
Each message is written to ``DIR`` as ``<UTC timestamp>-<pid>-<counter>.eml`` holding the
message bytes exactly as received (after SMTP dot-unstuffing), so the file opens in any mail
client. The SMTP envelope, which no header carries (Bcc recipients, the MAIL FROM), goes in a
sidecar ``<same name>.envelope.json``. Names sort in arrival order, and both files appear
atomically (written under a temporary name, then renamed; the sidecar first), so a reader
polling the folder never sees half a message.

:class:`ServerThread` runs any asyncio protocol (here aiosmtpd's SMTP) on its own event loop in a
daemon thread, bound to a port the OS chose when ``port=0``; the test fixtures reuse it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session
from dtsx.engine.errors import ConnectionManagerError

__all__ = ["MailSink", "ServerThread"]

# Larger than any common server's limit (Exchange Online 150 MB is the exception), so that a dev
# run refuses only what production would refuse too; aiosmtpd's own default is 32 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024

ProtocolFactory = Callable[[asyncio.AbstractEventLoop], asyncio.BaseProtocol]


class ServerThread:
    """An asyncio server on its own loop and thread. ``start()`` returns once it listens."""

    def __init__(
        self,
        factory: ProtocolFactory,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Any = None,
    ) -> None:
        self.factory = factory
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, name=f"smtp-server-{self.host}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConnectionManagerError(
                f"the local server on {self.host}:{self.port} did not start within {timeout:g} s."
            )
        if self._error is not None:
            self._thread.join(timeout)
            err = self._error
            detail = getattr(err, "strerror", None) or str(err)
            raise ConnectionManagerError(
                f"cannot listen on {self.host}:{self.port} ({detail}); choose another port or "
                "host.",
                host=self.host,
                port=self.port,
            ) from err

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(
                    lambda: self.factory(loop), self.host, self.port, ssl=self.ssl_context
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:  # handlers blocked in a sleep (fault tests) must not keep the loop
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        except RuntimeError:  # the loop already closed
            pass
        thread.join(timeout)


class _SinkHandler:
    """aiosmtpd handler: every accepted message becomes a file pair in the sink's folder."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # Production servers (Exchange, Postfix) offer PIPELINING, so a dev run should exercise
        # the same client path; aiosmtpd reads commands in order from its stream, which is all
        # RFC 2920 asks of the server.
        session.host_name = hostname  # this hook replaces aiosmtpd's own bookkeeping
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            path = self.sink._store(envelope, session)
        except OSError as exc:
            return f"451 4.3.0 cannot store the message ({exc.strerror or exc})"
        return f"250 2.0.0 OK stored as {path.name}"


class MailSink:
    """An SMTP server on loopback that stores messages in ``directory``. See the module doc."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        on_message: Callable[[Path], None] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.on_message = on_message
        self.max_message_size = max_message_size  # bytes, advertised as SIZE; 0 means no limit
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: ServerThread | None = None

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        # hostname is given so aiosmtpd does not call getfqdn(), which can stall on DNS.
        return SMTP(
            _SinkHandler(self),
            hostname="dtsx-mailsink",
            ident="dtsx mailsink",
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=self.max_message_size,
            loop=loop,
        )

    def start(self) -> None:
        """Listen; afterwards ``port`` is the real port (useful with ``port=0``).

        Raises ConnectionManagerError, naming the folder and why, when messages could not be
        stored there (so that this shows at start, not as a refusal of every message)."""
        self._check_directory()
        self._thread = ServerThread(self._protocol, self.host, self.port)
        self._thread.start()
        self.port = self._thread.port

    def _check_directory(self) -> None:
        folder = self.directory
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):  # can this user create files there?
                pass
        except FileExistsError as exc:
            raise ConnectionManagerError(
                f"the mail sink folder {folder} cannot be used: it exists and is not a folder; "
                "give the path of a folder (it is created if missing)."
            ) from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            reason = reason[:1].lower() + reason[1:]  # "Not a directory" inside a sentence
            named = exc.filename and str(exc.filename) != str(folder)
            raise ConnectionManagerError(
                f"the mail sink folder {folder} cannot be used: {reason}"
                f"{f' ({exc.filename})' if named else ''}; "
                "give a folder this user can create and write to."
            ) from exc

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def messages(self) -> list[Path]:
        """The stored messages, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    @staticmethod
    def envelope(message: Path) -> dict[str, Any]:
        """The envelope stored beside a message: mail_from, rcpt_tos, peer, received, helo."""
        sidecar = message.with_name(message.stem + ".envelope.json")
        return dict(json.loads(sidecar.read_text(encoding="utf-8")))

    def _store(self, envelope: Envelope, session: Session) -> Path:
        now = datetime.now(UTC)
        with self._lock:
            number = next(self._counter)
        stem = f"{now:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{number:06d}"
        peer = session.peer
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            "helo": session.host_name,
            "received": now.isoformat(),
            "size": len(envelope.original_content or b""),
        }
        _write_atomic(
            self.directory / f"{stem}.envelope.json", json.dumps(meta, indent=2).encode("utf-8")
        )
        path = self.directory / f"{stem}.eml"
        _write_atomic(path, envelope.original_content or b"")
        if self.on_message is not None:
            self.on_message(path)
        return path


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "xb") as handle:
        handle.write(data)
    os.replace(tmp, path)
