"""`dtsx exec`: dtexec's arguments, with dtsx's own options before them, and `dtsx exec --help`."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine._exec import package_path

ROOT = Path(__file__).resolve().parents[2]
HELLO_MAIL = ROOT / "samples" / "hello-mail.dtsx"
VALID = ROOT / "tests" / "data" / "validate" / "valid.dtsx"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
OWN_OPTIONS = (
    "--unsupported",
    "--report-json",
    "--log-jsonl",
    "--path-map",
    "--dev-smtp",
    "--debug",
)


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=120, check=False)


def test_exec_help_lists_dtsx_options_and_the_dtexec_syntax() -> None:
    proc = dtsx("exec", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in OWN_OPTIONS:
        assert option in proc.stdout
    assert "/F[ile]" in proc.stdout and "/Set" in proc.stdout
    assert "before the first dtexec argument" in proc.stdout


@pytest.mark.parametrize("prefix", ["/", "-"])
def test_dtsx_options_before_the_dtexec_arguments(prefix: str, tmp_path: Path) -> None:
    outbox, report, log = tmp_path / "outbox", tmp_path / "report.json", tmp_path / "events.jsonl"
    proc = dtsx(
        "exec",
        "--dev-smtp",
        str(outbox),
        "--report-json",
        str(report),
        "--log-jsonl",
        str(log),
        f"{prefix}F",
        str(HELLO_MAIL),
        f"{prefix}Set",
        "\\Package.Variables[User::Name].Value;exec",
    )
    assert proc.returncode == 0, proc.stderr
    [stored] = outbox.glob("*.eml")
    message = email.message_from_bytes(stored.read_bytes())
    assert "Hello, exec!" in message.get_payload(decode=True).decode()
    assert json.loads(report.read_text())["variables"]["User::Name"] == "exec"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events and "1 message(s) stored" in proc.stdout


def test_a_dtsx_option_after_the_dtexec_arguments_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    proc = dtsx("exec", "/F", str(HELLO_MAIL), "--dev-smtp", str(outbox))
    assert proc.returncode == 6
    assert "--dev-smtp" in proc.stderr and "before the dtexec arguments" in proc.stderr
    assert "Traceback" not in proc.stderr and not outbox.exists()


def test_exec_unsupported_skip(tmp_path: Path) -> None:
    pkg = str(package_path("unsupported", "v8"))
    assert dtsx("exec", "/F", pkg).returncode == 5
    report = tmp_path / "r.json"
    proc = dtsx("exec", "--unsupported", "skip", "--report-json", str(report), "/F", pkg)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["variables"]["User::R_After"] == 1


def test_exec_path_map(tmp_path: Path) -> None:
    text = VALID.read_text(encoding="utf-8").replace(
        'DTS:ConnectionString="/tmp/dtsx-validate-body.txt"',
        'DTS:ConnectionString="D:\\feeds\\body.txt"',
    )
    package = tmp_path / "windows.dtsx"
    package.write_text(text, encoding="utf-8")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "body.txt").write_text("hello\n", encoding="utf-8")
    unmapped = dtsx("exec", "/F", str(package), "/Va")
    assert unmapped.returncode == 5 and "D:\\feeds\\body.txt" in unmapped.stderr
    mapped = dtsx(
        "exec", "--path-map", f"D:\\feeds={tmp_path / 'feeds'}", "/F", str(package), "/Va"
    )
    assert mapped.returncode == 0 and "is valid" in mapped.stdout, mapped.stderr


# A loader that breaks in a way no command expects, with a cause (a defect in dtsx, not the input).
_BROKEN = (
    "import dtsx.engine.loader as loader\n"
    "def load(*args, **kwargs):\n"
    "    try:\n"
    "        raise KeyError('the cause')\n"
    "    except KeyError as exc:\n"
    "        raise RuntimeError('a defect') from exc\n"
    "loader.load = load\n"
    "from dtsx.engine.cli import main; main()"
)


@pytest.mark.parametrize(
    "how",
    [["exec", "--debug"], ["--debug", "exec"], ["exec"]],
    ids=["exec-option", "before-command", "environment"],
)
def test_debug_prints_the_exception_chain_and_keeps_exit_6(how: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DTSX_DEBUG"}
    if how == ["exec"]:
        env["DTSX_DEBUG"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN, *how, "/F", str(HELLO_MAIL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert proc.returncode == 6
    assert proc.stderr.count("Traceback") == 2 and "KeyError: 'the cause'" in proc.stderr
    assert "direct cause of the following exception" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("dtsx: internal error: RuntimeError")


def test_without_debug_an_internal_error_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN, "exec", "/F", str(HELLO_MAIL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "DTSX_DEBUG"},
    )
    assert proc.returncode == 6 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "dtsx --debug" in proc.stderr
