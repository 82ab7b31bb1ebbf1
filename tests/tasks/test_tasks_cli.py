"""The task packages through ``dtsx run``: --path-map, exit codes, one-sentence errors."""

from __future__ import annotations

from pathlib import Path

from tests.tasks._e2e import run_cli


def test_file_system_v3_with_path_map(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "archive").mkdir()
    (tmp_path / "in" / "data.txt").write_text("payload")
    done = run_cli("file_system_v3.dtsx", tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "archive" / "data.txt").read_text() == "payload"
    assert (tmp_path / "in" / "data-copy.txt").read_text() == "payload"


def test_parent_and_child_in_both_formats(tmp_path: Path) -> None:
    for parent in ("parent_v8.dtsx", "parent_v3.dtsx"):
        done = run_cli(parent, tmp_path)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "child_v8.txt").read_text() == "hello from the parent|child_v8"
    assert (tmp_path / "child_v3.txt").read_text() == "ran\n"


def test_failing_child_exits_1_naming_it(tmp_path: Path) -> None:
    done = run_cli("parent_fail.dtsx", tmp_path)
    assert done.returncode == 1
    assert "the child package child_fail.dtsx finished with result Failure" in done.stderr
    # The child's own error is in the run's log, "above" the parent's.
    log = done.stdout + done.stderr
    assert log.index("exited with code 3, but the task expects 0 (SuccessValue)") < log.index("finished with result Failure")
    assert "Traceback" not in log


def test_bad_path_map_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("parent_v8.dtsx", tmp_path, "--path-map", "no-equals-sign")
    assert done.returncode == 6
    assert "--path-map 'no-equals-sign' is not WINDOWS=LOCAL" in done.stderr
    assert "Traceback" not in done.stderr
