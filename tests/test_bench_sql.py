"""bench/sql.py keeps running: a tiny run of every line, on SQLite and a throwaway PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests._shared import REPO_ROOT
from tests.dbservers import postgres_missing

LINES = ("INSERT autocommit", "INSERT 1 transaction", "Foreach ADO walk")


@pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))
def test_bench_sql_runs_every_measurement() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "sql.py"), "--n", "40", "--reps", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    for driver in ("sqlite3", "psycopg"):
        mine = [" ".join(r) for r in rows if r and r[0] == driver]
        assert [any(label in line for line in mine) for label in LINES] == [True] * 3, mine
    assert "n/a" not in proc.stdout  # every mode, transactions included, is built
    assert any(r[:4] == ["dtsx", "For", "Loop,", "no"] for r in rows)
