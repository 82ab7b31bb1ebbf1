"""The plugin contract beyond registration: property values refused in SSIS sentences, unknown
data named with the nearest property, the emergency-stop registry and the mail-sink redirect."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from dtsx.connections.base import ConnectionSettings, mail_sink_redirect
from dtsx.engine.errors import PackageValidationError, PropertyValueError
from dtsx.engine.loader import load_bytes
from dtsx.engine.model import XmlNode
from dtsx.engine.plan import build
from dtsx.tasks import base
from dtsx.tasks.base import SsisBool, SsisInt, TASKS, Task, TaskContext, TaskProperties


class Colour(Enum):
    RED = "Red"
    BLUE = "Blue"


class _Props(TaskProperties):
    append: SsisBool = Field(False, alias="Append")
    count: SsisInt = Field(0, alias="Count")
    colour: Colour = Field(Colour.RED, alias="Colour")
    to: str = Field("", validation_alias="ToLine", alias="To")
    password: int = Field(0, alias="Password")


class SentenceTask(Task):
    Properties: ClassVar[type[TaskProperties]] = _Props

    def execute(self, ctx: TaskContext) -> None:
        return None


if "Tests.Sentences" not in TASKS:
    TASKS.add("Tests.Sentences", SentenceTask, "tests/engine/test_plugins_contract.py")


def node(**attrs: str) -> XmlNode:
    return XmlNode(tag="ObjectData", children=[XmlNode(tag="Data", attrs=attrs)])


def test_bad_values_read_as_ssis_sentences_quoting_the_value() -> None:
    with pytest.raises(PropertyValueError) as caught:
        SentenceTask.from_node(
            node(Append="maybe", Count="many", Colour="Green", Password="s3cr3t")
        )
    assert caught.value.problems == [
        'Append="maybe" is not a boolean (True/False).',
        'Count="many" is not a whole number.',
        'Colour="Green" is not one of Red or Blue.',
        'Password="********" is not a whole number.',  # a secret is never repeated
    ]
    assert isinstance(caught.value.__cause__, ValidationError)  # the cause is kept
    assert "Input should" not in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_the_planner_reports_the_sentence_at_the_tasks_line() -> None:
    data = b"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\S" DTS:ExecutableType="Tests.Sentences" DTS:ObjectName="S">
      <DTS:ObjectData><Data Append="maybe" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>"""
    with pytest.raises(PackageValidationError) as caught:
        build(load_bytes(data, file="s.dtsx"))
    (problem,) = caught.value.problems
    assert problem.code == "bad-property" and (problem.file, problem.line) == ("s.dtsx", 5)
    assert 'Append="maybe" is not a boolean (True/False)' in problem.message
    assert "pydantic" not in problem.message and "Input should" not in problem.message


def test_a_property_set_at_run_time_uses_the_name_it_was_set_by() -> None:
    task = SentenceTask.from_node(node())
    with pytest.raises(PropertyValueError) as caught:
        task.set_property("count", "lots")
    assert caught.value.problems == ['count="lots" is not a whole number.']
    task.set_property("ToLine", "a@example.com")
    assert task.props.to == "a@example.com"  # type: ignore[attr-defined]


def test_unknown_data_names_the_nearest_property() -> None:
    found = SentenceTask.unknown_data(node(Apend="True", Count="1", Zebra="1"))
    assert [(u.name, u.nearest) for u in found] == [("Apend", "Append"), ("Zebra", None)]
    assert str(found[0]) == (
        "'Apend' is not a property of the task, so it is ignored (did you mean 'Append'?)"
    )
    assert SentenceTask.unknown_data(None) == []


@pytest.fixture
def no_stops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    stops: list[object] = []
    monkeypatch.setattr(base, "_EMERGENCY_STOPS", stops)
    return stops


def test_emergency_stop_calls_every_stop_and_survives_a_broken_one(no_stops: list[object]) -> None:
    calls: list[str] = []

    def kill_two() -> int:
        calls.append("two")
        return 2

    def broken() -> int:
        raise OSError("gone")

    def kill_one() -> int:
        calls.append("one")
        return 1

    for stop in (kill_two, broken, kill_one, kill_two):
        base.register_emergency_stop(stop)
    assert base.emergency_stop() == 3
    assert calls == ["two", "one"]  # registered twice, called once; the broken one skipped


def test_emergency_stop_with_nothing_registered_kills_nothing(no_stops: list[object]) -> None:
    assert base.emergency_stop() == 0


def test_the_mail_sink_redirect_asks_each_connection_type() -> None:
    redirect = mail_sink_redirect("127.0.0.1", 2525)
    smtp = ConnectionSettings(
        "Mail", "SMTP", "SmtpServer=mail.example.com;", properties={"SmtpServer": "x"}
    )
    moved = redirect(smtp)
    assert (
        "SmtpServer=127.0.0.1" in moved.connection_string and "Port=2525" in moved.connection_string
    )
    assert dict(moved.properties) == {}  # an expression on SmtpServer cannot undo the redirect
    for kind in ("FILE", "NOT.A.TYPE", ""):
        other = dataclasses.replace(smtp, creation_name=kind)
        assert redirect(other) is other  # unchanged, the same object


class _Required(TaskProperties):
    queue: str = Field(alias="Queue")


class RequiredTask(SentenceTask):
    Properties: ClassVar[type[TaskProperties]] = _Required


def test_a_missing_required_property_is_named() -> None:
    with pytest.raises(PropertyValueError) as caught:
        RequiredTask.from_node(node())
    assert caught.value.problems == ["the task's data has no Queue, which it requires."]
