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

A read-modify-write (an Expression Task's ``@[User::Sum] = @[User::Sum] + 1``, a plugin's update)
needs more than that: SSIS locks a task's ReadWriteVariables from its read to its write. Here
every slot has a write lock of its own, which :meth:`Scope.locked` holds for a ``with`` block and
every plain write takes for its own duration. A thread takes the locks it lacks in one stable
order (the slots' creation order), so two writers of the same variables can never wait on each
other in a circle; a thread that already holds locks and asks for one that sorts before them
tries without waiting and backs off, and every wait ends, with an error naming the variables,
after ``lock_timeout`` seconds (SSIS reports the same case as a variable deadlock). Change events
of writes made under a lock are raised once the thread lets go of its last lock, so an event
handler that writes the same variable never waits on the task that raised the event.

Sensitivity travels with values. Sensitive parameters (and variables set with dtexec's
``$Sensitive::``) are sensitive; a variable becomes sensitive when an expression that read a
sensitive value is assigned to it, when its own expression (EvaluateAsExpression) reads one, or
when it is given a value that is already known as a secret. The store keeps the text of every
sensitive value, so that reports and event messages can mask them (:meth:`VariableStore.mask`).
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from typing import Any
from collections.abc import Callable, Iterable, Iterator, Sequence

from dtsx.engine.errors import ExecutionError, ExpressionError
from dtsx.engine.expressions import Value, value_from_dotnet, value_to_dotnet
from dtsx.engine.expressions.dotnet import AS_IS
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

# What reports and messages show instead of a sensitive value.
MASK = "********"
# Shorter secrets are not searched for in message text: they would mask ordinary words and
# numbers ("exit 0"). Reports mask a sensitive variable whatever its length.
_MIN_MASKED = 4
# How long a task waits for a variable another task holds locked before it fails.
LOCK_TIMEOUT_S = 30.0
# Between attempts of a thread that holds locks and needs one that sorts before them.
_BACKOFF_S = 0.005
# Slot creation order: the stable order in which every thread takes variable locks.
_ORDER = itertools.count()


class _Held(threading.local):
    """What the current thread holds: slot order -> slot, and the change events it deferred."""

    def __init__(self) -> None:
        self.slots: dict[int, Slot] = {}
        self.changed: list[tuple[Scope, Slot]] = []


# Per thread, not per store: a child package's task may lock a variable of its parent package.
_HELD = _Held()


# An expression's evaluation, given the lookup of the variables it reads (Scope.assign).
Evaluate = Callable[[Callable[[str], Value]], Value]


class _Reads(threading.local):
    """Per thread: how many sensitive values expressions have read (a class default instead of
    ``getattr(..., 0)``: read twice by every assignment)."""

    count = 0


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


@functools.lru_cache(maxsize=4096)
def _reference(name: str) -> tuple[str | None, str, bool, bool]:
    """Speed: what :meth:`Scope.find` needs of a name (its qualified form or None, its short
    name, whether System may hold it, whether it is a parameter), parsed once per distinct name
    instead of on every read: a run reads the same few names over and over (a For Loop reads
    three per iteration). Bounded, so that generated names cannot grow it without limit."""
    namespace, short = split_name(name)
    if namespace is None:
        return None, short, True, False
    return f"{namespace}::{short}", short, namespace == "System", namespace.startswith("$")


def typed_value(type_name: str, raw: Any, *, what: str) -> Value:
    """``raw`` (persisted text, a Python value or a Value) as a Value of the .NET type
    ``type_name``."""
    try:
        if type_name == "Object":
            return raw if isinstance(raw, Value) else Value("Object", raw)
        if isinstance(raw, Value):
            return value_to_dotnet(raw, type_name)
        return value_from_dotnet(type_name, raw)
    except ExpressionError as exc:
        raise ExecutionError(
            f"{what} of type {type_name} cannot take the value {_show(raw)}: {exc.message}"
        ) from exc


def _show(raw: Any) -> str:
    value = raw.value if isinstance(raw, Value) else raw
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Secrets:
    """The text of every sensitive value of a run, and the masking of message text with them.

    Written rarely (a sensitive parameter, an assignment from one), read on every event: the
    strings to mask are kept as one tuple, longest first, rebuilt on each addition."""

    __slots__ = ("_known", "_masked", "_lock")

    def __init__(self) -> None:
        self._known: frozenset[str] = frozenset()
        self._masked: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        if not text or text in self._known:
            return
        with self._lock:
            self._known = self._known | {text}
            # Longest first, so that a secret containing another is masked whole.
            self._masked = tuple(
                sorted((t for t in self._known if len(t) >= _MIN_MASKED), key=len, reverse=True)
            )

    def known(self, text: str) -> bool:
        return bool(self._known) and text in self._known

    def has_any(self) -> bool:
        """Whether any secret is known. Speed: most runs know none, so a write asks this
        before making the text of the value it stores (VariableStore.is_secret)."""
        return bool(self._known)

    def mask(self, text: str) -> str:
        """``text`` with every known secret of 4 characters or more replaced by MASK."""
        for secret in self._masked:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class Slot:
    """One variable (or parameter) instance: its type, current value and rules."""

    __slots__ = (
        "qualified",
        "namespace",
        "name",
        "type_name",
        "value",
        "read_only",
        "expression",
        "raise_changed",
        "sensitive",
        "scope",
        "order",
        "lock",
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
        self.order = next(_ORDER)  # atomic in CPython
        self.lock = threading.Lock()

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
        lock_timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.lock = threading.RLock()
        self.compile = compile_expression
        self.on_change = on_change
        self.lock_timeout = lock_timeout
        self.parameters: dict[str, Slot] = {}
        self._evaluating = threading.local()
        # The sensitive values seen in this run (shared with child packages), and, per thread,
        # how many sensitive values expressions have read (a mark before an evaluation tells
        # whether it did).
        self.secrets = Secrets()
        self._reads = _Reads()

    def add_parameters(
        self,
        params: Iterable[Parameter],
        overrides: dict[str, Any],
        errors: list[str] | None = None,
    ) -> list[str]:
        """Load parameters, applying overrides (keys ``$Package::X``/``$Project::X``).

        Returns the qualified names of Required parameters left without any value. A value the
        parameter's type refuses is appended to ``errors`` (or raised when it is None).
        """
        missing: list[str] = []
        for param in params:
            qualified = param.qualified_name
            given = qualified in overrides
            raw = overrides[qualified] if given else param.value
            if (
                not given
                and param.required
                and (raw is None or raw == "" or param.sensitive_unavailable)
            ):
                missing.append(qualified)
                raw = None
            try:
                value = typed_value(param.dotnet_type, raw, what=f"parameter {qualified}")
            except ExecutionError as exc:
                message = (
                    str(exc)
                    if not param.sensitive
                    else (
                        f"sensitive parameter {qualified} of type {param.dotnet_type} cannot take "
                        "the value given (not shown)."
                    )
                )
                if errors is None:
                    if param.sensitive:  # the cause quotes the secret, not yet known to any mask
                        raise ExecutionError(message) from None
                    raise ExecutionError(message) from exc
                errors.append(message)
                value = typed_value(param.dotnet_type, None, what=f"parameter {qualified}")
            # A value known as a secret (a parent package passing its own) keeps its mark.
            sensitive = param.sensitive or self.is_secret(value)
            slot = Slot(
                f"${param.scope}",
                param.name,
                param.dotnet_type,
                value,
                read_only=True,
                sensitive=sensitive,
            )
            if sensitive:
                self.add_secret(value)
            self.parameters[qualified] = slot
        return missing

    # -- sensitivity ------------------------------------------------------------------------
    def add_secret(self, value: Value) -> None:
        """Remember a sensitive value, so that messages can mask it."""
        self.secrets.add(text_of(value))

    def is_secret(self, value: Value) -> bool:
        return self.secrets.known(text_of(value))

    def mask(self, text: str) -> str:
        return self.secrets.mask(text)

    def sensitive_mark(self) -> int:
        """How many sensitive values this thread's expressions have read so far."""
        return self._reads.count

    def read_sensitive(self) -> None:
        self._reads.count += 1

    # -- write locks ------------------------------------------------------------------------
    def hold(self, slots: Sequence[Slot]) -> _Hold:
        """Context manager: hold the write locks of ``slots`` (see the module docstring)."""
        return _Hold(self, slots)

    def evaluating(self) -> set[str]:
        """Qualified names whose expressions are being evaluated on this thread (the recursion
        guard)."""
        active = getattr(self._evaluating, "names", None)
        if active is None:
            active = self._evaluating.names = set()
        return active


class Scope:
    """The variables one container sees: its own, then its parents' (implements VariableAccess)."""

    __slots__ = ("store", "parent", "ref_id", "own", "owner", "lazy")

    def __init__(
        self, store: VariableStore, parent: Scope | None, ref_id: str, owner: object = None
    ) -> None:
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
            self.add(
                Slot(
                    var.namespace,
                    var.name,
                    var.dotnet_type,
                    value,
                    read_only=read_only,
                    expression=expression,
                    raise_changed=var.raise_changed_event,
                )
            )

    # -- lookup ---------------------------------------------------------------------------
    def find(self, name: str) -> Slot | None:
        """The nearest slot a name refers to, or None."""
        qualified, short, wants_system, parameter = _reference(name)
        if parameter:
            return self.store.parameters.get(qualified or "")
        scope: Scope | None = self
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
            raise ExecutionError(
                f"variable {name!r} is not defined in the scope of {self.ref_id!r} or any "
                "container above it."
            )
        return slot

    def lookup(self, name: str) -> Value:
        """The expression engine's lookup: a Value, or KeyError for an unknown name."""
        slot = self.find(name)
        if slot is None:
            raise KeyError(name)
        if slot.sensitive:
            self.store.read_sensitive()
        if slot.expression is None:  # Speed: read() inlined, for every variable an expression reads
            return slot.value
        return self._evaluate_variable(slot, slot.expression)

    def read(self, slot: Slot) -> Value:
        if slot.expression is None:
            return slot.value
        return self._evaluate_variable(slot, slot.expression)

    def _evaluate_variable(self, slot: Slot, expression: str) -> Value:
        active = self.store.evaluating()
        if slot.qualified in active:
            raise ExpressionError(
                f"the expression of variable {slot.qualified} refers to itself (directly or "
                "through other "
                "variables); break the cycle"
            )
        active.add(slot.qualified)
        store = self.store
        mark = store.sensitive_mark()
        try:
            compiled = store.compile(expression, False)
            home = slot.scope or self
            result = compiled.evaluate(home.lookup)
        finally:
            active.discard(slot.qualified)
        value = typed_value(slot.type_name, result, what=f"variable {slot.qualified}")
        if store.sensitive_mark() != mark:  # its expression read a sensitive value: so is this one
            slot.sensitive = True
            store.add_secret(value)
        return value

    # -- VariableAccess -------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The Python value of a variable or parameter."""
        return self.read(self.require(name)).value

    def value(self, name: str) -> Value:
        return self.read(self.require(name))

    def set(self, name: str, value: Any, *, sensitive: bool = False) -> None:
        """Store ``value`` (a Python value or a Value) converted to the variable's type, under
        the variable's write lock. ``sensitive`` marks the variable (and the value) sensitive;
        so does a value already known as a secret."""
        self.write(self.require(name), value, sensitive=sensitive)

    def write(self, slot: Slot, value: Any, *, sensitive: bool = False) -> None:
        """:meth:`set` for a slot already found (the executor's assignments)."""
        converted = self._converted(slot, value, sensitive)
        if slot.order in _HELD.slots:  # this thread holds it already (an assignment, locked())
            self._store_value(slot, converted, sensitive)
            return
        with self.store.hold((slot,)):
            self._store_value(slot, converted, sensitive)

    def _converted(self, slot: Slot, value: Any, sensitive: bool) -> Value:
        """``value`` as ``slot`` would store it; ExecutionError if it is read-only or refuses it."""
        if slot.read_only:
            kind = "parameter" if slot.namespace.startswith("$") else "variable"
            raise ExecutionError(f"{kind} {slot.qualified} is read-only and cannot be assigned.")
        if sensitive:  # before converting: a refused value is quoted in the error, masked
            self.store.add_secret(value if isinstance(value, Value) else Value("DT_WSTR", value))
        if type(value) is Value and value[1] is not None and AS_IS.get(slot.type_name) == value[0]:
            return value  # Speed: what typed_value returns, without its three calls (AS_IS)
        return typed_value(slot.type_name, value, what=f"variable {slot.qualified}")

    def _store_value(self, slot: Slot, converted: Value, sensitive: bool) -> None:
        store = self.store
        if sensitive or slot.sensitive or (store.secrets.has_any() and store.is_secret(converted)):
            slot.sensitive = True
            store.add_secret(converted)
        with store.lock:
            changed = slot.value != converted
            slot.value = converted
        if changed and slot.raise_changed and store.on_change is not None:
            _HELD.changed.append((self, slot))  # raised when this thread lets go of its locks

    def assign(self, slot: Slot, evaluate: Evaluate) -> Value:
        """``evaluate(self.lookup)`` written into ``slot`` and read back, holding the slot's
        write lock from the first read to the write (an expression's assignment: parallel
        ``@[User::Sum] = @[User::Sum] + 1`` lose no update); the slot becomes sensitive when
        the evaluation read a sensitive value.

        Speed: when this thread holds no lock and the slot's is free (every assignment but a
        contended one), the lock is taken here as :class:`_Hold` would take it, without its
        object and four calls; otherwise :meth:`VariableStore.hold` does it all. With the
        other shortcuts of this module (``_reference``, ``AS_IS``), an Expression Task's
        ``@[User::Label] = @[User::Label]`` costs 26k instructions instead of 68k (callgrind:
        20,000 evaluations in a task, less a run without them)."""
        held = _HELD.slots
        if held or not slot.lock.acquire(blocking=False):
            with self.store.hold((slot,)):
                return self._assign_held(slot, evaluate)
        held[slot.order] = slot
        try:
            return self._assign_held(slot, evaluate)
        finally:
            held.pop(slot.order, None)
            slot.lock.release()
            # This was the outermost hold (it found none), so nothing was deferred before it;
            # only its own write can have been, and only for a slot that raises change events
            # (the thread-local list is not read for the others).
            if slot.raise_changed and _HELD.changed:
                _raise_deferred()

    def _assign_held(self, slot: Slot, evaluate: Evaluate) -> Value:
        reads = self.store._reads
        mark = reads.count
        value = evaluate(self.lookup)
        sensitive = reads.count != mark
        # write(), knowing this thread holds the slot's lock
        self._store_value(slot, self._converted(slot, value, sensitive), sensitive)
        return self.read(slot)

    def force(self, name: str, value: Any, *, sensitive: bool = False) -> None:
        """Set a value regardless of ReadOnly (run-time overrides such as ``--set``, before the
        run)."""
        slot = self.require(name)
        slot.value = typed_value(slot.type_name, value, what=f"variable {slot.qualified}")
        if sensitive:
            slot.sensitive = True
            self.store.add_secret(slot.value)

    def locked(self, *names: str) -> _Hold:
        """Hold the write locks of the named variables for a ``with`` block, so that what a task
        reads and then writes back cannot be changed by anyone else in between::

            with ctx.variables.locked("User::Total", "User::Count"):
                ctx.variables.set("User::Total", ctx.variables.get("User::Total") + amount)

        Name every variable the block writes in one call: the locks are then taken in one stable
        order and cannot deadlock. Waits at most the run's lock timeout (ExecutionError after)."""
        return self.store.hold([self.require(name) for name in names])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def iter_own(self) -> Iterator[Slot]:
        self._materialize()
        return iter(list(self.own.values()))


def text_of(value: Value) -> str:
    """A value as message text shows it (how a secret would appear in a message)."""
    raw = value.value
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "True" if raw else "False"
    return str(raw)


class _Hold:
    """Holds write locks for a ``with`` block: the ones this thread lacks, taken in slot order.

    Only the outermost hold of a thread raises the change events its writes deferred, after it
    has let go of every lock."""

    __slots__ = ("_store", "_slots", "_taken")

    def __init__(self, store: VariableStore, slots: Sequence[Slot]) -> None:
        self._store = store
        self._slots = slots
        self._taken: Sequence[Slot] = ()  # the locks this hold took (none yet)

    def __enter__(self) -> None:
        held = _HELD.slots
        slots = self._slots
        if len(slots) == 1:  # the common case (every plain write): no sorting
            slot = slots[0]
            if slot.order in held:
                return
            if not held and slot.lock.acquire(blocking=False):
                # Speed: nothing held and the lock free, what _take_in_order would find first;
                # every plain write (ctx.variables.set, an ExecValueVariable) takes this way.
                held[slot.order] = slot
                self._taken = [slot]
                return
            wanted = [(slot.order, slot)]
        else:
            wanted = sorted({s.order: s for s in slots if s.order not in held}.items())
        if not wanted:
            return
        if held and wanted[0][0] < max(held):
            self._take_backing_off(wanted)  # waiting here could close a circle
        else:
            self._take_in_order(wanted)
        for order, slot in wanted:
            held[order] = slot
        self._taken = [slot for _, slot in wanted]

    def _take_in_order(self, wanted: list[tuple[int, Slot]]) -> None:
        got: list[Slot] = []
        deadline: float | None = None  # read the clock only if someone else holds a lock
        for _, slot in wanted:
            if not slot.lock.acquire(blocking=False):
                if deadline is None:
                    deadline = time.monotonic() + self._store.lock_timeout
                if not slot.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    _release(got)
                    raise self._timeout([s for _, s in wanted])
            got.append(slot)

    def _take_backing_off(self, wanted: list[tuple[int, Slot]]) -> None:
        deadline = time.monotonic() + self._store.lock_timeout
        while True:
            got: list[Slot] = []
            for _, slot in wanted:
                if not slot.lock.acquire(blocking=False):
                    break
                got.append(slot)
            if len(got) == len(wanted):
                return
            _release(got)
            if time.monotonic() >= deadline:
                raise self._timeout([s for _, s in wanted])
            time.sleep(_BACKOFF_S)

    def _timeout(self, slots: list[Slot]) -> ExecutionError:
        names = ", ".join(s.qualified for s in slots)
        return ExecutionError(
            f"could not lock {names} for writing within {self._store.lock_timeout:g} s: another "
            "task or "
            "event handler held it all that time (a variable deadlock); lock every variable a task "
            "writes in one call to ctx.variables.locked(...), and do not wait on other tasks while "
            "holding it."
        )

    def __exit__(self, *exc: object) -> None:
        held = _HELD.slots
        taken = self._taken
        for slot in taken:
            held.pop(slot.order, None)
        _release(taken)
        self._taken = ()
        if not held and _HELD.changed:
            _raise_deferred()


def _raise_deferred() -> None:
    """The change events this thread's writes deferred, raised once it holds no lock."""
    pending, _HELD.changed = _HELD.changed, []
    for scope, slot in pending:
        hook = scope.store.on_change
        if hook is not None:
            hook(scope, slot)


def _release(slots: Sequence[Slot]) -> None:
    for slot in reversed(slots):
        slot.lock.release()


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
