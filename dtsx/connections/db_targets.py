"""Driver targets: what to connect with, built from a connection string's pairs or a URL.

``db_strings`` reads the connection string and decides its kind; the builders here turn the
pairs into an SQLAlchemy URL and the driver's connect arguments (pymssql for SQL Server,
psycopg for PostgreSQL, sqlite3, pymysql) or an ODBC string for pyodbc. SQLAlchemy's URL
class is imported only when a target is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dtsx.connections.base import ConnectionSettings, ConnectionString
from dtsx.engine.errors import ConnectionManagerError

__all__ = [
    "DTSX_KEYS",
    "MSSQL_KEYS",
    "MYSQL_KEYS",
    "NPGSQL_KEYS",
    "SQLITE_KEYS",
    "Target",
    "build",
    "odbc_dialect",
    "read_url",
    "url_target",
    "pick",
]

_LOCAL_HOSTS = frozenset({".", "(local)", "localhost", "127.0.0.1"})

# Synonyms as SqlClient/the OLE DB driver accept them (first = the name used in messages).
MSSQL_KEYS = {
    "server": ("Data Source", "Server", "Address", "Addr", "Network Address"),
    "database": ("Initial Catalog", "Database"),
    "user": ("User ID", "UID", "User", "User Name"),
    "password": ("Password", "PWD"),
    "integrated": ("Integrated Security", "Trusted_Connection"),
    "timeout": ("Connect Timeout", "Connection Timeout", "Timeout"),
    "application": ("Application Name", "App"),
}
NPGSQL_KEYS = {
    "server": ("Host", "Server", "Data Source"),
    "port": ("Port",),
    "database": ("Database", "Initial Catalog", "DB"),
    "user": ("Username", "User ID", "User Name", "UID", "User"),
    "password": ("Password", "PWD"),
    "timeout": ("Timeout", "Connect Timeout", "Connection Timeout"),
    "application": ("Application Name",),
    "sslmode": ("SSL Mode", "SslMode"),
}
MYSQL_KEYS = {
    "server": ("Server", "Host", "Data Source", "Address"),
    "port": ("Port",),
    "database": ("Database", "Initial Catalog"),
    "user": ("User ID", "Uid", "Username", "User"),
    "password": ("Password", "Pwd"),
    "timeout": ("Connect Timeout", "Connection Timeout"),
}
SQLITE_KEYS = {"server": ("Data Source", "DataSource", "Filename"), "password": ("Password",)}


@dataclass(frozen=True)
class Target:
    """What to connect with. ``driver`` is ``"sqlalchemy"`` (``url`` + ``connect_args``) or
    ``"pyodbc"`` (``odbc``, the ODBC connection string itself). ``dialect`` is SQLAlchemy's
    name (``""``: known only once connected, an ODBC DSN). ``server`` is for messages and holds
    no secret; ``secret`` is the password, kept to scrub it from drivers' messages."""

    driver: str
    dialect: str
    server: str
    url: Any = None
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    odbc: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    integrated: bool = False  # Windows authentication without credentials (Kerberos)


def pick(pairs: ConnectionString, names: tuple[str, ...]) -> str:
    """The value of the first of ``names`` (synonyms) the string has, trimmed; "" if none."""
    return next((pairs[n].strip() for n in names if n in pairs), "")


# dtsx's own keys, in any connection string: never sent to a driver.
DTSX_KEYS = frozenset({"translate"})


def read_url(name: str, text: str) -> Any:
    """``text`` as an SQLAlchemy URL; ConnectionManagerError (without the URL) if it is none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise ConnectionManagerError(
            f"connection manager {name!r} has a URL that SQLAlchemy cannot read "
            f"({type(exc).__name__}); write it as "
            "dialect+driver://user:password@host:port/database, e.g. sqlite:///path.db."
        ) from None  # the message would quote the URL, password included


def url_target(name: str, text: str) -> Target:
    """The target of a ``--conn`` URL, used as it is (its password kept only as ``secret``)."""
    url = read_url(name, text)
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        server = url.database or ":memory:"
    else:
        host = url.host or "localhost"
        server = f"{host}:{url.port}" if url.port else host
        server += f"/{url.database}" if url.database else ""
    return Target("sqlalchemy", dialect, server, url=url, secret=url.password or "")


def _host_port(raw: str) -> tuple[str, int | None]:
    """SQL Server's ``tcp:host\\instance,port`` forms; ``.``, ``(local)``, ``localhost`` are this
    machine (127.0.0.1: FreeTDS would otherwise try a named pipe it cannot open)."""
    value = raw.strip()
    if value.lower().startswith("tcp:"):
        value = value[4:]
    host, _, port_text = value.partition(",")
    host, _, instance = host.strip().partition("\\")
    if host.lower() in _LOCAL_HOSTS or not host:
        host = "127.0.0.1"
    if instance:
        host = f"{host}\\{instance}"
    port = int(port_text) if port_text.strip().isdigit() else None
    return host, port


def _timeout(pairs: ConnectionString, names: tuple[str, ...]) -> int | None:
    value = pick(pairs, names)
    return int(value) if value.isdigit() else None


def _yes(value: str) -> bool:
    return value.strip().lower() in ("sspi", "true", "yes", "1", "-1")


@dataclass(frozen=True)
class _Server:
    """How a server database's connection-string keys map onto its SQLAlchemy driver."""

    dialect: str
    drivername: str
    keys: Mapping[str, tuple[str, ...]]
    default_port: int | None  # shown in messages; None: SQL Server's instances pick theirs
    arguments: Mapping[str, str]  # a part of the string -> the driver's connect argument


_SERVERS = {
    "mssql": _Server(
        "mssql",
        "mssql+pymssql",
        MSSQL_KEYS,
        None,
        {"timeout": "login_timeout", "application": "appname"},
    ),
    "postgresql": _Server(
        "postgresql",
        "postgresql+psycopg",
        NPGSQL_KEYS,
        5432,
        {"timeout": "connect_timeout", "application": "application_name", "sslmode": "sslmode"},
    ),
    "mysql": _Server("mysql", "mysql+pymysql", MYSQL_KEYS, 3306, {"timeout": "connect_timeout"}),
}


def _server_target(kind: str, pairs: ConnectionString) -> Target:
    from sqlalchemy.engine import URL

    server = _SERVERS[kind]
    keys = server.keys
    host, port = _host_port(pick(pairs, keys["server"]))
    port = _timeout(pairs, keys.get("port", ())) or port
    user, password = pick(pairs, keys["user"]), pick(pairs, keys["password"])
    integrated = _yes(pick(pairs, keys.get("integrated", ())))
    if integrated and "\\" not in user:
        # Windows authentication: FreeTDS uses Kerberos from the ticket cache when no user is
        # given; a DOMAIN\user with a password (NTLM) is passed on as it is.
        user, password = "", ""
    database = pick(pairs, keys["database"])
    url = URL.create(
        server.drivername,
        username=user or None,
        password=password or None,
        host=host,
        port=port,
        database=database or None,
    )
    args: dict[str, Any] = {}
    for part, argument in server.arguments.items():
        given = pick(pairs, keys[part])
        if part == "timeout":
            if given.isdigit():
                args[argument] = int(given)
        elif part == "sslmode" and given:
            args[argument] = re.sub(r"(?<!^)(?=[A-Z])", "-", given).lower()  # VerifyFull
        elif given:
            args[argument] = given
    shown = f"{host}:{port or server.default_port}" if port or server.default_port else host
    shown += f"/{database}" if database else ""
    return Target(
        "sqlalchemy",
        server.dialect,
        shown,
        url=url,
        connect_args=args,
        secret=password,
        integrated=integrated and not user,
    )


def _sqlite_target(pairs: ConnectionString, settings: ConnectionSettings) -> Target:
    from sqlalchemy.engine import URL

    path = pick(pairs, SQLITE_KEYS["server"])
    if path.lower() == ":memory:":
        return Target("sqlalchemy", "sqlite", ":memory:", url=URL.create("sqlite"))
    local = settings.local_path(path)
    return Target("sqlalchemy", "sqlite", local, url=URL.create("sqlite", database=local))


def odbc_dialect(driver: str) -> str:
    """SQLAlchemy's dialect name for an ODBC driver's name or a DBMS name."""
    lowered = driver.lower()
    if "sql server" in lowered or "freetds" in lowered:
        return "mssql"
    if "postgres" in lowered or "psqlodbc" in lowered:
        return "postgresql"
    if "sqlite" in lowered:
        return "sqlite"
    if "mysql" in lowered or "mariadb" in lowered:
        return "mysql"
    return ""


def odbc_target(pairs: ConnectionString) -> Target:
    """The ODBC string goes to the driver manager as it is (minus OLE DB's Provider=MSDASQL)."""
    dropped = DTSX_KEYS | {"provider"}
    kept = ConnectionString({k: v for k, v in pairs.items() if k.lower() not in dropped})
    driver = pick(kept, ("Driver",)).strip("{}")
    dsn = pick(kept, ("DSN", "FileDSN"))
    server = pick(kept, ("Server", "Servername", "Host", "Data Source"))
    port = pick(kept, ("Port",))
    database = pick(kept, ("Database", "Initial Catalog"))
    if server:
        shown = f"{server}:{port}" if port else server
        shown += f"/{database}" if database else ""
    else:
        shown = f"DSN={dsn}" if dsn else f"Driver={driver}"
    return Target(
        "pyodbc",
        odbc_dialect(driver),
        shown,
        odbc=_odbc_text(kept),
        secret=pick(kept, ("PWD", "Password")),
    )


def _odbc_text(pairs: ConnectionString) -> str:
    """``k=v;`` in ODBC's syntax: the driver's name and values with ``;``, ``{`` or ``}``, or
    spaces at an end, in braces (a ``}`` inside doubled)."""
    parts = []
    for key, value in pairs.items():
        if value.startswith("{") and value.endswith("}"):  # kept braced by .NET's syntax
            parts.append(f"{key}={value}")
        elif key.lower() == "driver" or any(c in value for c in ";{}") or value != value.strip():
            parts.append(f"{key}={{{value.replace('}', '}}')}}}")
        else:
            parts.append(f"{key}={value}")
    return ";".join(parts) + ";"


def build(kind: str, pairs: ConnectionString, settings: ConnectionSettings) -> Target:
    """The target of a connection string of ``kind`` (``mssql``, ``postgresql``, ``sqlite``,
    ``mysql`` or ``odbc``), read into ``pairs``."""
    if kind == "odbc":
        return odbc_target(pairs)
    if kind == "sqlite":
        return _sqlite_target(pairs, settings)
    return _server_target(kind, pairs)
