"""An unexpected exception inside a run (a defect in a task or in dtsx) is told apart from a
failure the package planned for: one line saying how to see more, and with --debug (or
DTSX_DEBUG=1) its traceback and causes, on stderr and in the --log-jsonl log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine._exec import package_path

ROOT = Path(__file__).resolve().parents[2]
HELLO_MAIL = ROOT / "samples" / "hello-mail.dtsx"

# Send Mail with a defect: its execute raises an exception no task should let out, with a cause.
_DEFECT = (
    "from dtsx.tasks.send_mail import SendMailTask\n"
    "def execute(self, ctx):\n"
    "    try:\n"
    "        {}['the cause']\n"
    "    except KeyError as exc:\n"
    "        raise RuntimeError('a defect in the task') from exc\n"
    "SendMailTask.execute = execute\n"
    "from dtsx.engine.cli import main; main()\n"
)


def run_defective(
    tmp_path: Path, *args: str, debug_env: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DTSX_DEBUG"}
    if debug_env:
        env["DTSX_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-c", _DEFECT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=tmp_path,
    )


def events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_without_debug_an_internal_error_is_named_as_such_without_a_traceback(
    tmp_path: Path,
) -> None:
    log = tmp_path / "events.jsonl"
    proc = run_defective(
        tmp_path, "run", str(HELLO_MAIL), "--dev-smtp", "outbox", "--log-jsonl", str(log)
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "an internal error (a defect in dtsx or a plugin" in proc.stderr
    assert "--debug" in proc.stderr
    marked = [e for e in events(log) if e.get("internal_error")]
    assert marked and marked[0]["internal_error"] == "RuntimeError"
    assert all("traceback" not in e for e in events(log))


@pytest.mark.parametrize("how", ["option", "before-command", "environment"])
def test_debug_prints_the_traceback_and_its_cause(how: str, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    args = ["run", str(HELLO_MAIL), "--dev-smtp", "outbox", "--log-jsonl", str(log)]
    if how == "option":
        args.append("--debug")
    elif how == "before-command":
        args.insert(0, "--debug")
    proc = run_defective(tmp_path, *args, debug_env=how == "environment")
    assert proc.returncode == 1, proc.stderr
    assert "dtsx: internal error in Package\\Send Hello:" in proc.stderr
    assert "Traceback" in proc.stderr and "RuntimeError: a defect in the task" in proc.stderr
    assert "KeyError: 'the cause'" in proc.stderr
    assert "direct cause of the following exception" in proc.stderr
    traced = [e for e in events(log) if e.get("traceback")]
    assert traced and "RuntimeError: a defect in the task" in str(traced[0]["traceback"])


def test_a_planned_failure_is_not_an_internal_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtsx.engine.cli import main; main()",
            "--debug",
            "run",
            str(package_path("fail_package", "v8")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
