"""From an SSIS database connection string (or a ``--conn`` SQLAlchemy URL) to a driver target.

SSIS names a provider (OLE DB ``Provider=SQLNCLI11.1``, the ``ADO.NET:<class>`` qualifier, an ODBC
``Driver=``/``DSN=``); dtsx maps it to a Python driver:

- SQL Server (SQLNCLI*, MSOLEDBSQL*, SQLOLEDB*, SqlClient, ``ADO.NET:SQL``) -> ``mssql+pymssql``
  (pymssql bundles FreeTDS). ``Integrated Security`` without a user means Kerberos from the
  ticket cache, which FreeTDS tries when no user is given; ``User ID=DOMAIN\\user`` with a
  password is NTLM.
- Npgsql and the PGNP OLE DB provider -> ``postgresql+psycopg``; System.Data.SQLite and
  Microsoft.Data.Sqlite -> ``sqlite``; MySQL Connector/NET -> ``mysql+pymysql``.
- ODBC connections (the ODBC family, ADO.NET's Odbc qualifier, OLE DB's MSDASQL) keep their ODBC
  string and go through pyodbc and unixODBC.
- Jet/ACE (Access, Excel), Oracle and Sybase have no driver here: the operator maps them with
  ``--conn NAME=URL``.

An SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://u@h:5432/db``) in place of the
connection string is used as it is. This module reads the string (.NET's syntax, or ODBC's for
ODBC connections), decides its kind and reports its problems (misspelt keys with did-you-mean);
``db_targets`` builds the target. Nothing here connects or imports a driver.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from dtsx.connections.base import (
    ConnectionSettings,
    ConnectionString,
    is_url,
    parse_connection_string,
)
from dtsx.connections.db_targets import (
    DTSX_KEYS,
    MSSQL_KEYS,
    MYSQL_KEYS,
    NPGSQL_KEYS,
    SQLITE_KEYS,
    Target,
    build,
    odbc_dialect,
    read_url,
    url_target,
    pick,
)
from dtsx.engine.errors import ConnectionManagerError
from dtsx.engine.model import ssis_flag
from dtsx.engine.paths import unmapped_windows_path

__all__ = [
    "DTSX_KEYS",
    "Target",
    "dialect_of",
    "family_of",
    "odbc_dialect",
    "setting",
    "string_problems",
    "target_for",
    "translation",
]


# Keys accepted but not used (they change nothing dtsx can honour), so that the check of
# misspelt keys knows them. Lower case.
_MSSQL_IGNORED = {
    "provider",
    "persist security info",
    "auto translate",
    "use encryption for data",
    "encrypt",
    "trust server certificate",
    "trustservercertificate",
    "multisubnetfailover",
    "multipleactiveresultsets",
    "mars connection",
    "packet size",
    "workstation id",
    "wsid",
    "current language",
    "language",
    "network library",
    "network",
    "failover partner",
    "initial file name",
    "attachdbfilename",
    "use procedure for prepare",
    "pooling",
    "min pool size",
    "max pool size",
    "connection lifetime",
    "load balance timeout",
    "enlist",
    "locale identifier",
    "ole db services",
    "mode",
    "prompt",
    "datatypecompatibility",
    "column encryption setting",
    "authentication",
    "host name in certificate",
    "server spn",
    "replication",
    "asynchronous processing",
    "async",
    "application intent",
    "applicationintent",
    "transaction binding",
    "type system version",
    "user instance",
    "context connection",
    "connectretrycount",
    "connectretryinterval",
    "connect retry count",
    "connect retry interval",
    "general timeout",
    "tag with column collation when possible",
    "extended properties",
    "integrated security",
    "general",
    "data typecompatibility",
    "command timeout",
}
_NPGSQL_IGNORED = {
    "pooling",
    "minimum pool size",
    "maximum pool size",
    "connection idle lifetime",
    "command timeout",
    "trust server certificate",
    "search path",
    "include error detail",
    "keepalive",
    "encoding",
    "client encoding",
    "timezone",
    "enlist",
    "no reset on close",
    "server compatibility mode",
    "persist security info",
    "provider",
    "extended properties",
    "location",
    "max pool size",
    "min pool size",
    "ssl",
    "integrated security",
}
_SQLITE_IGNORED = {
    "version",
    "pooling",
    "journal mode",
    "synchronous",
    "foreign keys",
    "cache size",
    "page size",
    "datetimeformat",
    "binaryguid",
    "fail if missing",
    "read only",
    "mode",
    "cache",
    "default timeout",
    "busy timeout",
    "legacy format",
    "max pool size",
    "enlist",
    "uri",
    "fulluri",
    "new",
    "utf16encoding",
    "datetimekind",
    "default isolationlevel",
}

_UNSUPPORTED = (
    (re.compile(r"^microsoft\.(jet|ace)\.oledb", re.I), "Access/Excel (Jet/ACE)"),
    (re.compile(r"^(oraoledb|msdaora)|oracle", re.I), "Oracle"),
    (re.compile(r"^sybase|^ase", re.I), "Sybase ASE"),
    (re.compile(r"^ibmda400|^ibmdadb2|db2", re.I), "IBM DB2"),
)


def family_of(creation_name: str) -> tuple[str, str]:
    """``(family, qualifier)``: ``("ADO.NET", "SYSTEM.DATA.SQLCLIENT.SQLCONNECTION")`` etc."""
    family, _, rest = creation_name.strip().partition(":")
    return family.strip().upper(), rest.split(",", 1)[0].strip().upper()


def translation(settings: ConnectionSettings) -> str | None:
    """The T-SQL translation asked for: the ``Translate`` property (``--translate NAME=tsql``)
    or a ``Translate=`` key of the connection string; None when neither is set."""
    value = setting(settings.properties, "Translate")
    if value is None and not is_url(settings.connection_string):
        try:
            pairs = _pairs(settings)
        except ConnectionManagerError:
            return None  # the string's own problem is reported by check()
        value = pairs.get("Translate")
    return value.strip().lower() if value is not None else None


def setting(properties: Mapping[str, str], *names: str) -> str | None:
    """A runtime property by any of its names, case-insensitively."""
    wanted = {n.lower() for n in names}
    return next((v for k, v in properties.items() if k.lower() in wanted), None)


def retains(settings: ConnectionSettings) -> bool | None:
    """RetainSameConnection (``Retain``) as a boolean: SSIS's spellings (True/False, -1/0/1,
    empty) and the connection strings' yes/no; None for anything else, which ``check`` refuses."""
    text = setting(settings.properties, "Retain", "RetainSameConnection")
    if text is None:
        return False
    low = text.strip().lower()
    if low in ("yes", "no"):
        return low == "yes"
    return ssis_flag(text)


def _pairs(settings: ConnectionSettings) -> ConnectionString:
    """The string's pairs: ODBC's syntax (``{...}`` values) for ODBC connections, .NET's
    (quoted values) for the others."""
    family, qualifier = family_of(settings.creation_name)
    if family == "ODBC" or (family == "ADO.NET" and "ODBC" in qualifier):
        return _odbc_pairs(settings.connection_string)
    return parse_connection_string(settings.connection_string)


def _odbc_pairs(text: str) -> ConnectionString:
    """ODBC's ``key=value;`` syntax: a value in braces runs to its closing ``}`` (``}}`` is one
    ``}``) and may hold ``;``. The braces are not part of the value. Errors name the key and
    position, never a value."""
    pairs, pos = ConnectionString(), 0
    while pos < len(text):
        end = text.find("=", pos)
        if end < 0:
            if text[pos:].strip(" ;"):
                raise _odbc_problem(f"text without '=' (character {pos + 1})")
            break
        key = text[pos:end].strip(" ;")
        pos = end + 1
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if text.startswith("{", pos):
            value, pos = _braced(text, pos, key)
        else:
            end = text.find(";", pos)
            end = len(text) if end < 0 else end
            value, pos = text[pos:end].strip(), end + 1
        pairs[key] = value
    return pairs


def _braced(text: str, start: int, key: str) -> tuple[str, int]:
    out, pos = [], start + 1
    while True:
        close = text.find("}", pos)
        if close < 0:
            raise _odbc_problem(f"no closing '}}' for the value of {key}")
        out.append(text[pos:close])
        if text.startswith("}}", close):
            out.append("}")
            pos = close + 2
            continue
        end = text.find(";", close)
        return "".join(out), len(text) if end < 0 else end + 1


def _odbc_problem(what: str) -> ConnectionManagerError:
    return ConnectionManagerError(
        f"the ODBC connection string has {what}; write it as key=value; pairs, and enclose a "
        "value that holds ';' in braces, e.g. PWD={a;b}."
    )


def _kind(settings: ConnectionSettings, pairs: ConnectionString) -> str:
    """mssql, postgresql, sqlite, mysql, odbc, or ``unsupported:<what>`` / ``unknown:<what>``."""
    family, qualifier = family_of(settings.creation_name)
    if family == "ODBC":
        return "odbc"
    if family == "ADO.NET" and "OLEDB" not in qualifier:
        return _adonet_kind(qualifier)
    provider = pick(pairs, ("Provider",))
    if not provider:
        return "unknown:no Provider"
    lowered = provider.lower()
    for pattern, what in _UNSUPPORTED:
        if pattern.search(lowered):
            return f"unsupported:{what} (Provider={provider})"
    if lowered.startswith(("sqlncli", "msoledbsql", "sqloledb")):
        return "mssql"
    if lowered.startswith("pgnp") or "postgres" in lowered:
        return "postgresql"
    if lowered.startswith("msdasql"):
        return "odbc"
    return f"unknown:Provider={provider}"


def _adonet_kind(qualifier: str) -> str:
    if qualifier in ("SQL", "SQLCLIENT") or "SQLCLIENT" in qualifier:
        return "mssql"
    if "ODBC" in qualifier:
        return "odbc"
    if "NPGSQL" in qualifier:
        return "postgresql"
    if "SQLITE" in qualifier:
        return "sqlite"
    if "MYSQL" in qualifier:
        return "mysql"
    if "ORACLE" in qualifier:
        return "unsupported:Oracle (ADO.NET provider)"
    return f"unknown:the ADO.NET provider {qualifier or '(none)'}"


def _keys_of(kind: str) -> tuple[Mapping[str, tuple[str, ...]], set[str]]:
    keys, ignored = {
        "mssql": (MSSQL_KEYS, _MSSQL_IGNORED),
        "postgresql": (NPGSQL_KEYS, _NPGSQL_IGNORED),
        "mysql": (MYSQL_KEYS, _MSSQL_IGNORED),
        "sqlite": (SQLITE_KEYS, _SQLITE_IGNORED),
    }.get(kind, ({}, set()))
    return keys, ignored | DTSX_KEYS


def _with_properties(settings: ConnectionSettings, pairs: ConnectionString, kind: str) -> None:
    """SSIS's ServerName, InitialCatalog, UserName and Password properties (set by expressions,
    ``--set`` or ``CM.<name>.<Property>`` parameters) win over the string's keys."""
    keys, _ = _keys_of(kind)
    for prop, part in (
        ("ServerName", "server"),
        ("InitialCatalog", "database"),
        ("UserName", "user"),
        ("Password", "password"),
    ):
        value = setting(settings.properties, prop)
        if value is not None and part in keys:
            for synonym in keys[part][1:]:
                if synonym in pairs:
                    pairs[synonym] = value
            pairs[keys[part][0]] = value


def _mapping_hint(name: str) -> str:
    return (
        f'map it to a database dtsx can open with --conn "{name}=URL", e.g. '
        f'--conn "{name}=sqlite:///path.db" or "{name}=postgresql+psycopg://user@host:5432/db"'
    )


def string_problems(settings: ConnectionSettings) -> list[str]:
    """What is wrong with the settings before anything connects; one sentence each, never a
    value of the string (it may hold a password)."""
    text = settings.connection_string
    if is_url(text):
        try:
            read_url(settings.name, text)
        except ConnectionManagerError as exc:
            return [str(exc)]
        return []
    name = settings.name
    if not text.strip():
        return [
            f"connection manager {name!r} has no connection string; set it, or "
            f"{_mapping_hint(name)}."
        ]
    try:
        pairs = _pairs(settings)
    except ConnectionManagerError as exc:
        return [f"connection manager {name!r}: {exc}"]
    kind = _kind(settings, pairs)
    if kind.startswith(("unsupported:", "unknown:")):
        return [_kind_problem(name, kind)]
    if kind == "odbc":
        if not pick(pairs, ("Driver", "DSN", "FileDSN")):
            return [
                f"connection manager {name!r} is an ODBC connection without Driver= or DSN=; "
                "name the ODBC driver (Driver={PostgreSQL Unicode};...) or a data source."
            ]
        return []
    problems = _misspelt(name, pairs, kind)
    _with_properties(settings, pairs, kind)
    keys, _ = _keys_of(kind)
    if not pick(pairs, keys["server"]):
        what = "database file" if kind == "sqlite" else "server"
        problems.append(
            f"connection manager {name!r} names no {what} (its connection string has no "
            f"{keys['server'][0]}=); add it, or {_mapping_hint(name)}."
        )
    if kind == "sqlite":
        problems.extend(_sqlite_problems(settings, pairs))
    return problems


def _sqlite_problems(settings: ConnectionSettings, pairs: ConnectionString) -> list[str]:
    name, problems = settings.name, []
    stored = pick(pairs, SQLITE_KEYS["server"])
    unmapped = unmapped_windows_path(stored, settings.local_path(stored)) if stored else None
    if unmapped:  # sqlite3 would create a file named "C:\\data\\x.db" here
        problems.append(f"connection manager {name!r} opens {unmapped}.")
    if pick(pairs, ("Password",)):
        problems.append(
            f"connection manager {name!r} opens an encrypted SQLite database (Password=), which "
            "Python's sqlite3 cannot read; decrypt the file, or map the connection with --conn."
        )
    return problems


def _kind_problem(name: str, kind: str) -> str:
    reason, _, what = kind.partition(":")
    if reason == "unsupported":
        return f"connection manager {name!r} uses {what}, which dtsx has no driver for; " + (
            _mapping_hint(name) + "."
        )
    return (
        f"connection manager {name!r} has {what}, which dtsx does not know how to open "
        f"(it opens SQL Server, PostgreSQL, SQLite, MySQL and ODBC providers); "
        f"{_mapping_hint(name)}."
    )


def _misspelt(name: str, pairs: ConnectionString, kind: str) -> list[str]:
    """Keys that are not the provider's but are close to one of its keys: a typo, reported
    with the key it most likely meant. Keys far from every known key are left alone: a provider
    accepts more keys than dtsx knows."""
    keys, ignored = _keys_of(kind)
    known = {synonym.lower(): synonym for names in keys.values() for synonym in names}
    known.update({key: key for key in ignored})
    problems = []
    for key in pairs:
        if key.lower() in known or not key:
            continue
        close = difflib.get_close_matches(key.lower(), list(known), n=1, cutoff=0.8)
        if close:
            problems.append(
                f"connection manager {name!r} has the connection-string key {key!r}, which "
                f"the provider does not know; did you mean {known[close[0]]!r}?"
            )
    return problems


def dialect_of(settings: ConnectionSettings) -> str | None:
    """SQLAlchemy's dialect name for the settings, from the text alone (nothing imported or
    connected): ``mssql``, ``postgresql``, ``sqlite``, ``mysql``, a URL's backend; None when
    only a connect can tell (an ODBC DSN) or the provider is unsupported."""
    text = settings.connection_string.strip()
    if is_url(text):
        backend = text.split(":", 1)[0].split("+", 1)[0].lower()
        return "postgresql" if backend == "postgres" else backend
    try:
        pairs = _pairs(settings)
    except ConnectionManagerError:
        return None
    kind = _kind(settings, pairs)
    if kind == "odbc":
        return odbc_dialect(pick(pairs, ("Driver",))) or None
    return None if ":" in kind else kind


def target_for(settings: ConnectionSettings) -> Target:
    """The driver target of ``settings``; ConnectionManagerError (one sentence, no secret) when
    there is none."""
    text = settings.connection_string.strip()
    if is_url(text):
        return url_target(settings.name, text)
    problems = string_problems(settings)
    if problems:
        raise ConnectionManagerError(problems[0])
    pairs = _pairs(settings)
    kind = _kind(settings, pairs)
    if kind != "odbc":
        _with_properties(settings, pairs, kind)
    return build(kind, pairs, settings)
