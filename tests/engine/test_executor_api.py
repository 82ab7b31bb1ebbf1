"""The public surface of the run-time modules, pinned: a change here is a deliberate API change."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "dtsx.engine.executor": {
        "run",
        "RunOptions",
        "RunResult",
        "ExecutableResult",
        "PropertySet",
        "parse_set",
        "EXIT_CODES",
        "Slots",
        "json_value",
        "ExecutionResult",
        "InternalError",
    },
    "dtsx.engine.results": {
        "ExecutionResult",
        "InternalError",
        "ExecutableResult",
        "RunResult",
        "EXIT_CODES",
        "json_value",
    },
    "dtsx.engine.bind": {
        "RunOptions",
        "Binding",
        "bind",
        "concurrency_limit",
        "effective_limit",
        "load_child_plan",
    },
    "dtsx.engine.workers": {"Workers", "Slots", "TaskSlots", "POLL_S"},
    "dtsx.engine.variables": {
        "Slot",
        "Scope",
        "VariableStore",
        "ChangeHook",
        "split_name",
        "typed_value",
        "WRITABLE_SYSTEM",
    },
    "dtsx.engine.events": {
        "EVENT_NAMES",
        "RunEvent",
        "LogSink",
        "EventLog",
        "ConsoleLog",
        "JsonLinesLog",
        "parse_reporting",
        "REPORTING_DEFAULT",
    },
    "dtsx.engine.overrides": {
        "PropertySet",
        "parse_set",
        "Overrides",
        "configuration_sets",
        "design_configurations",
    },
    "dtsx.engine.enumerators": {"enumerate_items", "file_items", "item_rows", "rows_of"},
    "dtsx.tasks.expression_task": {"ExpressionTask"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_exported_members(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name
