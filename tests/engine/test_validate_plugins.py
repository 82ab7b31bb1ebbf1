"""What a plugin declares reaches validation: a connection manager's runtime properties and its
``check``, a task's own expressions; and plugin data is not second-guessed."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field

from dtsx.connections.base import CONNECTIONS, ConnectionManager, ConnectionSettings
from dtsx.engine.errors import PackageValidationError, Problem
from dtsx.engine.loader import load_bytes
from dtsx.engine.plan import Plan, build
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties


class _Props(TaskProperties):
    formula: str = Field("", alias="Formula")


class FormulaTask(Task):
    """A plugin task that evaluates its own expression, and lists it for the planner."""

    Properties: ClassVar[type[TaskProperties]] = _Props

    def expressions(self) -> list[tuple[str, bool]]:
        return [(self.props.formula, True)]  # type: ignore[attr-defined]

    def execute(self, ctx: TaskContext) -> None:
        return None


class QueueManager(ConnectionManager):
    """A plugin connection manager that declares its runtime properties and checks its string."""

    runtime_properties: ClassVar[frozenset[str]] = frozenset({"Host", "QueueName"})

    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        if "host=" not in settings.connection_string.lower():
            return [f"queue connection {settings.name!r} names no Host; write Host=<name>;"]
        return []

    def acquire(self) -> object:
        return self.settings.connection_string


class SilentManager(QueueManager):
    """Declares nothing about its properties: the planner does not guess them."""

    runtime_properties = None  # type: ignore[assignment]


class BrokenCheckManager(QueueManager):
    @classmethod
    def check(cls, settings: ConnectionSettings) -> list[str]:
        raise RuntimeError("boom")


for key, obj, registry in (
    ("Tests.FormulaTask", FormulaTask, TASKS),
    ("TESTQUEUE", QueueManager, CONNECTIONS),
    ("TESTSILENT", SilentManager, CONNECTIONS),
    ("TESTBROKEN", BrokenCheckManager, CONNECTIONS),
):
    if key not in registry:
        registry.add(key, obj, "tests/engine/test_validate_plugins.py")  # type: ignore[arg-type]


# Pieces of _package's XML, kept out of its lines so they fit in 100 columns (tests assert lines).
_CM_NAMES = 'DTS:refId="Package.ConnectionManagers[Q]" DTS:ObjectName="Q"'
_INT_ZERO = '<DTS:VariableValue DTS:DataType="3">0</DTS:VariableValue>'
_FORMULA_TYPE = 'DTS:ExecutableType="Tests.FormulaTask"'


def _package(
    kind: str = "TESTQUEUE",
    string: str = "Host=q1;",
    expression: str = "",
    formula: str = "@[User::N] = 1",
    extra: str = "",
) -> bytes:
    pe = (
        f'<DTS:PropertyExpression DTS:Name="{expression}">"x"</DTS:PropertyExpression>'
        if expression
        else ""
    )
    return f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager {_CM_NAMES} DTS:CreationName="{kind}">{pe}
      <DTS:ObjectData><DTS:ConnectionManager DTS:ConnectionString="{string}" /></DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:Variables>
    <DTS:Variable DTS:Namespace="User" DTS:ObjectName="N">{_INT_ZERO}</DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\F" {_FORMULA_TYPE} DTS:ObjectName="F">
      <DTS:ObjectData><Formula Formula="{formula}" Connection="Q" {extra}/></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
""".encode()


def _plan(data: bytes) -> Plan:
    return build(load_bytes(data, file="plugin.dtsx"))


def _problems(data: bytes) -> list[Problem]:
    with pytest.raises(PackageValidationError) as caught:
        _plan(data)
    return caught.value.problems


def test_the_plugin_package_is_valid() -> None:
    assert _plan(_package()).warnings == []


def test_a_property_expression_on_a_property_the_manager_does_not_declare() -> None:
    (problem,) = _problems(_package(expression="Hots"))
    assert problem.code == "unknown-property" and problem.ref_id == "Package.ConnectionManagers[Q]"
    assert "did you mean 'Host'" in problem.message and "QueueName" in problem.message
    _plan(_package(expression="QueueName"))  # declared by the plugin
    _plan(_package(expression="ConnectionString"))  # every manager has it


def test_a_manager_that_declares_no_properties_is_not_second_guessed() -> None:
    _plan(_package(kind="TESTSILENT", expression="Anything"))


def test_the_managers_own_check_reports_through_validation() -> None:
    (problem,) = _problems(_package(string="Server=q1;"))
    assert problem.code == "bad-connection" and "names no Host" in problem.message
    assert problem.line == 5


def test_a_check_that_raises_is_a_problem_not_a_crash() -> None:
    (problem,) = _problems(_package(kind="TESTBROKEN"))
    assert problem.code == "bad-connection" and "RuntimeError: boom" in problem.message


def test_a_plugin_tasks_own_expressions_are_checked_in_its_scope() -> None:
    (problem,) = _problems(_package(formula="@[User::M] = 1"))
    assert problem.code == "missing-variable" and "(did you mean 'User::N'?)" in problem.message
    assert problem.ref_id == "Package\\F" and problem.line == 14


def test_plugin_task_data_is_not_second_guessed() -> None:
    # Only built-in tasks get unknown-data warnings: a plugin may read its data its own way.
    assert _plan(_package(extra='Extra="1"')).warnings == []
