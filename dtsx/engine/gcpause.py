"""One speed trick, in one place: pausing Python's cyclic garbage collector while a big tree of
objects is built.

The loader's model and the planner's plan are trees without reference cycles; with the collector
running, building tens of thousands of their objects triggers repeated full collections (pausing
it halved load time, see bench/load.py). Pauses nest and may overlap across threads: a counter
under a lock decides, so the collector is re-enabled exactly when the last pause ends, and only if
it was enabled when the first one began. (Two threads that each checked ``gc.isenabled()`` and
then disabled it could leave it disabled for good.) When the last pause ends, what was made
during it goes to the oldest generation without a scan (``_promote_young``).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the ``with`` block (reference counting still frees)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                _promote_young()
                gc.enable()


def _promote_young() -> None:
    """Move every tracked object to the oldest generation, unscanned.

    Re-enabled with tens of thousands of young objects pending, the collector would scan them
    all at the very next allocation (a fifth of load+plan time on bench/load.py), only to find
    the live, acyclic tree the pause was for. ``gc.freeze()`` then ``gc.unfreeze()`` moves them
    to the oldest generation in constant time, where only a full collection looks at them.
    Skipped when a program has frozen objects of its own (a pre-fork server): unfreezing would
    hand its objects back to the collector.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
