"""The task plugin API: ``Task``, its ``Properties`` model, ``register_task``, ``TaskContext``.

A task is built from its ObjectData (an :class:`~dtsx.engine.model.XmlNode`, already parsed)
into a pydantic ``Properties`` model whose aliases are the SSIS names, so that both the
persisted XML attribute (``To``) and the runtime property name that property expressions use
(``ToLine``) reach the same field. The executor makes a fresh task per execution, applies
property expressions with :meth:`Task.set_property`, then calls :meth:`Task.execute`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol
from collections.abc import Callable

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, ValidationError

from dtsx.engine.errors import TaskFailedError
from dtsx.engine.model import XmlNode, ssis_flag
from dtsx.engine.registry import Registry

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "Task",
    "TaskProperties",
    "TaskContext",
    "ValidationContext",
    "ConnectionSource",
    "VariableAccess",
    "EventSink",
    "TASKS",
    "register_task",
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
        """The connection object for a manager named by DTSID, name or refId."""
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
    # Evaluate an SSIS expression in the task's scope; with assignment=True also assigns.
    evaluate: Callable[..., Any] | None = None
    # Run a child package in process (Execute Package task); signature set by the executor.
    run_package: Callable[..., Any] | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass(frozen=True)
class ValidationContext:
    """What a task may check before the run, without running anything."""

    connection_type: Callable[[str], str | None]
    has_variable: Callable[[str], bool]
    dynamic_properties: frozenset[str] = frozenset()

    def is_dynamic(self, *names: str) -> bool:
        """True when a property expression sets any of these runtime property names."""
        if not self.dynamic_properties:  # the common case; validation calls this per property
            return False
        return any(n.lower() in self.dynamic_properties for n in names)


class Task(ABC):
    """Base class of every task. Subclasses declare ``Properties`` and implement ``execute``."""

    Properties: ClassVar[type[TaskProperties]] = TaskProperties

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
        names = _LOCAL_NAMES  # planning calls this once per task: split each attribute key once
        for key, value in inner.attrs.items():
            local = names.get(key)
            if local is None:
                local = key.rsplit("}", 1)[-1]
                if len(names) < 4096:  # bounded: keys come from package files
                    names[key] = local
            data[local] = value
        for child in inner.children:
            if not child.children and child.text is not None:
                data.setdefault(child.local_name, child.text)
        return data

    @classmethod
    def from_node(cls, node: XmlNode | None) -> Self:
        """Build the task from its ObjectData; a ValidationError names the bad property."""
        return cls(cls.Properties.model_validate(cls.properties_from_node(node)))

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
            detail = exc.errors()[0].get("msg", "invalid value")
            raise TaskFailedError(
                f"property {name!r} cannot take the value {value!r}: {detail}."
            ) from exc

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

    def cancel(self) -> None:
        """Called from another thread when the run is canceled; stop as soon as possible."""


_LOCAL_NAMES: dict[str, str] = {}  # attribute key in Clark notation -> local name
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


def _names_of(field_name: str, info: Any) -> list[str]:
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
