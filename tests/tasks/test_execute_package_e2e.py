"""Execute Package end to end: parent and child .dtsx files in both formats."""

from __future__ import annotations

from pathlib import Path

from tests.tasks._e2e import run_api


def test_v8_project_reference_with_parameter_binding(tmp_path: Path) -> None:
    result = run_api("parent_v8.dtsx", tmp_path)
    assert (result.result, result.exit_code) == ("Success", 0)
    assert (tmp_path / "child_v8.txt").read_text() == "hello from the parent|child_v8"


def test_v3_child_through_a_file_connection(tmp_path: Path) -> None:
    result = run_api("parent_v3.dtsx", tmp_path)
    assert (result.result, result.exit_code) == ("Success", 0)
    assert (tmp_path / "child_v3.txt").read_text() == "ran\n"


def test_child_failure_fails_the_parent(tmp_path: Path) -> None:
    result = run_api("parent_fail.dtsx", tmp_path)
    assert (result.result, result.exit_code) == ("Failure", 1)
    errors = result.executable("Package\\Run failing child").errors
    assert errors == [
        "the child package child_fail.dtsx finished with result Failure; see its errors above."
    ]
