"""Execute Process end to end: a real package, real processes, a property expression and
--path-map."""

from __future__ import annotations

from pathlib import Path

from tests.tasks._e2e import run_api


def test_stdout_variable_feeds_the_next_process(tmp_path: Path) -> None:
    result = run_api("process_chain.dtsx", tmp_path)
    assert (result.result, result.exit_code) == ("Success", 0)
    assert result.variables["User::Out"] == "hello world"
    # Written by the second task, in its WorkingDirectory C:\dtsx-work mapped to tmp_path.
    assert (tmp_path / "chain.txt").read_text() == "hello world"
    # The third task exits 7 (allowed by FailTaskIfReturnCodeIsNotSuccessValue=False); its host's
    # ExecValueVariable receives the exit code.
    assert result.variables["User::Code"] == 7


def test_unmapped_working_directory_fails_the_package(tmp_path: Path) -> None:
    from dtsx.engine.executor import RunOptions, run  # imported after run_api proved it exists
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    from tests.tasks._e2e import DATA

    result = run(build(load(str(DATA / "process_chain.dtsx"))), RunOptions())
    assert result.exit_code == 1
    errors = result.executable("Package\\Write").errors
    assert any(
        "WorkingDirectory C:\\dtsx-work is a Windows path that no --path-map rule maps" in e
        for e in errors
    ), errors


def test_canceling_the_run_leaves_no_process_behind(tmp_path: Path) -> None:
    import threading
    import time

    from tests.tasks.test_execute_process import _wait_for, pid_gone

    cancel = threading.Event()
    box: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: box.update(result=run_api("cancel.dtsx", tmp_path, cancel_event=cancel))
    )
    worker.start()
    pids = [int(p) for p in _wait_for(tmp_path / "pids").split()]
    started = time.monotonic()
    cancel.set()
    worker.join(20)
    assert not worker.is_alive()
    assert time.monotonic() - started < 15
    result = box["result"]
    assert result.result == "Canceled" and result.exit_code == 3  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while not all(pid_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(pid_gone(p) for p in pids), pids
