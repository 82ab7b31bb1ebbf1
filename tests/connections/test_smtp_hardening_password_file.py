"""Issue 9 item 7(d): a password file gives its first line only, and is refused when other users
can read or change it (as ssh refuses such a private key) unless DTSX_ALLOW_SHARED_SECRET_FILES=1.

Both users of ``read_secret_file`` are checked through their public surface: the SMTP
``PasswordFile`` key (``dtsx validate`` and the options parser) and ``--decrypt-file``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dtsx.connections.base import ConnectionSettings
from dtsx.connections.smtp_options import parse_smtp_options, smtp_option_problems
from dtsx.engine.errors import ConnectionManagerError

from tests._shared import REPO_ROOT

ENV = "DTSX_ALLOW_SHARED_SECRET_FILES"


def _settings(path: Path | str) -> ConnectionSettings:
    return ConnectionSettings("Mail", "SMTP", f"SmtpServer=mail;UserName=etl;PasswordFile={path};")


def _secret(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "pw.txt"
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"first-line\nsecond line\nthird\n", "first-line"),
        (b"only line, no break", "only line, no break"),
        (b" spaced pw \r\nnotes\r\n", " spaced pw "),
        (b"\xef\xbb\xbfwith-bom\n", "with-bom"),
    ],
)
def test_only_the_first_line_is_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, expected: str
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    options = parse_smtp_options(_settings(_secret(tmp_path, data)))
    assert options.password is not None and options.password.reveal() == expected


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_file_others_can_read_or_change_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    path = _secret(tmp_path, b"Sup3r-Secret\n", mode)
    with pytest.raises(ConnectionManagerError) as info:
        parse_smtp_options(_settings(path))
    text = str(info.value)
    assert (
        f"PasswordFile={path} is refused: its mode {mode:04o} lets other users read or change it"
        in text
    )
    assert "chmod 600" in text and f"{ENV}=1" in text and "Sup3r-Secret" not in text


def test_the_environment_switch_accepts_a_shared_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _secret(tmp_path, b"Sup3r-Secret\n", 0o640)
    monkeypatch.setenv(ENV, "1")
    options = parse_smtp_options(_settings(path))
    assert options.password is not None and options.password.reveal() == "Sup3r-Secret"


@pytest.mark.parametrize("special", ["/dev/zero", "directory"])
def test_devices_and_directories_are_refused_at_once(tmp_path: Path, special: str) -> None:
    target = tmp_path if special == "directory" else special
    if not os.path.exists(target):
        pytest.skip(f"{target} does not exist here")
    started = time.monotonic()
    problems = smtp_option_problems(_settings(target))
    assert time.monotonic() - started < 5
    assert any("is refused: it is not a regular file" in p for p in problems), problems


def test_a_fifo_nobody_writes_to_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo, 0o600)
    started = time.monotonic()
    problems = smtp_option_problems(_settings(fifo))
    assert time.monotonic() - started < 5
    assert any("is refused: its first line is empty" in p for p in problems), problems


def test_an_endless_line_is_refused_not_read_whole(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"x" * (1 << 20))
    problems = smtp_option_problems(_settings(path))
    assert any("first line is longer than 65536 bytes" in p for p in problems), problems


def test_decrypt_file_refuses_a_shared_file_in_one_sentence(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"Pkg-Passw0rd\n", 0o644)
    env = {k: v for k, v in os.environ.items() if k != ENV}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "validate",
            "--decrypt-file",
            str(path),
            str(REPO_ROOT / "samples" / "hello-mail.dtsx"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 6, proc.stderr
    assert "lets other users read or change it" in proc.stderr and "chmod 600" in proc.stderr
    assert "Traceback" not in proc.stderr and "Pkg-Passw0rd" not in proc.stderr
