"""Containers: a Sequence walks its graph once; a For Loop evaluates InitExpression, then walks
its graph while EvalExpression is true, evaluating AssignExpression after each pass; a Foreach
Loop walks its graph once per item its enumerator gives, mapping the item's values to
variables first. A container's result comes from its errors (MaximumErrorCount, a child that
fails its parent) and the run's cancellation.
"""

from __future__ import annotations

import threading
from typing import Any
from collections.abc import Callable

from dtsx.engine.enumerators import enumerate_items
from dtsx.engine.errors import ExecutionError
from dtsx.engine.frames import Frame
from dtsx.engine.model import ExecutableKind
from dtsx.engine.results import ExecutionResult
from dtsx.engine.runstate import RunState
from dtsx.engine.scheduler import Scheduler
from dtsx.engine.variables import text_of

__all__ = ["Containers", "container_result"]

# Enum members as module constants: ``Enum.MEMBER`` is a class-attribute read through the
# enum's metaclass, ~10x a global's (timeit: 80-150 ns against 7), on every execution's path.
_SUCCESS, _FAILURE = ExecutionResult.SUCCESS, ExecutionResult.FAILURE
_CANCELED = ExecutionResult.CANCELED
_FOR_LOOP, _FOREACH_LOOP = ExecutableKind.FOR_LOOP, ExecutableKind.FOREACH_LOOP


def container_result(cancel: threading.Event, frame: Frame) -> ExecutionResult:
    """What a container's (or a package's, or a handler's) finished walk amounts to."""
    if cancel.is_set():
        return _CANCELED
    return _FAILURE if frame.failed_by_errors() else _SUCCESS


class Containers:
    """Runs the containers of one run; their children go through ``scheduler``."""

    def __init__(
        self, state: RunState, scheduler: Scheduler, local_path: Callable[[str], str]
    ) -> None:
        self.state = state
        self.scheduler = scheduler
        self.local_path = local_path

    def execute(self, frame: Frame) -> int:
        """Run the container of ``frame``; returns the iterations to record (loops record
        theirs as they go, so they return 0). A container that starts a transaction (Required,
        none in force) commits it when it succeeds, else rolls it back; a commit that fails
        fails the container (ExecutionError)."""
        if frame.starts_transaction():
            return self._transacted(frame)
        return self._run(frame)

    def _transacted(self, frame: Frame) -> int:
        dispatcher = self.state.dispatcher
        frame.start_transaction(lambda message: dispatcher.raise_event(frame, "OnWarning", message))
        try:
            iterations = self._run(frame)
            succeeded = container_result(self.state.cancel, frame) == _SUCCESS
            problem = frame.end_transaction(commit=succeeded)
        finally:  # _run raised, or the run was interrupted: never leave the transaction open
            frame.end_transaction(commit=False)  # nothing left to do once it has ended
        if problem is not None:
            raise ExecutionError(problem)
        return iterations

    def _run(self, frame: Frame) -> int:
        kind = frame.exe.kind
        if kind is _FOR_LOOP:
            return self._for_loop(frame)
        if kind is _FOREACH_LOOP:
            return self._foreach_loop(frame)
        self.scheduler.walk(frame)
        return 1

    def _loop_failed(self, frame: Frame) -> bool:
        return self.state.cancel.is_set() or frame.failed_by_errors()

    def _for_loop(self, frame: Frame) -> int:
        exe = frame.exe
        scope = frame.scope
        state = self.state
        if exe.init_expression:
            state.evaluate_in(scope, exe.init_expression, assignment=True)
        if not exe.eval_expression:
            raise ExecutionError(
                f"For Loop {exe.ref_id!r} has no EvalExpression; set one that returns a Boolean."
            )
        # Speed: each expression is compiled (looked up in the plan's cache) once per loop, not
        # once per iteration; the assignment only when first needed, as before, so that an
        # AssignExpression that does not compile fails only after the first pass.
        condition_of = state.compile(exe.eval_expression, False)
        assign_text = exe.assign_expression
        assign: Any = None
        evaluate, walk = state.evaluate_compiled, self.scheduler.walk
        iterations = 0
        while True:
            condition = evaluate(scope, condition_of)
            if condition.type != "DT_BOOL":
                raise ExecutionError(
                    f"the EvalExpression of For Loop {exe.ref_id!r} returns {condition.type}, not "
                    "a Boolean."
                )
            if not condition.value or self._loop_failed(frame):
                break
            walk(frame)
            iterations += 1
            if self._loop_failed(frame):
                break
            if assign_text:
                if assign is None:
                    assign = state.compile(assign_text, True)
                evaluate(scope, assign)
        state.add_iterations(exe, iterations)
        return 0

    def _foreach_loop(self, frame: Frame) -> int:
        exe = frame.exe
        enumerator = exe.enumerator
        if enumerator is None:
            raise ExecutionError(f"Foreach Loop {exe.ref_id!r} has no enumerator.")
        settings = dict(enumerator.properties)
        for pe in enumerator.property_expressions:
            settings[pe.name] = text_of(self.state.evaluate(frame.scope, pe.expression))
        iterations = 0
        dispatcher = self.state.dispatcher

        def warn(message: str) -> None:
            dispatcher.raise_event(frame, "OnWarning", message)

        for item in enumerate_items(enumerator, settings, frame.scope, self.local_path, warn):
            if self._loop_failed(frame):
                break
            _map_item(frame, item)
            self.scheduler.walk(frame)
            iterations += 1
        self.state.add_iterations(exe, iterations)
        return 0


def _map_item(frame: Frame, item: list[Any]) -> None:
    for mapping in frame.exe.variable_mappings:
        if mapping.value_index >= len(item):
            raise ExecutionError(
                f"Foreach Loop {frame.exe.ref_id!r} maps value index {mapping.value_index} to "
                f"{mapping.variable}, but the item has only {len(item)} value(s)."
            )
        frame.scope.set(mapping.variable, item[mapping.value_index])
