"""The walk of one container's graph: which children are ready, which can never run, who runs
them.

A container's DAG is walked by the thread that runs the container (:meth:`Scheduler.walk`);
that thread alone settles constraints. When exactly one child can run and none is running (a
loop body, a chain), it runs that child itself, with no hand-off. Otherwise ready containers go
to the elastic worker pool, ready tasks go on the walk's queue, and task workers (one per slot
taken) run queued tasks back to back, reporting finishes through a C-level queue: no Python lock
is shared between workers, so they never convoy on one. Containers never hold a slot while they
wait on their children.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from collections.abc import Callable, Mapping

from dtsx.engine.frames import Frame
from dtsx.engine.model import (
    DTSExecResult,
    EvalOp,
    Executable,
    ExecutableKind,
    PrecedenceConstraint,
)
from dtsx.engine.plan import ContainerFlow
from dtsx.engine.results import ExecutionResult
from dtsx.engine.workers import POLL_S, TaskSlots, Workers

__all__ = ["Scheduler", "GraphInfo", "graph_info"]

# Runs one child of a frame; returns the result the constraints leaving it see.
RunChild = Callable[[Executable, Frame], ExecutionResult]
# Evaluates a constraint's expression in a frame (False, after an OnError, if it cannot).
ConstraintExpression = Callable[[PrecedenceConstraint, Frame], bool]
_Done = queue.SimpleQueue[tuple[str, ExecutionResult] | None]
# Enum members as module constants: ``Enum.MEMBER`` is a class-attribute read through the
# enum's metaclass, ~10x a global's (timeit: 80-150 ns against 7), on every execution's path.
_TASK = ExecutableKind.TASK
_SUCCESS, _FAILURE = ExecutionResult.SUCCESS, ExecutionResult.FAILURE
_NOT_RUN = ExecutionResult.NOT_RUN
_ON_CONSTRAINT = EvalOp.CONSTRAINT
_ON_EXPRESSION_AND_CONSTRAINT = EvalOp.EXPRESSION_AND_CONSTRAINT
_ON_EXPRESSION_OR_CONSTRAINT = EvalOp.EXPRESSION_OR_CONSTRAINT
_DTS_SUCCESS, _DTS_FAILURE = DTSExecResult.SUCCESS, DTSExecResult.FAILURE
_DTS_COMPLETION = DTSExecResult.COMPLETION


@dataclass
class GraphInfo:
    """A container's DAG, precomputed once per run: start nodes, constraints into each node,
    the nodes whose constraints combine with OR, the nodes that are containers, and the plan's
    own successor lists (``succ[u][v]``: the constraints from u to v). Few, flat objects on
    purpose: built for every run, they live as long as it does, and thousands of small ones
    would push the cyclic collector into full passes over the whole plan."""

    size: int
    start: list[str]
    incoming: dict[str, int]
    succ: Mapping[str, Mapping[str, list[PrecedenceConstraint]]]
    or_nodes: frozenset[str]
    containers: frozenset[str]  # nodes that are not tasks (they need no slot)


def graph_info(
    flows: Mapping[str, ContainerFlow], executables: Mapping[str, Executable], ref: str
) -> GraphInfo:
    """The walk's view of one container's flow (plain data: running never imports networkx)."""
    flow = flows.get(ref)
    if flow is None:
        return GraphInfo(0, [], {}, {}, frozenset(), frozenset())
    succ = flow.successors  # the plan's own dicts, not copies: read only
    incoming: dict[str, int] = dict.fromkeys(succ, 0)
    or_nodes: set[str] = set()
    for targets in succ.values():
        for target, constraints in targets.items():
            for constraint in constraints:
                incoming[target] += 1
                if not constraint.logical_and:
                    or_nodes.add(target)
    start = [n for n, count in incoming.items() if count == 0]
    containers = frozenset(n for n in succ if executables[n].kind is not ExecutableKind.TASK)
    return GraphInfo(len(succ), start, incoming, succ, frozenset(or_nodes), containers)


class _Walk:
    """One walk of one container's DAG. Only the walking thread reads or writes these fields;
    workers talk to it through two C-level queues (no Python lock to contend for):
    ``queue`` carries ready tasks to the walk's workers, ``done`` brings back
    ``(ref_id, result)`` for each finished child, or None when a task worker leaves."""

    __slots__ = (
        "frame",
        "info",
        "pending",
        "started",
        "ready",
        "containers",
        "running",
        "workers",
        "queue",
        "done",
    )

    def __init__(self, frame: Frame, info: GraphInfo) -> None:
        self.frame = frame
        self.info = info
        self.pending = dict(info.incoming)
        self.started: set[str] = set(info.start)
        # Ready children not yet handed out, in the order they became ready (package order first).
        self.ready = [ref for ref in info.start if ref not in info.containers]
        self.containers = [ref for ref in info.start if ref in info.containers]
        self.running = 0  # children handed out (queued or running) and not yet reported done
        self.workers = 0  # task workers of this walk, each holding a slot, not yet reported gone
        # Made on first use: a walk whose children all run on the walking thread (a loop body,
        # a chain) never needs them.
        self.queue: queue.SimpleQueue[str] | None = None
        self.done: _Done | None = None

    def queues(self) -> tuple[queue.SimpleQueue[str], _Done]:
        if self.queue is None or self.done is None:
            self.queue, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        return self.queue, self.done


class Scheduler:
    """Walks containers' graphs for one run; ``run_child`` runs each child it hands out."""

    def __init__(
        self,
        flows: Mapping[str, ContainerFlow],
        executables: Mapping[str, Executable],
        cancel: threading.Event,
        slots: TaskSlots,
        pool: Workers,
        run_child: RunChild,
        constraint_expression: ConstraintExpression,
    ) -> None:
        self._flows = flows
        self._executables = executables
        self._cancel = cancel
        self._slots = slots
        self._pool = pool
        self._run_child = run_child
        self._constraint_expression = constraint_expression
        self._infos: dict[str, GraphInfo] = {}

    def _info(self, ref: str) -> GraphInfo:
        info = self._infos.get(ref)
        if info is None:
            info = self._infos[ref] = graph_info(self._flows, self._executables, ref)
        return info

    def walk(self, frame: Frame) -> None:
        """Run the container's children once, honouring precedence constraints (see the
        module's docstring for who runs what)."""
        info = self._infos.get(frame.exe.ref_id) or self._info(frame.exe.ref_id)
        if not info.size:
            return
        if info.size == 1:
            self._run_only(frame, info.start[0])
            return
        walk = _Walk(frame, info)
        while True:
            if self._cancel.is_set():
                _drop_ready(walk)
            if walk.running == 0:
                waiting = len(walk.ready) + len(walk.containers)
                if waiting == 0:
                    return
                if waiting == 1:
                    self._run_inline(walk)
                    continue
            self._dispatch(walk)
            self._collect(walk)

    def _run_only(self, frame: Frame, ref: str) -> None:
        """Speed: a flow of one child and no constraints (a loop body of one task) walked as
        :meth:`walk` would walk it (canceled: it never starts; else it runs on this thread, a
        task with a slot), without a _Walk (ten fields, a dict, a set and two lists made per
        walk) or a settle of its absent constraints: every For Loop iteration around one task
        walks such a flow (part of 159k -> 130k instructions per iteration, callgrind)."""
        if not self._cancel.is_set():
            self._run_here(self._executables[ref], frame)

    def _run_inline(self, walk: _Walk) -> None:
        """Run the walk's only runnable child on the walking thread, with a slot if it is a task
        (the walking thread holds none of its own: containers never do)."""
        ref = (walk.ready or walk.containers).pop()
        result = self._run_here(self._executables[ref], walk.frame)
        if result is not None:
            self._settle(ref, result, walk)

    def _run_here(self, exe: Executable, frame: Frame) -> ExecutionResult | None:
        """Run a child on this thread, with a slot if it is a task; None if the run was
        canceled while it waited for the slot (it never started)."""
        if exe.kind is not _TASK:
            return self._run_child(exe, frame)
        if not self._slots.acquire():
            return None
        self._slots.hold()
        try:
            return self._run_child(exe, frame)
        finally:
            self._slots.let_go()

    def _dispatch(self, walk: _Walk) -> None:
        """Hand every ready child out: containers to workers of their own, tasks to the queue;
        then make sure queued tasks have workers."""
        tasks, done = walk.queues()
        for ref in walk.containers:
            walk.running += 1
            self._pool.submit(self._container_job, self._executables[ref], walk, done)
        walk.containers.clear()
        for ref in walk.ready:
            walk.running += 1
            tasks.put(ref)
        walk.ready.clear()
        backlog = tasks.qsize()
        while backlog > 0:
            # A worker per queued task, as far as free slots go. Without a worker of its own the
            # walk waits for a slot (cancellation permitting); with one, it takes only a free
            # slot: that worker gets to the queue anyway, and a finishing one reports back.
            if walk.workers:
                if not self._slots.try_acquire():
                    return
            elif not self._slots.acquire():
                return  # canceled: the next round drops what is queued
            walk.workers += 1
            backlog -= 1
            self._pool.submit(self._task_worker, walk, tasks, done)

    def _collect(self, walk: _Walk) -> None:
        """Wait (one poll at most) for children to finish; settle every finish reported."""
        done = walk.done
        if done is None or (walk.running == 0 and walk.workers == 0):
            return
        try:
            item = done.get(timeout=POLL_S)
        except queue.Empty:
            return
        while True:
            if item is None:
                walk.workers -= 1
            else:
                walk.running -= 1
                self._settle(item[0], item[1], walk)
            try:
                item = done.get_nowait()
            except queue.Empty:
                return

    def _task_worker(self, walk: _Walk, tasks: queue.SimpleQueue[str], done: _Done) -> None:
        """Run queued tasks of one walk with the slot the walking thread took, until the queue
        is empty (or the run is canceled); then give the slot back and say so."""
        self._slots.hold()
        try:
            while not self._cancel.is_set():
                try:
                    ref = tasks.get_nowait()
                except queue.Empty:
                    break
                done.put((ref, self._run_child(self._executables[ref], walk.frame)))
        finally:
            self._slots.let_go()
            self._pool.idle()
            done.put(None)

    def _container_job(self, exe: Executable, walk: _Walk, done: _Done) -> None:
        result = self._run_child(exe, walk.frame)
        self._pool.idle()
        done.put((exe.ref_id, result))

    def _settle(self, ref: str, result: ExecutionResult, walk: _Walk) -> None:
        """Evaluate constraints leaving ``ref``; mark targets that may now run as ready, drop
        those that never can (and, transitively, what is reachable only through them)."""
        info, pending, started, frame = walk.info, walk.pending, walk.started, walk.frame
        succ, or_nodes, containers = info.succ, info.or_nodes, info.containers
        not_run = _NOT_RUN
        work = [(ref, result)]
        while work:
            source, outcome = work.pop()
            for target, constraints in succ.get(source, _NO_EDGES).items():
                for constraint in constraints:
                    if target in started:
                        break
                    ok = outcome != not_run and self._constraint_ok(constraint, outcome, frame)
                    pending[target] -= 1
                    if target not in or_nodes:
                        if not ok:
                            started.add(target)
                            work.append((target, not_run))
                        elif pending[target] == 0:
                            started.add(target)
                            (walk.containers if target in containers else walk.ready).append(target)
                    elif ok:
                        started.add(target)
                        (walk.containers if target in containers else walk.ready).append(target)
                    elif pending[target] == 0:
                        started.add(target)
                        work.append((target, not_run))

    def _constraint_ok(
        self, constraint: PrecedenceConstraint, outcome: ExecutionResult, frame: Frame
    ) -> bool:
        op = constraint.eval_op
        if op == _ON_CONSTRAINT:
            return _outcome_matches(constraint.value, outcome)
        if op == _ON_EXPRESSION_AND_CONSTRAINT and not _outcome_matches(constraint.value, outcome):
            return False
        if op == _ON_EXPRESSION_OR_CONSTRAINT and _outcome_matches(constraint.value, outcome):
            return True
        return self._constraint_expression(constraint, frame)


def _drop_ready(walk: _Walk) -> None:
    """Canceled: what is ready or queued never starts."""
    walk.ready.clear()
    walk.containers.clear()
    if walk.queue is not None:
        while True:
            try:
                walk.queue.get_nowait()
            except queue.Empty:
                return
            walk.running -= 1


_COMPLETED = frozenset(
    {ExecutionResult.SUCCESS, ExecutionResult.FAILURE, ExecutionResult.COMPLETION}
)


def _outcome_matches(value: int, outcome: ExecutionResult) -> bool:
    if value == _DTS_SUCCESS:
        return outcome == _SUCCESS
    if value == _DTS_FAILURE:
        return outcome == _FAILURE
    if value == _DTS_COMPLETION:
        return outcome in _COMPLETED
    return False


_NO_EDGES: dict[str, list[PrecedenceConstraint]] = {}
