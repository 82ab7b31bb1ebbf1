"""Send Mail hardening, the files it reads (issue 9, item 5): attachments and message bodies must
be regular files, all of one message's files together within a documented limit
(``dtsx:MaxFileBytes``, default 25 MiB), read so that neither a device nor a FIFO can grow
without end or block, and so that cancellation interrupts. Packages run through the real
executor against a real aiosmtpd server on 127.0.0.1, or through ``dtsx run`` in a child
process where a hang is the defect."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.send_mail import DEFAULT_MAX_FILE_BYTES, SendMailTask

from tests.smtp_servers import LoopbackSmtpServer
from tests.tasks._taskkit import make_ctx
from tests.tasks.test_mail_hardening_message import run_package, task_error, write_package

needs_posix = pytest.mark.skipif(
    os.name != "posix", reason="FIFOs, devices and Unix sockets are POSIX"
)


def _attach(tmp_path: Path, *paths: Path | str, **attributes: str) -> Path:
    return write_package(
        tmp_path, {"FileAttachments": "|".join(str(p) for p in paths)} | attributes
    )


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


@needs_posix
def test_fifo_attachment_fails_at_once_in_dtsx_run(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    package = _attach(tmp_path, _fifo(tmp_path))
    conn = smtp_server.connection_string(UseWindowsAuthentication=False, EnableSsl=False)
    exe = shutil.which("dtsx", path=os.path.dirname(sys.executable))
    assert exe, "the dtsx command is installed beside the test's Python"
    command = [exe, "run", str(package), "--conn", f"SMTP={conn}"]
    # Opening a FIFO for reading used to wait for a writer for ever, deaf to SIGTERM.
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is a named pipe (FIFO)" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert smtp_server.messages == []


@needs_posix
@pytest.mark.parametrize(
    ("device", "kind"),
    [("/dev/zero", "a character device"), ("/dev/urandom", "a character device")],
)
def test_device_attachment_is_refused_unread(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, device: str, kind: str
) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} is not there")
    error = task_error(run_package(_attach(tmp_path, device), smtp_server))
    assert f"the attachment {device} is {kind}, not a regular file" in error
    assert smtp_server.messages == []


@needs_posix
def test_link_to_a_device_is_refused(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    link = tmp_path / "innocent.bin"
    link.symlink_to("/dev/zero")
    error = task_error(run_package(_attach(tmp_path, link), smtp_server))
    assert "is a character device" in error and str(link) in error


def test_directory_attachment_is_refused(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    error = task_error(run_package(_attach(tmp_path, folder), smtp_server))
    assert f"the attachment {folder} is a directory" in error


@needs_posix
def test_socket_attachment_is_refused(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        error = task_error(run_package(_attach(tmp_path, path), smtp_server))
    assert "is a socket" in error


@needs_posix
def test_fifo_message_body_is_refused(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    # FileUsageType 1 (create file): the connection manager hands over the path unchecked.
    package = write_package(
        tmp_path,
        {"MessageSourceType": "FileConnection", "MessageSource": "Body"},
        files={"Body": _fifo(tmp_path)},
        file_usage=1,
    )
    done = threading.Event()
    outcome: list[str] = []

    def run() -> None:
        outcome.append(task_error(run_package(package, smtp_server)))
        done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    if not done.wait(30):
        # Unblock the old behaviour's open() so the thread can end, then fail.
        with open(tmp_path / "pipe.csv", "wb"):
            pass
        pytest.fail("opening the FIFO body blocked")
    assert "the message file" in outcome[0] and "is a named pipe (FIFO)" in outcome[0]


def test_over_limit_file_names_the_limit_and_how_to_change_it(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(DEFAULT_MAX_FILE_BYTES + 1)  # sparse: no 25 MiB written
    error = task_error(run_package(_attach(tmp_path, big), smtp_server))
    assert f"is {DEFAULT_MAX_FILE_BYTES + 1:,} bytes" in error
    assert "limit of 26,214,400 bytes" in error and "dtsx:MaxFileBytes" in error
    assert smtp_server.messages == []


def test_limit_counts_every_file_of_the_message(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"x" * 600)
    second.write_bytes(b"y" * 600)
    package = _attach(tmp_path, first, second, **{"dtsx:MaxFileBytes": "1000"})
    error = task_error(run_package(package, smtp_server))
    assert (
        f"the attachment {second} is 600 bytes and 600 bytes of this message's other files" in error
    )
    assert "limit of 1,000 bytes" in error
    assert smtp_server.messages == []


def test_raised_limit_lets_the_file_through(
    tmp_path: Path, smtp_server: LoopbackSmtpServer
) -> None:
    data = tmp_path / "a.csv"
    data.write_bytes(b"z" * 1500)
    refused = run_package(_attach(tmp_path, data, **{"dtsx:MaxFileBytes": "1000"}), smtp_server)
    assert "limit of 1,000 bytes" in task_error(refused)
    result = run_package(_attach(tmp_path, data, **{"dtsx:MaxFileBytes": "2000"}), smtp_server)
    assert result.result == "Success", [e.errors for e in result.executables]
    (got,) = smtp_server.messages
    assert b'filename="a.csv"' in got.content


def test_limit_by_property_expression(tmp_path: Path, smtp_server: LoopbackSmtpServer) -> None:
    data = tmp_path / "a.csv"
    data.write_bytes(b"z" * 1500)
    package = write_package(
        tmp_path, {"FileAttachments": str(data)}, expressions={"MaxFileBytes": "1000"}
    )
    assert "limit of 1,000 bytes" in task_error(run_package(package, smtp_server))


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_bad_limit_is_a_planning_problem_naming_it(
    tmp_path: Path, smtp_server: LoopbackSmtpServer, value: str
) -> None:
    from dtsx.engine.errors import DtsxError

    with pytest.raises(DtsxError, match="MaxFileBytes"):
        run_package(_attach(tmp_path, tmp_path, **{"dtsx:MaxFileBytes": value}), smtp_server)


def test_cancel_interrupts_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 << 20))
    task = SendMailTask.from_node(None)
    for name, value in {
        "SmtpConnection": "SMTP",
        "FromLine": "a@example.org",
        "ToLine": "b@example.com",
        "FileAttachments": str(big),
    }.items():
        task.set_property(name, value)
    ctx = make_ctx()
    ctx.cancel_event.set()
    with pytest.raises(TaskFailedError, match=f"canceled while reading the attachment {big}"):
        task.build_message(ctx)
