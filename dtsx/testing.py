"""Test a task plugin the way dtsx runs it: ``run_task`` and a loopback ``mail_sink``.

``run_task`` puts one task into a package of its own, with the variables and connection
managers you give, and runs it through the real loader, planner and executor (what ``dtsx run``
does, minus the command line), so validation, property expressions, connections, events and
variables behave exactly as in a real run. It returns a :class:`TaskRun`::

    from dtsx.testing import file_connection, run_task

    def test_hello(tmp_path):
        out = tmp_path / "greetings.txt"
        run = run_task(
            HelloTask,                                   # a Task class, or a registered key
            {"Name": "World", "ResultVariable": "User::Message", "OutputConnection": "Out"},
            variables={"User::Message": ""},             # str, int, bool, float, datetime
            connections={"Out": file_connection(out, usage=1)},
            expressions={"Greeting": '"Bonjour"'},       # property expressions on the task
        )
        assert run.succeeded, run.errors
        assert run.variables["User::Message"] == "Bonjour, World!"
        assert run.information == ["Bonjour, World!"]

A package the planner refuses raises :class:`~dtsx.engine.errors.PackageValidationError` with
every problem; :func:`validate_task` returns them (and the warnings) instead. The task's data is
either a mapping, written as the attributes of the element inside ``DTS:ObjectData``, or that
element as XML text (for data with child elements).

Mail goes to a real SMTP server on loopback that keeps what it receives::

    from dtsx.testing import mail_sink, run_task, smtp_connection

    def test_mail():
        with mail_sink() as sink:
            run = run_task("Microsoft.SendMailTask", {...,"SMTPServer": "Mail"},
                           connections={"Mail": smtp_connection()}, mail=sink)
        (message,) = sink.received()
        assert message.message["Subject"] == "Hi"

``mail=sink`` redirects every mail connection of the run to the sink, as ``--dev-smtp`` does, so
no test can reach a real server. For a pytest fixture::

    @pytest.fixture
    def sink():
        with mail_sink() as box:
            yield box
"""

from __future__ import annotations

import email
import email.policy
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from dtsx.connections.base import mail_sink_redirect
from dtsx.engine.errors import PackageValidationError, Problem
from dtsx.engine.events import RunEvent
from dtsx.engine.executor import InternalError, RunOptions, RunResult, run
from dtsx.engine.loader import load_bytes
from dtsx.engine.model import Package
from dtsx.engine.plan import Plan, build
from dtsx.tasks.base import TASKS, Task

if TYPE_CHECKING:
    from dtsx.mailsink import MailSink

__all__ = [
    "Connection",
    "file_connection",
    "smtp_connection",
    "run_task",
    "validate_task",
    "TaskRun",
    "mail_sink",
    "MailBox",
    "ReceivedMail",
]

TASK_NAME = "Task under test"
TASK_REF = f"Package\\{TASK_NAME}"


@dataclass(frozen=True)
class Connection:
    """A connection manager of the test package: its type (CreationName), connection string,
    and the other attributes its ObjectData stores (``FileUsageType`` for FILE)."""

    creation_name: str
    connection_string: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)


def file_connection(path: str | Path, *, usage: int = 0) -> Connection:
    """A FILE connection manager; ``usage`` is SSIS's FileUsageType (0 existing file, 1 create
    file, 2 existing folder, 3 create folder)."""
    return Connection("FILE", str(path), {"FileUsageType": str(usage)})


def smtp_connection(server: str = "localhost", **keys: str) -> Connection:
    """An SMTP connection manager; ``keys`` are more connection-string keys (``Port="25"``)."""
    pairs = {"SmtpServer": server, **keys}
    return Connection("SMTP", "".join(f"{k}={v};" for k, v in pairs.items()))


@dataclass(frozen=True)
class TaskRun:
    """What one run of the task did.

    ``result`` is the task's result (``Success``, ``Failure``...), ``errors`` its error messages,
    ``events`` every event of the run in order, ``variables`` every variable's value after the
    run as the run's report has it (``User::X``, ``System::PackageName``...; a DateTime is ISO
    8601 text, a sensitive value is masked) and ``run`` the whole :class:`RunResult`.
    An exception that is not a dtsx error (a bug) fails the task too, and is kept, with its
    traceback, in ``internal_errors``.
    """

    result: str
    errors: list[str]
    events: list[RunEvent]
    variables: dict[str, Any]
    run: RunResult

    @property
    def succeeded(self) -> bool:
        return self.result == "Success"

    @property
    def information(self) -> list[str]:
        """The messages of the task's OnInformation events."""
        return self.messages("OnInformation")

    @property
    def warnings(self) -> list[str]:
        """The messages of the task's OnWarning events."""
        return self.messages("OnWarning")

    @property
    def internal_errors(self) -> list[InternalError]:
        """The task's unexpected exceptions, with their tracebacks (not planned failures: those
        raise TaskFailedError and are only in ``errors``)."""
        return [e for e in self.run.internal_errors if e.ref_id == TASK_REF]

    def messages(self, event: str) -> list[str]:
        """The messages of the task's events of one kind (``OnError``, ``OnProgress``...)."""
        return [e.message for e in self.events if e.name == event and e.source_ref == TASK_REF]


def run_task(
    task: type[Task] | str,
    data: Mapping[str, object] | str | None = None,
    *,
    variables: Mapping[str, object] | None = None,
    connections: Mapping[str, Connection] | None = None,
    expressions: Mapping[str, str] | None = None,
    mail: MailBox | None = None,
    path_map: Callable[[str], str] | None = None,
) -> TaskRun:
    """Run ``task`` once, in a package of its own; see the module docstring.

    Raises PackageValidationError when the planner refuses the package (the task's own
    ``validate`` included); a task that fails at run time is a TaskRun with ``result`` Failure.
    """
    plan = build(_package(task, data, variables, connections, expressions))
    collected: list[RunEvent] = []
    options = RunOptions(
        sinks=[_Collector(collected)],
        path_map=path_map,
        connection_redirect=mail_sink_redirect(mail.host, mail.port) if mail else None,
    )
    result = run(plan, options)
    mine = next((r for r in result.executables if r.ref_id == TASK_REF), None)
    return TaskRun(
        result=_text(mine.result) if mine is not None else "NotRun",
        errors=list(mine.errors) if mine is not None else [],
        events=collected,
        variables=dict(result.variables),
        run=result,
    )


def validate_task(
    task: type[Task] | str,
    data: Mapping[str, object] | str | None = None,
    *,
    variables: Mapping[str, object] | None = None,
    connections: Mapping[str, Connection] | None = None,
    expressions: Mapping[str, str] | None = None,
) -> list[Problem]:
    """What ``dtsx validate`` would say about the task: its problems, then its warnings."""
    package = _package(task, data, variables, connections, expressions)
    try:
        plan: Plan = build(package)
    except PackageValidationError as exc:
        return list(exc.problems)
    return list(plan.warnings)


class _Collector:
    """A log sink that keeps every event (the executor fans events out to its sinks)."""

    def __init__(self, into: list[RunEvent]) -> None:
        self.into = into

    def __call__(self, event: RunEvent) -> None:
        self.into.append(event)

    def close(self) -> None:
        return None


def _text(result: object) -> str:
    # The executor's results may be a str-valued Enum, whose str() is "ExecutionResult.Success".
    return str(result.value) if isinstance(result, Enum) else str(result)


# --- the package ------------------------------------------------------------------------------


def _package(
    task: type[Task] | str,
    data: Mapping[str, object] | str | None,
    variables: Mapping[str, object] | None,
    connections: Mapping[str, Connection] | None,
    expressions: Mapping[str, str] | None,
) -> Package:
    key = task if isinstance(task, str) else _key_of(task)
    xml = _PACKAGE.format(
        connections="".join(_connection_xml(n, c) for n, c in (connections or {}).items()),
        variables="".join(_variable_xml(n, v) for n, v in (variables or {}).items()),
        key=quoteattr(key),
        name=quoteattr(TASK_NAME),
        ref=quoteattr(TASK_REF),
        expressions="".join(
            f"<DTS:PropertyExpression DTS:Name={quoteattr(n)}>{escape(t)}</DTS:PropertyExpression>"
            for n, t in (expressions or {}).items()
        ),
        data=_data_xml(data),
    )
    return load_bytes(xml.encode("utf-8"), file="dtsx.testing")


def _key_of(cls: type[Task]) -> str:
    """The key ``cls`` is registered under; an unregistered class is registered for the test."""
    key = TASKS.key_of(cls)
    if key is None:
        key = f"{cls.__module__}.{cls.__qualname__}"
        TASKS.add(key, cls, "dtsx.testing.run_task")
    return key


_PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
    DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package"
    DTS:ObjectName="dtsx-testing">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>{connections}</DTS:ConnectionManagers>
  <DTS:Variables>{variables}</DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId={ref} DTS:CreationName={key} DTS:ExecutableType={key}
        DTS:ObjectName={name}>
      {expressions}
      <DTS:ObjectData>{data}</DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def _connection_xml(name: str, conn: Connection) -> str:
    attrs = {"ConnectionString": conn.connection_string, **conn.properties}
    stored = " ".join(f"DTS:{k}={quoteattr(str(v))}" for k, v in attrs.items())
    return (
        f"<DTS:ConnectionManager DTS:refId={quoteattr(f'Package.ConnectionManagers[{name}]')} "
        f'DTS:CreationName={quoteattr(conn.creation_name)} DTS:DTSID="{{{uuid.uuid4()}}}" '
        f"DTS:ObjectName={quoteattr(name)}>"
        f"<DTS:ObjectData><DTS:ConnectionManager {stored} /></DTS:ObjectData>"
        "</DTS:ConnectionManager>"
    )


# Python type -> the variable's DTS:DataType (a VARIANT type code). bool before int: a bool is an
# int in Python.
_DATA_TYPES: tuple[tuple[type, int], ...] = (
    (bool, 11),
    (int, 3),
    (float, 5),
    (datetime, 7),
    (str, 8),
)


def _variable_xml(name: str, value: object) -> str:
    namespace, _, local = name.rpartition("::")
    code = next((c for t, c in _DATA_TYPES if isinstance(value, t)), None)
    if code is None:
        raise TypeError(
            f"variable {name}: dtsx.testing stores str, int, bool, float and datetime values, not "
            f"{type(value).__name__}."
        )
    if isinstance(value, bool):
        text = "-1" if value else "0"
    elif isinstance(value, datetime):
        text = value.strftime("%m/%d/%Y %H:%M:%S")
    else:
        text = str(value)
    return (
        f"<DTS:Variable DTS:Namespace={quoteattr(namespace or 'User')} "
        f"DTS:ObjectName={quoteattr(local)}>"
        f'<DTS:VariableValue DTS:DataType="{code}">{escape(text)}</DTS:VariableValue>'
        "</DTS:Variable>"
    )


def _data_xml(data: Mapping[str, object] | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    attrs = " ".join(f"{k}={quoteattr(_attribute(v))}" for k, v in data.items())
    return f"<TaskData {attrs} />"


def _attribute(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # as SSIS 2012+ persists booleans
    return str(value)


# --- the mail sink ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink received: the parsed message and its SMTP envelope."""

    message: email.message.EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    path: Path


class MailBox:
    """A running loopback SMTP sink (see :func:`mail_sink`): where it listens, what it got."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    @property
    def host(self) -> str:
        return self._sink.host

    @property
    def port(self) -> int:
        return self._sink.port

    @property
    def directory(self) -> Path:
        return self._sink.directory

    def received(self) -> list[ReceivedMail]:
        """Every message received so far, oldest first."""
        found = []
        for path in self._sink.messages():
            envelope = self._sink.envelope(path)
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, email.message.EmailMessage)  # what policy.default makes
            found.append(
                ReceivedMail(parsed, str(envelope["mail_from"]), list(envelope["rcpt_tos"]), path)
            )
        return found


@contextmanager
def mail_sink(directory: str | Path | None = None) -> Iterator[MailBox]:
    """A real SMTP server on 127.0.0.1 (a free port) for the ``with`` block; messages are kept in
    ``directory`` (default: a temporary folder, removed afterwards)."""
    from dtsx.mailsink import MailSink  # the SMTP server library, only for tests that mail

    with tempfile.TemporaryDirectory(prefix="dtsx-mail-") as scratch:
        sink = MailSink(Path(directory) if directory is not None else Path(scratch))
        sink.start()
        try:
            yield MailBox(sink)
        finally:
            sink.stop()
