"""Concurrency is shown, not assumed: four independent one-second Execute Process tasks.

With the package's MaxConcurrentExecutables of 4 they overlap and finish in well under two
seconds; with ``dtsx run --max-concurrent 1`` they take four seconds or more. Bounds are wide;
the timed span is the run itself (``duration_s`` of the report), not interpreter start-up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.tasks._e2e import run_api, run_cli

pytestmark = pytest.mark.slow


def cli_duration(tmp_path: Path, *extra: str) -> float:
    report = tmp_path / "report.json"
    done = run_cli("concurrency.dtsx", tmp_path, "--report-json", str(report), *extra)
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text())
    assert [
        e["result"] for e in data["executables"] if e["ref_id"].startswith("Package\\Sleep")
    ] == ["Success"] * 4
    return float(data["duration_s"])


def test_four_run_together_through_the_cli(tmp_path: Path) -> None:
    assert 0.9 <= cli_duration(tmp_path) < 1.9


def test_one_at_a_time_through_the_cli(tmp_path: Path) -> None:
    assert cli_duration(tmp_path, "--max-concurrent", "1") >= 4.0


def test_four_run_together_in_process(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_api("concurrency.dtsx", tmp_path)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0
    assert 0.9 <= elapsed < 1.9, elapsed


def test_one_at_a_time_in_process(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_api("concurrency.dtsx", tmp_path, max_concurrent=1)
    assert result.exit_code == 0
    assert time.monotonic() - started >= 4.0
