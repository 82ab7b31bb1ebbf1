"""Real database servers on loopback for tests and benches: a throwaway PostgreSQL cluster.

:func:`start_postgres` runs ``initdb`` into a fresh temporary folder and ``pg_ctl start`` on a
free 127.0.0.1 port, as k5test does for Kerberos; :meth:`PostgresCluster.stop` stops the server
(``-m immediate``: nothing in it is worth a checkpoint) and removes the folder. initdb refuses to
run as root, so as root the folder belongs to ``nobody`` and the binaries run under
``runuser -u nobody --`` (spec execute-sql.md §4.9); as any other user they run directly.

Authentication is real: over TCP every role needs its password (scram-sha-256); only the Unix
socket in the cluster's folder trusts, and only the fixtures' administration uses it.
``max_prepared_transactions`` is on, so two-phase commit (``PREPARE TRANSACTION``) works.

Exposed to every test through ``tests/conftest.py``:

``postgres``       session-scoped :class:`PostgresDatabase` (database ``dtsx``, role ``dtsx``
                   with :data:`PASSWORD`); skips without the binaries or psycopg
``postgres_odbc``  the same, after checking pyodbc and the ``PostgreSQL Unicode`` ODBC driver
``postgres_db``    a fresh database of that cluster for one test

``bench/`` imports :func:`start_postgres` too (nothing here needs pytest except the fixtures).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ODBC_DRIVER",
    "PASSWORD",
    "USER",
    "PostgresCluster",
    "PostgresDatabase",
    "free_port",
    "odbc_missing",
    "postgres",
    "postgres_bin",
    "postgres_db",
    "postgres_missing",
    "postgres_odbc",
    "start_postgres",
]

USER = "dtsx"
PASSWORD = "Dtsx-Pg-Secret-7"  # distinctive, so a test can look for it in messages and logs
DATABASE = "dtsx"
ODBC_DRIVER = "PostgreSQL Unicode"
_START_WAIT = 60  # seconds pg_ctl may take to start or stop (2 cores shared by many processes)
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest ``/usr/lib/postgresql/<v>/bin``,
    else the one on PATH; None when PostgreSQL's server binaries are not installed."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "pg_ctl").exists()]
    if found:
        return max(found, key=lambda p: _version_key(p.parent.name))
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl and shutil.which("initdb") else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def postgres_missing() -> str | None:
    """Why a PostgreSQL cluster cannot be started here, or None."""
    if postgres_bin() is None:
        return "PostgreSQL's server binaries are absent; apt-get install postgresql"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, so initdb cannot run as another user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is absent; pip install 'psycopg[binary]' (dtsx[postgresql])"
    return None


def odbc_missing() -> str | None:
    """Why ODBC to PostgreSQL cannot be tested here, or None."""
    try:
        import pyodbc
    except ImportError:
        return "pyodbc is absent; pip install pyodbc (dtsx[odbc]) and apt-get install unixodbc"
    if ODBC_DRIVER not in pyodbc.drivers():
        return f"the ODBC driver {ODBC_DRIVER!r} is absent; apt-get install odbc-postgresql"
    return None


@dataclass(frozen=True)
class PostgresDatabase:
    """One database of a running cluster and how each kind of client reaches it."""

    host: str
    port: int
    user: str
    password: str
    database: str
    cluster: PostgresCluster = field(repr=False, compare=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver), password included."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def url_without_password(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def odbc(self) -> str:
        """ODBC connection string for the PostgreSQL Unicode driver (an SSIS ODBC CM's string)."""
        return (
            f"Driver={{{ODBC_DRIVER}}};Server={self.host};Port={self.port};"
            f"Database={self.database};Uid={self.user};Pwd={self.password};"
        )

    @property
    def npgsql(self) -> str:
        """ADO.NET Npgsql-style connection string (keys an SSIS ADO.NET CM would hold)."""
        return (
            f"Host={self.host};Port={self.port};Database={self.database};"
            f"Username={self.user};Password={self.password};"
        )

    @property
    def conninfo(self) -> str:
        """libpq keyword string, for psycopg.connect in tests."""
        return (
            f"host={self.host} port={self.port} dbname={self.database} "
            f"user={self.user} password={self.password}"
        )

    def connect(self, autocommit: bool = True) -> Any:
        """A psycopg connection over TCP with the password (the caller closes it)."""
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=autocommit, connect_timeout=10)

    def create_database(self, name: str) -> PostgresDatabase:
        """A fresh, empty database ``name`` (dropped first if it exists), owned by this role."""
        return self.cluster.create_database(name, owner=self.user)

    def scalar(self, sql: str, params: Any = None) -> Any:
        """The first column of the first row of ``sql`` (None without rows), on a new connection."""
        with self.connect() as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


class PostgresCluster:
    """A PostgreSQL server started by :func:`start_postgres`; :meth:`stop` ends it for good."""

    def __init__(self, base: Path, bindir: Path, port: int, as_nobody: bool) -> None:
        self.base = base
        self.bindir = bindir
        self.port = port
        self.host = "127.0.0.1"
        self._as_nobody = as_nobody
        self._stopped = False

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "log"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if self._as_nobody:
            command = ["runuser", "-u", "nobody", "--", *command]
        return subprocess.run(  # bounded: a hung initdb or pg_ctl must not hang the session
            command, capture_output=True, text=True, timeout=_START_WAIT + 30, check=False
        )

    def _checked(self, tool: str, *args: str) -> None:
        done = self._run(tool, *args)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}{log}"
            )

    def initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text("postgres-admin-unused\n")  # TCP needs a password even for postgres
        self._chown(pwfile)
        self._checked(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8",
            "--locale=C",
        )  # fmt: skip

    def start(self, durable: bool = False) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses={self.host} "
            "-c max_prepared_transactions=20 -c max_connections=100"
        )
        if not durable:  # tests lose nothing when the machine crashes; benches may want fsync
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._checked(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
            "-t", str(_START_WAIT), "-w", "start",
        )  # fmt: skip

    def running(self) -> bool:
        """Whether the postmaster of this cluster is alive (a zombie awaiting its reaper is not)."""
        pid = self.postmaster_pid()
        return pid is not None and _alive(pid)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server (immediately, bounded) and remove its folder; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._run(
                    "pg_ctl", "-D", str(self.data), "-m", "immediate", "-t", "30", "-w", "stop"
                )
            if _alive(pid):  # pg_ctl failed or timed out: the postmaster is ours, end it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def _chown(self, path: Path) -> None:
        if self._as_nobody:
            shutil.chown(path, user="nobody", group=_nobody_group())

    def admin(self, database: str = "postgres") -> Any:
        """A psycopg superuser connection over the cluster's Unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.base), port=self.port, user="postgres", dbname=database,
            autocommit=True, connect_timeout=10,
        )  # fmt: skip

    def create_role(self, user: str, password: str) -> None:
        from psycopg import sql

        statement = sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}")  # DDL takes no binds
        with self.admin() as conn:
            conn.execute(statement.format(sql.Identifier(_identifier(user)), sql.Literal(password)))

    def create_database(self, name: str, owner: str) -> PostgresDatabase:
        """A fresh database ``name`` owned by ``owner`` (the role's password is :data:`PASSWORD`
        for the fixtures' role; see :meth:`database` to describe another one)."""
        name, owner = _identifier(name), _identifier(owner)
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}" TEMPLATE template0')
        return self.database(name, owner, PASSWORD)

    def database(self, name: str, user: str, password: str) -> PostgresDatabase:
        return PostgresDatabase(self.host, self.port, user, password, name, self)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _identifier(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL name")
    return name


def _nobody_group() -> str:
    import grp

    for group in ("nogroup", "nobody"):
        with contextlib.suppress(KeyError):
            grp.getgrnam(group)
            return group
    raise RuntimeError("neither group nogroup nor nobody exists")


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(
    user: str = USER, password: str = PASSWORD, durable: bool = False
) -> PostgresDatabase:
    """Start a throwaway cluster with role ``user``/``password`` and database ``dtsx`` it owns.

    ``durable`` keeps fsync and synchronous commit on (as a server in use has them; benches);
    by default they are off, which makes a commit cost microseconds instead of a disk flush.

    The caller stops it with ``db.cluster.stop()``; an interpreter that exits first stops it too
    (atexit). Raises RuntimeError naming the failed step and the server log.
    """
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError(postgres_missing() or "PostgreSQL is absent")
    as_nobody = os.geteuid() == 0
    # Short path under /tmp: the Unix socket's path must stay below ~100 bytes, and as root the
    # pytest temp folder (mode 0700, root's) is not reachable by nobody.
    base = Path(tempfile.mkdtemp(prefix="dtsx-pg-", dir="/tmp"))
    for attempt in range(3):  # the free port can be taken between the probe and the start
        cluster = PostgresCluster(base, bindir, free_port(), as_nobody)
        cluster._chown(base)
        try:
            if not cluster.data.exists():
                cluster.initdb()
            cluster.start(durable)
            break
        except (RuntimeError, subprocess.TimeoutExpired):
            if attempt == 2 or "could not bind" not in _tail(cluster.log):
                cluster.stop()
                raise
    atexit.register(cluster.stop)
    try:
        cluster.create_role(user, password)
        return cluster.create_database(DATABASE, owner=user)
    except BaseException:
        cluster.stop()
        raise


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""


# --- pytest fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabase]:
    """The session's cluster (started on first use, stopped at the end, also after failures)."""
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    db = start_postgres()
    try:
        yield db
    finally:
        db.cluster.stop()


@pytest.fixture
def postgres_odbc(postgres: PostgresDatabase) -> PostgresDatabase:
    """``postgres``, once pyodbc and the PostgreSQL ODBC driver are known to be there."""
    reason = odbc_missing()
    if reason:
        pytest.skip(reason)
    return postgres


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_db(postgres: PostgresDatabase) -> Iterator[PostgresDatabase]:
    """A fresh database for one test (dropped after it), owned by the fixtures' role."""
    db = postgres.create_database(f"t{next(_counter)}")
    try:
        yield db
    finally:
        with contextlib.suppress(Exception):
            with postgres.cluster.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db.database}" WITH (FORCE)')
