"""How the executor walks a container: start order, workers, loop bodies on the walking thread,
copies of task properties, ExecValueVariable refusals, and frames freed without the collector."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest
from dtsx.engine import executor, plan
from dtsx.engine.model import Executable, ExecutableKind, PropertyExpression, XmlNode
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties
from pydantic import AliasChoices, Field

from tests.engine._probe import LEDGER, container, edge, package, probe, run_bounded, var

FOR_LOOP = ExecutableKind.FOR_LOOP
COLLECTOR = "Tests.WalkCollector"


class CollectorTask(Task):
    """Appends its Label to its own list property, in place: a copy shared with the prototype
    (or with another execution) would show earlier labels."""

    class Properties(TaskProperties):
        label: str = Field("", validation_alias=AliasChoices("Label", "label"))
        seen: list[str] = Field(default_factory=list, validation_alias=AliasChoices("Seen", "seen"))

    def execute(self, ctx: TaskContext) -> None:
        self.props.seen.append(self.props.label)
        with LEDGER.lock:
            LEDGER.values.setdefault("seen", []).append(list(self.props.seen))


if COLLECTOR not in TASKS:
    TASKS.add(COLLECTOR, CollectorTask, "tests.engine.test_executor_walk")


@pytest.fixture(autouse=True)
def _clean_ledger() -> None:
    LEDGER.reset()


class ThreadSink:
    """A log sink noting the thread that raised each task's OnPreExecute."""

    events = frozenset({"OnPreExecute"})

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self, event: Any) -> None:
        if event.source_name in ("A", "B", "Body"):
            self.threads.append(threading.current_thread().name)

    def close(self) -> None:
        pass


def counted_loop(body: list[Executable], times: int) -> Executable:
    return container(
        "Loop",
        FOR_LOOP,
        "Package",
        body,
        init_expression="@[User::i] = 0",
        eval_expression=f"@[User::i] < {times}",
        assign_expression="@[User::i] = @[User::i] + 1",
    )


def collector(parent: str) -> Executable:
    node = XmlNode(tag="Collector", attrs={"Label": "prototype"})
    return Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"{parent}\\Collect",
        name="Collect",
        raw_type=COLLECTOR,
        type_key=COLLECTOR,
        object_data=XmlNode(tag="ObjectData", children=[node]),
        property_expressions=[
            PropertyExpression(name="Label", expression='"run " + (DT_WSTR, 4) @[User::i]')
        ],
    )


def test_independent_tasks_start_in_package_order_one_at_a_time() -> None:
    built = plan.build(package([probe(f"T{i}") for i in range(6)]))
    result = run_bounded(built, max_concurrent=1)
    assert result.result == "Success"
    assert LEDGER.ran == [f"T{i}" for i in range(6)]


def test_a_fan_out_runs_its_branches_together() -> None:
    branches = [probe(f"B{i}", seconds=0.3) for i in range(4)]
    pkg = package(
        [probe("Root"), *branches, probe("Join")],
        [edge("Package", "Root", f"B{i}") for i in range(4)]
        + [edge("Package", f"B{i}", "Join") for i in range(4)],
    )
    result = run_bounded(plan.build(pkg), max_concurrent=4)
    assert result.result == "Success"
    assert (
        LEDGER.ran[0] == "Root"
        and LEDGER.ran[-1] == "Join"
        and sorted(LEDGER.ran[1:5]) == [f"B{i}" for i in range(4)]
    )
    assert LEDGER.peak == 4


def test_chains_and_loop_bodies_run_on_the_walking_thread() -> None:
    pkg = package(
        [probe("A"), probe("B"), counted_loop([probe("Body", "Package\\Loop")], 3)],
        [edge("Package", "A", "B"), edge("Package", "B", "Loop")],
        variables=[var("i")],
    )
    sink = ThreadSink()
    result = run_bounded(plan.build(pkg), sinks=[sink])
    assert result.result == "Success" and result.executable("Package\\Loop").iterations == 3
    seen = sink.threads
    assert len(seen) == 5 and len(set(seen)) == 1  # one thread: no hand-off to a worker and back
    assert not seen[0].startswith("dtsx-")


def test_property_expressions_change_a_copy_never_the_prototype() -> None:
    built = plan.build(
        package([counted_loop([collector("Package\\Loop")], 3)], variables=[var("i")])
    )
    result = run_bounded(built)
    assert result.result == "Success"
    # Each execution had its own list (deep enough a copy) and its own label.
    assert LEDGER.values["seen"] == [["run 0"], ["run 1"], ["run 2"]]
    proto = built.tasks["Package\\Loop\\Collect"]
    assert proto.props.label == "prototype" and proto.props.seen == []


def test_an_exec_value_variable_that_refuses_is_one_error() -> None:
    task = probe("Seven", properties={"ExecValueVariable": "User::Fixed"})
    pkg = package([task], variables=[var("Fixed", read_only=True)])
    result = run_bounded(plan.build(pkg))
    assert result.result == "Failure"
    assert result.events["OnError"] == 1
    errors = result.executable("Package\\Seven").errors
    assert (
        len(errors) == 1
        and "ExecValueVariable User::Fixed" in errors[0]
        and "read-only" in errors[0]
    )


def test_finished_executions_are_freed_without_the_cyclic_collector() -> None:
    body = [probe("Body", "Package\\Loop")]
    chain = [probe(f"C{i}") for i in range(20)]
    pkg = package(
        [*chain, counted_loop(body, 50)],
        [edge("Package", f"C{i}", f"C{i + 1}") for i in range(19)]
        + [edge("Package", "C19", "Loop")],
        variables=[var("i")],
    )
    built = plan.build(pkg)
    gc.collect()
    gc.disable()
    try:
        result = executor.run(built)
        frames = [o for o in gc.get_objects() if type(o) is executor.Frame]
    finally:
        gc.enable()
    assert result.result == "Success" and len(LEDGER.ran) == 70
    assert frames == []
