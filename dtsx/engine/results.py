"""What a run reports: the result of each executable and of the whole package.

:class:`ExecutionResult` names every outcome the executor knows. It is a ``str`` enum whose
values are the words the JSON report, the console and the tests have always shown, and its
``str()``/``format()`` print that word (a plain ``(str, Enum)`` member would print
``ExecutionResult.SUCCESS`` in an f-string). An unexpected exception is kept whole as an
:class:`InternalError` (object and formatted traceback), so a report can tell a task's planned
failure from a bug ("errored"), and ``--debug`` can show the chain.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from collections.abc import Callable

from dtsx.engine.expressions import Value
from dtsx.engine.model import DTSExecResult

__all__ = [
    "ExecutionResult",
    "InternalError",
    "ExecutableResult",
    "RunResult",
    "EXIT_CODES",
    "json_value",
]


class ExecutionResult(str, Enum):
    """The outcome of one execution, as the report and the constraints leaving it see it."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    COMPLETION = "Completion"
    CANCELED = "Canceled"
    NOT_RUN = "NotRun"  # never reached: a constraint or a cancellation kept it from running
    SKIPPED = "Skipped"  # unsupported, run as disabled under --unsupported skip

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return self.value.__format__(spec)


EXIT_CODES = {"Success": 0, "Failure": 1, "Canceled": 3}

# ForceExecutionResult's codes (-1, not forced, is not among them).
FORCED_RESULTS: dict[int, ExecutionResult] = {
    DTSExecResult.SUCCESS: ExecutionResult.SUCCESS,
    DTSExecResult.FAILURE: ExecutionResult.FAILURE,
    DTSExecResult.COMPLETION: ExecutionResult.COMPLETION,
}


@dataclass(frozen=True)
class InternalError:
    """An exception nobody planned (a bug in a task or in dtsx): where, what, and how it came.

    ``traceback`` is the formatted chain with the run's known secrets masked; ``exception`` is
    the object itself, untouched, for a debugger or a test."""

    ref_id: str
    exception: BaseException
    traceback: str

    @classmethod
    def of(
        cls, ref_id: str, exc: BaseException, mask: Callable[[str], str] | None = None
    ) -> InternalError:
        text = "".join(traceback.format_exception(exc))
        return cls(ref_id, exc, mask(text) if mask is not None else text)

    @property
    def type_name(self) -> str:
        return type(self.exception).__name__


def _stamp(moment: datetime) -> str:
    """ISO 8601 with the UTC offset: the run keeps local wall-clock times (System::StartTime is
    local, as in SSIS), but a report read elsewhere must say which local time it was."""
    return moment.astimezone().isoformat(timespec="milliseconds")


@dataclass
class ExecutableResult:
    ref_id: str
    result: ExecutionResult = ExecutionResult.NOT_RUN
    started: datetime | None = None
    duration_s: float = 0.0
    iterations: int = 0
    errors: list[str] = field(default_factory=list)
    # Set when an exception nobody planned ended (part of) this execution.
    internal: InternalError | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ref_id": self.ref_id,
            "result": self.result.value,
            "started": _stamp(self.started) if self.started else None,
            "duration_s": round(self.duration_s, 6),
            "iterations": self.iterations,
            "errors": list(self.errors),
        }
        if self.internal is not None:  # only then: a report of a clean run is unchanged
            data["internal_error"] = self.internal.type_name
        return data

    def update(
        self,
        result: ExecutionResult,
        started: datetime,
        duration: float,
        errors: list[str] | None,
        iterations: int,
    ) -> None:
        self.result = result
        if self.started is None:
            self.started = started
        self.duration_s += duration
        self.iterations += iterations
        if errors:
            self.errors.extend(errors)


@dataclass
class RunResult:
    package: str
    result: ExecutionResult
    exit_code: int
    started: datetime
    duration_s: float
    executables: list[ExecutableResult]
    variables: dict[str, Any]
    events: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    # Every unexpected exception of the run, in the order they happened (``--debug`` prints them).
    internal_errors: list[InternalError] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """How many executables were skipped as unsupported (``--unsupported skip``)."""
        return sum(1 for e in self.executables if e.result is ExecutionResult.SKIPPED)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "package": self.package,
            "result": self.result.value,
            "exit_code": self.exit_code,
            "started": _stamp(self.started),
            "duration_s": round(self.duration_s, 6),
            "executables": [e.to_json() for e in self.executables],
            "variables": dict(self.variables),
            "events": dict(sorted(self.events.items())),
        }
        skipped = self.skipped
        if skipped:  # only then: a report of a run that skipped nothing is unchanged
            data["skipped"] = skipped
        return data

    def executable(self, ref_id: str) -> ExecutableResult:
        for item in self.executables:
            if item.ref_id == ref_id:
                return item
        raise KeyError(ref_id)


def json_value(value: Value) -> Any:
    """A variable's value in JSON terms: numbers, strings, booleans, ISO dates, lists."""
    return _json_raw(value.value)


def _json_raw(raw: Any) -> Any:
    if raw is None or isinstance(raw, (bool, int, str)):
        return raw
    if isinstance(raw, float):
        return raw if raw == raw and raw not in (float("inf"), float("-inf")) else str(raw)
    if isinstance(raw, Decimal):
        return int(raw) if raw == raw.to_integral_value() and abs(raw) < 2**53 else float(raw)
    if isinstance(raw, (datetime, date)):
        return raw.isoformat()
    if isinstance(raw, bytes):
        return raw.hex()
    if isinstance(raw, (list, tuple)):
        return [_json_raw(v) for v in raw]
    if isinstance(raw, dict):
        return {str(k): _json_raw(v) for k, v in raw.items()}
    return str(raw)
