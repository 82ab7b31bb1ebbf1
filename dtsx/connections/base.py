"""The connection-manager plugin API.

A connection manager is built from :class:`ConnectionSettings` (the stored connection string
after overrides and property expressions) when a task first acquires it, and closed at the end
of the run. Register one with ``@register_connection("SMTP")`` or an entry point in the
``dtsx.connections`` group; the key is the package's CreationName.
"""

from __future__ import annotations

import re

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from dtsx.engine.errors import ConnectionManagerError, PluginError
from dtsx.engine.registry import Registry

if TYPE_CHECKING:  # only for annotations: importing email costs start-up time for nothing
    import email.message
    import threading

__all__ = [
    "ConnectionSettings",
    "ConnectionManager",
    "ConnectionString",
    "parse_connection_string",
    "is_url",
    "CONNECTIONS",
    "register_connection",
    "Redirect",
    "mail_sink_redirect",
    "MailSession",
    "SendReport",
    "DatabaseLease",
    "TransactionScope",
    "TransactionParticipant",
    "DatabaseSession",
]


class ConnectionString(Mapping[str, str]):
    """``key=value;`` pairs with case-insensitive keys; remembers the spelling it was given.

    The syntax is .NET's (``DbConnectionStringBuilder``): a value that holds ``;``, starts with a
    quote or has spaces at either end is enclosed in ``"`` or ``'``, a doubled quote inside being
    one quote; ``==`` in a key is one ``=``. A string with no ``=`` at all is kept whole under the
    key ``""`` (SSIS samples set an SMTP connection string to a bare host name).
    """

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for key, value in (pairs or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        self._items[key.strip().lower()] = (key.strip(), value)

    def __getitem__(self, key: str) -> str:
        return self._items[key.strip().lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (spelled for spelled, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Values are deliberately left out: a connection string may carry a password.
        return f"ConnectionString(keys={list(self)!r})"

    def render(self, *, hide: frozenset[str] = frozenset({"password"})) -> str:
        """The string back in ``k=v;`` form, quoted where needed so that it parses back to the same
        pairs, with the values of ``hide`` keys replaced by ``********``."""
        parts = []
        for spelled, value in self._items.values():
            shown = "********" if spelled.lower() in hide else _quote(value)
            parts.append(f"{spelled.replace('=', '==')}={shown}" if spelled else shown)
        return "".join(f"{p};" for p in parts)


def _quote(value: str) -> str:
    """``value`` as a connection-string value: bare when that reads back the same, else quoted."""
    if not value or not (
        ";" in value
        or value[0] in "\"'"
        or value != value.strip()
        or any(ord(c) < 32 for c in value)
    ):
        return value
    if '"' in value and "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', '""') + '"'


class _Reader:
    """Walks a connection string. Its errors name keys and character positions, never a value:
    a value that was cut short at a stray ``;`` is most likely the tail of a password."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.previous: str | None = None  # the last key read, to say where a problem is

    def problem(self, what: str, at: int) -> ConnectionManagerError:
        return ConnectionManagerError(
            f"the connection string has {what} (character {at + 1}); write it as key=value; pairs, "
            "and enclose a value that holds ';' in quotes, e.g. Password=\"a;b\"."
        )

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and (
            self.text[self.pos] in chars or self.text[self.pos].isspace()
        ):
            self.pos += 1

    def key(self) -> str:
        """The key up to its single ``=`` (``==`` is a literal ``=``); the position moves past."""
        text, start, out = self.text, self.pos, []
        where = f"after the value of {self.previous}" if self.previous else "at its start"
        while self.pos < len(text):
            char = text[self.pos]
            if char == "=" and text[self.pos + 1 : self.pos + 2] == "=":
                out.append("=")
                self.pos += 2
            elif char == "=":
                self.pos += 1
                key = "".join(out).strip()
                if not key:
                    raise self.problem(f"a value without a key {where}", start)
                return key
            elif char == ";":
                break
            else:
                out.append(char)
                self.pos += 1
        raise self.problem(f"text without '=' {where}", start)

    def value(self, key: str) -> str:
        """The value after ``key=``, quoted or bare; the position moves past its ``;``."""
        self.skip("")
        text = self.text
        if self.pos < len(text) and text[self.pos] in "\"'":
            return self._quoted(key)
        end = text.find(";", self.pos)
        end = len(text) if end < 0 else end
        value, self.pos = text[self.pos : end].strip(), end + 1
        return value

    def _quoted(self, key: str) -> str:
        text, start, quote, out = self.text, self.pos, self.text[self.pos], []
        self.pos += 1
        while True:
            close = text.find(quote, self.pos)
            if close < 0:
                raise self.problem(f"no closing {quote} for the quoted value of {key}", start)
            out.append(text[self.pos : close])
            self.pos = close + 1
            if text[self.pos : self.pos + 1] != quote:
                break
            out.append(quote)  # a doubled quote is one quote
            self.pos += 1
        self.skip("")
        if self.pos < len(text) and text[self.pos] != ";":
            raise self.problem(
                f"more text after the closing {quote} of the value of {key}", self.pos
            )
        self.pos += 1
        return "".join(out)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str | None) -> bool:
    """Whether a connection string is a URL (``sqlite:///x.db``, ``postgresql+psycopg://…``),
    which ``--conn`` may give in its place: it has no keys, and is never parsed as a string."""
    return text is not None and _URL.match(text.strip()) is not None


def parse_connection_string(text: str | None) -> ConnectionString:
    """Parse an SSIS/OLE DB style connection string; see :class:`ConnectionString`.

    Raises ConnectionManagerError, naming the key and position but never a value."""
    result = ConnectionString()
    if not text or not text.strip():
        return result
    if "=" not in text:
        result[""] = text.strip().rstrip(";").strip()
        return result
    reader = _Reader(text)
    while True:
        reader.skip(";")
        if reader.pos >= len(text):
            return result
        key = reader.key()
        result[key] = reader.value(key)
        reader.previous = key


def _identity(path: str) -> str:
    return path


@dataclass(frozen=True)
class ConnectionSettings:
    """What a connection manager is built from, after overrides and property expressions.

    ``properties`` are runtime properties set by property expressions or ``--set`` (for SMTP,
    e.g. ``SmtpServer`` or ``Timeout``), which win over the same key in the connection string.
    ``local_path`` maps a Windows path from the package to a local one (``--path-map``).
    """

    name: str
    creation_name: str
    connection_string: str = ""
    dtsid: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    local_path: Callable[[str], str] = _identity

    def __repr__(self) -> str:
        return f"ConnectionSettings(name={self.name!r}, creation_name={self.creation_name!r})"


class ConnectionManager(ABC):
    """Base class of every connection manager.

    ``acquire`` returns what tasks use (for SMTP a mail session, for FILE a local path). It may
    be called many times in a run, from several threads; managers that hold a network
    connection reuse it and guard it themselves. ``close`` is called once, at the end of the run.

    ``runtime_properties`` names the properties of this type that a property expression (or
    ``--set``) may set, besides those every connection manager has (``model.CONNECTION_PROPERTIES``:
    ConnectionString, Description...). ``dtsx validate`` reports any other name as an unknown
    property, with the nearest valid one. ``None`` (the default) declares nothing, and then no
    name is second-guessed.
    """

    creation_name: ClassVar[str] = ""
    runtime_properties: ClassVar[frozenset[str] | None] = None

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        """Problems visible before the run (bad keys, missing server); one sentence each."""
        return []

    @classmethod
    def redirected_to_mail_sink(
        cls, settings: ConnectionSettings, host: str, port: int
    ) -> ConnectionSettings:
        """The settings to use when ``dtsx run --dev-smtp`` sends all mail to a local sink.

        A manager that sends mail returns settings pointing at ``host:port``; every other kind
        returns ``settings`` itself (the same object, so a redirect can tell nothing changed).
        """
        return settings

    @abstractmethod
    def acquire(self) -> object:
        """Return the connection object a task uses; raise ConnectionManagerError on failure."""

    def close(self) -> None:  # noqa: B027 - optional: most managers hold nothing
        """Release whatever the manager holds. Must not raise."""


class SendReport(Protocol):
    """What a mail session says about one sent message (never credentials)."""

    @property
    def server(self) -> str:
        """``host:port`` of the server that took the message."""
        ...

    @property
    def accepted(self) -> Sequence[str]:
        """The recipients the server accepted the message for."""
        ...

    @property
    def refused(self) -> Mapping[str, object]:
        """Recipient -> the server's reply, for those it refused."""
        ...


@runtime_checkable
class MailSession(Protocol):
    """What a mail connection manager's ``acquire()`` hands out (SMTP's session)."""

    def send(
        self,
        message: email.message.Message,
        *,
        sender: str,
        recipients: Sequence[str],
        cancel: threading.Event | None = None,
    ) -> SendReport:
        """Send ``message`` from ``sender`` to ``recipients`` (the envelope); ``cancel`` stops it.

        Raises ConnectionManagerError when the message could not be delivered to every
        recipient."""
        ...


class DatabaseLease(Protocol):
    """One task execution's hold on a database connection."""

    @property
    def dbapi(self) -> Any:
        """The raw DB-API 2 connection (``cursor()``, ``nextset()``...)."""
        ...

    def cancel(self) -> None:
        """From another thread: interrupt the running statement within a second."""
        ...

    def set_timeout(self, seconds: int) -> None:
        """The statement timeout for what follows; 0 = none."""
        ...


class TransactionScope(Protocol):
    """An SSIS transaction (TransactionOption=Required) that connections enlist in."""

    # The level to begin at, in SQL words: "READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE
    # READ", "SERIALIZABLE", "SNAPSHOT"; "" = the server's default (SSIS Unspecified / Chaos).
    isolation: str

    def enlisted(self, key: str) -> DatabaseLease | None:
        """The lease already in this transaction for the connection ``key``, if any."""
        ...

    def enlist(self, key: str, participant: TransactionParticipant) -> None:
        """Add ``participant`` (the connection ``key``'s part) to the transaction."""
        ...


class TransactionParticipant(Protocol):
    """One connection's part of a transaction; the scope calls these once, at its end."""

    lease: DatabaseLease
    two_phase: bool  # whether prepare() is real (PostgreSQL PREPARE TRANSACTION)

    def prepare(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@runtime_checkable
class DatabaseSession(Protocol):
    """What a database connection manager's ``acquire()`` hands out (one per manager per run)."""

    name: str  # the connection manager's name (ObjectName), for messages
    connection_type: str  # SSIS family: "OLEDB", "ADO.NET", "ODBC", "ADO"
    dialect: str  # SQLAlchemy dialect name: "sqlite", "postgresql", "mssql", "mysql"...
    paramstyle: str  # the driver's DB-API paramstyle: "qmark", "format", "pyformat"...
    server: str  # for messages: host:port/database or the file; never credentials
    translate: Callable[[str], str] | None  # set when the operator opted into T-SQL translation

    def lease(
        self, transaction: TransactionScope | None = None
    ) -> AbstractContextManager[DatabaseLease]:
        """A connection for one task execution.

        Pooled, in autocommit (each statement commits, as in SSIS), its session state reset;
        with RetainSameConnection=True the one connection held for the run (leases serialised
        on it); inside ``transaction`` the connection enlisted in it, begun on first use."""
        ...


def _is_manager_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, ConnectionManager)


CONNECTIONS: Registry[type[ConnectionManager]] = Registry(
    "connection manager", "dtsx.connections", check=_is_manager_class
)
register_connection = CONNECTIONS.register

# Applied to every connection's final settings (after property expressions and --conn).
Redirect = Callable[[ConnectionSettings], ConnectionSettings]


def mail_sink_redirect(host: str, port: int) -> Redirect:
    """The connection redirect of ``--dev-smtp``: every mail connection goes to ``host:port``.

    Each connection's manager class decides (:meth:`ConnectionManager.redirected_to_mail_sink`);
    it is looked up by creation name, so only the package's own connection types are imported. A
    type that is unknown or fails to import comes back unchanged: opening it fails anyway, with
    its own sentence, so no message can reach a real server.
    """

    def redirect(settings: ConnectionSettings) -> ConnectionSettings:
        try:
            cls = CONNECTIONS.get(settings.creation_name)
        except PluginError:
            return settings
        return cls.redirected_to_mail_sink(settings, host, port)

    return redirect
