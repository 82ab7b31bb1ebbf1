"""Issue 9, item 4: one attribute must not exhaust memory.

MaxConcurrentExecutables="2147483647" used to allocate one queue token per slot (16.9 GB) and
``--max-concurrent 99999999999999999999`` was OOM-killed, while 0 and negative values were taken.
Now concurrency costs memory in proportion to what runs, and values SSIS refuses (anything but
-1 or 1..2147483647) are one clear sentence: a usage error (exit 6) naming the option, or a
validation error (exit 5) at file:line naming the attribute. The CLI runs in a child process
whose address space is capped, so that the old behaviour fails the test instead of the machine.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.engine.test_hardening_exec_locks import (
    expression_task,
    package_xml,
    run_file,
    variable_xml,
)

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
_CAP = 4 * 1024**3  # bytes of address space for the child: far more than a run needs


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_CAP, _CAP))


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DTSX, *args], capture_output=True, text=True, timeout=120, preexec_fn=_capped, check=False
    )


def _package(tmp_path: Path, max_concurrent: str, tasks: int = 50) -> Path:
    body = [expression_task(f"T{i}", "@[User::Sum] = @[User::Sum] + 1") for i in range(tasks)]
    path = tmp_path / f"limit{max_concurrent}.dtsx"
    path.write_text(
        package_xml(body, variables=variable_xml("Sum", "0"), max_concurrent=max_concurrent),
        encoding="utf-8",
    )
    return path


def test_the_largest_limit_runs_in_little_memory(tmp_path: Path) -> None:
    path = _package(tmp_path, "2147483647")
    done = dtsx("run", str(path))
    assert done.returncode == 0, done.stderr
    assert "Success (exit 0)" in done.stdout


def test_memory_does_not_grow_with_the_limit(tmp_path: Path) -> None:
    """A limit of ten million used to cost 80 MB of tokens before the first task ran."""
    path = _package(tmp_path, "10000000")
    tracemalloc.start()
    try:
        result = run_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.result == "Success" and result.variables["User::Sum"] == 50
    assert peak < 30 * 1024**2, peak


@pytest.mark.parametrize("value", ["0", "-5", "99999999999999999999", "2147483648"])
def test_an_option_outside_the_range_is_a_usage_error(tmp_path: Path, value: str) -> None:
    done = dtsx("run", str(_package(tmp_path, "-1")), f"--max-concurrent={value}")
    assert done.returncode == 6, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"--max-concurrent (/MaxConcurrent) {value} is not valid" in done.stderr
    assert "-1" in done.stderr and "2147483647" in done.stderr


def test_dtexec_max_concurrent_is_checked_the_same_way(tmp_path: Path) -> None:
    done = dtsx("exec", "/F", str(_package(tmp_path, "-1")), "/MaxConcurrent", "0")
    assert done.returncode == 6 and "/MaxConcurrent) 0 is not valid" in done.stderr, done.stderr


@pytest.mark.parametrize("value", ["0", "-5"])
def test_an_attribute_outside_the_range_is_a_validation_error_at_its_line(
    tmp_path: Path, value: str
) -> None:
    path = _package(tmp_path, value)
    done = dtsx("run", str(path))
    assert done.returncode == 5, done.stdout + done.stderr
    assert f'{path}:2 [Package]: MaxConcurrentExecutables="{value}" is not valid' in done.stderr
    assert "Traceback" not in done.stderr


def test_a_set_outside_the_range_is_a_usage_error(tmp_path: Path) -> None:
    done = dtsx(
        "run",
        str(_package(tmp_path, "-1")),
        "--set",
        "\\Package.Properties[MaxConcurrentExecutables];0",
    )
    assert done.returncode == 6, done.stderr
    assert (
        "MaxConcurrentExecutables cannot be '0'" in done.stderr and "Traceback" not in done.stderr
    )


def test_the_valid_extremes_still_run(tmp_path: Path) -> None:
    for option in ("-1", "1"):
        done = dtsx("run", str(_package(tmp_path, "-1", tasks=3)), "--max-concurrent", option)
        assert done.returncode == 0, done.stderr
