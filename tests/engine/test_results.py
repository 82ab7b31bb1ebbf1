"""Results (issue 10): the ExecutionResult enum prints and serialises as the old words; an
unexpected exception is kept whole (object and traceback) on its OnError event, its record and
the run's result, told apart from a planned failure; executables skipped as unsupported are
``Skipped``, not ``NotRun``, and counted. Real runs of real plans throughout."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from dtsx.engine.events import EventLog, JsonLinesLog, RunEvent
from dtsx.engine.executor import ExecutionResult, InternalError, RunOptions, RunResult, run
from dtsx.engine.model import Executable, ExecutableKind, Parameter, PropertyExpression
from dtsx.engine.plan import build
from dtsx.tasks.base import TASKS, Task, TaskContext

from tests.engine._probe import LEDGER, edge, package, probe

SECRET = "pw-5f1e-never-shown"
LEAKY = "Tests.LeakyBug"


class LeakyBugTask(Task):
    """A task with a bug whose exception message quotes a sensitive variable's value."""

    def execute(self, ctx: TaskContext) -> None:
        raise RuntimeError(f"cannot log in with {ctx.variables.get('$Package::Password')}")


if LEAKY not in TASKS:
    TASKS.add(LEAKY, LeakyBugTask, "tests.engine.test_results")


class Collect:
    def __init__(self) -> None:
        self.seen: list[RunEvent] = []

    def __call__(self, event: RunEvent) -> None:
        self.seen.append(event)

    def close(self) -> None:
        return None


def test_the_enum_prints_and_serialises_as_the_old_words() -> None:
    for member, word in [
        (ExecutionResult.SUCCESS, "Success"),
        (ExecutionResult.FAILURE, "Failure"),
        (ExecutionResult.CANCELED, "Canceled"),
        (ExecutionResult.NOT_RUN, "NotRun"),
        (ExecutionResult.SKIPPED, "Skipped"),
    ]:
        assert member == word and str(member) == word and f"{member}" == word
        assert f"{member:>9}" == f"{word:>9}" and json.dumps(member) == json.dumps(word)
    LEDGER.reset()
    result = run(build(package([probe("A")])))
    assert type(result.result) is ExecutionResult
    assert result.to_json()["result"] == "Success"
    assert type(result.to_json()["result"]) is str  # JSON and repr() show the plain word


def test_a_task_bug_is_kept_whole_and_told_apart_from_a_planned_failure() -> None:
    LEDGER.reset()
    sink = Collect()
    built = build(package([probe("Bug", mode="bug"), probe("Planned", mode="fail")]))
    result = run(built, RunOptions(sinks=[sink]))
    bug, planned = result.executable("Package\\Bug"), result.executable("Package\\Planned")
    assert bug.result == planned.result == "Failure"
    assert planned.internal is None and "internal_error" not in planned.to_json()
    assert isinstance(bug.internal, InternalError)
    assert isinstance(bug.internal.exception, KeyError)
    assert "Traceback (most recent call last)" in bug.internal.traceback
    assert "_act" in bug.internal.traceback  # the task's own frame, where the bug is
    assert bug.to_json()["internal_error"] == "KeyError"
    assert result.internal_errors == [bug.internal]
    errors = {e.source_name: e for e in sink.seen if e.name == "OnError"}
    assert errors["Bug"].exception is bug.internal.exception
    assert errors["Bug"].traceback == bug.internal.traceback
    assert errors["Planned"].exception is None and errors["Planned"].traceback == ""
    assert "KeyError" in errors["Bug"].message  # the one sentence stays as it was


def test_the_json_lines_log_writes_the_traceback_only_in_debug_mode(tmp_path: Path) -> None:
    lines: dict[bool, list[dict[str, object]]] = {}
    for debug in (False, True):
        LEDGER.reset()
        path = tmp_path / f"log-{debug}.jsonl"
        log = JsonLinesLog(path, debug=debug)
        run(build(package([probe("Bug", mode="bug")])), RunOptions(sinks=[log]))
        log.close()
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        lines[debug] = [row for row in rows if row["event"] == "OnError"]
    assert lines[False][0]["internal_error"] == "KeyError"
    assert "traceback" not in lines[False][0]
    assert lines[True][0]["internal_error"] == "KeyError"
    assert "Traceback (most recent call last)" in str(lines[True][0]["traceback"])


def test_a_secret_in_the_exception_is_masked_in_the_traceback_not_in_the_exception() -> None:
    leaky = Executable(
        kind=ExecutableKind.TASK,
        ref_id="Package\\Leaky",
        name="Leaky",
        raw_type=LEAKY,
        type_key=LEAKY,
    )
    secret = Parameter(
        name="Password",
        scope="Package",
        dotnet_type="String",
        data_type_code=8,
        value=SECRET,
        sensitive=True,
    )
    pkg = package([leaky], parameters=[secret])
    sink = Collect()
    result = run(build(pkg), RunOptions(sinks=[sink]))
    internal = result.executable("Package\\Leaky").internal
    assert internal is not None and SECRET in str(internal.exception)  # the chain is untouched
    assert SECRET not in internal.traceback and "RuntimeError" in internal.traceback
    assert all(SECRET not in e.message + e.traceback for e in sink.seen)


def test_executables_skipped_as_unsupported_are_skipped_and_counted() -> None:
    LEDGER.reset()
    unsupported = Executable(
        kind=ExecutableKind.TASK,
        ref_id="Package\\Script",
        name="Script",
        raw_type="Tests.NoSuchTask",
        type_key="Tests.NoSuchTask",
    )
    pkg = package(
        [probe("Before"), unsupported, probe("After"), probe("Off", disabled=True)],
        [edge("Package", "Before", "Script"), edge("Package", "Script", "After")],
    )
    result = run(build(pkg, unsupported="skip"))
    results = {e.ref_id: e.result for e in result.executables}
    assert results["Package\\Script"] == ExecutionResult.SKIPPED
    assert results["Package\\After"] == "Success"  # a skipped one satisfies Success, as disabled
    assert results["Package\\Off"] == "NotRun"  # disabled by the package: not "skipped"
    assert result.skipped == 1 and result.to_json()["skipped"] == 1
    assert result.result == "Success" and LEDGER.ran == ["Before", "After"]


def test_a_report_of_a_run_that_skipped_nothing_has_no_skipped_count() -> None:
    LEDGER.reset()
    result = run(build(package([probe("A")])))
    assert result.skipped == 0 and "skipped" not in result.to_json()
    assert result.internal_errors == []


BAD_CANCEL = "Tests.BadCancel"
WAITING = threading.Event()  # the task is running: canceling now reaches its cancel()


class BadCancelTask(Task):
    """Waits to be canceled; its cancel() has a bug (it still stops the wait first)."""

    def __init__(self, props: object) -> None:
        super().__init__(props)  # type: ignore[arg-type]
        self._stop = threading.Event()

    def execute(self, ctx: TaskContext) -> None:
        WAITING.set()
        self._stop.wait(30)

    def cancel(self) -> None:
        self._stop.set()
        time.sleep(0.2)  # the task has ended by now: the run must still wait for this raise
        raise ValueError("cancel() had a bug")


if BAD_CANCEL not in TASKS:
    TASKS.add(BAD_CANCEL, BadCancelTask, "tests.engine.test_results")


def _canceled_while_running(name: str, type_key: str) -> RunResult:
    """Run a package of one task of ``type_key`` and cancel the run once the task waits."""
    task = Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"Package\\{name}",
        name=name,
        raw_type=type_key,
        type_key=type_key,
    )
    cancel = threading.Event()
    WAITING.clear()
    trigger = threading.Thread(target=lambda: WAITING.wait(30) and cancel.set())
    trigger.start()
    try:
        return run(build(package([task])), RunOptions(cancel_event=cancel))
    finally:
        RELEASE.set()  # a stuck cancel() may return now
        trigger.join()


def test_a_cancel_that_raises_is_kept_not_dropped() -> None:
    result = _canceled_while_running("Waiter", BAD_CANCEL)
    assert result.result == "Canceled"
    kept = [e for e in result.internal_errors if e.ref_id == "Package\\Waiter"]
    assert len(kept) == 1 and isinstance(kept[0].exception, ValueError)
    assert "cancel() had a bug" in kept[0].traceback


STUCK_CANCEL = "Tests.StuckCancel"
RELEASE = threading.Event()  # lets the stuck cancel() return once the test has its result


class StuckCancelTask(BadCancelTask):
    """Its cancel() stops the wait, then does not return until the test releases it."""

    def cancel(self) -> None:
        self._stop.set()
        RELEASE.wait(30)


if STUCK_CANCEL not in TASKS:
    TASKS.add(STUCK_CANCEL, StuckCancelTask, "tests.engine.test_results")


def test_a_cancel_that_never_returns_does_not_hold_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dtsx.engine.executor._CANCEL_GRACE_S", 0.3)
    RELEASE.clear()
    started = time.monotonic()
    result = _canceled_while_running("Stuck", STUCK_CANCEL)
    waited = time.monotonic() - started
    assert result.result == "Canceled"
    assert waited < 20  # bounded by the grace, not by the stuck cancel() (30 s)
    assert any("cancel() had not returned" in w for w in result.warnings)


def test_a_raising_log_sink_keeps_its_exception() -> None:
    class Broken:
        def __call__(self, event: RunEvent) -> None:
            raise OSError("the log disk went away")

        def close(self) -> None:
            return None

    log = EventLog([Broken()])
    log.emit(RunEvent("OnWarning", "P", "Package", message="x"))
    assert len(log.sink_exceptions) == 1 and isinstance(log.sink_exceptions[0], OSError)
    assert log.sink_errors == ["OSError: the log disk went away"]


def test_a_bug_in_the_executor_fails_that_child_and_keeps_the_exception() -> None:
    """An engine bug, provoked by a plan whose decided property assignments are not what the
    planner makes (None instead of PropertyAssignment): the child fails, the run goes on."""
    LEDGER.reset()
    broken = probe(
        "Broken", property_expressions=[PropertyExpression(name="Mode", expression='"ok"')]
    )
    built = build(package([broken, probe("Other")]))
    built.assignments["Package\\Broken"] = (None,)  # type: ignore[assignment]
    sink = Collect()
    result = run(built, RunOptions(sinks=[sink]))
    record = result.executable("Package\\Broken")
    assert record.internal is not None  # its result stays what it was (NotRun), as before
    assert isinstance(record.internal.exception, AttributeError)
    assert result.executable("Package\\Other").result == "Success"
    (error,) = [e for e in sink.seen if e.name == "OnError"]
    assert error.message.startswith("internal error running Package\\Broken: AttributeError")
    assert error.exception is record.internal.exception
