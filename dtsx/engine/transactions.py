"""SSIS transactions (TransactionOption=Required) on database connections, without DTC.

A container or task whose TransactionOption is Required and that runs with no transaction in
force starts a :class:`Transaction`; its children with Supported (the default) join it, and
NotSupported ones run outside it (their commits survive its rollback). Each database connection a
task leases inside it enlists once (the database manager begins it at the transaction's
isolation level); the transaction ends once, when the executable that started it finishes:
committed if that executable succeeded, rolled back if it failed or the run was canceled.

What dtsx promises where SSIS would use the Distributed Transaction Coordinator: one connection
commits or rolls back on its own; several connections commit together with two-phase commit when
every one can prepare (PostgreSQL's PREPARE TRANSACTION); otherwise they commit one after another
(with a warning that this is not atomic), and the first that fails rolls back those not yet
committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from dtsx.engine.errors import DtsxError, ExecutionError
from dtsx.engine.model import ISOLATION_LEVELS

if TYPE_CHECKING:
    from dtsx.connections.base import DatabaseLease, TransactionParticipant

__all__ = [
    "NOT_SUPPORTED",
    "SUPPORTED",
    "REQUIRED",
    "ISOLATION_SQL",
    "isolation_sql",
    "Transaction",
]

# DTSTransactionOption.
NOT_SUPPORTED, SUPPORTED, REQUIRED = 0, 1, 2

# SSIS's IsolationLevel names (model.ISOLATION_LEVELS holds the codes) -> the SQL words a
# connection begins at; "" leaves the server's default (Unspecified, and Chaos, which only SQL
# Server's old providers knew).
_SQL_WORDS = {
    "Unspecified": "",
    "Chaos": "",
    "ReadUncommitted": "READ UNCOMMITTED",
    "ReadCommitted": "READ COMMITTED",
    "RepeatableRead": "REPEATABLE READ",
    "Serializable": "SERIALIZABLE",
    "Snapshot": "SNAPSHOT",
}
ISOLATION_SQL: dict[int, str] = {code: _SQL_WORDS[name] for code, name in ISOLATION_LEVELS.items()}
_DEFAULT_ISOLATION = 1048576  # SSIS's default: Serializable


def isolation_sql(level: int | None) -> str:
    """The SQL isolation level for SSIS's IsolationLevel code (None: the default, Serializable)."""
    code = _DEFAULT_ISOLATION if level is None else level
    words = ISOLATION_SQL.get(code)
    if words is None:  # the planner refuses such a code before the run
        known = ", ".join(f"{name} {c}" for c, name in ISOLATION_LEVELS.items())
        raise ExecutionError(f"IsolationLevel {code} is not an SSIS isolation level ({known}).")
    return words


class Transaction:
    """One SSIS transaction: the connections enlisted in it, ended once by :meth:`end`.

    ``owner`` names the executable that started it (for messages); ``warn`` raises an OnWarning
    on it. Thread-safe: tasks running in parallel inside the scope enlist concurrently."""

    def __init__(
        self, owner: str, isolation_level: int | None, warn: Callable[[str], None]
    ) -> None:
        self.owner = owner
        self.isolation = isolation_sql(isolation_level)
        self._warn = warn
        self._lock = threading.Lock()
        self._participants: dict[str, TransactionParticipant] = {}
        self._ended = False

    # -- TransactionScope (connections.base) ---------------------------------------------------
    def enlisted(self, key: str) -> DatabaseLease | None:
        with self._lock:
            # Once ended, its connections are given back: never hand one out again.
            participant = None if self._ended else self._participants.get(key)
        return participant.lease if participant is not None else None

    def enlist(self, key: str, participant: TransactionParticipant) -> None:
        with self._lock:
            # Both are bugs of the caller: a manager enlists a connection once, and only while
            # the executable that owns the transaction still runs its children.
            if self._ended:
                raise RuntimeError(f"the transaction of {self.owner!r} has already ended")
            if key in self._participants:
                raise RuntimeError(f"connection {key!r} is already enlisted in {self.owner!r}")
            self._participants[key] = participant

    # -- the end -------------------------------------------------------------------------------
    @property
    def connections(self) -> list[str]:
        """The keys of the enlisted connections, in the order they joined."""
        with self._lock:
            return list(self._participants)

    def end(self, commit: bool) -> str | None:
        """Commit (``commit=True``) or roll back every enlisted connection, once; later calls do
        nothing. Never raises: returns the sentence for the owner's OnError when a connection
        could not do it, else None."""
        with self._lock:
            if self._ended:
                return None
            self._ended = True
            parts = list(self._participants.items())
        if not parts:
            return None
        if not commit:
            return self._rollback(parts)
        if len(parts) == 1:
            return self._commit_one(parts[0])
        if all(participant.two_phase for _, participant in parts):
            return self._commit_two_phase(parts)
        return self._commit_in_order(parts)

    def _commit_one(self, part: tuple[str, TransactionParticipant]) -> str | None:
        key, participant = part
        try:
            participant.commit()
        except Exception as exc:  # noqa: BLE001 - any driver failure: the owner fails with it
            self._rollback([part])  # the server dropped it already; this frees the connection
            return f"the transaction of {self.owner!r} could not commit on {key}: {_said(exc)}"
        return None

    def _commit_two_phase(self, parts: list[tuple[str, TransactionParticipant]]) -> str | None:
        for key, participant in parts:
            try:
                participant.prepare()
            except Exception as exc:  # noqa: BLE001 - nothing is committed yet: roll all back
                problem = self._rollback(parts)
                message = (
                    f"the transaction of {self.owner!r} could not prepare on {key}: "
                    f"{_said(exc)}; every connection in it was rolled back"
                )
                return f"{message} ({problem})" if problem else f"{message}."
        failed: list[str] = []
        for key, participant in parts:
            try:
                participant.commit()
            except Exception as exc:  # noqa: BLE001 - the others are prepared: commit them still
                failed.append(f"{key} ({_said(exc)})")
        if failed:
            return (
                f"the transaction of {self.owner!r} was prepared on every connection but could "
                f"not commit on {', '.join(failed)}; its prepared transaction waits on that "
                "server: COMMIT PREPARED or ROLLBACK PREPARED it there (pg_prepared_xacts "
                "lists it)."
            )
        return None

    def _commit_in_order(self, parts: list[tuple[str, TransactionParticipant]]) -> str | None:
        names = ", ".join(key for key, _ in parts)
        self._warn(
            f"the transaction of {self.owner!r} spans connections {names}, which cannot commit "
            "together (two-phase commit needs every one to support it; SSIS would use the "
            "Distributed Transaction Coordinator): dtsx commits them one after another, which "
            "is not atomic: a failure part-way leaves the earlier ones committed."
        )
        for index, (key, participant) in enumerate(parts):
            try:
                participant.commit()
            except Exception as exc:  # noqa: BLE001 - stop here: roll back what is left
                done = ", ".join(k for k, _ in parts[:index]) or "none"
                rest = parts[index:]
                problem = self._rollback(rest)
                message = (
                    f"the transaction of {self.owner!r} could not commit on {key}: {_said(exc)}; "
                    f"already committed: {done}; rolled back: {', '.join(k for k, _ in rest)}"
                )
                return f"{message} ({problem})" if problem else f"{message}."
        return None

    def _rollback(self, parts: list[tuple[str, TransactionParticipant]]) -> str | None:
        """Roll back every one of ``parts`` (all are tried); the failures in one sentence."""
        failed: list[str] = []
        for key, participant in parts:
            try:
                participant.rollback()
            except Exception as exc:  # noqa: BLE001 - the other connections must still roll back
                failed.append(f"{key} ({_said(exc)})")
        if failed:
            return f"the transaction of {self.owner!r} could not roll back on {', '.join(failed)}."
        return None


def _said(exc: BaseException) -> str:
    """What a failure says: a DtsxError's sentence as it is (the managers keep secrets out of
    theirs), else the exception's type and text, without a final full stop."""
    text = str(exc) if isinstance(exc, DtsxError) else f"{type(exc).__name__}: {exc}"
    return text.rstrip(". ")
