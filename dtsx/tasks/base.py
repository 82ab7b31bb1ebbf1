"""The task plugin API: ``Task``, its ``Properties`` model, ``register_task``, ``TaskContext``.

A task is built from its ObjectData (an :class:`~dtsx.engine.model.XmlNode`, already parsed)
into a pydantic ``Properties`` model whose aliases are the SSIS names, so that both the
persisted XML attribute (``To``) and the runtime property name that property expressions use
(``ToLine``) reach the same field. The executor makes a fresh task per execution, applies
property expressions with :meth:`Task.set_property`, then calls :meth:`Task.execute`.

Values a field refuses raise :class:`~dtsx.engine.errors.PropertyValueError`, one SSIS sentence
per value (``Append="maybe" is not a boolean (True/False)``); :meth:`Task.unknown_data` names the
ObjectData attributes no field reads, with the nearest field. Plugins that start OS processes
register a function that kills them with :func:`register_emergency_stop`; a second Ctrl-C calls
:func:`emergency_stop`.
"""

from __future__ import annotations

import difflib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, cast

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, ValidationError

from dtsx.engine.errors import ConnectionManagerError, PropertyValueError, TaskFailedError
from dtsx.engine.model import LOCAL_NAMES, Variable, XmlNode, ssis_flag
from dtsx.engine.registry import Registry

if TYPE_CHECKING:
    from typing import Self

    from pydantic.fields import FieldInfo
    from pydantic_core import ErrorDetails

    from dtsx.connections.base import DatabaseSession, MailSession, TransactionScope
    from dtsx.engine.expressions.values import Value

__all__ = [
    "Task",
    "TaskProperties",
    "TaskContext",
    "ValidationContext",
    "ConnectionSource",
    "VariableAccess",
    "EventSink",
    "Evaluate",
    "RunPackage",
    "PackageOutcome",
    "UnknownData",
    "TASKS",
    "register_task",
    "register_emergency_stop",
    "emergency_stop",
    "SsisBool",
    "SsisInt",
    "ssis_bool",
]


class TaskProperties(BaseModel):
    """Base of a task's properties. Declare fields with SSIS names as aliases, e.g.
    ``to: str = Field("", validation_alias=AliasChoices("To", "ToLine"))``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", validate_assignment=True)


class ConnectionSource(Protocol):
    """The run's connections, as a task sees them."""

    def acquire(self, ref: str) -> object:
        """The connection object for a manager named by DTSID, name or refId: whatever its
        manager hands out. :meth:`TaskContext.mail_session` and :meth:`TaskContext.file_path`
        acquire and check the two kinds dtsx ships (an SMTP session, a FILE path)."""
        ...


class VariableAccess(Protocol):
    """Variables in the task's scope (its own, then its containers', then the package's)."""

    def get(self, name: str) -> Any:
        """The Python value of a variable (``User::X``, ``X``, ``$Package::P``)."""
        ...

    def set(self, name: str, value: Any, *, sensitive: bool = False) -> None:
        """Store a value, converted to the variable's type; read-only variables refuse.
        ``sensitive=True`` marks the variable and the value secret (masked wherever shown)."""
        ...

    def locked(self, *names: str) -> AbstractContextManager[None]:
        """Hold the named variables' write locks for a ``with`` block, so a read and the write
        back cannot be interleaved with another task's; name every variable the block writes in
        one call (the locks are then taken in one order and cannot deadlock)."""
        ...

    def __contains__(self, name: str) -> bool: ...


class EventSink(Protocol):
    """Raise SSIS events from inside a task (they bubble to event handlers and logs)."""

    def information(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def error(self, message: str, code: int = 0) -> None: ...


class Evaluate(Protocol):
    """Evaluate an SSIS expression in the task's scope; ``assignment=True`` takes the
    ``@[User::X] = expr`` form and also stores the value."""

    def __call__(self, text: str, *, assignment: bool = False) -> Value: ...


class PackageOutcome(Protocol):
    """What running a child package returns: its result (``Success``, ``Failure``...)."""

    @property
    def result(self) -> object: ...


class RunPackage(Protocol):
    """Run a child package in process (the Execute Package task), with its parameters and the
    parent's variables it may read."""

    def __call__(
        self,
        path: str,
        *,
        parameters: dict[str, object] | None = None,
        variables: dict[str, object] | None = None,
    ) -> PackageOutcome: ...


@dataclass
class TaskContext:
    """Everything a running task may use. Built by the executor, one per execution."""

    name: str
    ref_id: str
    connections: ConnectionSource
    variables: VariableAccess
    events: EventSink
    package_path: str = ""
    cancel_event: threading.Event = field(default_factory=threading.Event)
    local_path: Callable[[str], str] = field(default=lambda p: p)
    # None where the runner cannot evaluate expressions or run child packages.
    evaluate: Evaluate | None = None
    run_package: RunPackage | None = None
    # The SSIS transaction (TransactionOption=Required) the task runs inside, if any: database
    # connections leased under it enlist in it.
    transaction: TransactionScope | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def mail_session(self, ref: str) -> MailSession:
        """The mail session of the connection manager ``ref`` names (an SMTP one)."""
        session = self.connections.acquire(ref)
        # By hand, not isinstance() with the runtime-checkable Protocol: that costs ~10 us, paid
        # for every message; a callable send is all the Protocol checks at run time anyway.
        if not callable(getattr(session, "send", None)):
            raise TaskFailedError(
                f"the connection manager {ref!r} does not send mail; point the task at an SMTP "
                "connection manager."
            )
        return cast("MailSession", session)

    def database_session(self, ref: str) -> DatabaseSession:
        """The database session of the connection manager ``ref`` names (OLE DB, ADO.NET, ODBC,
        ADO)."""
        session = self.connections.acquire(ref)
        # By hand, like mail_session: a callable lease and a connection type are what tasks use.
        if not callable(getattr(session, "lease", None)) or not isinstance(
            getattr(session, "connection_type", None), str
        ):
            raise ConnectionManagerError(
                f"the connection manager {ref!r} is not a database connection; point the task "
                "at an OLE DB, ADO.NET, ODBC or ADO connection manager."
            )
        return cast("DatabaseSession", session)

    def file_path(self, ref: str) -> str:
        """The local path of the FILE (or FLATFILE) connection manager ``ref`` names."""
        path = self.connections.acquire(ref)
        if not isinstance(path, (str, os.PathLike)):
            raise TaskFailedError(
                f"the connection manager {ref!r} is not a file connection; point the task at a "
                "FILE connection manager."
            )
        return os.fspath(path)


@dataclass(frozen=True)
class ValidationContext:
    """What a task may check before the run, without running anything."""

    connection_type: Callable[[str], str | None]
    has_variable: Callable[[str], bool]
    dynamic_properties: frozenset[str] = frozenset()
    # The declared variable a name finds in the task's scope (its data type, read-only flag), or
    # None where the planner cannot tell (System variables, a runner without the package).
    variable: Callable[[str], Variable | None] = field(default=lambda name: None)
    # The SQLAlchemy dialect a database connection manager will open ("mssql", "postgresql",
    # "sqlite"...), without connecting; None where it is known only once connected (an ODBC
    # DSN) or the runner cannot tell. Execute SQL refuses XML results and return values early.
    connection_dialect: Callable[[str], str | None] = field(default=lambda ref: None)

    def is_dynamic(self, *names: str) -> bool:
        """True when a property expression sets any of these runtime property names."""
        if not self.dynamic_properties:  # the common case; validation calls this per property
            return False
        return any(n.lower() in self.dynamic_properties for n in names)


class Task(ABC):
    """Base class of every task. Subclasses declare ``Properties`` and implement ``execute``."""

    Properties: ClassVar[type[TaskProperties]] = TaskProperties
    # True when ``validate`` reports every reference to a connection manager in the task's data
    # that names none (SMTPServer, Connection...): the planner then skips its own scan of the
    # data for such references, which costs about a tenth of planning a task.
    validates_connections: ClassVar[bool] = False

    def __init__(self, props: TaskProperties) -> None:
        self.props = props

    @classmethod
    def properties_from_node(cls, node: XmlNode | None) -> dict[str, Any]:
        """Raw property values from the task's ObjectData.

        The default reads the first element inside ObjectData: its attributes by local name,
        then each child element that only holds text. Override for richer data.
        """
        data: dict[str, Any] = {}
        inner = node.children[0] if node is not None and node.children else None
        if inner is None:
            return data
        names = LOCAL_NAMES  # the model's one cache of Clark key -> local name
        for key, value in inner.attrs.items():
            data[names[key]] = value
        for child in inner.children:
            if not child.children and child.text is not None:
                data.setdefault(child.local_name, child.text)
        return data

    @classmethod
    def from_node(cls, node: XmlNode | None) -> Self:
        """Build the task from its ObjectData; PropertyValueError quotes every bad value."""
        data = cls.properties_from_node(node)
        try:
            # model_validate(data), minus its argument handling, which costs a third as much as
            # the validation itself: planning builds every task of the package.
            props = cls.Properties.__pydantic_validator__.validate_python(data)
        except ValidationError as exc:
            raise PropertyValueError(_value_problems(cls, exc, data)) from exc
        return cls(props)

    @classmethod
    def unknown_data(cls, node: XmlNode | None) -> list[UnknownData]:
        """The attributes of the task's data element that no property reads (they are ignored),
        each with the nearest property name, for a warning."""
        inner = node.children[0] if node is not None and node.children else None
        if inner is None:
            return []
        known = sorted(cls.property_names())
        found = []
        for key in inner.attrs:
            local = LOCAL_NAMES[key]
            if cls.field_for(local) is None:
                close = difflib.get_close_matches(local, known, n=1, cutoff=0.6)
                found.append(UnknownData(local, close[0] if close else None))
        return found

    def copy(self) -> Self:
        """A fresh task with its own copy of the properties, for one execution."""
        return type(self)(self.props.model_copy(deep=True))

    def set_property(self, name: str, value: Any) -> None:
        """Set a property by its runtime name, XML name or field name (case-insensitive)."""
        field_name = self.field_for(name)
        if field_name is None:
            known = ", ".join(sorted(self.property_names()))
            raise TaskFailedError(
                f"the task has no property {name!r}; its properties are: {known}."
            )
        try:
            setattr(self.props, field_name, value)
        except ValidationError as exc:
            raise PropertyValueError(_value_problems(type(self), exc, {name: value})) from exc

    @classmethod
    def field_for(cls, name: str) -> str | None:
        """The field a runtime, XML or field name (any case) refers to, or None."""
        return _field_index(cls.Properties).get(name.lower())

    @classmethod
    def property_names(cls) -> set[str]:
        names: set[str] = set()
        for field_name, info in cls.Properties.model_fields.items():
            names.update(n for n in _names_of(field_name, info) if n != field_name)
        return names or set(cls.Properties.model_fields)

    def validate(self, vctx: ValidationContext) -> list[str]:
        """Problems visible before the run, one sentence each. Default: none."""
        return []

    def expressions(self) -> list[tuple[str, bool]]:
        """The SSIS expressions the task evaluates itself, as ``(text, assignment)`` pairs, so
        the planner compiles them and checks their variables before the run. Default: none."""
        return []

    @abstractmethod
    def execute(self, ctx: TaskContext) -> None:
        """Do the work. Raise TaskFailedError (or any ExecutionError) to fail; return to succeed."""

    def cancel(self) -> None:  # noqa: B027 - optional: most tasks finish quickly
        """Called from another thread when the run is canceled; stop as soon as possible."""


@dataclass(frozen=True)
class UnknownData:
    """An attribute in a task's data that no property reads, and the nearest property name."""

    name: str
    nearest: str | None

    def __str__(self) -> str:
        hint = f" (did you mean {self.nearest!r}?)" if self.nearest else ""
        return f"'{self.name}' is not a property of the task, so it is ignored{hint}"


# What a pydantic error type means, as the end of "Name="value" ...".
_VALUE_PROBLEMS = {
    "bool_parsing": "is not a boolean (True/False)",
    "bool_type": "is not a boolean (True/False)",
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "string_type": "is not text",
}


def _value_problems(cls: type[Task], exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    """One sentence per refused value, naming it as the package spelled it."""
    return [_value_problem(cls, err, data) for err in exc.errors()]


def _value_problem(cls: type[Task], err: ErrorDetails, data: Mapping[str, Any]) -> str:
    loc = err.get("loc", ())
    name = str(loc[0]) if loc else "?"
    field_name = cls.field_for(name)
    # The package's own spelling of the property (ToLine or To), not pydantic's choice of alias.
    spelled = next((k for k in data if field_name and cls.field_for(k) == field_name), None)
    if spelled is None:  # nothing in the data: a required property is missing
        return f"the task's data has no {name}, which it requires."
    return f"{spelled}={_quoted(spelled, data[spelled])} {_what_is_wrong(err)}."


def _quoted(name: str, value: Any) -> str:
    if "password" in name.lower():
        return '"********"'  # a secret is never repeated, not even a wrong one
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _what_is_wrong(err: ErrorDetails) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _VALUE_PROBLEMS:
        return _VALUE_PROBLEMS[kind]
    if kind in ("enum", "literal_error") and "expected" in ctx:
        return f"is not one of {str(ctx['expected']).replace(chr(39), '')}"
    if kind == "value_error" and "error" in ctx:
        return f"is refused: {ctx['error']}"
    # Bounds and lengths: pydantic's own words, without its "Input should" framing.
    message = str(err.get("msg", "is not valid"))
    return message.replace("Input should", "should", 1)


# Properties class -> {lower-cased name or alias: field name}. Property expressions set fields on
# every loop iteration, so the alias scan is done once per class, not once per assignment.
_FIELD_INDEX: dict[type[TaskProperties], dict[str, str]] = {}


def _field_index(props_cls: type[TaskProperties]) -> dict[str, str]:
    index = _FIELD_INDEX.get(props_cls)
    if index is None:
        index = {}
        for field_name, info in props_cls.model_fields.items():
            for alias in _names_of(field_name, info):
                index.setdefault(alias.lower(), field_name)
        _FIELD_INDEX[props_cls] = index
    return index


def ssis_bool(value: Any) -> Any:
    """SSIS booleans: ``True``/``False`` (2012+) and ``-1``/``0`` (2005/2008)."""
    if isinstance(value, str):
        flag = ssis_flag(value)
        if flag is not None:
            return flag
    if isinstance(value, int) and not isinstance(value, bool):
        return value != 0
    return value


SsisBool = Annotated[bool, BeforeValidator(ssis_bool)]


def _int_or_zero(value: Any) -> Any:
    return 0 if isinstance(value, str) and not value.strip() else value


SsisInt = Annotated[int, BeforeValidator(_int_or_zero)]


def _names_of(field_name: str, info: FieldInfo) -> list[str]:
    names = [field_name]
    if info.alias:
        names.append(info.alias)
    alias = info.validation_alias
    if isinstance(alias, str):
        names.append(alias)
    elif isinstance(alias, AliasChoices):
        names.extend(c for c in alias.choices if isinstance(c, str))
    return names


def _is_task_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Task)


TASKS: Registry[type[Task]] = Registry("task", "dtsx.tasks", check=_is_task_class)
register_task = TASKS.register


# Kill what plugins started, for a second Ctrl-C. Read from a signal handler, so no lock: a lock
# held by the interrupted thread would deadlock it; appending to a list is atomic.
_EMERGENCY_STOPS: list[Callable[[], int]] = []


def register_emergency_stop(stop: Callable[[], int]) -> None:
    """Register ``stop``: it kills every OS process the plugin started and returns how many.

    Call it once at import of the plugin's module; registering the same function again does
    nothing."""
    if stop not in _EMERGENCY_STOPS:
        _EMERGENCY_STOPS.append(stop)


def emergency_stop() -> int:
    """Call every registered stop; the total they killed. Never raises (it runs in a signal
    handler): a stop that fails counts nothing and the others still run."""
    killed = 0
    for stop in tuple(_EMERGENCY_STOPS):
        try:
            killed += stop()
        except Exception:  # noqa: BLE001,S112 - the other plugins' processes must still die
            continue
    return killed
