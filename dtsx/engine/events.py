"""Run events and the log providers that consume them (console, JSON lines).

The executor raises :class:`RunEvent` objects and hands each one to an :class:`EventLog`, which
counts them and passes them to every sink. Nothing here decides anything about execution, and
nothing prints: the console provider writes through a callback that only the CLI supplies.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol
from collections.abc import Callable, Iterable

from dtsx.engine.errors import DtsxError

__all__ = [
    "EVENT_NAMES",
    "RunEvent",
    "LogSink",
    "EventLog",
    "ConsoleLog",
    "JsonLinesLog",
    "parse_reporting",
    "REPORTING_DEFAULT",
]

EVENT_NAMES = (
    "OnPreValidate",
    "OnPostValidate",
    "OnPreExecute",
    "OnPostExecute",
    "OnError",
    "OnWarning",
    "OnInformation",
    "OnProgress",
    "OnTaskFailed",
    "OnVariableValueChanged",
    "OnQueryCancel",
    "OnExecStatusChanged",
)

# dtexec /Reporting letters → the events each shows (V shows everything; N nothing).
_LEVEL_EVENTS = {
    "E": {"OnError", "OnTaskFailed"},
    "W": {"OnWarning"},
    "I": {"OnInformation"},
    "C": set(),  # custom events: dtsx tasks raise none
    "D": set(),  # data-flow events: no data flow in dtsx
    "P": {"OnProgress"},
}
REPORTING_DEFAULT = "EWP"


@dataclass(frozen=True)
class RunEvent:
    """One event: its name, the executable it came from, a message and its details."""

    name: str
    source_name: str
    source_ref: str
    source_id: str = ""
    message: str = ""
    code: int = 0
    time: datetime = field(default_factory=datetime.now)
    source_description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # An OnError for an exception nobody planned (a bug in a task or in dtsx) keeps it: the
    # object, and its formatted chain with the run's secrets masked (see results.InternalError).
    exception: BaseException | None = None
    traceback: str = ""

    def to_json(self, *, debug: bool = False) -> dict[str, Any]:
        """The event as the JSON-lines log writes it; ``debug`` adds an internal error's
        traceback."""
        data: dict[str, Any] = {
            "event": self.name,
            "time": self.time.isoformat(timespec="milliseconds"),
            "source": self.source_name,
            "ref_id": self.source_ref,
            "source_id": self.source_id,
            "message": self.message,
        }
        if self.code:
            data["code"] = self.code
        if self.extra:
            data.update({k: v for k, v in self.extra.items() if _json_safe(v)})
        if self.exception is not None:
            data["internal_error"] = type(self.exception).__name__
            if debug:
                data["traceback"] = self.traceback
        return data


def _json_safe(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


class LogSink(Protocol):
    def __call__(self, event: RunEvent) -> None: ...

    def close(self) -> None: ...


class EventLog:
    """Counts events by name and fans them out to sinks; thread-safe, never raises from a sink.

    ``mask`` rewrites every message before any sink sees it (the run masks its sensitive values
    with it). A sink that raises is a broken log: it is told nothing more, its error is kept in
    ``sink_errors``, and ``on_broken`` gets one sentence about it (the executor raises it as an
    OnWarning to the other sinks), outside the log's lock; the exception itself is kept in
    ``sink_exceptions``.
    """

    def __init__(
        self,
        sinks: Iterable[LogSink] = (),
        *,
        mask: Callable[[str], str] | None = None,
        on_broken: Callable[[str], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.counts: dict[str, int] = {}
        self._fast: dict[str, itertools.count[int]] = {}
        self._reads: dict[str, int] = {}
        self._lock = threading.Lock()
        self._mask = mask
        self._on_broken = on_broken
        self.sink_errors: list[str] = []
        self.sink_exceptions: list[Exception] = []  # the same failures, kept whole (--debug)

    def emit(self, event: RunEvent) -> None:
        if self._mask is not None and event.message:
            masked = self._mask(event.message)
            if masked != event.message:
                event = dataclasses.replace(event, message=masked)
        broken: list[str] = []
        with self._lock:
            self.counts[event.name] = self.counts.get(event.name, 0) + 1
            for sink in list(self.sinks):
                try:
                    sink(event)
                except Exception as exc:  # a broken log provider must not break the run
                    self.sinks.remove(sink)
                    self.sink_errors.append(f"{type(exc).__name__}: {exc}")
                    self.sink_exceptions.append(exc)
                    broken.append(_broken_sentence(sink, exc))
        if self._on_broken is not None:
            for message in broken:
                self._on_broken(message)

    def count(self, name: str) -> None:
        """Count an event that no sink wants (the executor's fast path): ``next()`` on an
        ``itertools.count`` is atomic in CPython, so no lock is taken."""
        counter = self._fast.get(name)
        if counter is None:
            with self._lock:
                counter = self._fast.setdefault(name, itertools.count(1))
        next(counter)

    def totals(self) -> dict[str, int]:
        """Every event counted so far, by name."""
        with self._lock:
            totals = dict(self.counts)
            for name, counter in self._fast.items():
                # next() returns how many were counted plus one; each read also consumes one.
                self._reads[name] = self._reads.get(name, 0) + 1
                totals[name] = totals.get(name, 0) + next(counter) - self._reads[name]
        return totals

    def wanted(self) -> frozenset[str]:
        """Event names some sink consumes: a sink's ``events`` attribute, or every event."""
        names: set[str] = set()
        for sink in self.sinks:
            names |= set(getattr(sink, "events", EVENT_NAMES))
        return frozenset(names)

    def close(self) -> None:
        for sink in list(self.sinks):
            try:
                sink.close()
            except Exception as exc:  # closing must go on for the others
                self.sink_errors.append(f"{type(exc).__name__}: {exc}")
                self.sink_exceptions.append(exc)


def _broken_sentence(sink: object, exc: Exception) -> str:
    if isinstance(exc, DtsxError):  # the sink's own sentence
        return f"{exc}; the run goes on without this log."
    described = getattr(sink, "describe", None)
    name = described() if callable(described) else type(sink).__name__
    return f"the log {name} raised {type(exc).__name__}: {exc}; the run goes on without it."


def parse_reporting(level: str | None) -> frozenset[str]:
    """dtexec ``/Reporting`` letters (``EWP``, ``V``, ``N``; ``;event`` filters after) → event
    names."""
    text = (level or REPORTING_DEFAULT).split(";", 1)[0].strip().upper()
    if not text:
        text = REPORTING_DEFAULT
    if text == "N":
        return frozenset()
    if text == "V":
        return frozenset(EVENT_NAMES)
    unknown = sorted(set(text) - set(_LEVEL_EVENTS) - {"V", "N"})
    if unknown or "V" in text or "N" in text:
        bad = ", ".join(unknown) or "N/V combined with other letters"
        raise DtsxError(
            f"reporting level {level!r} is not valid ({bad}): use letters from N E W I C D P V, "
            "with N and V alone."
        )
    names: set[str] = set()
    for letter in text:
        names |= _LEVEL_EVENTS[letter]
    return frozenset(names)


class ConsoleLog:
    """dtexec-style console lines, for the events the reporting level selects."""

    def __init__(self, write: Callable[[str], None], level: str | None = None) -> None:
        self.write = write
        self.events = parse_reporting(level)

    def __call__(self, event: RunEvent) -> None:
        if event.name not in self.events:
            return
        stamp = event.time.strftime("%y/%m/%d %H:%M:%S")
        label = _LABELS.get(event.name, event.name)
        code = f" 0x{event.code & 0xFFFFFFFF:X}" if event.code else ""
        text = f": {event.message}" if event.message else ""
        self.write(f"{stamp} {label}{code}: {event.source_name}{text}")

    def close(self) -> None:
        return None


_LABELS = {
    "OnError": "Error",
    "OnWarning": "Warning",
    "OnInformation": "Information",
    "OnProgress": "Progress",
    "OnTaskFailed": "TaskFailed",
    "OnPreExecute": "PreExecute",
    "OnPostExecute": "PostExecute",
}


class JsonLinesLog:
    """One JSON object per event, appended to a file.

    A write that fails (a full disk, /dev/full) raises one DtsxError naming the file; after that
    the log writes nothing more, so that every run sharing it (child packages) warns only once.
    Closing never raises: every event was flushed when written, so nothing is left to lose.
    With ``debug`` (``--debug``), an internal error's event carries its traceback."""

    def __init__(self, path: str | Path, *, debug: bool = False) -> None:
        self.path = Path(path)
        self.debug = debug
        self.failed = False
        try:
            self._file: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise DtsxError(f"cannot open the log file {self.path}: {exc.strerror}.") from exc

    def describe(self) -> str:
        return f"file {self.path}"

    def __call__(self, event: RunEvent) -> None:
        if self.failed:
            return
        try:
            self._file.write(json.dumps(event.to_json(debug=self.debug), ensure_ascii=False) + "\n")
            self._file.flush()  # so a run can be followed with tail -f
        except OSError as exc:
            self.failed = True
            raise DtsxError(
                f"the log file {self.path} cannot be written ({exc.strerror or exc})"
            ) from exc

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # the unflushed rest of a failed write: already reported by __call__
            pass
