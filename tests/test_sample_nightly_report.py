"""samples/nightly-report.dtsx runs as the README's first command: SQLite by default, the summary
mailed through --dev-smtp, figures computed by the database from bound parameters."""

from __future__ import annotations

import email
import email.policy
import sqlite3
import subprocess
import sys
from pathlib import Path


from tests._shared import REPO_ROOT
from tests.dbservers import PostgresDatabase

SAMPLE = REPO_ROOT / "samples" / "nightly-report.dtsx"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]

DEFAULT_LINES = [
    "Orders of 2026-12-01 with at least 2 items, per region:",
    "  East: 2 orders, 409.75",
    "  North: 2 orders, 200.50",
    "  South: 1 orders, 42.25",
    "Total: 5 orders, 652.50",
]


def run_sample(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``dtsx run samples/nightly-report.dtsx --dev-smtp outbox ARGS`` in ``cwd``; the mail's lines."""
    proc = subprocess.run(
        [*DTSX, "run", str(SAMPLE), "--dev-smtp", "outbox", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    messages = sorted((cwd / "outbox").glob("*.eml"))
    if proc.returncode != 0 or not messages:
        return proc, []
    message = email.message_from_bytes(messages[-1].read_bytes(), policy=email.policy.default)
    assert message["Subject"].startswith("Nightly report for ")
    body = message.get_body(("plain",))
    assert body is not None
    return proc, body.get_content().splitlines()


def test_default_run_builds_sqlite_and_mails_the_figures(tmp_path: Path) -> None:
    proc, lines = run_sample(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[: len(DEFAULT_LINES)] == DEFAULT_LINES
    assert "Sent by the package nightly-report." in lines
    database = tmp_path / "nightly-report.db"  # the Data Source, relative to the working directory
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (7,)
    again, lines_again = run_sample(tmp_path)  # rebuilt from scratch: the same figures
    assert again.returncode == 0, again.stdout + again.stderr
    assert lines_again[: len(DEFAULT_LINES)] == DEFAULT_LINES
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_parameters_come_from_the_variables(tmp_path: Path) -> None:
    proc, lines = run_sample(tmp_path, "--set", "User::MinQuantity=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  North: 3 orders, 215.50" in lines
    assert "Total: 6 orders, 667.50" in lines


def test_values_are_bound_never_spliced(tmp_path: Path) -> None:
    # Spliced into the SQL, this day would also match 2026-11-30's order (South, 999.00) and the
    # INSERT would store '2026-12-01'; bound, it is a day like any other, stored as written.
    day = "2026-12-01' OR '1'='1"
    proc, lines = run_sample(tmp_path, "--set", f"User::ReportDay={day}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[0] == f"Orders of {day} with at least 2 items, per region:"
    assert lines[1 : len(DEFAULT_LINES)] == DEFAULT_LINES[1:]
    with sqlite3.connect(tmp_path / "nightly-report.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE day = ?", (day,)).fetchone() == (6,)


def test_conn_points_the_same_package_at_postgresql(
    tmp_path: Path, postgres_db: PostgresDatabase
) -> None:
    proc, lines = run_sample(tmp_path, "--conn", f"Report DB={postgres_db.url}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[: len(DEFAULT_LINES)] == DEFAULT_LINES
    assert postgres_db.password not in proc.stdout + proc.stderr
    assert not (tmp_path / "nightly-report.db").exists()
    assert postgres_db.scalar("SELECT COUNT(*) FROM orders") == 7


def test_sample_validates_without_a_database(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*DTSX, "validate", str(SAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "nightly-report.db").exists()  # validate opens no database
