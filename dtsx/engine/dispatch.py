"""Event dispatch for one run: raising an event at a frame, counting errors up the frame chain,
bubbling it to the event handlers of the frame and its ancestors, and forwarding it to a parent
package (Execute Package), as SSIS does.

Running a handler's own graph is the executor's job: :class:`Dispatcher` builds the handler's
scope and frame and calls the ``execute_handler`` it was given, then reads the handler's
``System::Cancel`` and ``System::Propagate``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any
from collections.abc import Callable, Mapping

from dtsx.engine.errors import DtsxError
from dtsx.engine.events import EventLog, RunEvent
from dtsx.engine.frames import Frame, unlink
from dtsx.engine.model import Executable
from dtsx.engine.results import InternalError
from dtsx.engine.variables import Scope, Slot, VariableStore

__all__ = ["Dispatcher", "TaskEvents", "Forward"]

MAX_HANDLER_DEPTH = 4

# Where a child package's events continue: the parent's dispatcher, at the Execute Package frame.
Forward = Callable[[RunEvent], None]


class Dispatcher:
    """Raises, counts, bubbles and forwards one run's events."""

    def __init__(
        self,
        executables: Mapping[str, Executable],
        store: VariableStore,
        log: EventLog,
        cancel: threading.Event,
        *,
        slots_for: Callable[[Executable], list[Slot]],
        forward: Forward | None = None,
        forward_names: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.log = log
        self.cancel = cancel
        self._slots_for = slots_for
        self._forward = forward
        self._forward_names = forward_names
        self._lock = threading.Lock()
        self._handlers = _index_handlers(executables)
        self.local_handled = frozenset(e for by_event in self._handlers.values() for e in by_event)
        # Events a parent package (Execute Package) wants too must be built even with no local use.
        self.handled = self.local_handled | forward_names
        self._listened = log.wanted() | self.handled
        # Set by the executor: runs a handler's graph in the frame given, records its result.
        self.execute_handler: Callable[[Frame], None] = _no_handler_runner

    def raise_event(
        self,
        frame: Frame,
        name: str,
        message: str = "",
        code: int = 0,
        extra: dict[str, Any] | None = None,
        internal: InternalError | None = None,
    ) -> None:
        if name == "OnError":
            self._count_error(frame)
        if name not in self._listened:
            self.log.count(name)  # nobody listens: count it without building the event
            return
        exe = frame.exe
        # Masked here, not only in the log: handlers see the message as System::ErrorDescription.
        event = RunEvent(
            name,
            exe.name,
            exe.ref_id,
            exe.dtsid or "",
            self.store.mask(message),
            code,
            source_description=exe.description or "",
            extra=extra or {},
            exception=internal.exception if internal is not None else None,
            traceback=internal.traceback if internal is not None else "",
        )
        self.log.emit(event)
        if name in self.local_handled:
            self._bubble(frame, event)
        if self._forward is not None and name in self._forward_names:
            self._forward(event)  # Propagate=False in a child package does not stop this (SSIS)

    def receive(self, frame: Frame, event: RunEvent) -> None:
        """An event from a child package, arriving at the Execute Package task's frame."""
        if event.name == "OnError":
            self._count_error(frame)
        if event.name in self.local_handled:
            self._bubble(frame, event)
        if self._forward is not None and event.name in self._forward_names:
            self._forward(event)

    def warn_package(self, source_name: str, ref: str, message: str) -> None:
        """An OnWarning from the run itself (a plan or configuration warning), not a frame."""
        self.log.emit(RunEvent("OnWarning", source_name, ref, message=message))

    def _count_error(self, frame: Frame) -> None:
        with self._lock:
            f: Frame | None = frame
            while f is not None:
                f.errors += 1
                f = f.parent

    def _bubble(self, frame: Frame, event: RunEvent) -> None:
        f: Frame | None = frame
        while f is not None:
            handlers = self._handlers.get(f.exe.ref_id)
            if handlers is not None and not f.exe.disable_event_handlers:
                handler = handlers.get(event.name)
                if (
                    handler is not None
                    and not handler.disabled
                    and _may_run_handler(frame, handler)
                ):
                    if not self._run_handler(handler, f, event):
                        return
            f = f.parent

    def _run_handler(self, handler: Executable, owner: Frame, event: RunEvent) -> bool:
        """Run one handler for ``event``; returns System::Propagate after it ran."""
        scope = self._handler_scope(handler, owner, event)
        frame = Frame(handler, owner, scope, handler=True)
        scope.owner = frame
        self.execute_handler(frame)
        unlink(frame)
        if _truthy(scope, "System::Cancel"):
            self.cancel.set()
        return _truthy(scope, "System::Propagate")

    def _handler_scope(self, handler: Executable, owner: Frame, event: RunEvent) -> Scope:
        scope = Scope(self.store, owner.scope, handler.ref_id)
        add = scope.add_system
        add("SourceName", "String", event.source_name)
        add("SourceID", "String", event.source_id)
        add("SourceDescription", "String", event.source_description)
        add("ErrorCode", "Int32", event.code)
        add("ErrorDescription", "String", event.message)
        add("Propagate", "Boolean", True, writable=True)
        add("Cancel", "Boolean", False, writable=True)
        add("EventHandlerStartTime", "DateTime", datetime.now())
        add("TaskName", "String", handler.name)
        for slot in self._slots_for(handler):
            if slot.namespace == "System" and slot.qualified in scope.own:
                scope.own[slot.qualified].value = slot.value
                continue
            scope.add(slot)
        return scope


class TaskEvents:
    """The EventSink a task sees: raises events at its frame."""

    __slots__ = ("_dispatcher", "_frame")

    def __init__(self, dispatcher: Dispatcher, frame: Frame) -> None:
        self._dispatcher = dispatcher
        self._frame = frame

    def information(self, message: str) -> None:
        self._dispatcher.raise_event(self._frame, "OnInformation", message)

    def warning(self, message: str) -> None:
        self._dispatcher.raise_event(self._frame, "OnWarning", message)

    def error(self, message: str, code: int = 0) -> None:
        self._dispatcher.raise_event(self._frame, "OnError", message, code)

    def progress(self, message: str, percent: int = 0) -> None:
        self._dispatcher.raise_event(self._frame, "OnProgress", message, extra={"percent": percent})


def _index_handlers(executables: Mapping[str, Executable]) -> dict[str, dict[str, Executable]]:
    index: dict[str, dict[str, Executable]] = {}
    for ref, exe in executables.items():
        if exe.event_handlers:
            index[ref] = {h.event or "": h for h in exe.event_handlers}
    return index


def _may_run_handler(frame: Frame, handler: Executable) -> bool:
    """Not while the same handler is already running in this chain, nor too deeply nested."""
    depth = 0
    f: Frame | None = frame
    while f is not None:
        if f.handler:
            depth += 1
            if f.exe.ref_id == handler.ref_id:
                return False
        f = f.parent
    return depth < MAX_HANDLER_DEPTH


def _truthy(scope: Scope, name: str) -> bool:
    try:
        return bool(scope.get(name))
    except DtsxError:
        return False


def _no_handler_runner(frame: Frame) -> None:
    raise RuntimeError("Dispatcher.execute_handler was not set by the executor")
