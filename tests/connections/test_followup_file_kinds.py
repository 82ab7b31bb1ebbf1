"""A FILE connection whose FileUsageType wants an existing file (0) or folder (2) says what the
path is when it is something else (a FIFO, a device, a folder, a file), instead of claiming that
it does not exist; and a FIFO never makes the run wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dtsx.connections.base import CONNECTIONS, ConnectionSettings
from dtsx.engine.errors import ConnectionManagerError

VALID = Path(__file__).resolve().parent.parent / "data" / "validate" / "valid.dtsx"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


def _run_with_body(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """``dtsx run`` of a package whose Send Mail body comes from the FILE connection 'Body'."""
    package = tmp_path / "body.dtsx"
    package.write_text(
        VALID.read_text(encoding="utf-8").replace("/tmp/dtsx-validate-body.txt", body),
        encoding="utf-8",
    )
    return subprocess.run(
        [*DTSX, "run", str(package), "--dev-smtp", str(tmp_path / "outbox")],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_as_an_existing_file_is_named_as_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "body.fifo"
    os.mkfifo(fifo)
    proc = _run_with_body(tmp_path, str(fifo))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{fifo}, which is a named pipe (FIFO), not a regular file" in proc.stderr, proc.stderr
    assert "does not exist" not in proc.stderr
    assert not list((tmp_path / "outbox").glob("*.eml"))


def test_a_device_as_an_existing_file_is_named_as_a_device(tmp_path: Path) -> None:
    proc = _run_with_body(tmp_path, os.devnull)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{os.devnull}, which is a character device, not a regular file" in proc.stderr, (
        proc.stderr
    )
    assert "does not exist" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_file_still_says_it_does_not_exist(tmp_path: Path) -> None:
    proc = _run_with_body(tmp_path, str(tmp_path / "absent.txt"))
    assert proc.returncode == 1 and "which does not exist" in proc.stderr, proc.stderr


def _acquire(tmp_path: Path, path: Path, usage: str) -> object:
    cls = CONNECTIONS.get("FILE")
    return cls(
        ConnectionSettings(
            name="F",
            creation_name="FILE",
            connection_string=str(path),
            properties={"FileUsageType": usage},
        )
    ).acquire()


def test_a_folder_as_an_existing_file_and_a_file_as_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConnectionManagerError, match="which is a directory, not a regular file"):
        _acquire(tmp_path, tmp_path, "0")
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")
    with pytest.raises(ConnectionManagerError, match="which is a regular file, not a folder"):
        _acquire(tmp_path, plain, "2")
    assert _acquire(tmp_path, plain, "0") == str(plain)
    assert _acquire(tmp_path, tmp_path, "2") == str(tmp_path)
    with pytest.raises(ConnectionManagerError, match="which does not exist"):
        _acquire(tmp_path, plain / "below", "0")  # a file where a folder should be on the way


@pytest.mark.skipif(
    os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads any folder"
)
def test_a_path_that_cannot_be_examined_says_why(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "f.txt").write_text("x", encoding="utf-8")
    closed.chmod(0)
    try:
        with pytest.raises(ConnectionManagerError, match="cannot be examined"):
            _acquire(tmp_path, closed / "f.txt", "0")
    finally:
        closed.chmod(0o700)
