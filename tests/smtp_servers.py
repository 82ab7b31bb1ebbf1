"""Real SMTP servers on loopback for tests: fixture factories that start, yield and stop them.

Everything binds 127.0.0.1 on a port the OS picks (port 0), and every server is stopped at the
end of its fixture. Exposed to every test through ``tests/conftest.py``:

``smtp_server_factory``   callable ``start(**options) -> LoopbackSmtpServer``
                          (see ``start_smtp_server``)
``smtp_server``           anonymous ESMTP server, records messages and connections
``tls_material``          trustme CA, server certificate for 127.0.0.1/localhost, CA file path
``starttls_server``       STARTTLS required; PLAIN/LOGIN (users in ``PASSWORDS``) only after TLS
``smtps_server``          implicit TLS (SMTPS); PLAIN/LOGIN allowed (the connection is TLS)
``ntlm_user_file``        an NTLM_USER_FILE (set in the environment) with ``NTLM_USERS``
``ntlm_server``           AUTH NTLM only (pyspnego acceptor), authentication required
``kerberos_realm``        a throwaway MIT realm (k5test), env set; skips without KDC or gssapi
``negotiate_server``      AUTH GSSAPI (SPNEGO/Kerberos/NTLM acceptor) and AUTH NTLM, auth required
``scripted_smtp_factory`` callable ``start(*scripts) -> ScriptedServer`` for connection-level faults
``mail_sink``             a running :class:`dtsx.mailsink.MailSink` in a temp folder
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import shutil
import socket
import ssl
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from dtsx.connections.base import ConnectionSettings
from dtsx.mailsink import MailSink, ServerThread
from dtsx.connections.smtp import SmtpConnectionManager, SmtpSession

__all__ = [
    "NTLM_USERS",
    "PASSWORDS",
    "KerberosRealm",
    "LoopbackSmtpServer",
    "Received",
    "RecordingHandler",
    "ScriptedServer",
    "TlsMaterial",
    "kerberos_realm",
    "mail_sink",
    "negotiate_server",
    "ntlm_server",
    "ntlm_user_file",
    "open_session",
    "read_data",
    "script_drop_after_data",
    "script_drop_mid_data",
    "script_greet_421",
    "script_silent",
    "script_smtp",
    "scripted_smtp_factory",
    "smtp_manager",
    "smtp_server",
    "smtp_server_factory",
    "smtps_server",
    "start_smtp_server",
    "starttls_server",
    "tls_material",
    "unanswered_listener",
]

# PLAIN/LOGIN accounts of the TLS servers; NTLM accounts (domain, user, password) of NTLM_USER_FILE.
PASSWORDS = {"alice": "Alice-Secret-1", "bob": "Bob-Secret-2"}
NTLM_USERS = [("TESTDOM", "alice", "AlicePass1"), ("", "bob", "BobPass2")]


@dataclass
class Received:
    """One message as the server took it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    auth: Any
    tls: bool


class RecordingHandler:
    """aiosmtpd handler that records messages and injects faults.

    ``refuse``: address -> reply for RCPT (e.g. ``"550 5.1.1 no such user"``).
    ``data_replies``: replies used, in order, for the next end-of-data (then ``250``).
    ``data_delay``: seconds to wait before answering the end of data.
    ``close_after_message``: drop the connection after accepting each message.
    ``refuse_once``: like ``refuse``, but each entry is used once (a temporary refusal).
    ``mail_replies``: replies used, in order, for the next MAIL FROM commands (then ``250``).
    ``pipelining``: advertise PIPELINING (RFC 2920), as Exchange and Postfix do; aiosmtpd
    reads commands from a stream one after another, so it serves pipelined clients correctly.
    """

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.data_replies: list[str] = []
        self.data_delay = 0.0
        self.close_after_message = False
        self.mail_replies: list[str] = []
        self.refuse_once: dict[str, str] = {}
        self.connections = 0
        self.tried_mechanisms: list[str] = []
        self.pipelining = False
        self.in_flight = 0  # messages between their end of data and the reply (with data_delay)
        self.max_in_flight = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # this hook replaces aiosmtpd's own bookkeeping
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address  # a custom MAIL hook records the sender itself
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.refuse_once.pop(address.lower(), None) or self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)  # a custom RCPT hook records accepted ones itself
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.data_delay)
            finally:
                self.in_flight -= 1
        if self.data_replies:
            return self.data_replies.pop(0)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
                session.auth_data,
                tls,
            )
        )
        if self.close_after_message:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return "250 2.0.0 OK queued"


class SaslSMTP(SMTP):
    """aiosmtpd's SMTP with what real servers have: long AUTH lines (RFC 4954 §4: 12288 octets),
    case-insensitive mechanism names (.NET sends ``AUTH ntlm``), and a connection count."""

    line_length_limit = 12290

    def __init__(self, handler: RecordingHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.command_size_limits = defaultdict(lambda: 512, AUTH=12288)
        handler.connections += 1

    async def smtp_AUTH(self, arg: str) -> None:
        mechanism, _, rest = (arg or "").partition(" ")
        if mechanism:
            self.event_handler.tried_mechanisms.append(mechanism.upper())
        await super().smtp_AUTH(f"{mechanism.upper()} {rest}".strip() if mechanism else arg)


async def _first_token(server: SMTP, args: list[str], prompt: bytes) -> Any:
    """The client's initial response, or ask for it (MS-SMTPNTLM's ``334 NTLM supported``)."""
    if len(args) > 1:
        if args[1] == "=":
            return b""
        try:
            return base64.b64decode(args[1], validate=True)
        except binascii.Error:
            return None
    token = await server.challenge_auth(prompt, encode_to_b64=False)
    return None if not isinstance(token, bytes) else token


class NtlmAuthHandler(RecordingHandler):
    """AUTH NTLM against NTLM_USER_FILE, through a pyspnego acceptor."""

    async def auth_NTLM(self, server: SMTP, args: list[str]) -> AuthResult:
        import spnego

        try:
            ctx = spnego.server(protocol="ntlm")
            token = await _first_token(server, args, b"NTLM supported")
            if token is None:
                return AuthResult(success=False, handled=False)
            token = await server.challenge_auth(ctx.step(token) or b"")
            if not isinstance(token, bytes):
                return AuthResult(success=False, handled=False)
            ctx.step(token)  # raises on a wrong password
        except Exception:  # noqa: BLE001 - pyspnego raises KeyError etc. on garbage: answer 535, never 500
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=ctx.client_principal)


class NegotiateAuthHandler(NtlmAuthHandler):
    """AUTH GSSAPI (RFC 4752) with a ``negotiate`` acceptor: raw krb5, SPNEGO/krb5, SPNEGO/NTLM."""

    async def auth_GSSAPI(self, server: SMTP, args: list[str]) -> AuthResult:
        import spnego

        try:
            ctx = spnego.server(protocol="negotiate", service="SMTPSVC")
            token = await _first_token(server, args, b"")
            while token is not None:
                out = ctx.step(token)
                if ctx.complete:
                    if out:  # AP-REP: the client answers with an empty line
                        await server.challenge_auth(out)
                    break
                token = await server.challenge_auth(out or b"")
                token = token if isinstance(token, bytes) else None
            if token is None:
                return AuthResult(success=False, handled=False)
            reply = await server.challenge_auth(ctx.wrap(b"\x01\x00\x00\x00", encrypt=False).data)
            if not isinstance(reply, bytes):
                return AuthResult(success=False, handled=False)
            layer = ctx.unwrap(reply).data
            if not layer or layer[0] != 0x01:
                return AuthResult(success=False, handled=False)
        except Exception:  # noqa: BLE001 - any acceptor failure is a 535
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=ctx.client_principal)


def _password_authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode("utf-8", "replace")
    ok = PASSWORDS.get(login) == auth_data.password.decode("utf-8", "replace")
    return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


@dataclass
class LoopbackSmtpServer:
    """A running aiosmtpd server on 127.0.0.1."""

    host: str
    port: int
    handler: RecordingHandler
    thread: ServerThread
    ca_file: str | None = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def connections(self) -> int:
        return self.handler.connections

    def connection_string(self, **extra: object) -> str:
        parts = {"SmtpServer": self.host, "Port": self.port, "Timeout": 5000, **extra}
        return "".join(f"{k}={v};" for k, v in parts.items())

    def stop(self) -> None:
        self.thread.stop()


def start_smtp_server(
    handler: RecordingHandler | None = None,
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    auth_required: bool = False,
    auth_require_tls: bool = False,
    password_auth: bool = False,
    exclude: list[str] | None = None,
    ca_file: str | None = None,
) -> LoopbackSmtpServer:
    """Start an aiosmtpd server on 127.0.0.1:<free port>. The caller stops it."""
    handler = handler or RecordingHandler()
    excluded = list(exclude or [])
    if not password_auth:
        excluded += ["PLAIN", "LOGIN"]

    def factory(loop: asyncio.AbstractEventLoop) -> SMTP:
        with (
            warnings.catch_warnings()
        ):  # auth_required without auth_require_tls warns; intended here
            warnings.simplefilter("ignore")
            return SaslSMTP(
                handler,
                hostname="smtp.test",
                tls_context=starttls,
                require_starttls=require_starttls,
                auth_required=auth_required,
                auth_require_tls=auth_require_tls,
                auth_exclude_mechanism=excluded or None,
                authenticator=_password_authenticator if password_auth else None,
                enable_SMTPUTF8=True,
                loop=loop,
            )

    thread = ServerThread(factory, "127.0.0.1", 0, ssl_context=implicit_tls)
    thread.start()
    return LoopbackSmtpServer("127.0.0.1", thread.port, handler, thread, ca_file)


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., LoopbackSmtpServer]]:
    started: list[LoopbackSmtpServer] = []

    def start(*args: Any, **kwargs: Any) -> LoopbackSmtpServer:
        server = start_smtp_server(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., LoopbackSmtpServer]) -> LoopbackSmtpServer:
    return smtp_server_factory()


@dataclass
class TlsMaterial:
    """A throwaway CA and a server certificate for ``127.0.0.1`` and ``localhost``."""

    ca: Any
    server_context: ssl.SSLContext
    ca_file: str
    other_ca_file: str  # a CA that did not sign the server's certificate
    wrong_name_context: ssl.SSLContext  # same CA, certificate for mail.other.test only


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    trustme = pytest.importorskip(
        "trustme", reason="trustme is needed for TLS tests: pip install trustme"
    )
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    wrong = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.other.test").configure_cert(wrong)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other = folder / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    return TlsMaterial(ca, server_context, str(ca_file), str(other), wrong)


@pytest.fixture
def starttls_server(
    smtp_server_factory: Callable[..., LoopbackSmtpServer], tls_material: TlsMaterial
) -> LoopbackSmtpServer:
    return smtp_server_factory(
        starttls=tls_material.server_context,
        require_starttls=True,
        password_auth=True,
        auth_require_tls=True,
        ca_file=tls_material.ca_file,
    )


@pytest.fixture
def smtps_server(
    smtp_server_factory: Callable[..., LoopbackSmtpServer], tls_material: TlsMaterial
) -> LoopbackSmtpServer:
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls, so it is off here; the
    # connection is TLS from the first byte anyway.
    return smtp_server_factory(
        implicit_tls=tls_material.server_context, password_auth=True, ca_file=tls_material.ca_file
    )


@pytest.fixture
def ntlm_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ntlm_users"
    path.write_text("".join(f"{d}:{u}:{p}\n" for d, u, p in NTLM_USERS), encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


@pytest.fixture
def ntlm_server(
    smtp_server_factory: Callable[..., LoopbackSmtpServer], ntlm_user_file: Path
) -> LoopbackSmtpServer:
    return smtp_server_factory(NtlmAuthHandler(), auth_required=True)


@dataclass
class KerberosRealm:
    """A running throwaway realm; the process environment points at it while it lives."""

    realm: Any
    name: str
    user: str
    password: str
    spn: str
    env: dict[str, str] = field(default_factory=dict)


def _free_port_block(size: int = 10) -> int:
    """A base port with ``size`` consecutive free TCP and UDP ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65535:
            continue
        if all(_port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports found on 127.0.0.1")


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _kerberos_missing() -> str | None:
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "krb5-config"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return (
                f"the MIT Kerberos tool {tool} is absent (apt-get install krb5-kdc "
                "krb5-admin-server krb5-user libkrb5-dev)"
            )
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as exc:
        return f"Kerberos support for pyspnego is absent ({exc}); pip install 'pyspnego[kerberos]'"
    try:
        import k5test  # noqa: F401
    except ImportError:
        return "k5test is absent; pip install k5test"
    return None


_KRB_ENV = (
    "KRB5_CONFIG",
    "KRB5CCNAME",
    "KRB5_KTNAME",
    "KRB5RCACHEDIR",
    "KRB5_KDC_PROFILE",
    "KRB5_CLIENT_KTNAME",
)


@pytest.fixture(scope="session")
def kerberos_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KerberosRealm]:
    reason = _kerberos_missing()
    if reason:
        pytest.skip(reason)
    import k5test

    saved_tempdir, saved_env = tempfile.tempdir, {k: os.environ.get(k) for k in _KRB_ENV}
    tempfile.tempdir = str(tmp_path_factory.mktemp("krb"))  # k5test's mkdtemp lands here
    realm = None
    try:
        realm = k5test.K5Realm(
            portbase=_free_port_block(),
            create_host=False,
            get_creds=False,
            krb5_conf={
                "libdefaults": {
                    "dns_lookup_kdc": "false",
                    "dns_lookup_realm": "false",
                    "rdns": "false",
                    "dns_canonicalize_hostname": "false",
                    "udp_preference_limit": "1",
                },
                "realms": {
                    "$realm": {
                        "kdc": "127.0.0.1:$port0",
                        "admin_server": "127.0.0.1:$port1",
                        "kpasswd_server": "127.0.0.1:$port2",
                    }
                },
                "domain_realm": {"localhost": "$realm", "127.0.0.1": "$realm"},
            },
            kdc_conf={
                "realms": {
                    "$realm": {
                        "kdc_listen": "127.0.0.1:$port0",
                        "kdc_tcp_listen": "127.0.0.1:$port0",
                    }
                }
            },
        )
        spn = f"SMTPSVC/localhost@{realm.realm}"
        realm.addprinc(spn)
        realm.extract_keytab(spn, realm.keytab)
        realm.kinit(realm.user_princ, realm.password("user"))
        os.environ.update({k: realm.env[k] for k in _KRB_ENV if k in realm.env})
        yield KerberosRealm(
            realm, realm.realm, realm.user_princ, realm.password("user"), spn, dict(realm.env)
        )
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if realm is not None:
            realm.stop()


@pytest.fixture
def negotiate_server(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    kerberos_realm: KerberosRealm,
    ntlm_user_file: Path,
) -> LoopbackSmtpServer:
    return smtp_server_factory(NegotiateAuthHandler(), auth_required=True)


# -- connection-level faults: a raw asyncio server running one script per connection -------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "ScriptedServer"], Awaitable[None]]


class ScriptedServer:
    """Runs ``scripts[i]`` for the i-th connection (the last one for every later connection)."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.messages: list[bytes] = []
        self.auth_lines: list[str] = []
        self.host = "127.0.0.1"
        self.thread = ServerThread(self._protocol, self.host, 0)

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=1 << 20), self._client)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        try:
            await script(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        return self.thread.port

    def connection_string(self, **extra: object) -> str:
        parts = {"SmtpServer": self.host, "Port": self.port, "Timeout": 5000, **extra}
        return "".join(f"{k}={v};" for k, v in parts.items())


async def script_greet_421(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
) -> None:
    writer.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
    await writer.drain()


async def script_silent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
) -> None:
    await asyncio.sleep(3600)  # never greets; cancelled when the server stops


AuthScript = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


async def script_smtp(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    srv: ScriptedServer,
    *,
    drop_in_data: bool = False,
    extensions: tuple[bytes, ...] = (b"8BITMIME",),
    auth: AuthScript | None = None,
    esmtp: bool = True,
    drop_after_data: bool = False,
    reply_delay: float = 0.0,
) -> None:
    """A minimal correct SMTP server (or, with ``drop_in_data``, one that stops reading after the
    354 and resets the connection 0.3 s later: mid-DATA for any message the buffers cannot hold).

    ``drop_after_data``: read the whole message up to its final dot (it counts in ``srv.messages``)
    and close without replying, as a server that crashed after queuing it would.
    ``reply_delay``: seconds to wait before each reply line (a slow, drip-feeding server); the
    greeting and each line of a multi-line EHLO reply are delayed one by one.
    ``extensions`` are the EHLO lines after the host name, sent as given (e.g. ``b"AUTH ntlm"``);
    ``auth(reader, writer, auth_line)`` runs an AUTH exchange and answers it itself.
    ``esmtp=False`` answers EHLO with 502, as an RFC 821 server does (HELO works).
    """
    if reply_delay:
        writer = _DripWriter(writer, reply_delay)  # type: ignore[assignment]
    writer.write(b"220 scripted.test ESMTP\r\n")
    while True:
        await writer.drain()
        line = await reader.readline()
        if not line:
            return
        verb = line[:4].upper()
        if verb == b"EHLO" and not esmtp:
            writer.write(b"502 5.5.1 EHLO not implemented\r\n")
        elif verb == b"EHLO":
            lines = [b"scripted.test", *extensions]
            writer.write(
                b"".join(
                    b"250" + (b" " if i == len(lines) - 1 else b"-") + text + b"\r\n"
                    for i, text in enumerate(lines)
                )
            )
        elif verb == b"AUTH" and auth is not None:
            srv.auth_lines.append(line.strip().decode("ascii", "replace"))
            await auth(reader, writer, line.strip())
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        elif verb == b"DATA":
            writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            await writer.drain()
            if drop_in_data:
                # Stop reading, so that a message larger than the socket buffers blocks the
                # client's send before its final dot; then reset: the message was never complete.
                writer.transport.pause_reading()
                await asyncio.sleep(0.3)
                writer.transport.abort()
                return
            srv.messages.append(await read_data(reader))
            if drop_after_data:
                writer.transport.abort()  # the whole message arrived; no reply ever will
                return
            writer.write(b"250 2.0.0 OK queued\r\n")
        else:
            writer.write(b"250 2.0.0 OK\r\n")
        await writer.drain()


class _DripWriter:
    """A stream writer that sends each line only after ``delay`` seconds (at ``drain()``)."""

    def __init__(self, writer: asyncio.StreamWriter, delay: float) -> None:
        self._writer = writer
        self._delay = delay
        self._lines: list[bytes] = []
        self.transport = writer.transport

    def write(self, data: bytes) -> None:
        self._lines.extend(data.splitlines(keepends=True))

    async def drain(self) -> None:
        lines, self._lines = self._lines, []
        for line in lines:
            await asyncio.sleep(self._delay)
            self._writer.write(line)
            await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


async def read_data(reader: asyncio.StreamReader) -> bytes:
    """The message after a 354, up to its final dot, with dot-stuffing undone."""
    lines = []
    while True:
        line = await reader.readline()
        if not line or line == b".\r\n":
            return b"".join(lines)
        lines.append(line[1:] if line.startswith(b".") else line)


async def script_drop_after_data(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
) -> None:
    await script_smtp(reader, writer, srv, drop_after_data=True)


async def script_drop_mid_data(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: ScriptedServer
) -> None:
    await script_smtp(reader, writer, srv, drop_in_data=True)


@contextlib.contextmanager
def unanswered_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose listen backlog is full: a connect there never completes (its SYN
    is dropped and retried), as with a server that is up but overwhelmed. Yields the port."""
    server = socket.socket()
    fillers: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(4):  # more than the backlog (0 lets the kernel queue one or two)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@pytest.fixture
def scripted_smtp_factory() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(*scripts: Script) -> ScriptedServer:
        server = ScriptedServer(list(scripts))
        server.thread.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.thread.stop()


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def smtp_manager() -> Iterator[Callable[[str], SmtpConnectionManager]]:
    """A function that builds an SMTP connection manager from a connection string; all are closed
    after."""
    managers: list[SmtpConnectionManager] = []

    def make(connection_string: str) -> SmtpConnectionManager:
        manager = SmtpConnectionManager(ConnectionSettings("SMTP CM", "SMTP", connection_string))
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close()


@pytest.fixture
def open_session(
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> Callable[[str], SmtpSession]:
    """A function that opens an SMTP session from a connection string (closed with its manager)."""
    return lambda connection_string: smtp_manager(connection_string).acquire()
