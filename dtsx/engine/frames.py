"""One execution of one executable: the record every part of the executor passes around."""

from __future__ import annotations

from collections.abc import Callable

from dtsx.engine.model import Executable
from dtsx.engine.transactions import NOT_SUPPORTED, REQUIRED, Transaction
from dtsx.engine.variables import Scope
from dtsx.tasks.base import Task

__all__ = ["Frame", "unlink"]


class Frame:
    """One execution of one executable: its scope, its error count, its parent frame, and the
    transaction in force (SSIS TransactionOption: the parent's, unless the executable is
    NotSupported; a Required one with none in force starts its own when it runs)."""

    __slots__ = (
        "exe",
        "parent",
        "scope",
        "errors",
        "fatal_child",
        "handler",
        "task",
        "transaction",
    )

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
        # The parent's transaction first: with none in force (most runs) the model's field is
        # not read (a pydantic attribute, several times dearer than a slot).
        transaction = parent.transaction if parent is not None else None
        self.transaction: Transaction | None = (
            transaction
            if transaction is not None and exe.transaction_option != NOT_SUPPORTED
            else None
        )

    def starts_transaction(self) -> bool:
        """Whether this execution starts a transaction: Required, and none in force."""
        return self.transaction is None and self.exe.transaction_option == REQUIRED

    def start_transaction(self, warn: Callable[[str], None]) -> Transaction:
        """The transaction this execution starts, at its IsolationLevel; ``warn`` raises an
        OnWarning for it. ExecutionError for an IsolationLevel that is no SSIS code."""
        self.transaction = Transaction(self.exe.ref_id, self.exe.isolation_level, warn)
        return self.transaction

    def end_transaction(self, commit: bool) -> str | None:
        """End the transaction this execution started (:meth:`Transaction.end`): what runs for
        it afterwards (its OnPostExecute and OnError handlers) runs outside any transaction."""
        transaction, self.transaction = self.transaction, None
        return transaction.end(commit) if transaction is not None else None

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
    frame.transaction = None  # its warning callback refers back to the frame
