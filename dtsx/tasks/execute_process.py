"""The Execute Process task: runs a program, feeds and captures its standard streams.

Arguments are one string, split as a Windows program's C runtime would split it
(:func:`split_windows_args`), so a package written for Windows passes the same argv here.
The process runs in its own process group; a timeout or a canceled run ends the whole group
(SIGTERM, then SIGKILL after a grace period), so nothing is left running. If dtsx itself dies
(SIGKILL, a crash), a watchdog process ends the groups that were still running (see
:class:`_ProcessGuard`). Windows-only programs (``cmd.exe``, ``.bat`` files) are not emulated:
the task fails and says so.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from dtsx.engine.paths import unmapped_windows_path
from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.base import (
    SsisBool,
    SsisInt,
    Task,
    TaskContext,
    TaskProperties,
    ValidationContext,
    register_emergency_stop,
    register_task,
)
from pydantic import AliasChoices, Field

__all__ = ["ExecuteProcessTask", "split_windows_args", "stop_every_process"]

_GRACE_SECONDS = 2.0
_POLL_SECONDS = 0.05
_WINDOWS_SUFFIXES = (".exe", ".com", ".bat", ".cmd", ".ps1", ".vbs")
_SCRIPT_SUFFIXES = (".bat", ".cmd", ".ps1", ".vbs")


def split_windows_args(text: str) -> list[str]:
    """Split a command line as ``CommandLineToArgvW`` does (the program name excluded).

    Whitespace (space, tab) separates arguments outside quotes. ``2n`` backslashes before a
    ``"`` give ``n`` backslashes and the quote toggles quoting; ``2n+1`` give ``n`` backslashes
    and a literal ``"``; other backslashes are literal. Inside quotes, ``""`` is a literal ``"``
    that also ends the quoted part. An unterminated quote runs to the end of the line.
    """
    args: list[str] = []
    current: list[str] = []
    in_arg = in_quotes = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t" and not in_quotes:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
            i += 1
            continue
        in_arg = True
        if c == "\\":
            chars, i = _backslash_run(text, i)
            current.append(chars)
            continue
        if c == '"':
            if in_quotes and i + 1 < n and text[i + 1] == '"':
                current.append('"')
                in_quotes = False
                i += 2
                continue
            in_quotes = not in_quotes
            i += 1
            continue
        current.append(c)
        i += 1
    if in_arg:
        args.append("".join(current))
    return args


def _backslash_run(text: str, start: int) -> tuple[str, int]:
    """Backslashes from ``start``: what they produce, and where parsing resumes.

    Before a quote, each pair gives one backslash and an odd one escapes the quote (consumed
    here); an even run leaves the quote for the caller, as a delimiter. Elsewhere they are literal.
    """
    end = start
    while end < len(text) and text[end] == "\\":
        end += 1
    count = end - start
    if end < len(text) and text[end] == '"':
        if count % 2:
            return "\\" * (count // 2) + '"', end + 1
        return "\\" * (count // 2), end
    return "\\" * count, end


@register_task("Microsoft.ExecuteProcess")
class ExecuteProcessTask(Task):
    """Runs ``Executable`` with ``Arguments``; the exit code is the task's execution value."""

    class Properties(TaskProperties):
        executable: str = Field("", validation_alias=AliasChoices("Executable", "executable"))
        arguments: str = Field("", validation_alias=AliasChoices("Arguments", "arguments"))
        working_directory: str = Field(
            "", validation_alias=AliasChoices("WorkingDirectory", "working_directory")
        )
        require_full_file_name: SsisBool = Field(
            True, validation_alias=AliasChoices("RequireFullFileName", "require_full_file_name")
        )
        success_value: SsisInt = Field(
            0, validation_alias=AliasChoices("SuccessValue", "success_value")
        )
        fail_on_return_code: SsisBool = Field(
            True,
            validation_alias=AliasChoices(
                "FailTaskIfReturnCodeIsNotSuccessValue", "fail_on_return_code"
            ),
        )
        timeout: SsisInt = Field(0, validation_alias=AliasChoices("TimeOut", "Timeout", "timeout"))
        terminate_after_timeout: SsisBool = Field(
            True,
            validation_alias=AliasChoices(
                "TerminateAfterTimeout", "TerminateProcessAfterTimeOut", "terminate_after_timeout"
            ),
        )
        window_style: str = Field(
            "Normal", validation_alias=AliasChoices("WindowStyle", "window_style")
        )
        stdin_variable: str = Field(
            "", validation_alias=AliasChoices("StandardInputVariable", "stdin_variable")
        )
        stdout_variable: str = Field(
            "", validation_alias=AliasChoices("StandardOutputVariable", "stdout_variable")
        )
        stderr_variable: str = Field(
            "", validation_alias=AliasChoices("StandardErrorVariable", "stderr_variable")
        )

    props: Properties

    def __init__(self, props: TaskProperties) -> None:
        super().__init__(props)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        #: The exit code of the last run; the executor writes it to the host's ExecValueVariable.
        self.execution_value: int | None = None

    # -- validation -------------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        p = self.props
        problems = []
        if not p.executable.strip() and not vctx.is_dynamic("Executable"):
            problems.append("the Execute Process task has no Executable; set the program to run.")
        if p.timeout < 0 and not vctx.is_dynamic("TimeOut"):
            problems.append(
                f"TimeOut is {p.timeout}; it must be 0 (no limit) or a number of seconds."
            )
        for prop, name in (
            ("StandardInputVariable", p.stdin_variable),
            ("StandardOutputVariable", p.stdout_variable),
            ("StandardErrorVariable", p.stderr_variable),
        ):
            if name.strip() and not vctx.is_dynamic(prop) and not vctx.has_variable(name.strip()):
                problems.append(
                    f"{prop} names the variable {name.strip()!r}, which does not exist in the "
                    "task's scope."
                )
        return problems

    # -- execution --------------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        cwd = self._working_directory(ctx)
        argv = [self._resolve_executable(ctx, cwd), *split_windows_args(self.props.arguments)]
        stdin = self._stdin_bytes(ctx)
        process = self._start(argv, cwd, stdin is not None, ctx)
        try:
            out, err, timed_out = self._wait(process, stdin, ctx)
        finally:
            with self._lock:
                self._process = None
            # Guarded while the task runs; one left running after its TimeOut is the package's wish.
            _GUARD.discard(process.pid)
        self._store_output(ctx, out, err)
        self._judge(process, argv[0], timed_out, ctx)

    def cancel(self) -> None:
        """Ask the process group to stop; the task's own thread gives the grace period and kills."""
        self._cancelled.set()
        with self._lock:
            process = self._process
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)

    def _stop_requested(self, ctx: TaskContext) -> bool:
        return ctx.cancelled or self._cancelled.is_set()

    def _resolve_executable(self, ctx: TaskContext, cwd: str | None) -> str:
        stored = self.props.executable.strip().strip('"')
        if not stored:
            raise TaskFailedError(
                "the Execute Process task has no Executable; set the program to run."
            )
        local = ctx.local_path(stored)
        if "/" in local:
            found = local if os.path.isfile(local) else None
            # A folder mapped by --path-map may hold the native build without the ".exe".
            if (
                found is None
                and local != stored.replace("\\", "/")
                and local.lower().endswith(".exe")
            ):
                found = local[:-4] if os.path.isfile(local[:-4]) else None
        else:
            # A bare name: the working directory first (as CreateProcess does), then PATH.
            in_cwd = os.path.join(cwd or os.getcwd(), local)
            found = in_cwd if os.path.isfile(in_cwd) else shutil.which(local)
        if found is None:
            raise TaskFailedError(_not_found_message(stored, local))
        if found.lower().endswith(_SCRIPT_SUFFIXES):
            raise TaskFailedError(
                f"the Executable {stored} is a Windows script, which needs cmd.exe or PowerShell, "
                "which dtsx "
                "does not emulate; rewrite it as a shell script or program and point Executable at "
                "that."
            )
        if not os.access(found, os.X_OK):
            raise TaskFailedError(
                f"the Executable {found} is not executable; run 'chmod +x {found}' or point "
                "Executable at a program."
            )
        return found

    def _working_directory(self, ctx: TaskContext) -> str | None:
        stored = self.props.working_directory.strip()
        if not stored:
            return None
        local = ctx.local_path(stored)
        problem = unmapped_windows_path(stored, local)
        if problem is not None:
            raise TaskFailedError(f"the WorkingDirectory {problem}.")
        if not os.path.isdir(local):
            where = stored if local == stored else f"{stored} (here {local})"
            raise TaskFailedError(
                f"the WorkingDirectory {where} does not exist; create it or map it with --path-map."
            )
        return local

    def _stdin_bytes(self, ctx: TaskContext) -> bytes | None:
        name = self.props.stdin_variable.strip()
        if not name:
            return None
        value = ctx.variables.get(name)
        return b"" if value is None else str(value).encode("utf-8")

    def _start(
        self, argv: list[str], cwd: str | None, feed: bool, ctx: TaskContext
    ) -> subprocess.Popen[bytes]:
        # The watchdog first, so that the new group is registered the moment it exists.
        problem = _GUARD.ready()
        if problem is not None:
            ctx.events.warning(problem)
        with self._lock:
            if self._cancelled.is_set():
                raise TaskFailedError("the run was canceled before the process started.")
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group, so it can be ended whole
                )
            except OSError as exc:
                raise TaskFailedError(
                    f"could not start {argv[0]}: {exc.strerror or exc}; check the Executable and "
                    "its permissions."
                ) from exc
            _GUARD.add(process.pid)
            self._process = process
        return process

    def _wait(
        self, process: subprocess.Popen[bytes], stdin: bytes | None, ctx: TaskContext
    ) -> tuple[bytes, bytes, bool]:
        """Wait for the process, watching the timeout and cancellation; return (out, err,
        timed_out)."""
        deadline = time.monotonic() + self.props.timeout if self.props.timeout > 0 else None
        pipes = _Pipes(process, stdin)
        while True:
            try:
                process.wait(timeout=_POLL_SECONDS)
                exited = True
            except subprocess.TimeoutExpired:
                exited = False
            stop = self._stop_requested(ctx)
            # Exited (its output may still be in flight, or held open by its own children). Once
            # the run is canceled, a death by signal is dtsx's own doing (cancel() sent it).
            if exited and not (stop and process.returncode < 0) and pipes.join(_POLL_SECONDS):
                return (*pipes.result(), False)
            if stop:
                _end_group(process)
                pipes.join(_GRACE_SECONDS)
                raise TaskFailedError(
                    f"the run was canceled, so dtsx stopped the process {_program(process)} (pid "
                    f"{process.pid})."
                )
            if deadline is not None and time.monotonic() >= deadline:
                return self._on_timeout(process, pipes, ctx)

    def _on_timeout(
        self, process: subprocess.Popen[bytes], pipes: _Pipes, ctx: TaskContext
    ) -> tuple[bytes, bytes, bool]:
        if self.props.terminate_after_timeout:
            _end_group(process)
            pipes.join(_GRACE_SECONDS)
            return (*pipes.result(), True)
        # SSIS leaves the process running; its pipes keep draining and it is reaped in the
        # background.
        ctx.events.warning(
            f"the process {_program(process)} (pid {process.pid}) is still running after the "
            f"{self.props.timeout}-second "
            "TimeOut and is left running because TerminateAfterTimeout is False."
        )
        threading.Thread(target=process.wait, daemon=True).start()
        return b"", b"", True

    def _store_output(self, ctx: TaskContext, out: bytes, err: bytes) -> None:
        for name, data in ((self.props.stdout_variable, out), (self.props.stderr_variable, err)):
            if name.strip():
                ctx.variables.set(name.strip(), data.decode("utf-8", errors="replace"))

    def _judge(
        self, process: subprocess.Popen[bytes], program: str, timed_out: bool, ctx: TaskContext
    ) -> None:
        if timed_out:
            action = "was ended" if self.props.terminate_after_timeout else "was left running"
            raise TaskFailedError(
                f"the process {program} did not finish within the TimeOut of {self.props.timeout} "
                f"seconds and {action}; "
                "raise TimeOut (0 means no limit) or find out why it hangs."
            )
        code = process.returncode
        self.execution_value = code
        if code < 0:
            raise TaskFailedError(
                f"the process {program} was killed by signal {-code} ({_signal_name(-code)}); "
                "check what stopped it."
            )
        if self.props.fail_on_return_code and code != self.props.success_value:
            raise TaskFailedError(
                f"the process {program} exited with code {code}, but the task expects "
                f"{self.props.success_value} "
                "(SuccessValue); check its output, or set SuccessValue or "
                "FailTaskIfReturnCodeIsNotSuccessValue."
            )
        ctx.events.information(f"the process {program} exited with code {code}.")


def _not_found_message(stored: str, local: str) -> str:
    where = stored if local == stored else f"{stored} (here {local})"
    base = os.path.basename(local.replace("\\", "/")).lower()
    if base.endswith(_WINDOWS_SUFFIXES) or base in {"cmd", "powershell", "pwsh"}:
        return (
            f"the Executable {where} is a Windows program, which does not exist on this system and "
            "is not emulated; "
            "point Executable at a native program (a property expression or --set can change it), "
            "or map the "
            "folder of a native build with --path-map."
        )
    return (
        f"the Executable {where} was not found; install it, give its full path, or map its folder "
        "with --path-map."
    )


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after a grace period."""
    if not _signal_group(process.pid, signal.SIGTERM):
        return
    deadline = time.monotonic() + _GRACE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None and not _signal_group(process.pid, 0):
            return
        time.sleep(_POLL_SECONDS)
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, number: int) -> bool:
    """Send a signal (0: none, only a check) to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_every_process() -> int:
    """SIGKILL every process group a running Execute Process task started; how many there were.

    For a second interrupt: the first asked politely and something is not stopping.
    """
    return _GUARD.kill_all()


# The CLI's second Ctrl-C calls tasks.base.emergency_stop(), which reaches this without the CLI
# importing this module (a package with no Execute Process task never loads it).
register_emergency_stop(stop_every_process)


# The watchdog's program: stdlib only, so it starts in milliseconds (``python -I -S``). It reads
# "+PGID" / "-PGID" lines; end of file means dtsx has ended, however it ended, and the groups
# still registered get what a cancel gives them: SIGTERM, then SIGKILL after the grace period.
_WATCHDOG = f"""# dtsx-watchdog
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
def send(number):
    for pgid in list(groups):
        try:
            os.killpg(pgid, number)
        except OSError:
            groups.discard(pgid)
send(signal.SIGTERM)
deadline = time.monotonic() + {_GRACE_SECONDS}
while groups and time.monotonic() < deadline:
    time.sleep({_POLL_SECONDS})
    send(0)
send(signal.SIGKILL)
"""


class _ProcessGuard:
    """The process groups running tasks have started, and a watchdog that ends them if dtsx dies.

    Each child runs in a session of its own (so a terminal's Ctrl-C reaches dtsx, which decides,
    and not the child), so nothing the kernel does to dtsx's group reaches it. PR_SET_PDEATHSIG
    would not do: it reaches only the direct child, not its own children in the group, and fires
    when the *thread* that forked exits (tasks run on worker threads). Instead one watchdog
    process holds the read end of a pipe whose write end only dtsx holds; when dtsx dies in any
    way, the kernel closes it and the watchdog ends the groups still registered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._pipe: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._failed = False

    def ready(self) -> str | None:
        """Start the watchdog if it is not running; a warning (once) when it cannot be started."""
        with self._lock:
            if self._pipe is not None or self._failed:
                return None
            problem = self._start_watchdog()
            self._failed = problem is not None
            return problem

    def add(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
            self._tell(f"+{pgid}\n")

    def discard(self, pgid: int) -> None:
        with self._lock:
            if pgid in self._groups:
                self._groups.discard(pgid)
                self._tell(f"-{pgid}\n")

    def kill_all(self) -> int:
        with self._lock:
            groups = list(self._groups)
        return sum(_signal_group(pgid, signal.SIGKILL) for pgid in groups)

    def _start_watchdog(self) -> str | None:
        read_end, write_end = os.pipe()  # neither end is inherited by other children (O_CLOEXEC)
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, f"--for={os.getpid()}"],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of the terminal's Ctrl-C meant for dtsx
            )
        except OSError as exc:
            os.close(write_end)
            return (
                f"dtsx could not start its process watchdog ({exc.strerror or exc}), so if dtsx is "
                "killed, "
                "processes started by Execute Process tasks may keep running."
            )
        finally:
            os.close(read_end)
        self._pipe = write_end
        return None

    def _tell(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            os.write(self._pipe, line.encode("ascii"))
        except OSError:  # the watchdog has gone; the run itself is not affected
            pass


_GUARD = _ProcessGuard()


class _Pipes:
    """Feeds stdin and drains stdout/stderr on daemon threads, so no pipe fills up and blocks.

    (``Popen.communicate`` with a timeout cannot resume sending input after the first timeout.)
    """

    def __init__(self, process: subprocess.Popen[bytes], stdin: bytes | None) -> None:
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._threads = [
            threading.Thread(target=_drain, args=(process.stdout, self._out), daemon=True),
            threading.Thread(target=_drain, args=(process.stderr, self._err), daemon=True),
        ]
        if process.stdin is not None:
            self._threads.append(
                threading.Thread(target=_feed, args=(process.stdin, stdin or b""), daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def join(self, limit: float) -> bool:
        """Wait up to ``limit`` seconds in all for the streams to finish; True when they have."""
        deadline = time.monotonic() + limit
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def result(self) -> tuple[bytes, bytes]:
        return b"".join(self._out), b"".join(self._err)


def _program(process: subprocess.Popen[bytes]) -> str:
    """The program a process runs: the first item of the argv list this task gave Popen."""
    args = process.args
    return str(args[0]) if isinstance(args, list) else str(args)


def _drain(stream: IO[bytes] | None, sink: list[bytes]) -> None:
    if stream is None:
        return
    # Popen's pipes are buffered readers (bufsize -1): read1 returns what is there, up to 64 KiB.
    assert isinstance(stream, io.BufferedReader)
    with stream:
        sink.extend(iter(lambda: stream.read1(65536), b""))


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        with stream:
            stream.write(data)
    except (BrokenPipeError, OSError):
        pass  # the program stopped reading; what it did not take is not an error (as in SSIS)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
