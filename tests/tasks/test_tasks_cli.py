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
    assert log.index("exited with code 3, but the task expects 0 (SuccessValue)") < log.index(
        "finished with result Failure"
    )
    assert "Traceback" not in log


def test_bad_path_map_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("parent_v8.dtsx", tmp_path, "--path-map", "no-equals-sign")
    assert done.returncode == 6
    assert "--path-map 'no-equals-sign' is not WINDOWS=LOCAL" in done.stderr
    assert "Traceback" not in done.stderr


def test_process_chain_through_the_cli(tmp_path: Path) -> None:
    import json

    report = tmp_path / "report.json"
    done = run_cli("process_chain.dtsx", tmp_path, "--report-json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "chain.txt").read_text() == "hello world"
    variables = json.loads(report.read_text())["variables"]
    assert (variables["User::Out"], variables["User::Code"]) == ("hello world", 7)


def test_process_chain_without_path_map_fails_before_touching_disk(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.tasks._e2e import DATA

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "run",
            str(DATA / "process_chain.dtsx"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        "WorkingDirectory C:\\dtsx-work is a Windows path that no --path-map rule maps"
        in done.stderr
    )
    assert list(tmp_path.iterdir()) == []
