"""File System tasks end to end from a 2008-format package with FILE connections and variables."""

from __future__ import annotations

from pathlib import Path

from tests.tasks._e2e import run_api


def test_v3_package_moves_copies_and_creates(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "archive").mkdir()
    (tmp_path / "in" / "data.txt").write_text("payload")
    result = run_api("file_system_v3.dtsx", tmp_path)
    assert (result.result, result.exit_code) == ("Success", 0)
    assert (tmp_path / "made" / "deeper").is_dir()
    assert not (tmp_path / "in" / "data.txt").exists()
    assert (tmp_path / "archive" / "data.txt").read_text() == "payload"
    assert (tmp_path / "in" / "data-copy.txt").read_text() == "payload"
    # A second run: the folder exists and the input is gone, so the first task fails clearly.
    again = run_api("file_system_v3.dtsx", tmp_path)
    assert again.exit_code == 1
    assert any("already exists" in e for e in again.executable("Package\\Make folder").errors)


def test_missing_input_names_the_connection(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "in").mkdir()
    result = run_api("file_system_v3.dtsx", tmp_path)
    assert result.exit_code == 1
    assert result.executable("Package\\Make folder").result == "Success"
    (error,) = result.executable("Package\\Archive input").errors
    assert error.startswith(
        "connection manager 'Input' needs an existing file at C:\\dtsx-work\\in\\data.txt (here "
    )
