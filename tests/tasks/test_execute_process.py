"""Execute Process task: real processes, real exit codes, real signals."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from dtsx.engine.errors import TaskFailedError
from dtsx.engine.model import XmlNode
from dtsx.tasks.base import TASKS, ValidationContext, emergency_stop
from dtsx.tasks.execute_process import ExecuteProcessTask, split_windows_args

from tests.tasks._taskkit import make_ctx

PY = sys.executable


def task(**props: object) -> ExecuteProcessTask:
    return ExecuteProcessTask(ExecuteProcessTask.Properties.model_validate(props))


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone for our purpose if /proc says so.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()


# The rules and examples of Microsoft's "Parsing C command-line arguments" page
# (with the 2023 correction of the last row), plus edge cases of the same rules.
ARG_TABLE = [
    ('"a b c" d e', ["a b c", "d", "e"]),
    (r'"ab\"c" "\\" d', ['ab"c', "\\", "d"]),
    (r'a\\\b d"e f"g h', [r"a\\\b", "de fg", "h"]),
    (r"a\\\"b c d", [r"a\"b", "c", "d"]),
    (r'a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
    ('a"b"" c d', ['ab"', "c", "d"]),
    ("", []),
    ("   \t ", []),
    ("one", ["one"]),
    ('""', [""]),
    ('a "" b', ["a", "", "b"]),
    (r"C:\tmp\ c:\x\y", [r"C:\tmp" + "\\", r"c:\x\y"]),
    (r'"C:\Program Files\App\\" next', ["C:\\Program Files\\App\\", "next"]),
    (r'"C:\trailing\" next', ['C:\\trailing" next']),
    ('"unterminated arg', ["unterminated arg"]),
    ("tab\tseparated", ["tab", "separated"]),
    (
        "-extr=all -overwrite c:\\tmp\\cbonds.zip c:\\tmp\\ -include=x.xml",
        ["-extr=all", "-overwrite", "c:\\tmp\\cbonds.zip", "c:\\tmp\\", "-include=x.xml"],
    ),
]


@pytest.mark.parametrize(("line", "expected"), ARG_TABLE)
def test_split_windows_args(line: str, expected: list[str]) -> None:
    assert split_windows_args(line) == expected


def test_registered_under_every_spelling() -> None:
    assert TASKS.get("Microsoft.ExecuteProcess") is ExecuteProcessTask
    v3 = (
        "Microsoft.SqlServer.Dts.Tasks.ExecuteProcess.ExecuteProcess, "
        "Microsoft.SqlServer.ExecProcTask, Version=10.0.0.0"
    )
    assert TASKS.get(v3) is ExecuteProcessTask


def test_reads_2008_object_data() -> None:
    node = XmlNode(
        tag="{www.microsoft.com/SqlServer/Dts}ObjectData",
        children=[
            XmlNode(
                tag="ExecuteProcessData",
                attrs={
                    "Executable": r"c:\Arc\pkzip25.exe",
                    "RequireFullFileName": "True",
                    "Arguments": "-extr=all c:\\tmp\\cbonds.zip",
                    "WorkingDirectory": "",
                    "TimeOut": "100",
                    "FailTaskIfReturnCodeIsNotSuccessValue": "False",
                    "SuccessValue": "0",
                    "TerminateAfterTimeout": "True",
                    "StandardInputVariable": "",
                    "WindowStyle": "Hidden",
                },
            )
        ],
    )
    t = ExecuteProcessTask.from_node(node)
    assert t.props.executable == r"c:\Arc\pkzip25.exe"
    assert t.props.timeout == 100
    assert t.props.fail_on_return_code is False
    assert t.props.terminate_after_timeout is True
    t.set_property("TerminateProcessAfterTimeOut", "0")
    assert t.props.terminate_after_timeout is False


def test_argv_reaches_the_process_and_stdout_is_captured() -> None:
    code = "import sys, json; print(json.dumps(sys.argv[1:]))"
    t = task(
        Executable=PY,
        Arguments=f'-c "{code.replace(chr(34), chr(92) + chr(34))}" "a b" c\\\\"d',
        StandardOutputVariable="User::Out",
    )
    ctx = make_ctx({"User::Out": ""})
    t.execute(ctx)
    assert ctx.variables.get("User::Out").strip() == '["a b", "c\\\\d"]'
    assert t.execution_value == 0


def test_exit_code_against_success_value() -> None:
    ctx = make_ctx()
    t = task(Executable=PY, Arguments='-c "raise SystemExit(3)"')
    with pytest.raises(TaskFailedError, match=r"exited with code 3, but the task expects 0"):
        t.execute(ctx)
    task(Executable=PY, Arguments='-c "raise SystemExit(3)"', SuccessValue="3").execute(ctx)
    t = task(
        Executable=PY,
        Arguments='-c "raise SystemExit(5)"',
        FailTaskIfReturnCodeIsNotSuccessValue="False",
    )
    t.execute(ctx)
    assert t.execution_value == 5


def test_stdin_from_variable_and_stderr_into_variable() -> None:
    code = "import sys; data = sys.stdin.read(); sys.stderr.write(data.upper()); print(len(data))"
    t = task(
        Executable=PY,
        Arguments=f'-c "{code}"',
        StandardInputVariable="User::In",
        StandardOutputVariable="User::Out",
        StandardErrorVariable="User::Err",
    )
    ctx = make_ctx({"User::In": "héllo\nworld", "User::Out": "", "User::Err": ""})
    t.execute(ctx)
    assert ctx.variables.get("User::Err") == "HÉLLO\nWORLD"
    assert ctx.variables.get("User::Out").strip() == "11"


def test_output_stored_even_when_the_task_fails() -> None:
    t = task(
        Executable="/bin/sh",
        Arguments='-c "echo oops >&2; exit 2"',
        StandardErrorVariable="User::Err",
    )
    ctx = make_ctx({"User::Err": ""})
    with pytest.raises(TaskFailedError, match="code 2"):
        t.execute(ctx)
    assert ctx.variables.get("User::Err") == "oops\n"


def test_working_directory_is_mapped(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("x")
    t = task(
        Executable="/bin/sh",
        Arguments='-c "ls"',
        WorkingDirectory=r"C:\work",
        StandardOutputVariable="Out",
    )
    ctx = make_ctx({"User::Out": ""}, local_path=lambda p: str(tmp_path) if p == r"C:\work" else p)
    t.execute(ctx)
    assert "marker.txt" in ctx.variables.get("User::Out")


def test_missing_working_directory_fails_clearly(tmp_path: Path) -> None:
    t = task(Executable="/bin/true", WorkingDirectory=r"D:\nowhere")
    with pytest.raises(
        TaskFailedError, match=r"WorkingDirectory D:\\nowhere is a Windows path that no --path-map"
    ):
        t.execute(make_ctx(local_path=lambda p: p.replace("\\", "/")))
    mapped = {r"D:\nowhere": str(tmp_path / "nowhere")}
    with pytest.raises(
        TaskFailedError, match=r"WorkingDirectory D:\\nowhere \(here .*nowhere\) does not exist"
    ):
        t.execute(make_ctx(local_path=lambda p: mapped.get(p, p)))


def test_bare_name_found_on_path() -> None:
    t = task(Executable="sh", Arguments='-c "exit 0"', RequireFullFileName="False")
    t.execute(make_ctx())
    assert t.execution_value == 0


@pytest.mark.parametrize(
    "exe", ["cmd.exe", r"C:\WINDOWS\System32\CMD.exe", r"c:\windows\system32\expand.exe"]
)
def test_windows_programs_fail_clearly(exe: str) -> None:
    with pytest.raises(TaskFailedError, match="is a Windows program.*not emulated"):
        task(Executable=exe, Arguments="/C dir").execute(make_ctx())


def test_batch_file_is_not_emulated(tmp_path: Path) -> None:
    bat = tmp_path / "load.bat"
    bat.write_text("@echo off\r\n")
    with pytest.raises(TaskFailedError, match="Windows script.*does not emulate"):
        task(Executable=str(bat)).execute(make_ctx())


def test_not_executable_file(tmp_path: Path) -> None:
    plain = tmp_path / "tool"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(TaskFailedError, match="not executable"):
        task(Executable=str(plain)).execute(make_ctx())


def test_timeout_terminates_the_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t = task(
        Executable="/bin/sh", Arguments=f'-c "echo $$ > {pidfile}; exec sleep 30"', TimeOut="1"
    )
    started = time.monotonic()
    with pytest.raises(
        TaskFailedError, match=r"did not finish within the TimeOut of 1 seconds and was ended"
    ):
        t.execute(make_ctx())
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 10
    assert pid_gone(int(pidfile.read_text()))


def test_timeout_without_termination_leaves_it_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t = task(
        Executable="/bin/sh",
        Arguments=f'-c "echo $$ > {pidfile}; exec sleep 30"',
        TimeOut="1",
        TerminateAfterTimeout="False",
    )
    ctx = make_ctx()
    with pytest.raises(TaskFailedError, match="was left running"):
        t.execute(ctx)
    pid = int(pidfile.read_text())
    try:
        assert not pid_gone(pid)
        assert any("left running" in w for w in ctx.events.warnings)
    finally:
        os.kill(pid, 9)


def _wait_for(path: Path, limit: float = 10.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_cancel_ends_the_process_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # The shell starts a background child and ignores SIGTERM, so only SIGKILL after the grace
    # ends it.
    script = f"trap '' TERM; sleep 30 & echo $$ $! > {pidfile}; wait"
    t = task(Executable="/bin/sh", Arguments=f'-c "{script}"')
    ctx = make_ctx()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            t.execute(ctx)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    pids = [int(p) for p in _wait_for(pidfile).split()]
    started = time.monotonic()
    ctx.cancel_event.set()
    t.cancel()
    worker.join(15)
    assert not worker.is_alive()
    assert time.monotonic() - started < 10
    assert errors and isinstance(errors[0], TaskFailedError) and "canceled" in str(errors[0])
    deadline = time.monotonic() + 5
    while not all(pid_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(pid_gone(p) for p in pids), pids


def test_the_emergency_stop_kills_a_running_process_at_once(tmp_path: Path) -> None:
    # What the CLI's second Ctrl-C calls: no grace period, even for a shell that ignores SIGTERM.
    pidfile = tmp_path / "pids"
    script = f"trap '' TERM; sleep 30 & echo $$ $! > {pidfile}; wait"
    t = task(Executable="/bin/sh", Arguments=f'-c "{script}"')
    errors: list[BaseException] = []

    def run() -> None:
        try:
            t.execute(make_ctx())
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    pids = [int(p) for p in _wait_for(pidfile).split()]
    assert emergency_stop() == 1  # one process group
    worker.join(10)
    assert not worker.is_alive() and errors and isinstance(errors[0], TaskFailedError)
    deadline = time.monotonic() + 1.5  # well inside the 2-second grace a cancel would give
    while not all(pid_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(pid_gone(p) for p in pids), pids


def test_cancel_event_alone_stops_it(tmp_path: Path) -> None:
    t = task(Executable="/bin/sleep", Arguments="30")
    ctx = make_ctx()
    timer = threading.Timer(0.3, ctx.cancel_event.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(TaskFailedError, match="canceled"):
        t.execute(ctx)
    assert time.monotonic() - started < 10


def test_killed_by_signal_is_reported() -> None:
    with pytest.raises(TaskFailedError, match="killed by signal 9 .SIGKILL"):
        task(Executable="/bin/sh", Arguments='-c "kill -9 $$"').execute(make_ctx())


def test_validate() -> None:
    vctx = ValidationContext(
        connection_type=lambda ref: None, has_variable=lambda n: n == "User::Out"
    )
    assert task().validate(vctx) == [
        "the Execute Process task has no Executable; set the program to run."
    ]
    dynamic = ValidationContext(lambda r: None, lambda n: False, frozenset({"executable"}))
    assert task().validate(dynamic) == []
    problems = task(
        Executable="x", StandardOutputVariable="User::Out", StandardErrorVariable="User::Nope"
    ).validate(vctx)
    assert problems == [
        "StandardErrorVariable names the variable 'User::Nope', which does not exist in the "
        "task's scope."
    ]


def test_mapped_exe_may_name_a_native_build(tmp_path: Path) -> None:
    tool = tmp_path / "pkzip25"
    tool.write_text('#!/bin/sh\necho native "$@"\n')
    tool.chmod(0o755)
    from dtsx.engine.paths import PathMap

    pm = PathMap.parse([f"c:\\Arc={tmp_path}"])
    t = task(
        Executable=r"c:\Arc\pkzip25.exe", Arguments="-extr=all x.zip", StandardOutputVariable="Out"
    )
    ctx = make_ctx({"User::Out": ""}, local_path=pm)
    t.execute(ctx)
    assert ctx.variables.get("Out") == "native -extr=all x.zip\n"
    # Without a mapping the .exe is not guessed away.
    with pytest.raises(TaskFailedError, match="is a Windows program"):
        task(Executable=r"c:\Arc\pkzip25.exe").execute(make_ctx(local_path=PathMap.parse([])))


def test_large_stdin_to_a_slow_reader() -> None:
    # The input outlives the first wait interval, so it must keep flowing across polls.
    code = "import sys, time; time.sleep(0.5); print(len(sys.stdin.read()))"
    t = task(
        Executable=PY,
        Arguments=f'-c "{code}"',
        StandardInputVariable="In",
        StandardOutputVariable="Out",
    )
    ctx = make_ctx({"User::In": "x" * 1_000_000, "User::Out": ""})
    t.execute(ctx)
    assert ctx.variables.get("Out").strip() == "1000000"
