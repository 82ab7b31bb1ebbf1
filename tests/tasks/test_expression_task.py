"""The Expression Task: built from its ObjectData, run through the executor's evaluator."""

from __future__ import annotations

import pytest

from dtsx.engine import executor, plan
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.model import Executable, ExecutableKind, Package, Variable, XmlNode
from dtsx.tasks.base import TASKS, ValidationContext
from dtsx.tasks.expression_task import ExpressionTask


def node(expression: str | None) -> XmlNode:
    attrs = {} if expression is None else {"Expression": expression}
    return XmlNode(tag="ObjectData", children=[XmlNode(tag="ExpressionTask", attrs=attrs)])


def pkg(*expressions: str) -> Package:
    tasks = [
        Executable(
            kind=ExecutableKind.TASK,
            ref_id=f"Package\\E{i}",
            name=f"E{i}",
            raw_type="Microsoft.ExpressionTask",
            type_key="Microsoft.ExpressionTask",
            object_data=node(text),
        )
        for i, text in enumerate(expressions)
    ]
    variables = [
        Variable(ref_id="Package.Variables[User::N]", name="N", data_type=3, value="1"),
        Variable(ref_id="Package.Variables[User::S]", name="S", data_type=8, value=""),
    ]
    return Package(
        ref_id="Package",
        name="p",
        executables=tasks,
        variables=variables,
        max_error_count=0,
        max_concurrent_executables=1,
    )


def test_registered_under_every_spelling() -> None:
    assert TASKS.get("Microsoft.ExpressionTask") is ExpressionTask
    qualified = (
        "Microsoft.SqlServer.Dts.Tasks.ExpressionTask.ExpressionTask, "
        "Microsoft.SqlServer.ExpressionTask, "
        "Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91"
    )
    assert TASKS.get(qualified) is ExpressionTask


def test_reads_its_expression_from_object_data() -> None:
    task = ExpressionTask.from_node(node("@[User::N] = @[User::N] + 1"))
    assert task.props.expression == "@[User::N] = @[User::N] + 1"
    empty = ExpressionTask.from_node(node(None))
    vctx = ValidationContext(connection_type=lambda r: None, has_variable=lambda n: True)
    assert empty.validate(vctx) and "no expression" in empty.validate(vctx)[0]
    assert ExpressionTask.from_node(node("1")).validate(vctx) == []


def test_assignment_converts_to_the_target_type() -> None:
    result = executor.run(
        plan.build(pkg("@[User::N] = @[User::N] + 41", '@[User::S] = (DT_WSTR, 5) 3.5 + "!"'))
    )
    assert result.result == "Success"
    assert result.variables == {"User::N": 42, "User::S": "3.5!"}


def test_mistakes_the_planner_can_see_are_refused_before_the_run() -> None:
    with pytest.raises(PackageValidationError) as info:
        plan.build(pkg("@[User::N] = 1 / 0 * @[User::N]", "@[User::Nope] = 1"))
    assert {p.code for p in info.value.problems} == {"expression", "missing-variable"}


def test_failures_at_run_time_name_the_task_and_the_expression_error() -> None:
    result = executor.run(
        plan.build(pkg("@[User::N] = 1 / (@[User::N] - 1)", '@[User::N] = "text"'))
    )
    errors = {e.ref_id: e.errors for e in result.executables}
    assert (
        "Expression Task 'E0' failed" in errors["Package\\E0"][0]
        and "division by zero" in errors["Package\\E0"][0]
    )
    assert "User::N" in errors["Package\\E1"][0] and "not a number" in errors["Package\\E1"][0]
    assert result.variables["User::N"] == 1
