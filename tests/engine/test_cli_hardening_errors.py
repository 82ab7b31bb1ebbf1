"""Every CLI path ends in one sentence and the right exit code, never a traceback; --debug keeps it.

Also: ``--dev-smtp`` does not hide a connection string the real run would refuse.
All through the real ``dtsx`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
DEVSMTP = Path(__file__).resolve().parent.parent / "data" / "devsmtp"

# One Expression Task that sets User::Ran: the report and the exit code show whether it ran.
PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package"
  DTS:DTSID="{8D1E9F62-2222-4A51-9B44-0C2A4F4F6C00}" DTS:ExecutableType="Microsoft.Package"
    DTS:ObjectName="small">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{8D1E9F62-2222-4A51-9B44-0C2A4F4F6C01}"
      DTS:Namespace="User"
      DTS:ObjectName="Ran"><DTS:VariableValue DTS:DataType="3">0</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Mark" DTS:CreationName="Microsoft.ExpressionTask"
      DTS:DTSID="{8D1E9F62-2222-4A51-9B44-0C2A4F4F6C02}"
        DTS:ExecutableType="Microsoft.ExpressionTask" DTS:ObjectName="Mark">
      <DTS:ObjectData><ExpressionTask Expression="@[User::Ran] = 1" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "small.dtsx"
    path.write_text(PACKAGE, encoding="utf-8")
    return path


def dtsx(*args: str | bytes, memory: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [*DTSX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        errors="replace",
    )


def one_sentence(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The stderr lines of a failure: no traceback, and the one 'dtsx:' line that names the
    problem."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("dtsx:") and all(n in line for n in needles)
    ]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_report_into_a_missing_folder_is_refused_before_the_run(
    package: Path, tmp_path: Path
) -> None:
    proc = dtsx("run", str(package), "--report-json", str(tmp_path / "no" / "r.json"))
    assert proc.returncode == 6
    one_sentence(proc, "--report-json", "does not exist")
    assert "small.dtsx: Success" not in proc.stdout  # nothing ran


def test_report_onto_a_folder_is_refused_before_the_run(package: Path, tmp_path: Path) -> None:
    proc = dtsx("run", str(package), "--report-json", str(tmp_path))
    assert proc.returncode == 6
    one_sentence(proc, "--report-json", "folder")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("option", ["--report-json", "--log-jsonl"])
def test_an_output_that_cannot_be_written_is_a_warning_and_the_result_stands(
    package: Path, option: str
) -> None:
    # Exit 0 stays 0: a scheduler that saw a failure would run the package (and its mail) again.
    proc = dtsx("run", str(package), option, "/dev/full")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the run's result above stands" in proc.stderr
    assert "Traceback" not in proc.stderr
    # One sentence names the file and why, on stderr (the CLI) or as the run's warning (stdout).
    said = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "/dev/full" in line and "No space left" in line
    ]
    assert len(said) == 1, proc.stdout + proc.stderr
    assert "Success" in proc.stdout  # the run itself is still reported


def test_a_report_naming_a_package_that_is_not_utf8_is_written(
    package: Path, tmp_path: Path
) -> None:
    odd = os.fsencode(tmp_path) + b"/p\xff.dtsx"  # the report holds the package's path
    os.rename(package, odd)
    out = os.fsencode(tmp_path) + b"/r\xff.json"
    proc = dtsx("run", odd, "--report-json", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        json.loads(Path(os.fsdecode(out)).read_text(encoding="utf-8"))["variables"]["User::Ran"]
        == 1
    )


def test_mailsink_on_an_unusable_folder_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = dtsx("mailsink", "--dir", str(blocker / "sub"), "--port", "0")
    assert proc.returncode == 1
    one_sentence(proc, str(blocker / "sub"))


# A loader that breaks in a way no command expects (a defect in dtsx, not in the input).
_BROKEN = (
    "import dtsx.engine.loader as loader\n"
    "def load(*args, **kwargs):\n"
    "    raise RuntimeError('a defect')\n"
    "loader.load = load\n"
    "from dtsx.engine.cli import main; main()"
)


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(package: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN, "run", str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 6, proc.stderr
    one_sentence(proc, "internal error", "--debug")
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN, "--debug", "run", str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "a defect" in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
@pytest.mark.parametrize("option", ["package", "--config-file"])
def test_a_package_or_configuration_that_is_not_a_regular_file_is_refused_unread(
    package: Path, tmp_path: Path, special: str, option: str
) -> None:
    path = special
    if special == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)  # nobody writes to it: opening it for reading would wait for ever
    elif special == "folder":
        path = str(tmp_path)
    args = ["run", path] if option == "package" else ["run", str(package), "--config-file", path]
    proc = dtsx(*args, memory=1 << 30)
    # 5: the package cannot be loaded; 6: a --config-file that cannot be read is a usage error.
    assert proc.returncode == (5 if option == "package" else 6), proc.stderr
    assert "Traceback" not in proc.stderr
    kind = {"/dev/zero": "a character device", "fifo": "a named pipe", "folder": "a directory"}[
        special
    ]
    assert [line for line in proc.stderr.splitlines() if path in line and kind in line], proc.stderr


@pytest.mark.parametrize(
    "args, named, code",
    [
        # A --conn string is checked while planning (exit 5); one an expression builds, at run time.
        (["--conn", "Corporate SMTP=SmtpServer=127.0.0.1;Port=abc;"], "Port='abc'", 5),
        (["--set", "User::MailHost="], "no SmtpServer", 1),
    ],
)
def test_dev_smtp_still_refuses_a_bad_smtp_connection(
    tmp_path: Path, args: list[str], named: str, code: int
) -> None:
    outbox = tmp_path / "outbox"
    proc = dtsx("run", str(DEVSMTP / "mail_by_expression.dtsx"), "--dev-smtp", str(outbox), *args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert named in proc.stderr
    assert not list(outbox.glob("*.eml"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_onto_a_full_disk_is_one_sentence(package: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [*DTSX, "show", str(package)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 6
    one_sentence(proc, "cannot write the output", "No space left on device")
