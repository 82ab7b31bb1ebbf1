"""Issue 9, item 3: no lost variable updates in parallel.

Independent Expression Tasks doing ``@[User::Sum] = @[User::Sum] + 1`` end at exactly N at any
concurrency (before the fix they ended thousands short, all reporting Success); plugin tasks
that hold the write locks of two variables named in opposite orders never deadlock; a thread
that holds one lock and then asks for another out of order fails within the lock timeout with
one sentence, instead of hanging. Packages are real .dtsx files, loaded and planned as the CLI
does. The builders here are shared by the other ``test_hardening_exec_*`` files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from pydantic import AliasChoices, Field

from dtsx.engine import executor, loader, plan
from dtsx.engine.executor import RunOptions, RunResult
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties

__all__ = [
    "package_xml",
    "task_xml",
    "handler_xml",
    "expression_task",
    "variable_xml",
    "parameter_xml",
    "run_file",
]

_NS = 'xmlns:DTS="www.microsoft.com/SqlServer/Dts"'
_ids = iter(range(1, 10**9))


def _guid() -> str:
    return f"{{00000000-0000-0000-0000-{next(_ids):012d}}}"


def task_xml(name: str, creation: str, object_data: str) -> str:
    return (
        f'<DTS:Executable DTS:refId="Package\\{name}" DTS:CreationName="{creation}" DTS:DTSID="{_guid()}" '
        f'DTS:ExecutableType="{creation}" DTS:ObjectName="{name}"><DTS:ObjectData>{object_data}'
        "</DTS:ObjectData></DTS:Executable>\n"
    )


def expression_task(name: str, expression: str) -> str:
    return task_xml(
        name, "Microsoft.ExpressionTask", f"<ExpressionTask Expression={quoteattr(expression)} />"
    )


def variable_xml(
    name: str,
    value: str,
    data_type: int = 3,
    expression: str | None = None,
    raise_changed: bool = False,
) -> str:
    flags = (
        f'DTS:EvaluateAsExpression="True" DTS:Expression={quoteattr(expression)} '
        if expression
        else ""
    )
    flags += 'DTS:RaiseChangedEvent="True" ' if raise_changed else ""
    return (
        f'<DTS:Variable DTS:CreationName="" DTS:DTSID="{_guid()}" DTS:Namespace="User" {flags}'
        f'DTS:ObjectName="{name}"><DTS:VariableValue DTS:DataType="{data_type}">{value}'
        "</DTS:VariableValue></DTS:Variable>\n"
    )


def parameter_xml(
    name: str,
    *,
    sensitive: bool = False,
    data_type: int = 8,
    required: bool = False,
    value: str = "placeholder",
) -> str:
    return (
        f'<DTS:PackageParameter DTS:CreationName="" DTS:DataType="{data_type}" DTS:DTSID="{_guid()}" '
        f'DTS:ObjectName="{name}" DTS:Sensitive="{sensitive}" DTS:Required="{required}">'
        f'<DTS:Property DTS:DataType="{data_type}" DTS:Name="ParameterValue">{value}</DTS:Property>'
        "</DTS:PackageParameter>\n"
    )


def handler_xml(event: str, tasks: list[str]) -> str:
    """A package-level event handler running ``tasks`` (made with refIds under Package\\)."""
    ref = f"Package.EventHandlers[{event}]"
    body = "".join(tasks).replace('DTS:refId="Package\\', f'DTS:refId="{ref}\\')
    return (
        f'<DTS:EventHandlers><DTS:EventHandler DTS:refId="{ref}" DTS:CreationName="{event}" '
        f'DTS:DTSID="{_guid()}" DTS:EventName="{event}"><DTS:Executables>{body}</DTS:Executables>'
        "</DTS:EventHandler></DTS:EventHandlers>\n"
    )


def package_xml(
    tasks: list[str],
    *,
    variables: str = "",
    parameters: str = "",
    max_concurrent: str = "-1",
    handlers: str = "",
) -> str:
    params = f"<DTS:PackageParameters>{parameters}</DTS:PackageParameters>\n" if parameters else ""
    return (
        f'<?xml version="1.0"?>\n<DTS:Executable {_NS} DTS:refId="Package" DTS:CreationName="Microsoft.Package" '
        f'DTS:DTSID="{_guid()}" DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="h3" '
        f'DTS:MaxConcurrentExecutables="{max_concurrent}" DTS:ProtectionLevel="0">\n'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        f"{params}<DTS:Variables>{variables}</DTS:Variables>\n"
        f"<DTS:Executables>\n{''.join(tasks)}</DTS:Executables>\n{handlers}</DTS:Executable>\n"
    )


def run_file(path: Path, *, bound_s: float = 120.0, **options: Any) -> RunResult:
    """load -> build -> run on a thread, failing the test (not hanging it) past ``bound_s``."""
    built = plan.build(loader.load(str(path)))
    box: dict[str, Any] = {}
    cancel = threading.Event()

    def target() -> None:
        try:
            box["result"] = executor.run(built, RunOptions(cancel_event=cancel, **options))
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(bound_s)
    if worker.is_alive():
        cancel.set()
        worker.join(10)
        pytest.fail(f"the run did not finish within {bound_s} s (deadlock?)")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _write(tmp_path: Path, text: str, name: str = "pkg.dtsx") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- Expression Tasks --------------------------------------------------------------------------


def _increments(tmp_path: Path, count: int) -> Path:
    tasks = [expression_task(f"T{i}", "@[User::Sum] = @[User::Sum] + 1") for i in range(count)]
    return _write(tmp_path, package_xml(tasks, variables=variable_xml("Sum", "0")))


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _increments(tmp_path_factory.mktemp("sum"), 10_000)


@pytest.mark.parametrize("workers", [4, 16, 100, 1000])
def test_parallel_increments_lose_no_update(ten_thousand: Path, workers: int) -> None:
    result = run_file(ten_thousand, max_concurrent=workers)
    assert result.result == "Success"
    assert result.variables["User::Sum"] == 10_000


def test_crossed_expression_tasks_finish(tmp_path: Path) -> None:
    """Each reads the other's target: only targets are locked, so nothing can wait in a circle."""
    result = _run_ab(
        tmp_path,
        [
            *(
                expression_task(f"A{i}", "@[User::A] = @[User::A] + (@[User::B] - @[User::B]) + 1")
                for i in range(1000)
            ),
            *(
                expression_task(f"B{i}", "@[User::B] = @[User::B] + (@[User::A] - @[User::A]) + 1")
                for i in range(1000)
            ),
        ],
        max_concurrent=32,
    )
    assert result.result == "Success"
    assert (result.variables["User::A"], result.variables["User::B"]) == (1000, 1000)


def _run_ab(tmp_path: Path, tasks: list[str], **options: Any) -> RunResult:
    """A package of ``tasks`` with two Int32 variables A and B (A made first), run bounded."""
    path = _write(
        tmp_path, package_xml(tasks, variables=variable_xml("A", "0") + variable_xml("B", "0"))
    )
    return run_file(path, bound_s=60, **options)


def test_parallel_event_handlers_lose_no_update(tmp_path: Path) -> None:
    """An OnPostExecute handler runs once per task (on the tasks' threads) and once for the package."""
    tasks = [expression_task(f"W{i}", "@[User::W] = 1") for i in range(2000)]
    handlers = handler_xml(
        "OnPostExecute", [expression_task("Count", "@[User::Sum] = @[User::Sum] + 1")]
    )
    path = _write(
        tmp_path,
        package_xml(
            tasks, variables=variable_xml("Sum", "0") + variable_xml("W", "0"), handlers=handlers
        ),
    )
    result = run_file(path, max_concurrent=64)
    assert result.result == "Success"
    assert result.variables["User::Sum"] == 2001


def test_a_change_handler_may_write_the_variable_that_changed(tmp_path: Path) -> None:
    """The change event is raised after the task let go of the lock: the handler's own tasks,
    on other threads, write the same variable without waiting on the task that raised it."""
    tasks = [expression_task(f"T{i}", "@[User::Sum] = @[User::Sum] + 1") for i in range(50)]
    handlers = handler_xml(
        "OnVariableValueChanged",
        [
            expression_task("Seen", "@[User::Hits] = @[User::Hits] + 1"),
            expression_task("Touch", "@[User::Sum] = @[User::Sum] + 0"),
        ],
    )
    variables = variable_xml("Sum", "0", raise_changed=True) + variable_xml("Hits", "0")
    path = _write(tmp_path, package_xml(tasks, variables=variables, handlers=handlers))
    result = run_file(path, max_concurrent=8, bound_s=60, variable_lock_timeout_s=5.0)
    assert result.result == "Success", [e.errors for e in result.executables if e.errors]
    assert (result.variables["User::Sum"], result.variables["User::Hits"]) == (50, 50)
    assert result.events["OnVariableValueChanged"] == 50


# -- plugin tasks through ctx.variables.locked ---------------------------------------------------

PAIR = "Tests.H3.LockedPair"


class LockedPairTask(Task):
    """Adds 1 to two variables, locking them in the order its ``Order`` property names them."""

    class Properties(TaskProperties):
        order: str = Field("User::A,User::B", validation_alias=AliasChoices("Order", "order"))
        nested: bool = Field(False, validation_alias=AliasChoices("Nested", "nested"))

    def execute(self, ctx: TaskContext) -> None:
        first, second = self.props.order.split(",")
        variables: Any = ctx.variables
        if self.props.nested:  # one lock, then the other: may ask out of order
            with variables.locked(first):
                time.sleep(0.2)
                with variables.locked(second):
                    self._add(variables, first, second)
            return
        with variables.locked(first, second):
            time.sleep(0.001)  # widen the window between read and write
            self._add(variables, first, second)

    @staticmethod
    def _add(variables: Any, *names: str) -> None:
        for name in names:
            variables.set(name, variables.get(name) + 1)


if PAIR not in TASKS:
    TASKS.add(PAIR, LockedPairTask, __name__)


def _pair(name: str, order: str, nested: bool = False) -> str:
    return task_xml(name, PAIR, f'<Pair Order="{order}" Nested="{nested}" />')


def test_opposite_lock_orders_never_deadlock(tmp_path: Path) -> None:
    result = _run_ab(
        tmp_path,
        [
            *(_pair(f"AB{i}", "User::A,User::B") for i in range(40)),
            *(_pair(f"BA{i}", "User::B,User::A") for i in range(40)),
        ],
        max_concurrent=16,
    )
    assert result.result == "Success", [e.errors for e in result.executables if e.errors]
    assert (result.variables["User::A"], result.variables["User::B"]) == (80, 80)


def test_out_of_order_nested_locks_fail_within_the_timeout(tmp_path: Path) -> None:
    """AB holds A and waits for B; BA holds B and asks for A, which sorts before it. A blocking
    wait there would be a deadlock: BA backs off, and whichever gives up first at the lock
    timeout fails with one sentence, letting the other finish."""
    started = time.monotonic()
    result = _run_ab(
        tmp_path,
        [_pair("AB", "User::A,User::B", nested=True), _pair("BA", "User::B,User::A", nested=True)],
        max_concurrent=2,
        variable_lock_timeout_s=1.0,
    )
    assert time.monotonic() - started < 20
    outcomes = {e.ref_id: e.result for e in result.executables}
    assert sorted(outcomes.values()) == ["Failure", "Success"]
    failed = next(e for e in result.executables if e.result == "Failure")
    other = "User::B" if failed.ref_id.endswith("AB") else "User::A"
    assert (
        len(failed.errors) == 1
        and f"could not lock {other} for writing within 1 s" in failed.errors[0]
    )
    assert result.variables["User::A"] == result.variables["User::B"] == 1
