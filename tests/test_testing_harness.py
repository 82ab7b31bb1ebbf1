"""dtsx.testing, the plugin author's harness: a task run through the real planner and executor,
with given variables, connections, property expressions and a loopback mail sink."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from dtsx.engine.errors import PackageValidationError, TaskFailedError
from dtsx.tasks.base import SsisBool, Task, TaskContext, TaskProperties
from dtsx.testing import (
    Connection,
    file_connection,
    mail_sink,
    run_task,
    smtp_connection,
    validate_task,
)

SEND_MAIL = "Microsoft.SendMailTask"
MAIL = {
    "SMTPServer": "Mail",
    "From": "dtsx@example.org",
    "To": "you@example.com",
    "Subject": "Hi",
    "MessageSource": "Hello there",
}


class _Props(TaskProperties):
    target: str = Field("", alias="Target")
    mode: str = Field("", alias="Mode")
    loud: SsisBool = Field(False, alias="Loud")


class ProbeTask(Task):
    """A plugin that is in no registry: run_task registers it for the test."""

    Properties: ClassVar[type[TaskProperties]] = _Props
    props: _Props

    def execute(self, ctx: TaskContext) -> None:
        if self.props.mode == "fail":
            raise TaskFailedError("the probe was told to fail.")
        if self.props.mode == "bug":
            raise KeyError("oops")
        if self.props.mode == "mail":
            ctx.mail_session(self.props.target)
        if self.props.mode == "file":
            ctx.events.information(ctx.file_path(self.props.target))
        ctx.events.information(f"loud={self.props.loud}")


def test_send_mail_reaches_the_sink_instead_of_its_server() -> None:
    with mail_sink() as sink:
        # The stored server does not exist: only the redirect can deliver the message.
        run = run_task(
            SEND_MAIL, MAIL, connections={"Mail": smtp_connection("smtp.invalid")}, mail=sink
        )
        received = sink.received()
    assert run.succeeded, run.errors
    (mail,) = received
    assert mail.message["Subject"] == "Hi" and mail.rcpt_tos == ["you@example.com"]
    assert mail.message.get_content().strip() == "Hello there"
    assert run.information and "sent message" in run.information[0]


def test_without_the_sink_the_package_server_is_used() -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = smtp_connection("127.0.0.1", Port=str(port), Timeout="5")
    run = run_task(SEND_MAIL, MAIL, connections={"Mail": server})
    assert run.result == "Failure" and not run.internal_errors
    assert f"127.0.0.1:{port}" in " ".join(run.errors)


def test_variables_of_each_type_go_in_and_come_back() -> None:
    when = datetime(2026, 12, 1, 9, 30, 0)
    run = run_task(
        "Microsoft.ExpressionTask",
        {"Expression": "@[User::N] = @[User::N] + (@[User::B] ? 1 : 100)"},
        variables={"N": 41, "User::B": True, "User::F": 1.5, "User::S": "é&<x>", "User::D": when},
    )
    assert run.succeeded, run.errors
    assert run.variables["User::N"] == 42
    assert run.variables["User::B"] is True and run.variables["User::F"] == 1.5
    assert run.variables["User::S"] == "é&<x>"
    assert run.variables["User::D"] == "2026-12-01T09:30:00"  # as the JSON report has it


def test_a_property_expression_sets_the_property() -> None:
    run = run_task(ProbeTask, {"Loud": "False"}, expressions={"Loud": "1 == 1"})
    assert run.information == ["loud=True"]


def test_data_given_as_xml_is_the_element_inside_object_data() -> None:
    xml = (
        '<S:SendMailTaskData xmlns:S="www.microsoft.com/sqlserver/dts/tasks/sendmailtask" '
        'S:SMTPServer="Mail" S:From="a@example.org" S:To="b@example.com" S:Subject="X" />'
    )
    with mail_sink() as sink:
        run = run_task(SEND_MAIL, xml, connections={"Mail": smtp_connection()}, mail=sink)
        (mail,) = sink.received()
    assert run.succeeded, run.errors
    assert mail.mail_from == "a@example.org" and mail.message["Subject"] == "X"


def test_a_planned_failure_and_a_bug_are_told_apart() -> None:
    failed = run_task(ProbeTask, {"Mode": "fail"})
    assert failed.result == "Failure" and failed.errors == ["the probe was told to fail."]
    assert failed.internal_errors == []
    crashed = run_task(ProbeTask, {"Mode": "bug"})
    assert crashed.result == "Failure"
    (internal,) = crashed.internal_errors
    assert isinstance(internal.exception, KeyError) and "Traceback" in internal.traceback


def test_validation_problems_are_returned_or_raised() -> None:
    problems = validate_task(SEND_MAIL, {**MAIL, "Priority": "Urgent"})
    (bad,) = [p for p in problems if p.code == "bad-property"]
    assert 'Priority="Urgent" is not one of' in bad.message
    with pytest.raises(PackageValidationError, match="missing-connection|matches no connection"):
        run_task(SEND_MAIL, MAIL)  # no connection manager "Mail"
    assert validate_task(ProbeTask, {"Loud": "True"}) == []


def test_connections_are_typed_for_the_task(tmp_path: Path) -> None:
    target = tmp_path / "in.txt"
    target.write_text("x")
    run = run_task(
        ProbeTask, {"Mode": "file", "Target": "In"}, connections={"In": file_connection(target)}
    )
    assert run.information[0] == str(target)
    wrong = run_task(
        ProbeTask, {"Mode": "mail", "Target": "In"}, connections={"In": file_connection(target)}
    )
    assert wrong.result == "Failure" and not wrong.internal_errors
    assert wrong.errors == [
        "the connection manager 'In' does not send mail; point the task at an SMTP connection "
        "manager."
    ]


def test_a_path_map_maps_the_packages_windows_paths(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1")
    conn = Connection("FILE", "C:\\data\\data.csv", {"FileUsageType": "0"})

    def to_local(path: str) -> str:
        return path.replace("C:\\data\\", f"{tmp_path}/")

    run = run_task(
        ProbeTask, {"Mode": "file", "Target": "Data"}, connections={"Data": conn}, path_map=to_local
    )
    assert run.succeeded, run.errors
    assert run.information[0] == f"{tmp_path}/data.csv"


def test_a_value_it_cannot_store_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="variable User::L: dtsx.testing stores str, int"):
        run_task(ProbeTask, variables={"User::L": [1, 2]})
