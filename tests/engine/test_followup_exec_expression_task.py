"""The Expression Task lists its expression to the planner (Task.expressions), so a mistake in it
is refused before the run, with the task's refId, instead of failing the task half-way through."""

from __future__ import annotations

import pytest
from dtsx.engine import executor, plan
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.model import Executable, ExecutableKind, Package, Variable, XmlNode


def _package(*expressions: str) -> Package:
    tasks = [
        Executable(
            kind=ExecutableKind.TASK,
            ref_id=f"Package\\E{i}",
            name=f"E{i}",
            raw_type="Microsoft.ExpressionTask",
            type_key="Microsoft.ExpressionTask",
            object_data=XmlNode(
                tag="ObjectData",
                children=[XmlNode(tag="ExpressionTask", attrs={"Expression": text})],
            ),
        )
        for i, text in enumerate(expressions)
    ]
    variables = [Variable(ref_id="Package.Variables[User::N]", name="N", data_type=3, value="1")]
    return Package(
        ref_id="Package",
        name="p",
        executables=tasks,
        variables=variables,
        max_error_count=0,
        max_concurrent_executables=1,
    )


def test_unknown_variable_and_constant_error_are_refused_before_the_run() -> None:
    with pytest.raises(PackageValidationError) as info:
        plan.build(
            _package("@[User::N] = @[User::N] + 1", "@[User::Nope] = 1", "@[User::N] = 1 / 0")
        )
    found = {(p.ref_id, p.code) for p in info.value.problems}
    assert found == {("Package\\E1", "missing-variable"), ("Package\\E2", "expression")}, (
        info.value.problems
    )
    nope = next(p for p in info.value.problems if p.code == "missing-variable")
    assert "User::Nope" in nope.message and "User::N" in nope.message  # the nearest name is offered


def test_what_only_the_run_can_find_still_fails_the_task() -> None:
    # A division by a variable that is zero at run time passes the planner and fails the task
    # with the expression's own message; the other tasks still run.
    result = executor.run(
        plan.build(_package("@[User::N] = @[User::N] - 1", "@[User::N] = 1 / @[User::N]"))
    )
    errors = {e.ref_id: e.errors for e in result.executables}
    assert errors["Package\\E0"] == []
    assert (
        "Expression Task 'E1' failed" in errors["Package\\E1"][0]
        and "division by zero" in errors["Package\\E1"][0]
    )
    assert result.variables["User::N"] == 0
