"""The plugin API's ``VariableAccess`` Protocol declares what ``ctx.variables`` really offers
(``locked``, ``set(..., sensitive=)``), so a plugin typed against it may use both; and both work
for a plugin task in a real run."""

from __future__ import annotations

import inspect

import pytest
from dtsx.engine import executor, plan
from dtsx.engine.model import Executable, ExecutableKind, Package, Variable, XmlNode
from dtsx.engine.variables import Scope
from dtsx.tasks.base import Task, TaskContext, VariableAccess, register_task

PLUGIN = "Tests.FollowupExec.LockedAdd"
ROUNDS = 200


@register_task(PLUGIN)
class LockedAdd(Task):
    """Adds 1 to User::Total ROUNDS times, read and write under one lock, and stores a secret."""

    def execute(self, ctx: TaskContext) -> None:
        variables: VariableAccess = ctx.variables
        for _ in range(ROUNDS):
            with variables.locked("User::Total"):
                variables.set("User::Total", variables.get("User::Total") + 1)
        variables.set("User::Token", "tok-followup-secret", sensitive=True)


def _shape(func: object) -> list[tuple[str, object, object]]:
    params = list(inspect.signature(func).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize("name", ["get", "set", "locked", "__contains__"])
def test_the_protocol_declares_what_the_scope_offers(name: str) -> None:
    assert hasattr(VariableAccess, name), f"VariableAccess does not declare {name}"
    assert _shape(getattr(VariableAccess, name)) == _shape(getattr(Scope, name))


def test_a_plugin_uses_locked_and_sensitive_in_a_run() -> None:
    tasks = [
        Executable(
            kind=ExecutableKind.TASK,
            ref_id=f"Package\\Add{i}",
            name=f"Add{i}",
            raw_type=PLUGIN,
            type_key=PLUGIN,
            object_data=XmlNode(tag="ObjectData"),
        )
        for i in range(4)
    ]
    variables = [
        Variable(ref_id="Package.Variables[User::Total]", name="Total", data_type=3, value="0"),
        Variable(ref_id="Package.Variables[User::Token]", name="Token", data_type=8, value=""),
    ]
    package = Package(
        ref_id="Package",
        name="p",
        executables=tasks,
        variables=variables,
        max_concurrent_executables=4,
    )
    result = executor.run(plan.build(package), executor.RunOptions(max_concurrent=4))
    assert result.result == "Success", [e.errors for e in result.executables]
    assert (
        result.variables["User::Total"] == 4 * ROUNDS
    )  # no lost update between the parallel tasks
    assert "tok-followup-secret" not in str(result.to_json())
