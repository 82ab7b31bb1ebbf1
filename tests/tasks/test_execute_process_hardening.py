"""Execute Process and dtsx's own death: signals, a second signal, SIGKILL of dtsx.

Every test runs ``dtsx run`` as a real subprocess on a package whose Execute Process task starts
a shell that writes its pid (and a background child's) to a file, so the test can watch those
processes in /proc. Loops are bounded; every process started here is killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="watches processes through /proc"
)


def process_package(folder: Path, script: str) -> Path:
    """A package with one Execute Process task running ``/bin/sh -c script`` in ``folder``."""
    arguments = '-c "' + script + '"'
    path = folder / "proc.dtsx"
    path.write_text(
        f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package" DTS:DTSID="{{6E1B1C52-2D0B-4A51-9B44-0C2A4F4F6A01}}"
  DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="proc">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Run" DTS:CreationName="Microsoft.ExecuteProcess"
      DTS:DTSID="{{6E1B1C52-2D0B-4A51-9B44-0C2A4F4F6A02}}"
      DTS:ExecutableType="Microsoft.ExecuteProcess"
      DTS:ObjectName="Run">
      <DTS:ObjectData>
        <ExecuteProcessData Executable="/bin/sh" Arguments={quoteattr(arguments)}
          WorkingDirectory={quoteattr(str(folder))} />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
""",
        encoding="utf-8",
    )
    return path


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has ended; only its parent is
    late)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def wait_until(condition, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Run:
    """``dtsx run`` in the background, and the pids its task's shell wrote."""

    def __init__(self, tmp_path: Path, script: str, *extra: str) -> None:
        self.pidfile = tmp_path / "pids"
        self.report = tmp_path / "report.json"
        package = process_package(tmp_path, script.replace("PIDFILE", str(self.pidfile)))
        self.proc = subprocess.Popen(
            [*DTSX, "run", str(package), "--report-json", str(self.report), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pids: list[int] = []

    def started(self, count: int) -> list[int]:
        def ready() -> bool:
            try:
                words = self.pidfile.read_text().split()
            except OSError:
                return False
            return len(words) >= count

        assert wait_until(ready, 20), (
            f"the task never wrote its pids; stderr: {self._stderr_so_far()}"
        )
        self.pids = [int(w) for w in self.pidfile.read_text().split()]
        return self.pids

    def _stderr_so_far(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def finish(self, limit: float = 30) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=limit)
        return self.proc.returncode, out, err

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def runs():
    started: list[Run] = []
    yield started
    for run in started:
        run.cleanup()


# A shell that ignores SIGTERM and keeps a background child: only SIGKILL of the group ends it.
STUBBORN = "trap '' TERM; sleep 300 & echo $$ $! > PIDFILE; wait"
# A process that SIGTERM ends at once: the shell replaces itself with sleep.
PLAIN = "echo $$ > PIDFILE; exec sleep 300"


def test_one_sigint_says_dtsx_stopped_the_process(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, PLAIN)
    runs.append(run)
    (pid,) = run.started(1)
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 3, err
    assert not alive(pid)
    errors = json.loads(run.report.read_text())["executables"]
    messages = " ".join(e for item in errors for e in item["errors"])
    assert "canceled, so dtsx stopped the process" in messages, messages
    assert "check what stopped it" not in err + messages


def test_second_sigint_kills_every_process_and_writes_the_report(
    tmp_path: Path, runs: list[Run]
) -> None:
    run = Run(tmp_path, STUBBORN)
    runs.append(run)
    pids = run.started(2)
    run.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)  # the first signal's SIGTERM is ignored; the grace period is still running
    assert all(alive(p) for p in pids)
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 3, err
    assert time.monotonic() - sent < 10
    assert wait_until(lambda: not any(alive(p) for p in pids), 5), pids
    report = json.loads(run.report.read_text())
    assert report["result"] == "Canceled" and report["exit_code"] == 3
    assert "interrupted again" in err


def test_sigkill_of_dtsx_ends_its_processes(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, STUBBORN)
    runs.append(run)
    pids = run.started(2)
    time.sleep(0.2)
    run.proc.kill()
    run.proc.communicate(timeout=10)
    # The watchdog sends SIGTERM (ignored here), then SIGKILL after the 2-second grace period.
    assert wait_until(lambda: not any(alive(p) for p in pids), 10), [p for p in pids if alive(p)]


def test_a_normal_run_leaves_no_watchdog_behind(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "echo $$ > PIDFILE")
    runs.append(run)
    code, out, err = run.finish()
    assert code == 0, err
    me = str(run.proc.pid)

    def orphans() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                    environ_marker = b"dtsx-watchdog" in cmdline
                except OSError:
                    continue
                if environ_marker and f"--for={me}".encode() in cmdline:
                    found.append(int(entry.name))
        return found

    assert wait_until(lambda: not orphans(), 5), orphans()
