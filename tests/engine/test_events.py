"""Run events and log providers: reporting levels, console lines, JSON lines, counting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtsx.engine.errors import DtsxError
from dtsx.engine.events import ConsoleLog, EventLog, JsonLinesLog, RunEvent, parse_reporting


def ev(name: str, message: str = "m", code: int = 0) -> RunEvent:
    return RunEvent(name, "Task A", "Package\\Task A", "{ID}", message, code)


def test_reporting_levels() -> None:
    assert parse_reporting(None) == {"OnError", "OnTaskFailed", "OnWarning", "OnProgress"}
    assert parse_reporting("N") == frozenset()
    assert "OnPreExecute" in parse_reporting("V")
    assert parse_reporting("ei") == {"OnError", "OnTaskFailed", "OnInformation"}
    assert parse_reporting("E;OnError") == {"OnError", "OnTaskFailed"}
    for bad in ("X", "NE", "VE"):
        with pytest.raises(DtsxError, match="reporting level"):
            parse_reporting(bad)


def test_console_prints_selected_events_through_its_callback() -> None:
    lines: list[str] = []
    log = ConsoleLog(lines.append, "E")
    log(ev("OnError", "it broke", code=-1073573316))
    log(ev("OnWarning"))
    log(ev("OnPreExecute"))
    assert len(lines) == 1
    assert lines[0].endswith("Error 0xC002923C: Task A: it broke")


def test_event_log_counts_and_survives_a_broken_sink() -> None:
    def broken(event: RunEvent) -> None:
        raise RuntimeError("sink down")

    broken.close = lambda: None  # type: ignore[attr-defined]
    got: list[str] = []
    sink = ConsoleLog(got.append, "V")
    log = EventLog([broken, sink])  # type: ignore[list-item]
    log.emit(ev("OnPreExecute"))
    log.emit(ev("OnPreExecute"))
    log.emit(ev("OnError"))
    assert log.counts == {"OnPreExecute": 2, "OnError": 1}
    assert len(got) == 3 and log.sink_errors[0] == "RuntimeError: sink down"


def test_json_lines_log(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = JsonLinesLog(path)
    log(ev("OnError", "bad", 5))
    log(RunEvent("OnProgress", "T", "Package\\T", extra={"percent": 50, "opaque": object()}))
    log.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert (
        first["event"] == "OnError" and first["code"] == 5 and first["ref_id"] == "Package\\Task A"
    )
    assert second["percent"] == 50 and "opaque" not in second


def test_json_lines_log_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DtsxError, match="cannot open the log file"):
        JsonLinesLog(tmp_path / "missing-dir" / "log.jsonl")


def test_fast_counts_add_up_across_threads_and_reads() -> None:
    import threading

    log = EventLog()
    threads = [
        threading.Thread(target=lambda: [log.count("OnPreExecute") for _ in range(2000)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    log.emit(ev("OnPreExecute"))
    assert log.totals() == {"OnPreExecute": 8001}
    log.count("OnPreExecute")
    assert log.totals() == {"OnPreExecute": 8002}
