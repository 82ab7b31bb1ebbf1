"""``dtsx run`` and ``dtsx exec`` as a user runs them: real subprocesses, exit codes, reports,
and SIGINT cancellation leaving nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine._exec import package_path

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


def dtsx(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=timeout)


def report(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("style", ["v8", "v3"])
@pytest.mark.parametrize(
    "sets",
    [
        ["--set", "User::X=21"],
        ["--set", "\\Package.Variables[User::X].Properties[Value];21"],
        ["--set", "\\Package.Variables[User::X].Value;21"],
    ],
)
def test_run_with_set_writes_the_report(style: str, sets: list[str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = dtsx("run", str(package_path("set_override", style)), *sets, "--report-json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = report(out)
    assert data["result"] == "Success" and data["exit_code"] == 0
    assert data["variables"]["User::X"] == 21 and data["variables"]["User::Out"] == 42
    assert "Success (exit 0)" in proc.stdout


def test_exec_takes_dtexec_syntax(tmp_path: Path) -> None:
    pkg = str(package_path("set_override", "v8"))
    out = tmp_path / "r.json"
    proc = dtsx(
        "exec",
        "/F",
        pkg,
        "/SET",
        "\\Package.Variables[User::X].Value;5",
        "-Set",
        "\\Package\\Seq.Variables[User::Local].Properties[Value];4",
        "/Rep",
        "EW",
        "/M",
        "1",
        "/MaxConcurrent",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    proc = dtsx(
        "run", pkg, "--set", "\\Package.Variables[User::X].Value;5", "--report-json", str(out)
    )
    assert report(out)["variables"]["User::Out"] == 10


def test_exec_validate_only_runs_nothing(tmp_path: Path) -> None:
    proc = dtsx("exec", "/file", str(package_path("fail_package", "v8")), "/va")
    assert proc.returncode == 0 and "is valid" in proc.stdout


def test_failure_exit_code_and_errors_on_stderr() -> None:
    proc = dtsx("run", str(package_path("max_errors_default", "v3")))
    assert proc.returncode == 1
    assert "division by zero" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["run", "/no/such.dtsx"], 4, "no such package"),
        (["exec", "/F", "/no/such.dtsx"], 4, "no such package"),
        (["exec", "/Foo"], 6, "/Foo"),
        (["exec", "/SQL", "x"], 6, "not supported"),
        (["exec"], 6, "/F[ile]"),
        (["run", "PKG", "--set", "User::Missing=1"], 6, "User::Missing"),
        (["run", "PKG", "--set", "\\Package\\Nope.Properties[X];1"], 6, "Package\\\\Nope"),
        (["run", "PKG", "--set", "User::X=abc"], 6, "Int32"),
        (["run", "PKG", "--param", "Nope=1"], 6, "no parameter"),
        (["run", "PKG", "--conn", "Nope=x"], 6, "Nope"),
        (["run", "PKG", "--reporting", "NX"], 6, "reporting level"),
        (["run", "PKG", "--path-map", "nonsense"], 6, "WINDOWS=LOCAL"),
    ],
)
def test_usage_and_missing_file_exit_codes(args: list[str], code: int, fragment: str) -> None:
    pkg = str(package_path("set_override", "v8"))
    proc = dtsx(*[pkg if a == "PKG" else a for a in args])
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


def test_load_failure_exits_5(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dtsx"
    bad.write_text("<not-a-package/>")
    assert dtsx("run", str(bad)).returncode == 5


def test_reporting_verbose_prints_events_and_log_jsonl(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    proc = dtsx(
        "run", str(package_path("for_loop", "v8")), "--reporting", "V", "--log-jsonl", str(log)
    )
    assert proc.returncode == 0
    assert "PreExecute: Add" in proc.stdout
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(1 for e in events if e["event"] == "OnPreExecute" and e["source"] == "Add") == 4
    quiet = dtsx("run", str(package_path("for_loop", "v8")), "--reporting", "N")
    assert "PreExecute" not in quiet.stdout


def _running_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry.name))
    return found


def _interrupt_after_start(
    args: list[str], ready: callable, sig: int = signal.SIGINT
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [*DTSX, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_an_endless_loop_with_exit_3(sig: int, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    log = tmp_path / "events.jsonl"
    done = _interrupt_after_start(
        [
            "run",
            str(package_path("for_loop_forever", "v8")),
            "--report-json",
            str(out),
            "--log-jsonl",
            str(log),
        ],
        lambda: log.exists() and log.stat().st_size > 0,
        sig,
    )
    assert done.returncode == 3, done.stderr
    data = report(out)
    assert data["result"] == "Canceled" and data["variables"]["User::Ticks"] > 0


def test_sigint_kills_a_running_process_task(tmp_path: Path) -> None:
    marker = f"{31 + (os.getpid() % 1000) / 1000:.4f}"
    pkg = str(package_path("sleeper", "v8"))
    done = _interrupt_after_start(
        ["run", pkg, "--set", f"\\Package\\Sleep.Properties[Arguments];{marker}"],
        lambda: bool(_running_with(f"sleep {marker}")),
    )
    assert done.returncode == 3, done.stderr
    time.sleep(0.2)
    assert _running_with(f"sleep {marker}") == []


def test_dev_smtp_catches_mail(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "hello-mail.dtsx"
    if not sample.exists():
        pytest.skip("samples/hello-mail.dtsx is absent")
    proc = dtsx("run", str(sample), "--dev-smtp", str(tmp_path / "mail"))
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert "1 message(s) stored" in proc.stdout


@pytest.mark.parametrize("style", ["v8", "v3"])
def test_unsupported_executables_refuse_or_skip(style: str, tmp_path: Path) -> None:
    pkg = str(package_path("unsupported", style))
    refused = dtsx("run", pkg)
    assert refused.returncode == 5 and "Script" in refused.stderr
    out = tmp_path / "r.json"
    skipped = dtsx("run", pkg, "--unsupported", "skip", "--report-json", str(out))
    assert skipped.returncode == 0, skipped.stderr
    assert "Warning" in skipped.stdout and "Script" in skipped.stdout
    data = report(out)
    assert data["variables"]["User::R_After"] == 1
    # Issue 10: skipped as unsupported is "Skipped", not "NotRun"; the report and summary count it.
    assert {e["ref_id"]: e["result"] for e in data["executables"]}["Package\\Script"] == "Skipped"
    assert data["skipped"] == 1 and "; 1 skipped as unsupported" in skipped.stdout


@pytest.mark.parametrize("option", ["/?", "-H", "/help"])
def test_exec_help(option: str) -> None:
    proc = dtsx("exec", option)
    assert proc.returncode == 0 and "/F[ile]" in proc.stdout


def test_exec_parameter_and_connection_syntax(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = dtsx(
        "exec", "/F", str(package_path("set_override", "v8")), "/Par", "$Package::Nope(Int32);1"
    )
    assert proc.returncode == 6 and "$Package::Nope" in proc.stderr
    proc = dtsx(
        "exec", "/F", str(package_path("set_override", "v8")), "/Conn", "Mail;SmtpServer=x;"
    )
    assert proc.returncode == 6 and "'Mail'" in proc.stderr
    assert not out.exists()


PROBE_PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package"
  DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="stubborn" DTS:ProtectionLevel="0">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Stubborn" DTS:CreationName="Tests.ExecutorProbe"
      DTS:ExecutableType="Tests.ExecutorProbe" DTS:ObjectName="Stubborn">
      <DTS:ObjectData><Probe Mode="ignore-cancel" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def test_a_second_signal_exits_even_when_a_task_ignores_cancellation(tmp_path: Path) -> None:
    pkg = tmp_path / "stubborn.dtsx"
    pkg.write_text(PROBE_PACKAGE, encoding="utf-8")
    log = tmp_path / "events.jsonl"
    root = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {root!r}); import tests.engine._probe; "
        "from dtsx.engine.cli import main; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(pkg), "--log-jsonl", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # the first signal asks; the task ignores it
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        # dtsx gives a stubborn task 5 s after the second signal; the bound is wide for a busy
        # machine.
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3 and "interrupted again" in err
