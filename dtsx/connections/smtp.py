"""The SMTP connection manager (CreationName ``SMTP``) and the mail session it hands to tasks.

``SmtpConnectionManager.acquire()`` returns one :class:`SmtpSession` per run. The session keeps
its SMTP connections open for the next messages (``RSET`` between them, a new connection when
the server said 421 or dropped it; MAIL, RCPT and DATA written together where the server offers
PIPELINING); sends that overlap take their own connection from a small pool (``MaxConnections``).
The Timeout is a deadline for the whole send, and a cancel event stops any network wait,
because every wait of a connection asks one budget (:class:`_Budget`) how long it may last.
Connections are protected with STARTTLS or implicit TLS with certificate checks; the session
authenticates as SSIS does (anonymous, or Windows: GSSAPI/SPNEGO then NTLM) or with an explicit
user name, retries transient failures with bounded backoff, and never sends a message again once
its final dot is out (the server may have queued it). Every failure becomes a ConnectionManagerError
whose text is one sentence: host:port, the server's reply, and what to do.

This module (with ``smtp_auth``) is the only place in dtsx that imports smtplib, ssl or spnego.
"""

from __future__ import annotations

import copy
import dataclasses
import email.generator
import errno
import email.message
import email.policy
import functools
import io
import logging
import os
import re
import selectors
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dtsx.connections.base import (
    ConnectionManager,
    ConnectionSettings,
    MailSession,
    register_connection,
)
from dtsx.connections.smtp_auth import AuthProblem, authenticate, scrub_credentials
from dtsx.connections.smtp_options import (
    SMTP_KEYS,
    Security,
    SmtpOptions,
    parse_smtp_options,
    smtp_option_problems,
)
from dtsx.engine.errors import ConnectionManagerError, DtsxError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "SendReport",
    "SmtpConnectionManager",
    "SmtpRecipientsRefused",
    "SmtpReply",
    "SmtpSession",
]

log = logging.getLogger("dtsx.connections.smtp")
_T = TypeVar("_T")

MAX_ATTEMPTS = 3
# Commands written before their replies are read, when pipelining: small enough that the
# replies (about 30 bytes each) can never fill the server's socket buffer while it waits on us.
PIPELINE_WINDOW = 64
FIRST_RETRY_DELAY = 0.5  # seconds; doubles each retry, and no retry starts past the Timeout
WAIT_SLICE = 0.2  # seconds: the longest a network wait runs without looking at the cancel event
BOUND_DRIFT = 0.05  # seconds a socket timeout may lag the deadline before it is set again


@dataclass(frozen=True)
class SmtpReply:
    """One server reply: the numeric code and its text (continuation lines joined)."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class SendReport:
    """What happened to one message.

    ``accepted``: recipients the server took the message for (it accepted their RCPT and the
    data). ``refused``: recipient -> the server's final reply for those it did not. A send that
    returns normally has nothing refused; refusals raise :class:`SmtpRecipientsRefused`, which
    carries the report.
    """

    server: str
    accepted: tuple[str, ...]
    refused: Mapping[str, SmtpReply] = field(default_factory=lambda: MappingProxyType({}))
    attempts: int = 1
    reused_connection: bool = False
    mechanism: str | None = None
    tls: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def delivered(self) -> bool:
        return bool(self.accepted)

    @property
    def partly_delivered(self) -> bool:
        return bool(self.accepted) and bool(self.refused)


class SmtpRecipientsRefused(ConnectionManagerError):
    """The server refused some or all recipients; ``report`` says which, and who got the message."""

    def __init__(self, message: str, report: SendReport) -> None:
        first = next(iter(report.refused.values()), None)
        host, _, port = report.server.rpartition(":")
        super().__init__(
            message,
            host=host.strip("[]"),
            port=int(port) if port.isdigit() else None,
            code=first.code if first else None,
            reply=str(first) if first else None,
        )
        self.report = report


class _Failure(Exception):
    """Internal: one failed step, classified. Becomes a ConnectionManagerError at the boundary."""

    def __init__(
        self,
        what: str,
        advice: str,
        *,
        reply: SmtpReply | None = None,
        transient: bool = False,
        drop: bool = False,
        sentence: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice
        self.sentence = sentence  # a DtsxError's own sentence, said as it is instead of what/advice
        self.reply = reply
        self.transient = transient
        self.drop = drop or (reply is not None and reply.code == 421)


_UNSAFE = re.compile(r"[\r\n<>]")
_quoted = functools.lru_cache(maxsize=1024)(
    smtplib.quoteaddr
)  # pure; parseaddr is costly per command


def _command_line(
    conn: smtplib.SMTP, verb: str, key: str, address: str, options: Sequence[str]
) -> str:
    """MAIL FROM / RCPT TO as smtplib's mail() and rcpt() write them (without CRLF), minus their
    per-call address parsing. SMTPUTF8 switches the command encoding as smtplib does; send()
    has already checked that the server offers it."""
    optionlist = ""
    if options and conn.does_esmtp:
        if verb == "mail" and any(o.lower() == "smtputf8" for o in options):
            conn.command_encoding = "utf-8"
        optionlist = " " + " ".join(options)
    return f"{verb} {key}:{_quoted(address)}{optionlist}"


def _command(
    conn: smtplib.SMTP, verb: str, key: str, address: str, options: Sequence[str]
) -> tuple[int, bytes]:
    """One MAIL FROM / RCPT TO and its reply."""
    conn.send(_command_line(conn, verb, key, address, options) + "\r\n")
    return conn.getreply()


def _reply(code: int, resp: bytes | str) -> SmtpReply:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
    return SmtpReply(code, " ".join(text.split()))


def _timed_out(exc: BaseException) -> bool:
    """smtplib turns a socket timeout into SMTPServerDisconnected; look at the cause too."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (TimeoutError, socket.timeout)) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Link:
    """One open SMTP connection and what was learnt on it."""

    conn: smtplib.SMTP
    tls: str | None
    mechanism: str | None
    warnings: list[str]
    budget: _Budget  # what its socket may wait; renewed by each send that takes the connection
    used: bool = False
    # The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go out together.
    pipelining: bool = False
    # RSET was written after the last transaction and its reply not read yet: the round trip
    # overlaps whatever the caller does before its next message (see _rset_later).
    rset_pending: bool = False


class _StaleLink(Exception):
    """Internal: a reused connection turned out closed (or said 421) at its first command."""


@dataclass
class _Delivery:
    """Progress of one message across attempts: who still waits, who got it, who was refused."""

    pending: list[str]
    delivered: list[str] = field(default_factory=list)
    refused: dict[str, SmtpReply] = field(default_factory=dict)
    deferred: dict[str, SmtpReply] = field(default_factory=dict)
    attempts: int = 0
    reused: bool = False
    size: int = 0  # bytes of the message as sent (before dot-stuffing), for SIZE and 552
    link: _Link | None = None  # the connection of the last attempt, for the report


def _local_name() -> str:
    """EHLO name: the host name as .NET sends it, without a DNS lookup (getfqdn can stall)."""
    name = socket.gethostname()
    return name if re.fullmatch(r"[A-Za-z0-9.-]+", name or "") else "localhost"


# -- every network wait bounded by the send's deadline and the run's cancel event ---------------


class _Canceled(OSError):
    """Internal: the run was canceled during a network wait. An OSError, so that smtplib and every
    handler here treat the connection as dead; _classify tells it from a real failure."""


class _Budget:
    """What a connection may still wait: until ``deadline`` (time.monotonic), unless ``cancel`` is
    set.

    A socket timeout only bounds one system call, so a server that drips a reply line by line, or
    a send queued behind another, could outlast the Timeout many times over; every wait asks here
    first instead. With a cancel event, waits are cut into WAIT_SLICE pieces so that a cancel is
    seen within one slice even while the server says nothing.
    """

    __slots__ = ("deadline", "cancel")

    def __init__(self, deadline: float, cancel: threading.Event | None = None) -> None:
        self.deadline = deadline
        self.cancel = cancel

    def wait(self) -> float:
        """Seconds the next wait may take; raises _Canceled or TimeoutError when none are left."""
        cancel = self.cancel
        if cancel is not None and cancel.is_set():
            raise _Canceled("the run was canceled")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        return remaining if cancel is None else min(remaining, WAIT_SLICE)


class _BoundedIO:
    """Socket mixin: reads, writes and the TLS handshake wait at most what the budget allows.
    A slice that ends without data is simply waited again; a spent budget raises."""

    budget: _Budget
    # The timeout last set on the socket, to skip a system call when it barely changed.
    _bound = -1.0
    # The common path: a send's commands and replies follow each other within milliseconds, and
    # asking the budget before each of them cost more than the I/O. Until _fresh_until
    # (time.monotonic), and while the budget keeps the deadline and cancel event it was asked
    # with, the bound is still within BOUND_DRIFT of what the budget allows and the cancel event
    # was looked at less than BOUND_DRIFT ago, so the budget need not be asked again: every wait
    # stays bounded exactly as if it were.
    _fresh_until = 0.0
    _fresh_deadline = 0.0
    _fresh_cancel: threading.Event | None = None

    def _fresh(self) -> bool:
        """Whether the bound last set still holds (see ``_fresh_until``)."""
        budget = self.budget
        return (
            time.monotonic() < self._fresh_until
            and budget.deadline == self._fresh_deadline
            and budget.cancel is self._fresh_cancel
        )

    def _limit(self) -> None:
        if self._fresh():
            return
        budget = self.budget
        now = time.monotonic()
        wait = budget.wait()
        gap = abs(wait - self._bound)
        if gap > BOUND_DRIFT:
            self.settimeout(wait)  # type: ignore[attr-defined]
            self._bound, gap = wait, 0.0
        # The budget shrinks by the time that passes (never faster), so the bound drifts out of
        # BOUND_DRIFT no sooner than this.
        self._fresh_until = now + BOUND_DRIFT - gap
        self._fresh_deadline, self._fresh_cancel = budget.deadline, budget.cancel

    def recv_into(self, *args: object) -> int:
        # Speed: while the bound is fresh, the read is tried once before _read's loop (which
        # asks the budget again after a timed-out slice, as it always did): the replies of every
        # message skip the loop's calls.
        if self._fresh():
            try:
                return super().recv_into(*args)  # type: ignore[misc,no-any-return]
            except TimeoutError:
                pass
        return self._read(super().recv_into, *args)  # type: ignore[misc,no-any-return]

    def recv(self, *args: object) -> bytes:
        return self._read(super().recv, *args)  # type: ignore[misc,no-any-return]

    def _read(self, read: Callable[..., _T], *args: object) -> _T:
        while True:
            try:
                self._limit()
            except _Canceled:
                # Cancel stops waiting, not reading: a reply already here (the 250 for a message
                # the server has taken) is still read, so that the send reports it delivered.
                self.settimeout(0.0)  # type: ignore[attr-defined]
                self._bound, self._fresh_until = 0.0, 0.0
                try:
                    return read(*args)
                except OSError as exc:  # nothing there yet (BlockingIOError, SSLWantReadError)
                    raise _Canceled("the run was canceled") from exc
            try:
                return read(*args)
            except TimeoutError:
                continue

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        # Built on send(): a timed-out send() wrote nothing, so the same bytes are offered again
        # (sendall() itself cannot say how much went out before it timed out).
        self._limit()
        try:
            sent = self.send(data, flags) if flags else self.send(data)  # type: ignore[attr-defined]
        except TimeoutError:
            sent = 0
        if isinstance(data, bytes) and sent == len(data):
            return  # the common case, a command or a message out in one call: no memoryview
        with memoryview(data) as view, view.cast("B") as rest:
            while sent < len(rest):
                self._limit()
                try:
                    sent += self.send(rest[sent:], flags) if flags else self.send(rest[sent:])  # type: ignore[attr-defined]
                except TimeoutError:
                    continue


class _BoundedSocket(_BoundedIO, socket.socket):
    """A TCP socket whose connect, like every other wait, is bounded by its budget."""

    def connect_within(self, address: tuple[Any, ...]) -> None:
        self.setblocking(False)
        code = self.connect_ex(address)
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_WRITE)
            while code in _IN_PROGRESS:
                if selector.select(self.budget.wait()):
                    code = self.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(
                code, os.strerror(code)
            )  # OSError picks the subclass (ConnectionRefusedError...)
        self._bound, self._fresh_until = -1.0, 0.0  # connect left the socket non-blocking


class _BoundedSSLSocket(_BoundedIO, ssl.SSLSocket):
    """The TLS socket of a connection (``SSLContext.sslsocket_class``); the handshake is bounded
    too."""

    def do_handshake(self, block: bool = False) -> None:
        while True:
            self._limit()
            try:
                return super().do_handshake(block)
            except TimeoutError:
                continue


_IN_PROGRESS = frozenset(
    {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, errno.EINTR}
)


@dataclass(frozen=True)
class _Tls:
    """What smtplib's starttls() (and implicit TLS) wrap a socket with: the checked context, with
    the handshake run under the connection's budget."""

    context: ssl.SSLContext

    def wrap_socket(
        self, sock: _BoundedSocket, server_hostname: str | None = None
    ) -> ssl.SSLSocket:
        budget = sock.budget
        tls = self.context.wrap_socket(
            sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
        assert isinstance(tls, _BoundedSSLSocket)
        tls.budget = budget
        tls.do_handshake()
        return tls


class _Client(smtplib.SMTP):
    """smtplib's client on a bounded socket (and, for implicit TLS, wrapped before the greeting)."""

    def __init__(self, host: str, budget: _Budget, implicit_tls: _Tls | None) -> None:
        self.budget = budget
        self.implicit_tls = implicit_tls
        super().__init__(local_hostname=_local_name())  # no host: nothing connects yet
        self._host = host  # the name starttls() checks the certificate against

    def _get_socket(self, host: str, port: int, timeout: object) -> socket.socket:
        sock = _open_socket(host, port, self.budget)
        if self.implicit_tls is None:
            return sock
        try:
            return self.implicit_tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def _open_socket(host: str, port: int, budget: _Budget) -> _BoundedSocket:
    """A connected socket to the first address of ``host`` that answers (as create_connection)."""
    last: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = _BoundedSocket(family, kind, proto)
        sock.budget = budget
        try:
            sock.connect_within(address)
            return sock
        except (TimeoutError, _Canceled):
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"{host} has no address")


def _canceled(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _Canceled):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SmtpSession:
    """A thread-safe mail session. Built by the manager.

    Connections are kept open for the next message (RSET between messages). Sends that overlap
    (parallel Send Mail tasks) each take their own connection, up to ``MaxConnections``; beyond
    that a send waits for a free one, within its Timeout. Sequential sends reuse one connection.

    The session owns the retries and the boundary where failures become the user's sentences;
    its :class:`_Pool` owns the connections, its :class:`_Mailer` one transaction on one of them.
    """

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._pool = _Pool(options)
        self._mailer = _Mailer(options)

    @property
    def connections_opened(self) -> int:
        return self._pool.connections_opened

    @property
    def messages_sent(self) -> int:
        return self._mailer.messages_sent

    def __repr__(self) -> str:
        count = self._pool.count
        state = f"{count} open" if count else "idle"
        return (
            f"SmtpSession({self.options.address}, security={self.options.security.value}, {state})"
        )

    # -- public -----------------------------------------------------------------------------

    def send(
        self,
        message: email.message.Message,
        *,
        sender: str,
        recipients: Sequence[str],
        cancel: threading.Event | None = None,
    ) -> SendReport:
        """Send one message to ``recipients`` (the envelope; Bcc included) from ``sender``.

        Returns a report when every recipient accepted it. Raises SmtpRecipientsRefused when
        some were refused (its report says who got the message), ConnectionManagerError otherwise.
        The Timeout bounds the whole call; setting ``cancel`` (the task's cancel event) stops any
        network wait within a fraction of a second. A message the server has accepted is
        reported as sent even if ``cancel`` is set afterwards.
        """
        budget = _Budget(time.monotonic() + self.options.timeout, cancel)
        wanted = _unique(recipients)
        if not wanted:
            raise self._error(
                _Failure(
                    "was given a message with no recipient",
                    "add at least one address to To, CC or BCC",
                )
            )
        bad = next((a for a in [sender, *wanted] if _UNSAFE.search(a)), None)
        if bad is not None:  # a line break in an address would inject SMTP commands
            raise self._error(
                _Failure(
                    f"was given the malformed address {bad!r}",
                    "write a plain address such as name@example.com",
                )
            )
        state = _Delivery(pending=wanted)
        try:
            self._deliver(message, sender, state, budget)
        except _Failure as failure:
            raise self._error(failure, state) from failure
        return self._finish(state)

    def connect(self, *, cancel: threading.Event | None = None) -> None:
        """Open (or check) a connection now: greeting, EHLO, TLS and AUTH, without sending."""
        budget = _Budget(time.monotonic() + self.options.timeout, cancel)
        try:
            link = self._pool.checkout(budget)
        except _Failure as failure:
            raise self._error(failure) from failure
        except (smtplib.SMTPException, OSError) as exc:
            classified = _classify(self.options, exc, "while connecting", connecting=True)
            raise self._error(classified) from classified
        self._pool.checkin(link)

    def close(self) -> None:
        """QUIT and close the idle connections. Never raises."""
        self._pool.close()

    # -- delivery with retries ----------------------------------------------------------------

    def _deliver(
        self, message: email.message.Message, sender: str, state: _Delivery, budget: _Budget
    ) -> None:
        delay = FIRST_RETRY_DELAY
        while True:
            state.attempts += 1
            failure = self._attempt(message, sender, state, budget)
            if failure is None:
                return
            if not failure.transient:
                raise failure
            if state.attempts >= MAX_ATTEMPTS or time.monotonic() + delay >= budget.deadline:
                for rcpt, reply in state.deferred.items():
                    state.refused[rcpt] = reply
                state.pending = [r for r in state.pending if r not in state.deferred]
                if state.deferred and not state.pending:
                    return  # only temporarily refused recipients remain: reported as refused
                raise failure
            log.info("SMTP %s: %s; retrying in %.1f s", self.options.address, failure.what, delay)
            if budget.cancel is not None and budget.cancel.wait(delay):
                raise _canceled_failure()
            if budget.cancel is None:
                time.sleep(delay)
            delay *= 2

    def _attempt(
        self, message: email.message.Message, sender: str, state: _Delivery, budget: _Budget
    ) -> _Failure | None:
        """One transaction. None when nothing is left to do; else the (classified) failure.
        The connection goes back to the pool, or is closed when the failure says so (a half-read
        reply must not meet the next message's RSET)."""
        link: _Link | None = None
        failure: _Failure | None = None
        try:
            link = self._pool.checkout(budget, state)
            try:
                self._mailer.transaction(link, message, sender, state, budget.deadline)
            except _StaleLink:
                # As when the RSET before a reused message fails: reconnect at once, no attempt
                # spent.
                self._pool.discard(link)
                link, state.reused = None, False
                link = self._pool.checkout(budget, state, reuse=False)
                self._mailer.transaction(link, message, sender, state, budget.deadline)
        except _Failure as exc:
            failure = exc
        except (smtplib.SMTPException, OSError) as exc:
            failure = _classify(self.options, exc, "during the mail transaction")
        except Exception as exc:
            log.debug("SMTP %s: unexpected failure", self.options.address, exc_info=True)
            failure = _Failure(
                f"could not be used because of an internal error ({type(exc).__name__}: {exc})",
                "please report this as a dtsx bug",
                drop=True,
            )
            failure.__cause__ = exc  # the bug's traceback travels with the error (--debug)
        if link is not None and failure is not None and failure.drop:
            self._pool.discard(link)
        elif link is not None:
            self._pool.checkin(link)
        if failure is not None:
            return failure
        if not state.pending:
            return None
        shown = ", ".join(
            f"{r} ({state.deferred[r]})" for r in state.pending if r in state.deferred
        )
        return _Failure(
            f"deferred recipients {shown}",
            "try again later",
            transient=True,
            reply=next(iter(state.deferred.values()), None),
        )

    # -- what the user is told ----------------------------------------------------------------

    def _error(self, failure: _Failure, state: _Delivery | None = None) -> ConnectionManagerError:
        opts = self.options
        if failure.sentence is not None:
            sentence = failure.sentence.rstrip(".")
            text = f"the message was not sent to SMTP server {opts.address}: {sentence}."
            return ConnectionManagerError(self._scrub(text), host=opts.server, port=opts.port)
        text = f"SMTP server {opts.address} {failure.what}"
        if failure.reply is not None:
            text += f": the server replied '{failure.reply}'"
        if state is not None and state.attempts > 1 and failure.transient:
            text += f" (after {state.attempts} attempts)"
        if state is not None and state.delivered:
            text += f"; the message was partly delivered, to {', '.join(state.delivered)} only"
        text = f"{text}; {failure.advice}."
        code = failure.reply.code if failure.reply else None
        reply = str(failure.reply) if failure.reply else None
        return ConnectionManagerError(
            self._scrub(text),
            host=opts.server,
            port=opts.port,
            code=code,
            reply=self._scrub(reply) if reply else None,
        )

    def _finish(self, state: _Delivery) -> SendReport:
        link = state.link
        report = SendReport(
            server=self.options.address,
            accepted=tuple(state.delivered),
            refused=MappingProxyType(dict(state.refused)),
            attempts=state.attempts,
            reused_connection=state.reused,
            mechanism=link.mechanism if link else None,
            tls=link.tls if link else None,
            warnings=tuple(link.warnings) if link else tuple(self.options.warnings),
        )
        if not state.refused:
            return report
        refused = "; ".join(f"{r} ('{reply}')" for r, reply in state.refused.items())
        total = len(state.refused) + len(state.delivered)
        if state.delivered:
            outcome = (
                f"the message was partly delivered: the server accepted it for "
                f"{', '.join(state.delivered)}"
            )
        else:
            outcome = "the message was not delivered to anyone"
        text = (
            f"SMTP server {self.options.address} refused {len(state.refused)} of {total} "
            "recipients: "
            f"{refused}; {outcome}; correct or remove the refused addresses."
        )
        raise SmtpRecipientsRefused(self._scrub(text), report)

    def _scrub(self, text: str) -> str:
        """Belt and braces: no error text may carry the password, whatever a server echoes."""
        return scrub_credentials(text, self.options)


class _Pool:
    """The session's connections: idle ones for reuse, new ones up to MaxConnections, and how a
    connection is opened (greeting, EHLO, TLS, AUTH)."""

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # a connection went idle or was closed
        # Speed: threads in _freed.wait(), so that a checkin notifies only when one waits; the
        # plain lock's C context manager instead of the Condition's Python one, and no notify()
        # (two Python calls with no waiter) on every message: about 5k instructions a message.
        self._waiting = 0
        self._idle: list[_Link] = []  # most recently used last: sequential sends reuse one
        self.count = 0  # connections open or being opened, idle or busy
        self._tls_context: ssl.SSLContext | None = None
        self.connections_opened = 0

    def close(self) -> None:
        """QUIT and close the idle connections. Never raises."""
        with self._lock:
            idle, self._idle = self._idle, []
            self.count -= len(idle)
            self._freed.notify_all()
        for link in idle:
            _quit(link, min(2.0, self.options.timeout))

    def checkout(
        self, budget: _Budget, state: _Delivery | None = None, *, reuse: bool = True
    ) -> _Link:
        """A connection for this send alone: an idle one that answers RSET, else a new one while
        fewer than MaxConnections are open, else the next to come free (within the budget)."""
        while True:
            link = self._claim(budget, reuse)
            if link is None:
                return self._open_claimed(budget)
            link.budget.deadline, link.budget.cancel = budget.deadline, budget.cancel
            if not link.used or self._alive(link):
                if state is not None and link.used:
                    state.reused = True
                return link
            self.discard(link)

    def _claim(self, budget: _Budget, reuse: bool) -> _Link | None:
        """An idle connection, or None after reserving room for a new one."""
        with self._lock:  # the Condition's lock
            while True:
                if reuse and self._idle:
                    return self._idle.pop()
                if self.count < self.options.max_connections:
                    self.count += 1
                    return None
                self._waiting += 1
                try:
                    self._freed.wait(budget.wait())
                except TimeoutError as exc:
                    raise _Failure(
                        f"had no free connection within Timeout ({self.options.timeout:g} s): all "
                        f"{self.options.max_connections} allowed (MaxConnections) were busy",
                        "raise MaxConnections or Timeout",
                        transient=True,
                    ) from exc
                except _Canceled as exc:
                    raise _canceled_failure() from exc
                finally:
                    self._waiting -= 1

    def _open_claimed(self, budget: _Budget) -> _Link:
        try:
            return self._open(budget)
        except BaseException:
            self._release_slot()
            raise

    def _alive(self, link: _Link) -> bool:
        """RSET both clears any half transaction and proves an idle connection still works."""
        try:
            if link.rset_pending:
                link.rset_pending = False
                code, _ = link.conn.getreply()
            else:
                code, _ = link.conn.rset()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def checkin(self, link: _Link) -> None:
        with self._lock:
            self._idle.append(link)
            if self._waiting:
                self._freed.notify()

    def discard(self, link: _Link) -> None:
        """Close a connection that failed; QUIT only within what is left of its send's budget."""
        budget = link.budget
        _quit(link, 0.0 if _spent(budget) else min(0.5, budget.deadline - time.monotonic()))
        self._release_slot()

    def _release_slot(self) -> None:
        with self._lock:
            self.count -= 1
            if self._waiting:
                self._freed.notify()

    def _open(self, budget: _Budget) -> _Link:
        opts = self.options
        link_budget = _Budget(budget.deadline, budget.cancel)
        try:
            conn = self._connect(link_budget)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(opts, exc, "while connecting", connecting=True) from exc
        with self._lock:
            self.connections_opened += 1
        try:
            return self._handshake(conn, budget.deadline, link_budget)
        except _Failure:
            _quit(
                conn,
                0.0 if _spent(link_budget) else min(1.0, budget.deadline - time.monotonic()),
                link_budget,
            )
            raise
        except (smtplib.SMTPException, OSError) as exc:
            _quit(conn, 0.0, link_budget)
            raise _classify(opts, exc, "during the handshake") from exc
        finally:
            log.debug("SMTP %s: connection %d opened", opts.address, self.connections_opened)

    def _connect(self, budget: _Budget) -> smtplib.SMTP:
        opts = self.options
        tls = _Tls(self._context()) if opts.security is Security.TLS else None
        conn = _Client(opts.server, budget, tls)
        try:
            code, msg = conn.connect(opts.server, opts.port)
        except BaseException:
            conn.close()
            raise
        if code != 220:  # what smtplib.SMTP(host) does with a refusing greeting
            conn.close()
            raise smtplib.SMTPConnectError(code, msg)
        return conn

    def _handshake(self, conn: smtplib.SMTP, deadline: float, budget: _Budget) -> _Link:
        opts = self.options
        self._hello(conn, deadline)
        if opts.security is Security.STARTTLS:
            self._starttls(conn, deadline)
        tls = conn.sock.version() if isinstance(conn.sock, ssl.SSLSocket) else None
        _arm(self.options, deadline)
        try:
            outcome = authenticate(conn, opts, tls=tls is not None)
        except AuthProblem as problem:
            # Safe to chain: smtp_auth has masked the credentials in the reply it quotes, and
            # what it chains (a local security library's error) never holds the password.
            reply = SmtpReply(problem.code, problem.reply) if problem.code is not None else None
            raise _Failure(
                problem.what, problem.advice, reply=reply, transient=problem.transient
            ) from problem
        warnings = list(opts.warnings) + outcome.warnings
        for text in outcome.warnings:
            log.warning("SMTP %s: %s", opts.address, text)
        return _Link(
            conn,
            tls,
            outcome.mechanism,
            warnings,
            budget,
            pipelining=opts.pipelining and conn.has_extn("pipelining"),
        )

    def _hello(self, conn: smtplib.SMTP, deadline: float) -> None:
        _arm(self.options, deadline)
        code, resp = conn.ehlo()
        if code in (500, 502):  # no ESMTP: fall back to HELO, as .NET does
            _arm(self.options, deadline)
            code, resp = conn.helo()
        if code != 250:
            reply = _reply(code, resp)
            raise _Failure(
                "refused the greeting (EHLO/HELO)",
                "check the server's access rules",
                reply=reply,
                transient=400 <= code < 500,
            )

    def _starttls(self, conn: smtplib.SMTP, deadline: float) -> None:
        if not conn.has_extn("starttls"):
            raise _Failure(
                "does not offer STARTTLS, and EnableSsl=True (Security=StartTls) forbids sending "
                "in clear text",
                "enable STARTTLS on the server, use Security=Tls if the port speaks implicit TLS, "
                "or set EnableSsl=False if the network is trusted",
            )
        _arm(self.options, deadline)
        try:
            # _Tls stands in for an SSLContext: starttls() only calls its wrap_socket().
            conn.starttls(context=_Tls(self._context()))  # type: ignore[call-overload]
        except smtplib.SMTPResponseException as exc:
            reply = _reply(exc.smtp_code, exc.smtp_error)
            raise _Failure(
                "refused STARTTLS",
                "check the server's TLS settings",
                reply=reply,
                transient=400 <= exc.smtp_code < 500,
            ) from exc
        self._hello(conn, deadline)  # RFC 3207: forget everything learnt before TLS

    def _context(self) -> ssl.SSLContext:
        with self._lock:  # parallel first connections build (and warn about) one context
            return self._context_locked()

    def _context_locked(self) -> ssl.SSLContext:
        if self._tls_context is None:
            ctx = ssl.create_default_context()
            ctx.sslsocket_class = _BoundedSSLSocket
            if self.options.ca_file:
                try:
                    ctx.load_verify_locations(cafile=self.options.ca_file)
                except (ssl.SSLError, OSError) as exc:
                    raise _Failure(
                        f"cannot be trusted because CaFile={self.options.ca_file} is not a PEM "
                        f"certificate file ({exc})",
                        "give the CA certificate in PEM form",
                    ) from exc
            if self.options.trust_server_certificate:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                loud = [w for w in self.options.warnings if w.startswith("TrustServerCertificate")]
                log.warning(
                    "SMTP %s: %s",
                    self.options.address,
                    loud[0]
                    if loud
                    else "TrustServerCertificate=True: the certificate is NOT checked",
                )
            self._tls_context = ctx
        return self._tls_context


class _Mailer:
    """One mail transaction on one open connection: the envelope (one command at a time, or
    pipelined), the message bytes, and what each reply means. Holds no connection itself."""

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self.messages_sent = 0

    def transaction(
        self,
        link: _Link,
        message: email.message.Message,
        sender: str,
        state: _Delivery,
        deadline: float,
    ) -> None:
        conn = link.conn
        reused = link.used
        link.used = True
        state.link = link
        payload, options = self._payload(link, message, sender, state)
        _arm(self.options, deadline)
        if link.pipelining:
            accepted = self._pipelined_envelope(
                conn, sender, options, state, deadline, stale_check=reused
            )
        else:
            accepted = self._envelope(conn, sender, options, state, deadline, stale_check=reused)
        if not accepted:
            self._rset_later(link)
            return
        self._send_data(conn, payload, deadline, state)
        state.delivered.extend(accepted)
        state.pending = [r for r in state.pending if r not in accepted]
        with self._lock:
            self.messages_sent += 1
        self._rset_later(link)

    def _envelope(
        self,
        conn: smtplib.SMTP,
        sender: str,
        options: list[str],
        state: _Delivery,
        deadline: float,
        *,
        stale_check: bool,
    ) -> list[str]:
        """MAIL, each RCPT, then DATA, one command in flight. Returns the accepted recipients;
        when there are any, DATA has been answered 354."""
        mail = _command_line(conn, "mail", "FROM", sender, options)
        code, resp = self._exchange(conn, [mail], deadline, stale_check=stale_check)[0]
        if code != 250:
            raise self._refusal(
                "refused the sender", sender, _reply(code, resp), "MAIL", size=_sizes(conn, state)
            )
        accepted = self._recipients(conn, state, deadline)
        if accepted:
            _arm(self.options, deadline)
            code, resp = conn.docmd("DATA")
            if code != 354:
                raise self._refusal(
                    "refused DATA", None, _reply(code, resp), "DATA", size=_sizes(conn, state)
                )
        return accepted

    def _pipelined_envelope(
        self,
        conn: smtplib.SMTP,
        sender: str,
        options: list[str],
        state: _Delivery,
        deadline: float,
        *,
        stale_check: bool,
    ) -> list[str]:
        """MAIL, every RCPT and DATA written together (RFC 2920), their replies read in order.
        What the replies mean is decided exactly as in :meth:`_envelope`."""
        rcpts = list(state.pending)
        lines = [
            _command_line(conn, "mail", "FROM", sender, options),
            *(_command_line(conn, "rcpt", "TO", rcpt, ()) for rcpt in rcpts),
            "DATA",
        ]
        replies = self._exchange(conn, lines, deadline, stale_check=stale_check)
        data_open = len(replies) == len(lines) and replies[-1][0] == 354
        code, resp = replies[0]
        if code != 250:
            if data_open:  # a server that refused MAIL yet opened DATA: end the empty message
                self._end_empty_data(conn, deadline)
            raise self._refusal(
                "refused the sender", sender, _reply(code, resp), "MAIL", size=_sizes(conn, state)
            )
        accepted: list[str] = []
        state.deferred.clear()
        # strict=False: the replies stop early after a 421, leaving the later recipients pending.
        for rcpt, (code, resp) in zip(rcpts, replies[1:], strict=False):
            self._note_recipient(state, rcpt, code, resp, accepted)
        if not accepted:
            if data_open:  # RFC 2920 §3.1: DATA opened with no recipient is ended with a lone dot
                self._end_empty_data(conn, deadline)
            return accepted
        if not data_open:
            code, resp = replies[-1]
            raise self._refusal(
                "refused DATA", None, _reply(code, resp), "DATA", size=_sizes(conn, state)
            )
        return accepted

    def _exchange(
        self, conn: smtplib.SMTP, lines: list[str], deadline: float, *, stale_check: bool
    ) -> list[tuple[int, bytes]]:
        """Write ``lines`` in windows of PIPELINE_WINDOW commands, reading each window's replies
        before the next is written, so neither side can block on a full socket buffer (RFC 2920
        §3.1). Stops early after a refused MAIL or a 421 (the server is closing). With
        ``stale_check`` (a reused connection), a drop or a 421 at the first command means the
        connection went stale while idle: _StaleLink. One line is the one-command-at-a-time MAIL."""
        replies: list[tuple[int, bytes]] = []
        for start in range(0, len(lines), PIPELINE_WINDOW):
            window = lines[start : start + PIPELINE_WINDOW]
            try:
                conn.send("".join(f"{line}\r\n" for line in window))
                for _ in window:
                    _arm(self.options, deadline)
                    replies.append(conn.getreply())
                    if replies[-1][0] == 421:
                        break
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                if (
                    stale_check and not replies and not _timed_out(exc) and not _canceled(exc)
                ):  # a slow server
                    raise _StaleLink() from exc
                raise
            if replies[-1][0] == 421 and stale_check and len(replies) == 1:
                raise _StaleLink()
            if replies[0][0] != 250 or replies[-1][0] == 421:
                break
        return replies

    def _end_empty_data(self, conn: smtplib.SMTP, deadline: float) -> None:
        """End a DATA the server opened although no recipient was accepted: a lone dot, whose
        reply (normally a refusal) does not matter, because nobody can receive the message."""
        conn.send(b".\r\n")
        _arm(self.options, deadline)
        conn.getreply()

    def _rset_later(self, link: _Link) -> None:
        """Write RSET now and read its reply before the next message (or at close).

        RSET is never pipelined with what follows: the next command is only written after this
        reply is read, so a connection that went stale is found before a new message starts.
        A failure here never touches the message just accepted: smtplib has closed the
        connection, so the next message's RSET fails and a new connection is opened.
        """
        try:
            link.conn.command_encoding = (
                "ascii"  # what smtplib's rset() does: SMTPUTF8 ends with the transaction
            )
            link.conn.putcmd("rset")
            link.rset_pending = True
        except (smtplib.SMTPException, OSError):
            link.rset_pending = False

    def _recipients(self, conn: smtplib.SMTP, state: _Delivery, deadline: float) -> list[str]:
        """RCPT each pending recipient; permanent refusals are final, 4xx ones wait for a retry."""
        accepted: list[str] = []
        state.deferred.clear()
        for rcpt in list(state.pending):
            _arm(self.options, deadline)
            code, resp = _command(conn, "rcpt", "TO", rcpt, ())
            self._note_recipient(state, rcpt, code, resp, accepted)
        return accepted

    @staticmethod
    def _note_recipient(
        state: _Delivery, rcpt: str, code: int, resp: bytes, accepted: list[str]
    ) -> None:
        """One RCPT reply: accepted, deferred (4xx: retried) or refused (5xx: final)."""
        if code in (250, 251):
            accepted.append(rcpt)
            return
        reply = _reply(code, resp)
        if code == 421:
            raise _Failure("closed the session", "try again later", reply=reply, transient=True)
        if 400 <= code < 500:
            state.deferred[rcpt] = reply
        else:
            state.refused[rcpt] = reply
            state.pending.remove(rcpt)

    def _send_data(
        self, conn: smtplib.SMTP, payload: bytes, deadline: float, state: _Delivery
    ) -> None:
        """The message and its final dot, after DATA was answered 354. Until the dot is out the
        server holds no complete message, so a failure may be retried; once it is out, the
        outcome is unknown and the message is never sent again (RFC 1047)."""
        try:
            conn.send(payload)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(self.options, exc, "while the message was being sent") from exc
        try:
            _arm(self.options, deadline)
            code, resp = conn.getreply()
        except (_Failure, smtplib.SMTPException, OSError) as exc:
            raise self._unconfirmed(exc) from exc
        if code != 250:
            raise self._refusal(
                "refused the message", None, _reply(code, resp), "DATA", size=_sizes(conn, state)
            )

    def _payload(
        self, link: _Link, message: email.message.Message, sender: str, state: _Delivery
    ) -> tuple[bytes, list[str]]:
        conn = link.conn
        recipients = state.pending
        options: list[str] = []
        needs_utf8 = not all(a.isascii() for a in [sender, *recipients])
        if needs_utf8:
            if not conn.has_extn("smtputf8"):
                bad = next(a for a in [sender, *recipients] if not a.isascii())
                raise _Failure(
                    f"does not support SMTPUTF8, which the non-ASCII address {bad} needs",
                    "use an ASCII address or a server that supports SMTPUTF8",
                )
            options.append("SMTPUTF8")
        eight_bit = conn.has_extn("8bitmime")
        try:
            data = _flatten(message, utf8=needs_utf8, eight_bit=eight_bit or needs_utf8)
        except DtsxError as exc:
            # The message's own checks refused to write it (a header that would fold unsafely):
            # nothing has been sent, and no retry could change it.
            raise _Failure("could not be given the message", "", sentence=str(exc)) from exc
        if eight_bit and not data.isascii():
            options.append("BODY=8BITMIME")
        state.size = len(data)
        if conn.has_extn("size"):
            limit = _size_limit(conn)
            if limit is not None and state.size > limit:  # refused before MAIL: nothing is sent
                raise _Failure(
                    f"cannot take this message: {_too_large(state.size, limit)}", _TOO_LARGE_ADVICE
                )
            options.append(f"SIZE={state.size}")
        return _stuff(data), options

    def _unconfirmed(self, exc: BaseException) -> _Failure:
        """No final reply came after the whole message was sent: the server may have queued it
        (a server that crashes after queuing, or whose reply is lost, looks the same), so this
        is final, never transient: resending could deliver it twice."""
        if _canceled(exc):
            what = "had not confirmed the message when the run was canceled"
        elif isinstance(exc, _Failure) or _timed_out(exc):
            what = (
                f"did not confirm the message within Timeout ({self.options.timeout:g} s) after "
                "receiving it"
            )
        else:
            what = "closed the connection after receiving the message"
        failure = _Failure(
            f"{what}; it may have been delivered — not resent",
            "check the recipients' mailboxes before running again",
            drop=True,
        )
        failure.__cause__ = exc
        return failure

    def _refusal(
        self,
        what: str,
        subject: str | None,
        reply: SmtpReply,
        stage: str,
        *,
        size: tuple[int, int | None] | None = None,
    ) -> _Failure:
        if (
            reply.code == 552 and size is not None
        ):  # RFC 1870 §6.2: at MAIL or DATA, 552 is the size
            return _Failure(
                f"cannot take this message: {_too_large(*size)}", _TOO_LARGE_ADVICE, reply=reply
            )
        shown = f"{what} {subject}" if subject else what
        if 400 <= reply.code < 500:
            return _Failure(
                shown, "try again later", reply=reply, transient=True, drop=reply.code == 421
            )
        advice = "check the address and the server's relay rules"
        if reply.code == 530 or (reply.code == 550 and "auth" in reply.text.lower()):
            advice = (
                "the server wants authentication: set UseWindowsAuthentication=True, or UserName "
                "with PasswordEnv (and EnableSsl=True)"
            )
        elif stage == "DATA":
            advice = "the server rejected the content; check its reply and the message"
        return _Failure(shown, advice, reply=reply)


# -- failures the pool and the mailer both meet -----------------------------------------------


def _arm(options: SmtpOptions, deadline: float) -> None:
    """Stop before the next step when the Timeout is spent (each wait is bounded anyway)."""
    if deadline - time.monotonic() <= 0:
        raise _Failure(
            f"did not finish within Timeout ({options.timeout:g} s)",
            "raise Timeout (in milliseconds) or check the server's load",
            transient=True,
            drop=True,
        )


def _classify(
    options: SmtpOptions, exc: BaseException, stage: str, *, connecting: bool = False
) -> _Failure:
    """``exc`` as a failure the user can act on, keeping ``exc`` as its cause (for --debug)."""
    failure = _failure_of(options, exc, stage, connecting=connecting)
    failure.__cause__ = exc
    return failure


def _failure_of(opts: SmtpOptions, exc: BaseException, stage: str, *, connecting: bool) -> _Failure:
    if _canceled(exc):
        return _canceled_failure()
    if isinstance(exc, smtplib.SMTPConnectError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        transient = 400 <= exc.smtp_code < 500
        return _Failure(
            "refused the session at its greeting",
            "try again later"
            if transient
            else "check that this server accepts mail from this host",
            reply=reply,
            transient=transient,
            drop=True,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return _Failure(
            f"failed {stage}",
            "check the server's reply",
            reply=reply,
            transient=400 <= exc.smtp_code < 500,
            drop=True,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure(
            f"presented a TLS certificate that cannot be trusted ({exc.verify_message})",
            "add its CA with CaFile=<ca.pem>, or connect by the name the certificate carries "
            "(TrustServerCertificate=True turns the check off, which is unsafe)",
            drop=True,
        )
    if isinstance(exc, ssl.SSLError):
        return _Failure(
            f"failed the TLS handshake ({exc.reason or exc})",
            "check that Security matches the port: Security=Tls for implicit TLS (465), "
            "EnableSsl=True for STARTTLS (25, 587)",
            drop=True,
        )
    if isinstance(exc, socket.gaierror):
        return _Failure(
            "could not be found: the host name does not resolve", "check SmtpServer", drop=True
        )
    if _timed_out(exc):
        hint = (
            " (if this port speaks implicit TLS, set Security=Tls)"
            if connecting and opts.security is not Security.TLS
            else ""
        )
        return _Failure(
            f"did not answer within Timeout ({opts.timeout:g} s) {stage}{hint}",
            "check the server and the network, or raise Timeout (in milliseconds)",
            transient=True,
            drop=True,
        )
    if isinstance(exc, ConnectionRefusedError):
        return _Failure(
            "refused the connection (nothing listens there)",
            "check SmtpServer and Port, and that the mail server is running",
            transient=True,
            drop=True,
        )
    detail = _detail(exc)
    return _Failure(
        f"closed the connection {stage} ({detail})",
        "try again later, or check the server's logs",
        transient=True,
        drop=True,
    )


_TOO_LARGE_ADVICE = "send smaller or fewer attachments, or ask for the server's limit to be raised"


def _size_limit(conn: smtplib.SMTP) -> int | None:
    """The largest message the server takes, from its EHLO ``SIZE n`` (RFC 1870); None when it
    gave no number or 0 (no fixed limit)."""
    raw = (conn.esmtp_features.get("size") or "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _sizes(conn: smtplib.SMTP, state: _Delivery) -> tuple[int, int | None]:
    return state.size, _size_limit(conn) if conn.has_extn("size") else None


def _too_large(size: int, limit: int | None) -> str:
    shown = f"{size} bytes, limit {limit}" if limit is not None else f"{size} bytes"
    return f"the message is larger than the server accepts ({shown})"


def _detail(exc: BaseException) -> str:
    """The most specific text in an exception chain (the OS error under smtplib's wrapper)."""
    seen: BaseException | None = exc
    best = str(exc) or type(exc).__name__
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return best


def _unique(addresses: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for raw in addresses:
        address = raw.strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def _flatten(message: email.message.Message, *, utf8: bool, eight_bit: bool) -> bytes:
    """The message as it goes on the wire, CRLF line ends, without its Bcc headers."""
    if any(h.lower() in ("bcc", "resent-bcc") for h in message):
        message = copy.deepcopy(message)
        del message["Bcc"]
        del message["Resent-Bcc"]
    policy = _wire_policy(message.policy, utf8=utf8, eight_bit=eight_bit)
    buffer = io.BytesIO()
    # No linesep argument: flatten() would clone the policy for every message, and the policy
    # already says CRLF (header objects keep their folded text per policy object).
    email.generator.BytesGenerator(buffer, policy=policy).flatten(message)
    return buffer.getvalue()


_POLICIES: dict[tuple[int, bool, bool], tuple[email.policy.Policy, email.policy.Policy]] = {}


def _wire_policy(base: email.policy.Policy, *, utf8: bool, eight_bit: bool) -> email.policy.Policy:
    """``base`` with CRLF and the transfer encoding the server takes. Policies are immutable, so
    each variant is built once instead of cloned for every message (about 13 us each)."""
    key = (id(base), utf8, eight_bit)
    cached = _POLICIES.get(key)
    if cached is not None and cached[0] is base:
        return cached[1]
    policy = base.clone(linesep="\r\n", cte_type="8bit" if eight_bit else "7bit")
    if utf8 and isinstance(policy, email.policy.EmailPolicy):
        policy = policy.clone(utf8=True)
    if len(_POLICIES) > 64:  # messages with ad-hoc policies: stay bounded
        _POLICIES.clear()
    _POLICIES[key] = (base, policy)
    return policy


def _stuff(data: bytes) -> bytes:
    """CRLF line ends, dot-stuffing (RFC 5321 §4.5.2), and the terminating dot line."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # only then is there a bare CR or LF
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _quit(link: _Link | smtplib.SMTP, timeout: float, budget: _Budget | None = None) -> None:
    """QUIT within ``timeout`` seconds (none: just close), then close."""
    conn = link.conn if isinstance(link, _Link) else link
    budget = link.budget if isinstance(link, _Link) else budget
    try:
        if conn.sock is not None and timeout > 0 and budget is not None:
            budget.deadline, budget.cancel = time.monotonic() + timeout, None
            if isinstance(link, _Link) and link.rset_pending:
                link.rset_pending = False
                conn.getreply()  # so that QUIT's own reply is the one read next
            conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def _spent(budget: _Budget) -> bool:
    return budget.cancel is not None and budget.cancel.is_set()


def _canceled_failure() -> _Failure:
    return _Failure(
        "was not used further because the run was canceled before the message was sent",
        "run the package again to send it",
    )


@register_connection("SMTP")
class SmtpConnectionManager(ConnectionManager):
    """SSIS's SMTP connection manager. ``acquire()`` returns the run's :class:`SmtpSession`."""

    creation_name: ClassVar[str] = "SMTP"
    # A property expression may set any key of the connection string (SSIS's and dtsx's own).
    runtime_properties: ClassVar[frozenset[str] | None] = frozenset(SMTP_KEYS)

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._options: SmtpOptions | None = None
        self._session: SmtpSession | None = None

    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        return smtp_option_problems(settings)

    @classmethod
    def redirected_to_mail_sink(
        cls, settings: ConnectionSettings, host: str, port: int
    ) -> ConnectionSettings:
        """Settings that send to the local sink of ``dtsx run --dev-smtp`` instead.

        Property expressions are dropped too: one that sets ``SmtpServer`` would otherwise win
        over the redirected connection string and send the mail to the real server. Everything
        else the package says (credentials, TLS) goes too: the sink speaks plain anonymous SMTP.
        """
        return dataclasses.replace(
            settings, connection_string=f"SmtpServer={host};Port={port};", properties={}
        )

    @property
    def options(self) -> SmtpOptions:
        """The validated settings; raises ConnectionManagerError listing every problem."""
        if self._options is None:
            self._options = parse_smtp_options(self.settings)
        return self._options

    @property
    def warnings(self) -> tuple[str, ...]:
        """Things the user should know about these settings (e.g. certificate checks off)."""
        return self.options.warnings

    def acquire(self) -> SmtpSession:
        with self._lock:
            if self._session is None:
                options = self.options
                for text in options.warnings:
                    log.warning("SMTP connection manager %r: %s", self.settings.name, text)
                self._session = SmtpSession(options)
            return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __repr__(self) -> str:
        try:
            shown = repr(self.options)
        except ConnectionManagerError:
            shown = "invalid settings"
        return f"SmtpConnectionManager(name={self.settings.name!r}, {shown})"


if TYPE_CHECKING:
    # mypy proves the session (and the report its send returns) keeps the contract of
    # connections.base that Send Mail codes to; nothing runs here.
    _KEEPS_THE_CONTRACT: type[MailSession] = SmtpSession
