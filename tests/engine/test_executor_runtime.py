"""Executor behaviour that needs a task other than the Expression Task: concurrency limits,
deadlock freedom, task bugs, cancellation, child packages, parameters, property expressions."""

from __future__ import annotations

import threading
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pytest

from dtsx.engine import executor, plan
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.executor import RunOptions
from dtsx.engine.model import ConnectionManagerSpec, ExecutableKind, Parameter, PropertyExpression
from tests.engine._exec import package_path
from tests.engine._probe import LEDGER, container, edge, package, probe, run_bounded, var

SEQ = ExecutableKind.SEQUENCE
HANDLER = ExecutableKind.EVENT_HANDLER


@pytest.fixture(autouse=True)
def _clean_ledger() -> None:
    LEDGER.reset()


def test_max_concurrent_bounds_running_tasks() -> None:
    pkg = package([probe(f"T{i}", seconds=0.05) for i in range(8)])
    result = run_bounded(pkg, max_concurrent=2)
    assert result.result == "Success"
    assert len(LEDGER.ran) == 8
    assert 1 <= LEDGER.peak <= 2


def test_package_max_concurrent_executables_is_used_without_override() -> None:
    pkg = package([probe(f"T{i}", seconds=0.05) for i in range(6)], max_concurrent_executables=1)
    result = run_bounded(pkg)
    assert result.result == "Success" and LEDGER.peak == 1


def test_nested_containers_under_a_limit_of_one_do_not_deadlock() -> None:
    def seq(name: str, parent: str, depth: int) -> Any:
        ref = f"{parent}\\{name}"
        children = [probe(f"{name}T{i}", ref) for i in range(3)]
        if depth:
            children += [seq(f"{name}S{i}", ref, depth - 1) for i in range(2)]
        return container(name, SEQ, parent, children)

    pkg = package([seq(f"S{i}", "Package", 2) for i in range(3)])
    result = run_bounded(pkg, max_concurrent=1)
    assert result.result == "Success"
    assert len(LEDGER.ran) == 3 * (3 + 2 * (3 + 2 * 3))
    assert LEDGER.peak == 1


def test_handlers_run_under_a_limit_of_one_without_deadlock() -> None:
    handler = container(
        "OnError",
        HANDLER,
        "Package",
        [
            probe("H1", "Package.EventHandlers[OnError]"),
            probe("H2", "Package.EventHandlers[OnError]"),
        ],
    )
    pkg = package(
        [probe(f"F{i}", mode="fail") for i in range(3)], event_handlers=[handler], max_error_count=0
    )
    result = run_bounded(pkg, max_concurrent=1)
    assert result.result == "Success"
    assert sorted(LEDGER.ran).count("H1") == 3 and LEDGER.peak == 1
    assert result.executable("Package.EventHandlers[OnError]").iterations == 3


def test_a_python_bug_in_a_task_is_a_failure_naming_the_exception() -> None:
    pkg = package([probe("Bug", mode="bug"), probe("Other")], max_error_count=0)
    result = run_bounded(pkg)
    assert result.executable("Package\\Bug").result == "Failure"
    (error,) = result.executable("Package\\Bug").errors
    assert "KeyError" in error
    assert result.executable("Package\\Other").result == "Success"
    assert result.events["OnError"] == 1 and result.events["OnTaskFailed"] == 1


def test_a_task_calling_sys_exit_fails_without_ending_the_run() -> None:
    result = run_bounded(package([probe("Exit", mode="exit"), probe("Other")], max_error_count=0))
    assert result.executable("Package\\Exit").result == "Failure"
    assert "SystemExit" in result.executable("Package\\Exit").errors[0]
    assert result.executable("Package\\Other").result == "Success"


def test_reported_errors_fail_a_task_at_its_maximum_error_count() -> None:
    pkg = package(
        [
            probe("Once", mode="report-error"),
            probe("Tolerant", mode="report-error", max_error_count=5),
        ],
        max_error_count=0,
    )
    result = run_bounded(pkg)
    assert result.executable("Package\\Once").result == "Failure"
    assert result.executable("Package\\Tolerant").result == "Success"


def test_cancellation_cancels_running_tasks_and_starts_nothing_new() -> None:
    pkg = package(
        [probe("Wait", mode="wait-cancel"), probe("Next")], [edge("Package", "Wait", "Next")]
    )
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    result = run_bounded(pkg, cancel_event=cancel)
    timer.cancel()
    assert result.result == "Canceled" and result.exit_code == 3
    assert LEDGER.canceled == ["Wait"]
    assert "Next" not in LEDGER.ran
    assert result.executable("Package\\Wait").result == "Canceled"


def test_child_package_runs_in_process_and_sees_parent_variables() -> None:
    child = str(package_path("for_loop", "v8"))
    pkg = package([probe("Child", mode="child", target=child)])
    result = run_bounded(pkg, max_concurrent=1)
    assert result.result == "Success"
    assert LEDGER.values["Child"] == "Success"


def test_required_parameter_without_value_refuses_to_run() -> None:
    param = Parameter(
        name="Needed", scope="Package", dotnet_type="String", data_type_code=8, required=True
    )
    pkg = package([probe("T")], parameters=[param])
    with pytest.raises(PackageValidationError) as info:
        executor.run(plan.build(pkg))
    assert "$Package::Needed" in str(info.value) and "--param" in str(info.value)
    assert LEDGER.ran == []


def test_parameters_take_overrides_and_are_read_only() -> None:
    params = [
        Parameter(
            name="P",
            scope="Package",
            dotnet_type="Int32",
            data_type_code=3,
            value="1",
            required=True,
        ),
        Parameter(name="Q", scope="Project", dotnet_type="String", data_type_code=18, value="q"),
    ]
    pkg = package(
        [
            probe("ReadP", mode="read", target="$Package::P"),
            probe("ReadQ", mode="read", target="$Project::Q"),
        ],
        parameters=params[:1],
        project_parameters=params[1:],
    )
    result = run_bounded(pkg, parameters={"P": "41"})
    assert result.result == "Success"
    assert LEDGER.values == {"ReadP": 41, "ReadQ": "q"}
    with pytest.raises(PackageValidationError, match="no parameter"):
        executor.run(plan.build(pkg), RunOptions(parameters={"$Package::Nope": "1"}))


def test_property_expressions_on_tasks_and_containers() -> None:
    gated = container(
        "Gated",
        SEQ,
        "Package",
        [probe("Inside", "Package\\Gated")],
        property_expressions=[PropertyExpression(name="Disable", expression="@[User::Skip]")],
    )
    task = probe(
        "Mode",
        property_expressions=[
            PropertyExpression(name="Mode", expression='"re" + "ad"'),
            PropertyExpression(name="Target", expression='"User::Skip"'),
        ],
    )
    pkg = package([gated, task], variables=[var("Skip", 11, "True")])
    result = run_bounded(pkg)
    assert result.result == "Success"
    assert "Inside" not in LEDGER.ran
    assert LEDGER.values["Mode"] is True


def test_connection_property_expressions_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    spec = ConnectionManagerSpec(
        ref_id="Package.ConnectionManagers[Data]",
        name="Data",
        creation_name="FILE",
        type_key="FILE",
        connection_string="C:\\nowhere.txt",
        property_expressions=[
            PropertyExpression(name="ConnectionString", expression='@[User::Dir] + "/a.txt"')
        ],
    )
    pkg = package(
        [probe("Get", mode="acquire", target="Data")],
        connections=[spec],
        variables=[var("Dir", 8, str(tmp_path))],
    )
    result = run_bounded(pkg)
    assert result.result == "Success", result.executables
    assert LEDGER.values["Get"] == str(tmp_path / "a.txt")


def test_unknown_connection_override_is_refused() -> None:
    with pytest.raises(PackageValidationError, match="not a connection manager"):
        executor.run(plan.build(package([probe("T")])), RunOptions(connections={"Nope": "x"}))


def test_report_json_shape() -> None:
    pkg = package(
        [probe("A"), probe("B", mode="fail")],
        [edge("Package", "A", "B")],
        variables=[var("N", 3, "5")],
    )
    data = run_bounded(pkg).to_json()
    assert set(data) == {
        "package",
        "result",
        "exit_code",
        "started",
        "duration_s",
        "executables",
        "variables",
        "events",
    }
    assert data["result"] == "Failure" and data["exit_code"] == 1
    assert data["variables"] == {"User::N": 5}
    entry = data["executables"][1]
    assert set(entry) == {"ref_id", "result", "started", "duration_s", "iterations", "errors"}
    assert entry["ref_id"] == "Package\\B" and entry["errors"] == ["the probe was told to fail."]
    assert data["events"]["OnError"] == 1
    # Timestamps carry their UTC offset, so a report read in another time zone is unambiguous.
    for stamp in (data["started"], entry["started"]):
        moment = datetime.fromisoformat(stamp)
        assert (
            moment.utcoffset() is not None and abs(moment - datetime.now(UTC)).total_seconds() < 600
        )


def test_exec_value_variable_gets_the_execution_value_or_the_forced_one() -> None:
    natural = probe("Seven", properties={"ExecValueVariable": "User::Natural"})
    forced = probe(
        "Other",
        properties={"ExecValueVariable": "User::Forced"},
        force_execution_value=True,
        forced_execution_value="42",
        forced_execution_value_type=3,
    )
    pkg = package([natural, forced], variables=[var("Natural"), var("Forced")])
    result = run_bounded(pkg)
    assert result.variables == {"User::Natural": 5, "User::Forced": 42}


def test_variable_value_changed_event_reaches_its_handler() -> None:
    handler = container(
        "OnVariableValueChanged",
        HANDLER,
        "Package",
        [
            probe(
                "Saw",
                "Package.EventHandlers[OnVariableValueChanged]",
                mode="read",
                target="System::SourceName",
            )
        ],
    )
    pkg = package(
        [
            probe("Writer", mode="write", target="User::Watched"),
            probe("Quiet", mode="write", target="User::Unwatched"),
        ],
        event_handlers=[handler],
        variables=[var("Watched", raise_changed_event=True), var("Unwatched")],
    )
    result = run_bounded(pkg, max_concurrent=1)
    assert result.variables == {"User::Watched": 3, "User::Unwatched": 3}
    assert result.events["OnVariableValueChanged"] == 1
    assert LEDGER.values["Saw"] == "Writer"


def _foreach(
    kind: str, settings: dict[str, str], mappings: list[tuple[int, str]], body: list[Any]
) -> Any:
    from dtsx.engine.model import ForEachEnumerator, ForEachVariableMapping

    loop = container("Loop", ExecutableKind.FOREACH_LOOP, "Package", body)
    loop.enumerator = ForEachEnumerator(
        ref_id="Package\\Loop.ForEachEnumerator", raw_type=kind, type_key=kind, properties=settings
    )
    loop.variable_mappings = [
        ForEachVariableMapping(value_index=i, variable=v) for i, v in mappings
    ]
    return loop


def test_foreach_ado_enumerator_over_rows_in_an_object_variable() -> None:
    from dtsx.engine.model import PropertyExpression as PE

    body = [
        probe(
            "Add",
            "Package\\Loop",
            mode="read",
            target="User::Name",
            property_expressions=[PE(name="Mode", expression='"read"')],
        )
    ]
    loop = _foreach(
        "Microsoft.ForEachADOEnumerator",
        {"EnumType": "EnumerateRowsInFirstTable", "VarName": "User::Rows"},
        [(0, "User::Name"), (1, "User::N")],
        body,
    )
    pkg = package(
        [probe("Fill", mode="rows", target="User::Rows"), loop],
        [edge("Package", "Fill", "Loop")],
        variables=[var("Rows", 13, None), var("Name", 8, ""), var("N")],
    )
    result = run_bounded(pkg)
    assert result.result == "Success", [e.errors for e in result.executables]
    assert result.executable("Package\\Loop").iterations == 3
    assert result.variables["User::Name"] == "c" and result.variables["User::N"] == 300


def test_foreach_from_variable_enumerator() -> None:
    loop = _foreach(
        "Microsoft.ForEachFromVarEnumerator",
        {"VariableName": "User::Rows"},
        [(0, "User::Row")],
        [probe("Body", "Package\\Loop")],
    )
    pkg = package(
        [probe("Fill", mode="rows", target="User::Rows"), loop],
        [edge("Package", "Fill", "Loop")],
        variables=[var("Rows", 13, None), var("Row", 13, None)],
    )
    result = run_bounded(pkg)
    assert result.executable("Package\\Loop").iterations == 3
    assert result.variables["User::Row"] == {"name": "c", "n": 300}


def test_foreach_mapping_past_the_item_fails_the_loop_clearly() -> None:
    loop = _foreach(
        "Microsoft.ForEachADOEnumerator",
        {"VarName": "User::Rows"},
        [(5, "User::N")],
        [probe("Body", "Package\\Loop")],
    )
    pkg = package(
        [probe("Fill", mode="rows", target="User::Rows"), loop],
        [edge("Package", "Fill", "Loop")],
        variables=[var("Rows", 13, None), var("N")],
    )
    result = run_bounded(pkg)
    assert result.result == "Failure"
    (error,) = result.executable("Package\\Loop").errors
    assert "value index 5" in error and "User::N" in error


def test_child_package_errors_count_in_the_parent_and_reach_its_handlers() -> None:
    child = str(package_path("max_errors_default", "v8"))  # its task A fails
    handler = container(
        "OnError",
        HANDLER,
        "Package",
        [probe("Saw", "Package.EventHandlers[OnError]", mode="read", target="System::SourceName")],
    )
    pkg = package([probe("Child", mode="child", target=child)], event_handlers=[handler])
    result = run_bounded(pkg)
    assert LEDGER.values["Child"] == "Failure"
    assert LEDGER.values["Saw"] == "A"  # the child's failing task, seen by the parent's handler
    assert result.executable("Package.EventHandlers[OnError]").iterations == 1
    assert result.result == "Failure"  # the child's error counts against the parent's MaxErrorCount


def test_child_package_reads_and_writes_the_parent_variables_live() -> None:
    child = plan.build(
        package(
            [
                probe("Write", mode="write", target="User::Shared"),
                probe("Read", mode="read", target="User::Shared"),
            ],
            [edge("Package", "Write", "Read")],
        )
    )
    pkg = package(
        [probe("Child", mode="child", target="child.dtsx")], variables=[var("Shared", value="1")]
    )
    result = run_bounded(pkg, plan_loader=lambda path: child)
    assert LEDGER.values["Child"] == "Success"
    assert LEDGER.values["Read"] == 3
    assert result.variables["User::Shared"] == 3


def test_bad_parameter_values_are_refused_and_sensitive_ones_not_shown() -> None:
    params = [
        Parameter(name="N", scope="Package", dotnet_type="Int32", data_type_code=3, value="1"),
        Parameter(
            name="Key",
            scope="Project",
            dotnet_type="Int32",
            data_type_code=9,
            value="1",
            sensitive=True,
        ),
    ]
    pkg = package([probe("T")], parameters=params[:1], project_parameters=params[1:])
    with pytest.raises(PackageValidationError) as info:
        executor.run(
            plan.build(pkg), RunOptions(parameters={"N": "abc", "$Project::Key": "s3cret-value"})
        )
    text = str(info.value)
    assert "$Package::N" in text and "'abc'" in text
    assert "$Project::Key" in text and "s3cret-value" not in text
    assert LEDGER.ran == []
