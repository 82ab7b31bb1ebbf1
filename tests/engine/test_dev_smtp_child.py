"""``--dev-smtp`` runs the sink as a child process (dtsx/engine/devsmtp.py): it takes the run's mail
while the run lasts, a Ctrl-C at the terminal does not stop it early, and it never outlives dtsx,
however dtsx ends (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]

# A task that waits until GATE exists (bounded: 20 s), so the test can act while the run lasts.
PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package"
  DTS:ObjectName="Waits" DTS:DTSID="{6B1E0C52-0000-4000-8000-000000000001}">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Wait" DTS:CreationName="Microsoft.ExecuteProcess"
      DTS:DTSID="{6B1E0C52-0000-4000-8000-000000000002}"
      DTS:ExecutableType="Microsoft.ExecuteProcess" DTS:ObjectName="Wait">
      <DTS:ObjectData><ExecuteProcessData Executable="/bin/sh"
        Arguments="-c &quot;touch STARTED; i=0; while [ ! -e GATE ] &amp;&amp; [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done&quot;" />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _sink_of(pid: int) -> int:
    """The pid of the sink child (``serve_for_parent``) started by the dtsx process ``pid``."""
    for _ in range(200):
        for child in _children(pid):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"serve_for_parent" in arg for arg in argv):
                return child
        time.sleep(0.05)
    raise AssertionError("dtsx started no sink child")


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":  # exited; its parent (pytest, after dtsx died) has yet to reap it
            return True
        time.sleep(0.05)
    return False


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    package = tmp_path / "waits.dtsx"
    text = PACKAGE.replace("STARTED", str(tmp_path / "started")).replace(
        "GATE", str(tmp_path / "gate")
    )
    package.write_text(text, encoding="utf-8")
    proc = subprocess.Popen(
        [*DTSX, "run", str(package), "--dev-smtp", str(tmp_path / "outbox")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(400):
        if (tmp_path / "started").exists():
            break
        time.sleep(0.05)
    return proc, tmp_path / "gate"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_sink_dies_with_a_killed_dtsx(tmp_path: Path) -> None:
    proc, gate = _start(tmp_path)
    try:
        sink = _sink_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _gone(sink, 10), "the sink outlived a SIGKILLed dtsx"
    finally:
        gate.touch()
        proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_sink_is_out_of_reach_of_the_terminal_and_stops_with_the_run(tmp_path: Path) -> None:
    proc, gate = _start(tmp_path)
    try:
        sink = _sink_of(proc.pid)
        # A terminal's Ctrl-C reaches dtsx's whole process group; the sink is in a session of its
        # own, so tasks that are winding down after an interrupt can still mail through it.
        assert os.getsid(sink) != os.getsid(proc.pid)
        assert os.getpgid(sink) != os.getpgid(proc.pid)
        gate.touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert "dtsx: dev SMTP: 0 message(s) stored in" in out, out + err
        assert _gone(sink, 10), "the sink outlived the run"
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
