"""Scoped, typed variables for one run: ``User::``, ``System::``, ``$Package::`` and ``$Project::``.

Every container (package, Sequence, loop, task host, event handler) gets a :class:`Scope`
holding its own variables; a lookup walks from the scope up to the package, so the nearest
definition shadows outer ones (names are case-sensitive, as in SSIS). Values are the expression
engine's ``Value`` pairs, converted to the variable's .NET type on every write. Variables with
``EvaluateAsExpression`` are recomputed on each read, in the scope that defines them, with a
guard against an expression that (indirectly) reads itself. Parameters and ``System::``
variables are read-only, except the handler variables ``System::Propagate`` and ``System::Cancel``.

One re-entrant lock per run (:class:`VariableStore`) serialises reads and writes, which are
tiny, so concurrently running branches see consistent values.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Iterator

from dtsx.engine.errors import ExecutionError, ExpressionError
from dtsx.engine.expressions import Value, value_from_dotnet, value_to_dotnet
from dtsx.engine.model import Parameter, Variable

__all__ = [
    "Slot",
    "Scope",
    "VariableStore",
    "ChangeHook",
    "split_name",
    "typed_value",
    "WRITABLE_SYSTEM",
]

# System variables a handler may write (spec §4.4: Propagate in every handler, Cancel in some).
WRITABLE_SYSTEM = frozenset({"System::Propagate", "System::Cancel"})

# Called after a write to a variable with RaiseChangedEvent: (scope written through, slot).
ChangeHook = Callable[["Scope", "Slot"], None]


def split_name(name: str) -> tuple[str | None, str]:
    """``@[User::X]`` / ``User::X`` / ``X`` / ``$Package::P`` → (namespace or None, name)."""
    text = name.strip()
    if text.startswith("@"):
        text = text[1:]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "::" in text:
        namespace, _, short = text.partition("::")
        return namespace.strip(), short.strip()
    return None, text.strip()


def typed_value(type_name: str, raw: Any, *, what: str) -> Value:
    """``raw`` (persisted text, a Python value or a Value) as a Value of the .NET type ``type_name``."""
    try:
        if type_name == "Object":
            return raw if isinstance(raw, Value) else Value("Object", raw)
        if isinstance(raw, Value):
            return value_to_dotnet(raw, type_name)
        return value_from_dotnet(type_name, raw)
    except ExpressionError as exc:
        raise ExecutionError(f"{what} of type {type_name} cannot take the value {_show(raw)}: {exc.message}") from exc


def _show(raw: Any) -> str:
    value = raw.value if isinstance(raw, Value) else raw
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Slot:
    """One variable (or parameter) instance: its type, current value and rules."""

    __slots__ = (
        "qualified", "namespace", "name", "type_name", "value", "read_only",
        "expression", "raise_changed", "sensitive", "scope",
    )

    def __init__(
        self,
        namespace: str,
        name: str,
        type_name: str,
        value: Value,
        *,
        read_only: bool = False,
        expression: str | None = None,
        raise_changed: bool = False,
        sensitive: bool = False,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.qualified = f"{namespace}::{name}"
        self.type_name = type_name
        self.value = value
        self.read_only = read_only
        self.expression = expression
        self.raise_changed = raise_changed
        self.sensitive = sensitive
        self.scope: Scope | None = None

    def __repr__(self) -> str:
        shown = "<sensitive>" if self.sensitive else repr(self.value)
        return f"Slot({self.qualified}, {self.type_name}, {shown})"


class VariableStore:
    """What all scopes of one run share: the lock, the compiler, parameters, the change hook."""

    def __init__(
        self,
        compile_expression: Callable[[str, bool], Any],
        *,
        on_change: ChangeHook | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.compile = compile_expression
        self.on_change = on_change
        self.parameters: dict[str, Slot] = {}
        self._evaluating = threading.local()

    def add_parameters(self, params: Iterable[Parameter], overrides: dict[str, Any],
                       errors: list[str] | None = None) -> list[str]:
        """Load parameters, applying overrides (keys ``$Package::X``/``$Project::X``).

        Returns the qualified names of Required parameters left without any value. A value the
        parameter's type refuses is appended to ``errors`` (or raised when it is None).
        """
        missing: list[str] = []
        for param in params:
            qualified = param.qualified_name
            given = qualified in overrides
            raw = overrides[qualified] if given else param.value
            if not given and param.required and (raw is None or raw == "" or param.sensitive_unavailable):
                missing.append(qualified)
                raw = None
            try:
                value = typed_value(param.dotnet_type, raw, what=f"parameter {qualified}")
            except ExecutionError as exc:
                message = str(exc) if not param.sensitive else (
                    f"sensitive parameter {qualified} of type {param.dotnet_type} cannot take the value given (not shown)."
                )
                if errors is None:
                    raise ExecutionError(message) from None
                errors.append(message)
                value = typed_value(param.dotnet_type, None, what=f"parameter {qualified}")
            slot = Slot(f"${param.scope}", param.name, param.dotnet_type, value, read_only=True,
                        sensitive=param.sensitive)
            self.parameters[qualified] = slot
        return missing

    def evaluating(self) -> set[str]:
        """Qualified names whose expressions are being evaluated on this thread (recursion guard)."""
        active = getattr(self._evaluating, "names", None)
        if active is None:
            active = self._evaluating.names = set()
        return active


class Scope:
    """The variables one container sees: its own, then its parents' (implements VariableAccess)."""

    __slots__ = ("store", "parent", "ref_id", "own", "owner", "lazy")

    def __init__(self, store: VariableStore, parent: Scope | None, ref_id: str, owner: object = None) -> None:
        self.store = store
        self.parent = parent
        self.ref_id = ref_id
        self.own: dict[str, Slot] = {}
        self.owner = owner  # the executor's frame for this scope (opaque here)
        # Builds this scope's System variables on first use: most tasks never read one, and
        # building them eagerly is most of a no-op task's cost.
        self.lazy: Callable[[], dict[str, Slot]] | None = None

    def _materialize(self) -> None:
        # Under the lock, and ``lazy`` cleared only once the slots are in: a concurrent reader
        # that sees ``lazy is None`` always finds them.
        with self.store.lock:
            build = self.lazy
            if build is None:
                return
            for key, slot in build().items():
                self.own.setdefault(key, slot)
            self.lazy = None

    # -- building -------------------------------------------------------------------------
    def add(self, slot: Slot) -> Slot:
        slot.scope = self
        self.own[slot.qualified] = slot
        return slot

    def add_system(self, name: str, type_name: str, raw: Any, *, writable: bool = False) -> Slot:
        value = typed_value(type_name, raw, what=f"variable System::{name}")
        return self.add(Slot("System", name, type_name, value, read_only=not writable))

    def add_variables(self, variables: Iterable[Variable]) -> None:
        """Variables from the model; a System variable declared here (Propagate) stays writable."""
        for var in variables:
            qualified = var.qualified_name
            expression = var.expression if var.evaluate_as_expression and var.expression else None
            raw = None if var.sensitive_unavailable else var.value
            value = typed_value(var.dotnet_type, raw, what=f"variable {qualified}")
            writable_system = var.namespace == "System" and qualified in WRITABLE_SYSTEM
            read_only = var.read_only or (var.namespace == "System" and not writable_system)
            self.add(Slot(var.namespace, var.name, var.dotnet_type, value, read_only=read_only,
                          expression=expression, raise_changed=var.raise_changed_event))

    # -- lookup ---------------------------------------------------------------------------
    def find(self, name: str) -> Slot | None:
        """The nearest slot a name refers to, or None."""
        namespace, short = split_name(name)
        if namespace is not None and namespace.startswith("$"):
            return self.store.parameters.get(f"{namespace}::{short}")
        qualified = f"{namespace}::{short}" if namespace is not None else None
        scope: Scope | None = self
        wants_system = namespace is None or namespace == "System"
        while scope is not None:
            if wants_system and scope.lazy is not None:
                scope._materialize()
            own = scope.own
            if own:
                if qualified is not None:
                    slot = own.get(qualified)
                    if slot is not None:
                        return slot
                else:
                    slot = _by_short_name(own, short)
                    if slot is not None:
                        return slot
            scope = scope.parent
        return None

    def require(self, name: str) -> Slot:
        slot = self.find(name)
        if slot is None:
            raise ExecutionError(f"variable {name!r} is not defined in the scope of {self.ref_id!r} or any container above it.")
        return slot

    def lookup(self, name: str) -> Value:
        """The expression engine's lookup: a Value, or KeyError for an unknown name."""
        slot = self.find(name)
        if slot is None:
            raise KeyError(name)
        return self.read(slot)

    def read(self, slot: Slot) -> Value:
        if slot.expression is None:
            return slot.value
        return self._evaluate_variable(slot)

    def _evaluate_variable(self, slot: Slot) -> Value:
        active = self.store.evaluating()
        if slot.qualified in active:
            raise ExpressionError(
                f"the expression of variable {slot.qualified} refers to itself (directly or through other "
                "variables); break the cycle"
            )
        active.add(slot.qualified)
        try:
            compiled = self.store.compile(slot.expression, False)
            home = slot.scope or self
            result = compiled.evaluate(home.lookup)
        finally:
            active.discard(slot.qualified)
        return typed_value(slot.type_name, result, what=f"variable {slot.qualified}")

    # -- VariableAccess -------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The Python value of a variable or parameter."""
        return self.read(self.require(name)).value

    def value(self, name: str) -> Value:
        return self.read(self.require(name))

    def set(self, name: str, value: Any) -> None:
        """Store ``value`` (a Python value or a Value) converted to the variable's type."""
        slot = self.require(name)
        if slot.read_only:
            kind = "parameter" if slot.namespace.startswith("$") else "variable"
            raise ExecutionError(f"{kind} {slot.qualified} is read-only and cannot be assigned.")
        converted = typed_value(slot.type_name, value, what=f"variable {slot.qualified}")
        with self.store.lock:
            changed = slot.value != converted
            slot.value = converted
        if changed and slot.raise_changed and self.store.on_change is not None:
            self.store.on_change(self, slot)

    def force(self, name: str, value: Any) -> None:
        """Set a value regardless of ReadOnly (run-time overrides such as ``--set``)."""
        slot = self.require(name)
        slot.value = typed_value(slot.type_name, value, what=f"variable {slot.qualified}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def iter_own(self) -> Iterator[Slot]:
        self._materialize()
        return iter(list(self.own.values()))


def _by_short_name(own: dict[str, Slot], short: str) -> Slot | None:
    """An unqualified name: the User variable first, then any other namespace (System last)."""
    slot = own.get(f"User::{short}")
    if slot is not None:
        return slot
    fallback: Slot | None = None
    for candidate in own.values():
        if candidate.name == short:
            if candidate.namespace != "System":
                return candidate
            fallback = candidate
    return fallback
