"""Settings of the SMTP connection manager: the SSIS keys, dtsx's extension keys, and checks.

SSIS writes ``SmtpServer=host;UseWindowsAuthentication=False;EnableSsl=False;`` (``Timeout=ms;``
from 2012 on), or just a bare host name. Runtime properties set by property expressions win over
the same key in the string. dtsx adds keys that SSIS does not have (port, implicit TLS, explicit
credentials, certificate trust); every key is case-insensitive and unknown keys are refused with
the nearest valid names, because a misspelt ``EnableSSl`` silently ignored would send in clear.

This module does no I/O except reading ``PasswordFile`` and ``PasswordEnv``, and imports
neither smtplib nor ssl, so ``check()`` can run at validation time.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from dtsx.connections.base import ConnectionSettings, parse_connection_string

from dtsx.engine.files import SecretFileError, read_secret_file
from dtsx.engine.errors import ConnectionManagerError
from dtsx.engine.model import ssis_flag

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "SMTP_KEYS",
    "AuthMechanism",
    "Secret",
    "Security",
    "SmtpOptions",
    "parse_smtp_options",
    "smtp_option_problems",
]

DEFAULT_TIMEOUT_MS = 100_000  # .NET SmtpClient.Timeout default (spec §1.6)
DEFAULT_PORT = 25
# Connections one run opens at most to one server, for Send Mail tasks running in parallel; few,
# because servers limit connections per client (Postfix: 50, Exchange: 20 by default).
DEFAULT_MAX_CONNECTIONS = 4
MAX_MAX_CONNECTIONS = 32
DEFAULT_TLS_PORT = 465


class Security(str, Enum):
    """How the connection is protected. ``EnableSsl=True`` means STARTTLS, as in .NET."""

    NONE = "None"
    STARTTLS = "StartTls"
    TLS = "Tls"  # implicit TLS (SMTPS); SSIS/.NET cannot do this


class AuthMechanism(str, Enum):
    AUTO = "Auto"
    NEGOTIATE = "Negotiate"
    KERBEROS = "Kerberos"
    NTLM = "Ntlm"
    PLAIN = "Plain"
    LOGIN = "Login"


INTEGRATED = frozenset({AuthMechanism.NEGOTIATE, AuthMechanism.KERBEROS, AuthMechanism.NTLM})


class Secret:
    """A password that never shows itself in repr(), str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Canonical spelling of every key; SSIS's own keys first.
SMTP_KEYS: tuple[str, ...] = (
    "SmtpServer",
    "UseWindowsAuthentication",
    "EnableSsl",
    "Timeout",
    "Port",
    "Security",
    "UserName",
    "Password",
    "PasswordEnv",
    "PasswordFile",
    "Domain",
    "AuthMechanism",
    "ServicePrincipalName",
    "CaFile",
    "TrustServerCertificate",
    "AllowPlainTextAuth",
    "Pipelining",
    "MaxConnections",
)
_CANONICAL = {k.lower(): k for k in SMTP_KEYS}
# Generic connection-manager properties a property expression may set; they do not shape SMTP.
_GENERIC_PROPERTIES = frozenset(
    {
        "connectbyproxy",
        "description",
        "name",
        "objectname",
        "delayvalidation",
        "protectionlevel",
        "connectionstring",
        "supportsdtctransactions",
        "creationname",
        "dtsid",
    }
)
# Keys whose values are secrets: never stripped, never echoed (nor is what follows them).
_SECRET_KEYS = frozenset({"password"})
# Connection strings also take the yes/no that .NET's connection-string builder accepts.
_YES_NO = {"yes": True, "no": False}


@dataclass(frozen=True)
class SmtpOptions:
    """Everything the SMTP manager needs, validated. ``timeout`` is in seconds."""

    server: str
    port: int = DEFAULT_PORT
    timeout: float = DEFAULT_TIMEOUT_MS / 1000
    security: Security = Security.NONE
    windows_auth: bool = False
    username: str | None = None
    domain: str | None = None
    password: Secret | None = field(default=None, repr=False)
    mechanism: AuthMechanism = AuthMechanism.AUTO
    spn: str = ""
    ca_file: str | None = None
    trust_server_certificate: bool = False
    allow_plaintext_auth: bool = False
    pipelining: bool = True  # use PIPELINING when the server offers it (RFC 2920)
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # parallel sends each get one, up to this many
    warnings: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return (
            f"[{self.server}]:{self.port}" if ":" in self.server else f"{self.server}:{self.port}"
        )

    @property
    def principal(self) -> str | None:
        """The user name as NTLM and PLAIN see it: ``DOMAIN\\user`` when a Domain is given."""
        if not self.username:
            return None
        return f"{self.domain}\\{self.username}" if self.domain else self.username

    @property
    def integrated(self) -> bool:
        """True when authentication goes through SSPI-like mechanisms (GSSAPI/NTLM)."""
        return self.windows_auth or self.mechanism in INTEGRATED

    @property
    def authenticates(self) -> bool:
        return (
            self.integrated or self.username is not None or self.mechanism is not AuthMechanism.AUTO
        )

    def __repr__(self) -> str:
        return (
            f"SmtpOptions(server={self.address!r}, security={self.security.value}, "
            f"windows_auth={self.windows_auth}, user={self.principal!r}, "
            f"mechanism={self.mechanism.value})"
        )


class _Collector:
    """Gathers every problem instead of stopping at the first, so ``check`` can list them all."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []

    def add(self, text: str) -> None:
        self.problems.append(f"SMTP connection manager {self.name!r}: {text}")


def _merged(settings: ConnectionSettings, out: _Collector) -> dict[str, str]:
    """Connection-string keys overlaid by runtime properties; canonical key -> raw value."""
    try:
        parsed = parse_connection_string(settings.connection_string)
    except ConnectionManagerError as exc:
        out.add(str(exc))
        return {}
    values: dict[str, str] = {}
    previous = ""
    for key in parsed:
        if previous.lower() in _SECRET_KEYS and key.strip().lower() not in _CANONICAL:
            # Most likely the tail of a password that holds ';' and '=': never echo it.
            out.add(
                f"the connection string key after {previous} is not an SMTP key; if the password "
                "holds ';', enclose it in quotes, e.g. Password=\"a;b\"."
            )
        else:
            _put(values, key, parsed[key], out, "connection string key")
        previous = key
    for key, value in settings.properties.items():
        if key.strip().lower() in _GENERIC_PROPERTIES:
            continue
        _put(values, key, "" if value is None else str(value), out, "property")
    return values


def _put(values: dict[str, str], key: str, value: str, out: _Collector, what: str) -> None:
    if key == "":  # a bare host name: Microsoft's own samples write ConnectionString = "smtphost"
        values["SmtpServer"] = value
        return
    canonical = _CANONICAL.get(key.strip().lower())
    if canonical is None:
        near = difflib.get_close_matches(key.strip().lower(), list(_CANONICAL), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(_CANONICAL[n] for n in near)}? " if near else ""
        out.add(f"unknown {what} {key!r}; {hint}valid keys are {', '.join(SMTP_KEYS)}.")
        return
    # Spaces may belong to a password (quoted in the string, or set by an expression).
    values[canonical] = value if canonical.lower() in _SECRET_KEYS else value.strip()


def _bool(values: dict[str, str], key: str, out: _Collector, default: bool = False) -> bool:
    raw = values.get(key)
    if raw is None:
        return default
    flag = ssis_flag(raw)
    if flag is None:
        flag = _YES_NO.get(raw.strip().lower())
    if flag is None:
        out.add(f"{key}={raw!r} is not a boolean; write True or False.")
        return default
    return flag


def _enum(values: dict[str, str], key: str, kind: type[Enum], out: _Collector) -> Enum | None:
    raw = values.get(key)
    if raw is None or raw == "":
        return None
    for member in kind:
        if member.value.lower() == raw.lower():
            return member
    names = ", ".join(m.value for m in kind)
    out.add(f"{key}={raw!r} is not one of {names}.")
    return None


def _security(values: dict[str, str], out: _Collector) -> Security:
    enable_ssl = _bool(values, "EnableSsl", out)
    chosen = _enum(values, "Security", Security, out)
    if chosen is None:
        return Security.STARTTLS if enable_ssl else Security.NONE
    if enable_ssl and chosen is Security.NONE:
        out.add("EnableSsl=True contradicts Security=None; remove one of them.")
    return Security(chosen)


def _port(values: dict[str, str], security: Security, out: _Collector) -> int:
    raw = values.get("Port")
    default = DEFAULT_TLS_PORT if security is Security.TLS else DEFAULT_PORT
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        out.add(f"Port={raw!r} is not a TCP port; write a number from 1 to 65535.")
        return default
    return int(raw)


def _max_connections(values: dict[str, str], out: _Collector) -> int:
    raw = values.get("MaxConnections")
    if raw is None or raw == "":
        return DEFAULT_MAX_CONNECTIONS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MAX_CONNECTIONS:
        out.add(
            f"MaxConnections={raw!r} is not a number from 1 to {MAX_MAX_CONNECTIONS}; write e.g. "
            f"MaxConnections={DEFAULT_MAX_CONNECTIONS}."
        )
        return DEFAULT_MAX_CONNECTIONS
    return int(raw)


def _timeout(values: dict[str, str], out: _Collector, warnings: list[str]) -> float:
    raw = values.get("Timeout")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_MS / 1000
    text = raw.strip()
    if not text.lstrip("-").isdigit():
        out.add(f"Timeout={raw!r} is not a whole number of milliseconds; write e.g. Timeout=30000.")
        return DEFAULT_TIMEOUT_MS / 1000
    millis = int(text)
    if millis < 0:
        out.add(
            f"Timeout={millis} is negative; write a number of milliseconds, e.g. Timeout=30000."
        )
        return DEFAULT_TIMEOUT_MS / 1000
    if millis == 0:  # SSIS's Timeout is nullable; 0 reads as "not set", never as "wait forever"
        warnings.append("Timeout=0 is treated as unset: the default of 100000 ms (100 s) applies.")
        return DEFAULT_TIMEOUT_MS / 1000
    if millis < 1000:
        warnings.append(
            f"Timeout={millis} is in milliseconds (as in SSIS), so the server gets only {millis} "
            "ms."
        )
    return millis / 1000


def _password(values: dict[str, str], out: _Collector, environ: Mapping[str, str]) -> Secret | None:
    given = [k for k in ("Password", "PasswordEnv", "PasswordFile") if values.get(k)]
    if len(given) > 1:
        out.add(f"{' and '.join(given)} are both set; give the password one way only.")
        return None
    if not given:
        return None
    key = given[0]
    if key == "Password":
        return Secret(values["Password"])
    if key == "PasswordEnv":
        name = values["PasswordEnv"]
        if name not in environ:
            out.add(
                f"PasswordEnv={name} names an environment variable that is not set; export it "
                "before the run."
            )
            return None
        return Secret(environ[name])
    return _password_file(values["PasswordFile"], out)


def _password_file(path: str, out: _Collector) -> Secret | None:
    try:
        return Secret(read_secret_file(path))
    except SecretFileError as exc:
        out.add(f"PasswordFile={path} is refused: {exc.strerror}.")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        out.add(
            f"PasswordFile={path} cannot be read ({detail}); check the path and its permissions."
        )
        return None


def _server(values: dict[str, str], out: _Collector) -> str:
    server = values.get("SmtpServer", "").strip()
    if not server:
        out.add("no SmtpServer is set; write SmtpServer=<host name>; in the connection string.")
    elif any(c.isspace() for c in server) or "/" in server:
        out.add(f"SmtpServer={server!r} is not a host name.")
    elif server.count(":") == 1:
        out.add(
            f"SmtpServer={server!r} carries a port, which SSIS does not parse; write "
            f"Port={server.split(':')[1]}; instead."
        )
    return server.strip("[]")


def _mechanism(values: dict[str, str], windows_auth: bool, out: _Collector) -> AuthMechanism:
    mechanism = AuthMechanism(
        _enum(values, "AuthMechanism", AuthMechanism, out) or AuthMechanism.AUTO
    )
    if windows_auth and mechanism in (AuthMechanism.PLAIN, AuthMechanism.LOGIN):
        out.add(
            f"AuthMechanism={mechanism.value} cannot be used with UseWindowsAuthentication=True, "
            "which only "
            "uses Negotiate, Kerberos or NTLM (as SSIS does); set UseWindowsAuthentication=False."
        )
    return mechanism


def _build(
    settings: ConnectionSettings, out: _Collector, environ: Mapping[str, str]
) -> SmtpOptions:
    values = _merged(settings, out)
    warnings: list[str] = []
    server = _server(values, out)
    security = _security(values, out)
    windows_auth = _bool(values, "UseWindowsAuthentication", out)
    mechanism = _mechanism(values, windows_auth, out)
    password = _password(values, out, environ)
    username = values.get("UserName") or None
    if password is not None and username is None and not windows_auth:
        out.add("a password is given without UserName; add UserName=<user>;.")
    if mechanism in (AuthMechanism.PLAIN, AuthMechanism.LOGIN) and (
        username is None or password is None
    ):
        out.add(
            f"AuthMechanism={mechanism.value} needs UserName and a password (Password, PasswordEnv "
            "or PasswordFile)."
        )
    trust = _bool(values, "TrustServerCertificate", out)
    if trust and security is not Security.NONE:
        warnings.append(
            "TrustServerCertificate=True: the server's TLS certificate is NOT checked, so anyone "
            "on the "
            "network path can read the mail and any password; use CaFile=<ca.pem> instead."
        )
    ca_file = values.get("CaFile") or None
    if ca_file is not None and not Path(ca_file).expanduser().is_file():
        out.add(
            f"CaFile={ca_file} is not a readable file; give the path of a PEM file holding the CA "
            "certificate."
        )
    return SmtpOptions(
        server=server,
        port=_port(values, security, out),
        timeout=_timeout(values, out, warnings),
        security=security,
        windows_auth=windows_auth,
        username=username,
        domain=values.get("Domain") or None,
        password=password,
        mechanism=mechanism,
        spn=values.get("ServicePrincipalName") or f"SMTPSVC/{server}",
        ca_file=str(Path(ca_file).expanduser()) if ca_file else None,
        trust_server_certificate=trust,
        allow_plaintext_auth=_bool(values, "AllowPlainTextAuth", out),
        pipelining=_bool(values, "Pipelining", out, default=True),
        max_connections=_max_connections(values, out),
        warnings=tuple(warnings),
    )


def smtp_option_problems(
    settings: ConnectionSettings, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every static problem of these settings, one sentence each (empty when they are usable)."""
    out = _Collector(settings.name)
    _build(settings, out, os.environ if environ is None else environ)
    return out.problems


def parse_smtp_options(
    settings: ConnectionSettings,
    environ: Mapping[str, str] | None = None,
) -> SmtpOptions:
    """Validated options, or ConnectionManagerError listing every problem."""
    out = _Collector(settings.name)
    options = _build(settings, out, os.environ if environ is None else environ)
    if out.problems:
        detail = " ".join(out.problems) if len(out.problems) == 1 else "; ".join(out.problems)
        raise ConnectionManagerError(detail, host=options.server or None, port=options.port)
    return options
