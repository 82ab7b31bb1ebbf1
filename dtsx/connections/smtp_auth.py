"""SMTP AUTH for the SMTP connection manager: SASL exchanges driven by hand over smtplib.

Why not ``smtplib.SMTP.auth``: it base64-decodes every 334 text (``334 NTLM supported`` is free
text), cannot abort with ``*``, and wants ASCII strings where NTLM and Kerberos tokens are binary.
So the loop is here, with one small object per mechanism.

Windows authentication mirrors .NET's ``SmtpClient`` with default credentials: ``AUTH GSSAPI``
carrying SPNEGO (Kerberos from the ticket cache, NTLM inside SPNEGO when no ticket serves) when
the server offers GSSAPI, else ``AUTH NTLM``; never LOGIN or PLAIN. With an explicit user name
and password (a dtsx extension), PLAIN then LOGIN are preferred once TLS protects them, and the
challenge-response mechanisms (NTLM, then GSSAPI) otherwise, since they never send the password.
"""

from __future__ import annotations

import base64
import binascii
import re
import smtplib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from dtsx.connections.smtp_options import AuthMechanism, SmtpOptions

if TYPE_CHECKING:
    # spnego is imported where NTLM or Kerberos is used: a package that sends anonymously or
    # with a password should not pay its import at start-up.
    import spnego

__all__ = [
    "MAX_INITIAL_RESPONSE_LINE",
    "AuthOutcome",
    "AuthProblem",
    "authenticate",
    "offered_mechanisms",
    "scrub_credentials",
]

# RFC 4954 allows 12288 octets, but Postfix cuts command lines at 2048; past this the initial
# response goes on its own line after an empty 334 (AD tickets with a PAC are several KiB).
MAX_INITIAL_RESPONSE_LINE = 2000
_MAX_ROUNDS = 10


class AuthProblem(Exception):
    """Authentication did not succeed. ``transient`` failures (4xx) may be retried."""

    def __init__(
        self,
        what: str,
        advice: str,
        *,
        code: int | None = None,
        reply: str = "",
        transient: bool = False,
    ) -> None:
        self.what = what
        self.advice = advice
        self.code = code
        self.reply = reply
        self.transient = transient
        super().__init__(what)


@dataclass
class AuthOutcome:
    """Which mechanism authenticated (None: none was used) and anything the user should know."""

    mechanism: str | None
    warnings: list[str] = field(default_factory=list)


class _Mechanism(Protocol):
    name: str

    def initial(self) -> bytes | None:
        """The initial response, or None for a mechanism whose first move is the server's."""
        ...

    def respond(self, challenge: bytes) -> bytes:
        """The answer to one server challenge (already base64-decoded)."""
        ...


class _Plain:
    name = "PLAIN"

    def __init__(self, user: str, password: str) -> None:
        self._blob = b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")

    def initial(self) -> bytes:
        return self._blob

    def respond(self, challenge: bytes) -> bytes:
        raise ValueError("the server sent a challenge to AUTH PLAIN, which has none")


class _Login:
    name = "LOGIN"

    def __init__(self, user: str, password: str) -> None:
        self._answers = [user.encode("utf-8"), password.encode("utf-8")]

    def initial(self) -> None:
        return (
            None  # servers disagree on LOGIN's initial response; the prompt form works everywhere
        )

    def respond(self, challenge: bytes) -> bytes:
        if not self._answers:
            raise ValueError("the server asked AUTH LOGIN for more than a user name and a password")
        return self._answers.pop(0)


class _Ntlm:
    name = "NTLM"

    def __init__(self, ctx: spnego.ContextProxy) -> None:
        self._ctx = ctx

    def initial(self) -> bytes:
        return self._ctx.step() or b""

    def respond(self, challenge: bytes) -> bytes:
        if self._ctx.complete:
            raise ValueError("the server sent another NTLM challenge after the exchange completed")
        return self._ctx.step(challenge) or b""


class _Gssapi:
    """RFC 4752: context tokens until complete, then the security-layer negotiation."""

    name = "GSSAPI"

    def __init__(self, ctx: spnego.ContextProxy, authzid: str = "") -> None:
        self._ctx = ctx
        self._authzid = authzid.encode("utf-8")
        self._layer_done = False

    def initial(self) -> bytes:
        return self._ctx.step() or b""

    def respond(self, challenge: bytes) -> bytes:
        if not self._ctx.complete:
            return self._ctx.step(challenge) or b""
        if not challenge:  # e.g. an empty 334 after the AP-REP round
            return b""
        if self._layer_done:
            raise ValueError("the server repeated the GSSAPI security-layer step")
        offer = self._ctx.unwrap(challenge).data
        # Octet 1 is a bit-mask of layers; bit 0x01 is "no security layer", the only one we use
        # (TLS, where wanted, protects the session). .NET replies exactly this way.
        if len(offer) != 4 or not offer[0] & 0x01:
            raise ValueError("the server does not offer GSSAPI without a security layer")
        self._layer_done = True
        return self._ctx.wrap(b"\x01\x00\x00\x00" + self._authzid, encrypt=False).data


def scrub_credentials(text: str, options: SmtpOptions) -> str:
    """``text`` with the password masked in every form this module writes it on the wire: as
    given, and base64-encoded as AUTH LOGIN answers it and inside AUTH PLAIN's initial response.
    A server may echo a command it refuses (``535 ... AUTH PLAIN AGFsaWNl...``), and a plain-text
    scrub alone would let the encoded password through to a message or a chained exception."""
    password = options.password.reveal() if options.password is not None else ""
    if len(password) < 3:  # masking one or two characters would garble the text, not protect it
        return text
    secret = password.encode("utf-8")
    plain = _Plain(options.principal or "", password).initial()
    for form in (password, _b64(secret), _b64(plain)):
        text = text.replace(form, "********")
    return text


def offered_mechanisms(conn: smtplib.SMTP) -> list[str]:
    """The AUTH mechanisms of the last EHLO, upper-cased (some servers advertise ``ntlm``)."""
    text = conn.esmtp_features.get("auth", "") if conn.does_esmtp else ""
    return [m.upper() for m in text.split()]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reply_text(resp: bytes) -> str:
    return resp.decode("utf-8", "replace").strip()


def _abort(conn: smtplib.SMTP) -> None:
    """Cancel an exchange with ``*`` (RFC 4954) so the session stays usable."""
    try:
        conn.docmd("*")
    except (smtplib.SMTPException, OSError):
        pass


def _exchange(conn: smtplib.SMTP, mech: _Mechanism) -> tuple[int, str]:
    """Run one AUTH exchange; returns the final reply. Mechanism errors abort and propagate."""
    initial = mech.initial()  # may raise before anything is sent (no ticket, unknown SPN)
    deferred: bytes | None = None
    args = mech.name
    if initial is not None:
        encoded = _b64(initial) or "="  # RFC 4954: "=" is an empty initial response
        if len(encoded) + len(args) + 7 <= MAX_INITIAL_RESPONSE_LINE:
            args = f"{args} {encoded}"
        else:
            deferred = initial
    code, resp = conn.docmd("AUTH", args)
    rounds = 0
    while code == 334:
        rounds += 1
        try:
            if rounds > _MAX_ROUNDS:
                raise ValueError(f"the server sent more than {_MAX_ROUNDS} challenges")
            if deferred is not None:
                # The first 334 here may be empty or free text ("334 NTLM supported", MS-SMTPNTLM).
                answer, deferred = deferred, None
            else:
                answer = mech.respond(_decode_challenge(resp))
        except Exception:
            _abort(conn)
            raise
        code, resp = conn.docmd(_b64(answer))
    return code, _reply_text(resp)


def _decode_challenge(resp: bytes) -> bytes:
    text = resp.strip()
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the server's challenge {text[:40]!r} is not base64") from exc


def _spnego_context(options: SmtpOptions, protocol: str) -> spnego.ContextProxy:
    # Accept both "SMTPSVC/host[@REALM]" (Windows) and "SMTPSVC@host" (GSSAPI host-based) forms.
    service, sep, host = options.spn.partition("/")
    if not sep:
        service, sep, host = options.spn.partition("@")
    if not sep:
        service, host = "SMTPSVC", options.spn
    import spnego

    password = options.password.reveal() if options.password is not None else None
    return spnego.client(
        options.principal, password, hostname=host.split("@")[0], service=service, protocol=protocol
    )


def _integrated(options: SmtpOptions, name: str) -> _Mechanism:
    if name == "NTLM":
        return _Ntlm(_spnego_context(options, "ntlm"))
    protocol = "kerberos" if options.mechanism is AuthMechanism.KERBEROS else "negotiate"
    return _Gssapi(_spnego_context(options, protocol))


def _integrated_plan(options: SmtpOptions, offered: list[str]) -> list[str]:
    """Mechanisms to try, in order, for Windows (integrated) authentication."""
    mech = options.mechanism
    if mech is AuthMechanism.NTLM:
        return ["NTLM"]
    if mech is AuthMechanism.KERBEROS:
        return ["GSSAPI"]
    if "GSSAPI" in offered:
        # .NET skips its NTLM module when GSSAPI is offered; we keep NTLM as the fallback
        # for a 504 only, as .NET does, so a server refusing credentials is not asked twice.
        return ["GSSAPI", "NTLM"] if "NTLM" in offered else ["GSSAPI"]
    return ["NTLM"] if "NTLM" in offered or mech is AuthMechanism.NEGOTIATE else []


def _password_plan(options: SmtpOptions, offered: list[str], tls: bool) -> list[str]:
    """Mechanisms for an explicit user name and password: clear-text ones only under TLS."""
    mech = options.mechanism
    if mech is AuthMechanism.PLAIN:
        return ["PLAIN"]
    if mech is AuthMechanism.LOGIN:
        return ["LOGIN"]
    clear_ok = tls or options.allow_plaintext_auth
    plan: list[str] = [m for m in ("PLAIN", "LOGIN") if clear_ok and m in offered]
    plan += [m for m in ("NTLM", "GSSAPI") if m in offered]
    return plan


def _build(options: SmtpOptions, name: str, tls: bool) -> _Mechanism:
    if name in ("PLAIN", "LOGIN"):
        if not (tls or options.allow_plaintext_auth):
            raise AuthProblem(
                f"would receive the password in clear text (AUTH {name} on an unencrypted "
                "connection), which dtsx refuses",
                "set EnableSsl=True (or Security=Tls), or AllowPlainTextAuth=True if the network "
                "is trusted",
            )
        user, password = (
            options.principal or "",
            options.password.reveal() if options.password else "",
        )
        return _Plain(user, password) if name == "PLAIN" else _Login(user, password)
    return _integrated(options, name)


def _short(exc: Exception) -> str:
    """The telling part of a GSSAPI error: its minor status text, not the whole chain."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    minor = re.search(r"Minor \(\d+\): (.+?)(?:, Context:|$)", text)
    return minor.group(1).strip() if minor else text


def _client_side_problem(name: str, exc: Exception) -> AuthProblem:
    """A failure inside the local security library, before or during the exchange."""
    import spnego.exceptions  # only on a failure: see the import note at the top

    text = _short(exc)
    if isinstance(exc, spnego.exceptions.NoCredentialError) or "credential" in text.lower():
        advice = (
            "run kinit for a Kerberos ticket, set NTLM_USER_FILE, or give UserName and "
            "PasswordEnv (or PasswordFile) in the connection string"
        )
    elif "not found in Kerberos database" in text:
        advice = "set ServicePrincipalName to the server's principal (default SMTPSVC/<SmtpServer>)"
    elif isinstance(exc, (ImportError, spnego.exceptions.FeatureMissingError)):
        advice = "install Kerberos support with: pip install 'pyspnego[kerberos]'"
    else:
        advice = "check the credentials and the server's authentication settings"
    return AuthProblem(f"was not authenticated to: {name} failed on this machine ({text})", advice)


def _reply_problem(name: str, code: int, raw: str, options: SmtpOptions) -> AuthProblem:
    who = options.principal or "the current Windows/Kerberos identity"
    reply = scrub_credentials(raw, options)  # the problem is shown and may be chained
    if 400 <= code < 500:
        return AuthProblem(
            f"deferred authentication with {name}",
            "try again later",
            code=code,
            reply=reply,
            transient=True,
        )
    if code == 538:
        advice = "set EnableSsl=True (or Security=Tls) so the server allows authentication"
    elif code in (535, 530):
        advice = f"check the password of {who}, or whether the server knows that account"
    else:
        advice = "check the server's authentication settings"
    return AuthProblem(
        f"refused authentication with {name} as {who}", advice, code=code, reply=reply
    )


def _try(conn: smtplib.SMTP, options: SmtpOptions, name: str, tls: bool) -> tuple[int, str]:
    try:
        mech = _build(options, name, tls)
        return _exchange(conn, mech)
    except AuthProblem:
        raise
    except (smtplib.SMTPException, OSError):
        raise  # the connection itself failed; the caller classifies that
    except Exception as exc:  # spnego, gssapi and token parsing raise many types
        raise _client_side_problem(name, exc) from exc


def authenticate(conn: smtplib.SMTP, options: SmtpOptions, *, tls: bool) -> AuthOutcome:
    """Authenticate as the options say, or not at all (anonymous). Raises AuthProblem."""
    if not options.authenticates:
        return AuthOutcome(None)
    offered = offered_mechanisms(conn)
    if options.integrated:
        plan = _integrated_plan(options, offered)
    else:
        plan = _password_plan(options, offered, tls)
    if not plan:
        return _nothing_usable(options, offered, tls)
    missing = [m for m in plan if m not in offered]
    if len(missing) == len(plan):
        shown = " ".join(offered) or "none"
        raise AuthProblem(
            f"does not offer AUTH {' or '.join(plan)} (it offers: {shown})",
            "choose another AuthMechanism or enable the mechanism on the server",
        )
    last: AuthProblem | None = None
    for name in (m for m in plan if m in offered):
        code, reply = _try(conn, options, name, tls)
        if code == 235:
            return AuthOutcome(name)
        last = _reply_problem(name, code, reply, options)
        if code != 504:  # only "mechanism not supported" moves on to the next, as in .NET
            break
    assert last is not None
    raise last


def _nothing_usable(options: SmtpOptions, offered: list[str], tls: bool) -> AuthOutcome:
    shown = " ".join(offered) or "none"
    if options.windows_auth and options.mechanism is AuthMechanism.AUTO:
        # .NET goes on unauthenticated when no module fits; the server may still relay.
        warning = (
            "UseWindowsAuthentication=True, but the server offers no GSSAPI or NTLM (it offers: "
            f"{shown}); "
            "the mail was sent without authentication, as SSIS does."
        )
        return AuthOutcome(None, [warning])
    if any(m in offered for m in ("PLAIN", "LOGIN")) and not tls:
        raise AuthProblem(
            f"offers only clear-text authentication ({shown}) on an unencrypted connection, and "
            "dtsx will not send the password in clear",
            "set EnableSsl=True (or Security=Tls), or AllowPlainTextAuth=True if the network is "
            "trusted",
        )
    raise AuthProblem(
        f"offers no authentication mechanism dtsx can use (it offers: {shown})",
        "remove UserName to send anonymously, or enable AUTH (after STARTTLS: set EnableSsl=True) "
        "on the server",
    )
