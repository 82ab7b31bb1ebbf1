"""The threads a run uses and the MaxConcurrentExecutables limit on them.

:class:`Workers` is an elastic pool: threads waiting on children, handlers or child packages
must never starve the work they wait for, so a new thread starts whenever no worker is idle.
:class:`Slots` are the limit's tokens, shared by a package and its child packages.
:class:`TaskSlots` is one run's view of them: which thread holds a slot, taking one while
watching for cancellation, and giving it back while a handler or a child package runs on the
holder's behalf (so nested work can never deadlock on the limit).
"""

from __future__ import annotations

import queue
import threading
from typing import Any
from collections.abc import Callable

__all__ = ["Workers", "Slots", "TaskSlots", "POLL_S"]

POLL_S = 0.2  # how often a waiting thread looks at the cancel event


class Workers:
    """An elastic thread pool: a new thread only when no worker is idle.

    Unlike ThreadPoolExecutor, a worker counts itself idle *before* it reports completion, so the
    walker's next submission reuses it instead of starting another thread; threads blocked on
    children, handlers or child packages never starve the work they wait for.
    """

    def __init__(self, name: str = "dtsx") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._name = name

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put((fn, args))
        if spawn:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            fn(*args)

    def idle(self) -> None:
        """Called by a job just before it reports completion: this worker is free again."""
        with self._lock:
            self._idle += 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


class Slots:
    """The MaxConcurrentExecutables tokens: a C-level queue, cheaper than threading.Semaphore.

    Tokens are made when a task finds none free and fewer than ``size`` exist, so a limit costs
    memory in proportion to the tasks that ran at once, never to the limit itself
    (MaxConcurrentExecutables may be 2147483647)."""

    __slots__ = ("_tokens", "size", "_made", "_making")

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._made = 0
        self._making = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        tokens = self._tokens
        try:
            tokens.get_nowait()
            return True
        except queue.Empty:
            pass
        if self._made < self.size:
            with self._making:  # only while tokens are still being made, never once all exist
                if self._made < self.size:
                    self._made += 1
                    return True
        try:
            tokens.get(blocking, timeout)
        except queue.Empty:
            return False
        return True

    def release(self) -> None:
        self._tokens.put(None)


class TaskSlots:
    """One run's use of the shared :class:`Slots`: a thread-local flag says whether the current
    thread holds a slot for a task of this run, so that giving it back around nested work and
    releasing it at the end happen exactly once."""

    __slots__ = ("slots", "cancel", "_tls")

    def __init__(self, slots: Slots, cancel: threading.Event) -> None:
        self.slots = slots
        self.cancel = cancel
        self._tls = threading.local()

    def acquire(self) -> bool:
        """Wait for a slot, looking at the cancel event; False if canceled meanwhile."""
        while not self.slots.acquire(timeout=POLL_S):
            if self.cancel.is_set():
                return False
        return True

    def try_acquire(self) -> bool:
        """A slot only if one is free now."""
        return self.slots.acquire(blocking=False)

    def hold(self) -> None:
        """The current thread now holds a slot it acquired (see :meth:`let_go`)."""
        self._tls.holding = True

    def let_go(self) -> None:
        """Release the current thread's slot, if it still holds one."""
        tls = self._tls
        if getattr(tls, "holding", False):
            self.slots.release()
        tls.holding = False

    def released(self) -> _SlotRelease:
        """Context manager: give this thread's task slot back while it waits on other work."""
        return _SlotRelease(self)


class _SlotRelease:
    """Gives the current thread's task slot back for the duration of a ``with`` block."""

    __slots__ = ("_owner", "_had")

    def __init__(self, owner: TaskSlots) -> None:
        self._owner = owner
        self._had = False

    def __enter__(self) -> None:
        tls = self._owner._tls
        self._had = getattr(tls, "holding", False)
        if self._had:
            tls.holding = False
            self._owner.slots.release()

    def __exit__(self, *exc: object) -> None:
        if self._had:
            # Reacquire even when canceled: the caller's let_go releases it once more.
            self._owner.slots.acquire()
            self._owner._tls.holding = True
