"""Concurrency is shown, not assumed: four independent one-second Execute Process tasks.

With the package's MaxConcurrentExecutables of 4 they overlap and finish in well under two
seconds; limited to one at a time they take four seconds or more. Bounds are wide on purpose.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.tasks._e2e import run_api

pytestmark = pytest.mark.slow


def timed(**options: object) -> tuple[float, object]:
    started = time.monotonic()
    result = run_api("concurrency.dtsx", Path("."), **options)
    return time.monotonic() - started, result


def test_four_run_together() -> None:
    elapsed, result = timed()
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert 0.9 <= elapsed < 1.9, elapsed


def test_one_at_a_time() -> None:
    elapsed, result = timed(max_concurrent=1)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert elapsed >= 4.0, elapsed
