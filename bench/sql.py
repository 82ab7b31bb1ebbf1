"""Execute SQL throughput: bound one-row INSERTs and a full result set, dtsx next to the raw driver.

For sqlite3 (a file database) and psycopg 3 (a throwaway PostgreSQL cluster the bench starts with
``tests/dbservers.py``, fsync on as a real server has it, unless ``--fast``), each in two modes:

* autocommit: every statement commits, as SSIS does by default;
* transaction: a Required transaction around the loop, one commit at its end;

it times N one-row INSERTs with two bound parameters

* through dtsx: a package built here - a For Loop (``@i`` from 0 to N) around an Execute SQL task
  ``INSERT INTO bench_rows (n, label) VALUES (?, ?)`` bound to ``User::i`` and ``User::Label`` -
  run by the real loader, planner and executor through the real OLE DB connection manager with
  ``--conn DB=<SQLAlchemy URL>``;
* through the driver alone: the same N ``cursor.execute`` calls on one connection;

and an N-row full result set (``SELECT n, label FROM bench_rows``) walked by a Foreach ADO loop
whose Expression Task sums ``n``, next to ``cursor.execute`` + ``fetchall`` + the same sum.

Prints rates (median of ``--reps`` repetitions, contenders interleaved within each), the ratio
dtsx/raw (target >= 0.5 with PostgreSQL in both modes) and dtsx's added cost per statement,
(dtsx time - raw time) / N (target <= 50 us in every mode).

    python bench/sql.py [--n 10000] [--reps 3] [--fast] [--only sqlite|postgresql]

Not a test: it prints figures and exits 0; it exits 1 if a run failed or lost a row.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.dbservers

from dtsx.engine.errors import PackageValidationError  # noqa: E402
from dtsx.engine.executor import RunOptions, run  # noqa: E402
from dtsx.engine.loader import load_bytes  # noqa: E402
from dtsx.engine.plan import build  # noqa: E402

__all__ = ["main"]

TABLE = "bench_rows"
LABEL = "row label ü"  # a non-ASCII string parameter: the encoding path is measured too
SQL_NS = "www.microsoft.com/sqlserver/dts/tasks/sqltask"
OBJECT_VALUE = (
    '<DTS:VariableValue DTS:DataSubType="ManagedSerializable" DTS:DataType="13">'
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"><SOAP-ENV:Body>'
    '<xsd:anyType id="ref-1"></xsd:anyType></SOAP-ENV:Body></SOAP-ENV:Envelope>'
    "</DTS:VariableValue>"
)


def _guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


def _variable(name: str, data_type: int, value: str) -> str:
    body = OBJECT_VALUE if data_type == 13 else (
        f'<DTS:VariableValue DTS:DataType="{data_type}">{value}</DTS:VariableValue>'
    )  # fmt: skip
    return (
        f'<DTS:Variable DTS:CreationName="" DTS:DTSID="{_guid()}" DTS:Namespace="User" '
        f'DTS:ObjectName="{name}">{body}</DTS:Variable>'
    )


def _sql_task(ref: str, name: str, cm: str, sql: str, inner: str, result: str = "") -> str:
    result_attr = f' SQLTask:ResultType="{result}"' if result else ""
    return (
        f'<DTS:Executable DTS:refId="{ref}" DTS:CreationName="Microsoft.ExecuteSQLTask" '
        f'DTS:DTSID="{_guid()}" DTS:ExecutableType="Microsoft.ExecuteSQLTask" '
        f'DTS:ObjectName="{name}"><DTS:Variables /><DTS:ObjectData>'
        f'<SQLTask:SqlTaskData xmlns:SQLTask="{SQL_NS}" SQLTask:Connection="{cm}" '
        f'SQLTask:SqlStatementSource="{sql}"{result_attr}>{inner}</SQLTask:SqlTaskData>'
        "</DTS:ObjectData></DTS:Executable>"
    )


def _binding(name: str, variable: str, data_type: int) -> str:
    return (
        f'<SQLTask:ParameterBinding SQLTask:ParameterName="{name}" '
        f'SQLTask:DtsVariableName="{variable}" SQLTask:ParameterDirection="Input" '
        f'SQLTask:DataType="{data_type}" SQLTask:ParameterSize="-1" />'
    )


def _package(cm_id: str, variables: str, body: str) -> bytes:
    text = (
        '<?xml version="1.0"?>'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        f'DTS:CreationName="Microsoft.Package" DTS:DTSID="{_guid()}" '
        'DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="bench-sql">'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>'
        '<DTS:ConnectionManagers><DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[DB]" '
        f'DTS:CreationName="OLEDB" DTS:DTSID="{cm_id}" DTS:ObjectName="DB"><DTS:ObjectData>'
        '<DTS:ConnectionManager DTS:ConnectionString="Data Source=.;Initial Catalog=bench;'
        'Provider=SQLNCLI11.1;Integrated Security=SSPI;" /></DTS:ObjectData>'
        "</DTS:ConnectionManager></DTS:ConnectionManagers>"
        f"<DTS:Variables>{variables}</DTS:Variables><DTS:Executables>{body}</DTS:Executables>"
        "</DTS:Executable>"
    )
    return text.encode("utf-8")


def _for_loop(n: int, transaction: bool, inner: str) -> str:
    option = ' DTS:TransactionOption="2"' if transaction else ""
    return (
        f'<DTS:Executable DTS:refId="Package\\Loop" DTS:CreationName="STOCK:FORLOOP" '
        f'DTS:DTSID="{_guid()}" DTS:ExecutableType="STOCK:FORLOOP" DTS:ObjectName="Loop"{option} '
        'DTS:InitExpression="@[User::i] = 0" '
        f'DTS:EvalExpression="@[User::i] &lt; {n}" '
        'DTS:AssignExpression="@[User::i] = @[User::i] + 1">'
        f"<DTS:Variables /><DTS:Executables>{inner}</DTS:Executables></DTS:Executable>"
    )


def _expression_task(ref: str, expression: str) -> str:
    return (
        f'<DTS:Executable DTS:refId="{ref}" DTS:CreationName="Microsoft.ExpressionTask" '
        f'DTS:DTSID="{_guid()}" DTS:ExecutableType="Microsoft.ExpressionTask" '
        f'DTS:ObjectName="{ref.rsplit(chr(92), 1)[-1]}"><DTS:Variables /><DTS:ObjectData>'
        f'<ExpressionTask Expression="{expression}" /></DTS:ObjectData></DTS:Executable>'
    )


def insert_package(n: int, transaction: bool) -> bytes:
    """A For Loop of ``n`` iterations around one bound INSERT (Required transaction if asked)."""
    cm = _guid()
    insert = _sql_task(
        "Package\\Loop\\Insert",
        "Insert",
        cm,
        f"INSERT INTO {TABLE} (n, label) VALUES (?, ?)",
        _binding("0", "User::i", 3) + _binding("1", "User::Label", 130),
    )
    variables = _variable("i", 3, "0") + _variable("Label", 8, LABEL)
    return _package(cm, variables, _for_loop(n, transaction, insert))


def floor_package(n: int) -> bytes:
    """The same For Loop around an Expression Task: what an iteration costs without SQL."""
    inner = _expression_task("Package\\Loop\\Copy", "@[User::Label] = @[User::Label]")
    variables = _variable("i", 3, "0") + _variable("Label", 8, LABEL)
    return _package(_guid(), variables, _for_loop(n, False, inner))


def walk_package() -> bytes:
    """A full result set into an Object variable, walked row by row by a Foreach ADO loop."""
    cm = _guid()
    query = _sql_task(
        "Package\\Query",
        "Query",
        cm,
        f"SELECT n, label FROM {TABLE}",
        '<SQLTask:ResultBinding SQLTask:ResultName="0" SQLTask:DtsVariableName="User::Rows" />',
        result="ResultSetType_Rowset",
    )
    add = _expression_task("Package\\Each\\Add", "@[User::Total] = @[User::Total] + @[User::n]")
    loop = (
        '<DTS:Executable DTS:refId="Package\\Each" DTS:CreationName="STOCK:FOREACHLOOP" '
        f'DTS:DTSID="{_guid()}" DTS:ExecutableType="STOCK:FOREACHLOOP" DTS:ObjectName="Each">'
        '<DTS:ForEachEnumerator DTS:CreationName="Microsoft.ForEachADOEnumerator" '
        f'DTS:DTSID="{_guid()}" DTS:ObjectName="ADO"><DTS:ObjectData>'
        '<FEEADO EnumType="EnumerateRowsInFirstTable" VarName="User::Rows" />'
        "</DTS:ObjectData></DTS:ForEachEnumerator>"
        f"<DTS:Variables /><DTS:Executables>{add}</DTS:Executables>"
        "<DTS:ForEachVariableMappings>"
        f'<DTS:ForEachVariableMapping DTS:CreationName="" DTS:DTSID="{_guid()}" '
        'DTS:ObjectName="m0" DTS:ValueIndex="0" DTS:VariableName="User::n" />'
        f'<DTS:ForEachVariableMapping DTS:CreationName="" DTS:DTSID="{_guid()}" '
        'DTS:ObjectName="m1" DTS:ValueIndex="1" DTS:VariableName="User::Label" />'
        "</DTS:ForEachVariableMappings></DTS:Executable>"
    )
    constraint = (
        '<DTS:PrecedenceConstraints><DTS:PrecedenceConstraint DTS:refId="Package.PC[1]" '
        f'DTS:CreationName="" DTS:DTSID="{_guid()}" DTS:From="Package\\Query" '
        'DTS:ObjectName="1" DTS:To="Package\\Each" /></DTS:PrecedenceConstraints>'
    )
    variables = (
        _variable("Rows", 13, "")
        + _variable("n", 3, "0")
        + _variable("Label", 8, "")
        + _variable("Total", 20, "0")
    )
    return _package(cm, variables, query + loop).replace(
        b"</DTS:Executables></DTS:Executable>",
        b"</DTS:Executables>" + constraint.encode() + b"</DTS:Executable>",
    )


@dataclass
class Target:
    """One database: how dtsx reaches it (a URL) and how the raw driver does."""

    name: str
    url: str
    connect: Callable[[bool], Any]  # autocommit -> a DB-API connection
    marker: str  # the driver's paramstyle marker

    def reset(self) -> None:
        conn = self.connect(True)
        try:
            cur = conn.cursor()
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(f"CREATE TABLE {TABLE} (n INTEGER NOT NULL, label VARCHAR(50) NOT NULL)")
        finally:
            conn.close()

    def count(self) -> int:
        conn = self.connect(True)
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {TABLE}")
            return int(cur.fetchone()[0])
        finally:
            conn.close()


def raw_inserts(target: Target, n: int, transaction: bool) -> float:
    conn = target.connect(not transaction)
    try:
        cur = conn.cursor()
        sql = f"INSERT INTO {TABLE} (n, label) VALUES ({target.marker}, {target.marker})"
        start = time.perf_counter()
        if transaction and target.name == "sqlite3":
            cur.execute("BEGIN")
        for i in range(n):
            cur.execute(sql, (i, LABEL))
        if transaction:
            conn.commit()
        return time.perf_counter() - start
    finally:
        conn.close()


def raw_walk(target: Target) -> tuple[float, int]:
    conn = target.connect(True)
    try:
        start = time.perf_counter()
        cur = conn.cursor()
        cur.execute(f"SELECT n, label FROM {TABLE}")
        total = 0
        for n, _label in cur.fetchall():
            total += n
        return time.perf_counter() - start, total
    finally:
        conn.close()


class NotBuilt(Exception):
    """The package uses something this checkout does not have yet (e.g. transactions)."""


def dtsx_run(package: bytes, url: str) -> tuple[float, dict[str, Any]]:
    """Load, plan and run ``package`` with ``--conn DB=url``; the time of the run alone."""
    connections = {"DB": url}
    try:
        plan = build(load_bytes(package, file="bench-sql.dtsx"), connections=connections)
    except PackageValidationError as exc:
        raise NotBuilt("; ".join(p.message for p in exc.problems)) from exc
    start = time.perf_counter()
    result = run(plan, RunOptions(connections=connections))
    elapsed = time.perf_counter() - start
    if result.result != "Success":
        errors = [e for r in result.executables for e in r.errors]
        raise RuntimeError(f"the dtsx run ended {result.result}: {errors[:3]}")
    return elapsed, dict(result.variables)


def sqlite_target(folder: Path) -> Target:
    path = folder / "bench.db"

    def connect(autocommit: bool) -> Any:
        # isolation_level=None: sqlite3 sends no implicit BEGIN, so every statement commits
        return sqlite3.connect(path, isolation_level=None if autocommit else "DEFERRED")

    return Target("sqlite3", f"sqlite:///{path}", connect, "?")


def postgres_target(durable: bool) -> tuple[Target, Callable[[], None]]:
    import psycopg

    from tests.dbservers import start_postgres

    db = start_postgres(durable=durable)

    def connect(autocommit: bool) -> Any:
        return psycopg.connect(db.conninfo, autocommit=autocommit)

    return Target("psycopg", db.url, connect, "%s"), db.cluster.stop


def _median(values: list[float]) -> float:
    return statistics.median(values)


def measure_inserts(target: Target, n: int, reps: int, transaction: bool) -> str:
    package = insert_package(n, transaction)
    raws, dtsxs = [], []
    for _ in range(reps):
        target.reset()
        raws.append(raw_inserts(target, n, transaction))
        if target.count() != n:
            raise SystemExit(f"raw {target.name} lost rows")
        target.reset()
        try:
            elapsed, _ = dtsx_run(package, target.url)
        except NotBuilt as exc:
            return f"{'n/a':>10}  (not built here: {str(exc)[:90]})"
        dtsxs.append(elapsed)
        if (got := target.count()) != n:
            raise SystemExit(f"dtsx {target.name} stored {got} of {n} rows")
    raw, ours = _median(raws), _median(dtsxs)
    return _figures(n, raw, ours)


def measure_walk(target: Target, n: int, reps: int) -> str:
    target.reset()
    raw_inserts(target, n, transaction=True)
    expected = n * (n - 1) // 2
    package = walk_package()
    raws, dtsxs = [], []
    for _ in range(reps):
        elapsed, total = raw_walk(target)
        raws.append(elapsed)
        try:
            elapsed, variables = dtsx_run(package, target.url)
        except NotBuilt as exc:
            return f"{'n/a':>10}  (not built here: {str(exc)[:90]})"
        if total != expected or variables.get("User::Total") != expected:
            raise SystemExit(f"{target.name}: the walk summed {variables.get('User::Total')}")
        dtsxs.append(elapsed)
    return _figures(n, _median(raws), _median(dtsxs))


def measure_floor(n: int, reps: int) -> str:
    """dtsx alone: the For Loop iteration and task execution every INSERT above also pays."""
    package = floor_package(n)
    times = [dtsx_run(package, "sqlite://")[0] for _ in range(reps)]
    ours = _median(times)
    return f"{n / ours:>10,.0f} {'':>10} {'':>7} {'':>9} {ours / n * 1e6:>9.1f}"


def _figures(n: int, raw: float, ours: float) -> str:
    added = (ours - raw) / n * 1e6
    return (
        f"{n / ours:>10,.0f} {n / raw:>10,.0f} {raw / ours:>6.2f}x {added:>9.1f}"
        f" {ours / n * 1e6:>9.1f} {raw / n * 1e6:>9.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="INSERTs and rows (default 10,000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; medians are printed")
    parser.add_argument(
        "--fast", action="store_true", help="PostgreSQL with fsync off (default: on, as in use)"
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one database only")
    args = parser.parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, N = {args.n:,}, median of {args.reps}; "
        f"rates in statements (or rows) per second"
    )
    header = (
        f"{'driver':<8} {'what':<24} {'dtsx/s':>10} {'raw/s':>10} {'ratio':>7} "
        f"{'added us':>9} {'dtsx us':>9} {'raw us':>9}"
    )
    print(header)
    print("-" * len(header))
    stops: list[Callable[[], None]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dtsx-bench-sql-") as folder:
            targets: list[Target] = []
            if args.only != "postgresql":
                targets.append(sqlite_target(Path(folder)))
            if args.only != "sqlite":
                pg, stop = postgres_target(durable=not args.fast)
                stops.append(stop)
                targets.append(pg)
            for target in targets:
                for label, transaction in (
                    ("INSERT autocommit", False),
                    ("INSERT 1 transaction", True),
                ):
                    line = measure_inserts(target, args.n, args.reps, transaction)
                    print(f"{target.name:<8} {label:<24} {line}", flush=True)
                line = measure_walk(target, args.n, args.reps)
                print(f"{target.name:<8} {'Foreach ADO walk':<24} {line}", flush=True)
            line = measure_floor(args.n, args.reps)
            print(f"{'dtsx':<8} {'For Loop, no SQL':<24} {line}", flush=True)
    except RuntimeError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for stop in stops:
            stop()
    print(
        "ratio = dtsx rate / raw rate (target >= 0.5 with psycopg); "
        "added us = (dtsx - raw) / N (target <= 50); the last line is the engine's own cost "
        "per iteration (For Loop and task host around an Expression Task), paid by every INSERT"
    )


if __name__ == "__main__":
    main()
