"""One execution of one executable: the record every part of the executor passes around."""

from __future__ import annotations

from dtsx.engine.model import Executable
from dtsx.engine.variables import Scope
from dtsx.tasks.base import Task

__all__ = ["Frame", "unlink"]


class Frame:
    """One execution of one executable: its scope, its error count, its parent frame."""

    __slots__ = ("exe", "parent", "scope", "errors", "fatal_child", "handler", "task")

    def __init__(
        self, exe: Executable, parent: Frame | None, scope: Scope, handler: bool = False
    ) -> None:
        self.exe = exe
        self.parent = parent
        self.scope = scope
        self.errors = 0
        self.fatal_child = False
        self.handler = handler
        self.task: Task | None = None

    def failed_by_errors(self) -> bool:
        """A fatal child, or as many errors as MaximumErrorCount allows (0: no limit)."""
        limit = self.exe.max_error_count
        return self.fatal_child or (limit > 0 and self.errors >= limit)


def unlink(frame: Frame) -> None:
    """Break the frame <-> scope (and frame -> task) links of a finished execution, so that
    reference counting frees them at once: left to the cyclic collector, thousands of them
    trigger full collections, each a pass over every object of the plan."""
    frame.scope.owner = None
    frame.task = None
