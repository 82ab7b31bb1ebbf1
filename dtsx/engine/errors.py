"""The whole dtsx exception tree.

::

    DtsxError                         never raised bare; str() is a whole, actionable sentence
    ├── PackageLoadError              bad XML or structure: file and line
    │   └── PackageNotFoundError      the package file does not exist (dtexec exit code 4)
    ├── PackageValidationError        every problem found, each with file, line and refId
    ├── PackageWriteError             the writer refuses what the loader would not read back
    ├── PluginError                   an entry point that fails to import, is no plugin, or clashes
    │   └── UnknownKeyError           (engine.registry) no plugin under that key; with did-you-mean
    └── ExecutionError                raised inside tasks and connection managers
        ├── TaskFailedError           the task decided it failed
        │   └── PropertyValueError    property values a task cannot take, one SSIS sentence each
        ├── ConnectionManagerError    from smtplib / OSError / spnego (``raise ... from exc``)
        └── ExpressionError           with the expression text and the offset

Loading and planning raise before anything runs; execution records. This module imports no
other project module, so every other module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DtsxError",
    "PackageLoadError",
    "PackageNotFoundError",
    "PackageValidationError",
    "PackageWriteError",
    "Problem",
    "PluginError",
    "ExecutionError",
    "TaskFailedError",
    "PropertyValueError",
    "ConnectionManagerError",
    "ExpressionError",
]


class DtsxError(Exception):
    """Base of every error dtsx raises on purpose. ``str()`` is one actionable sentence."""


class PackageLoadError(DtsxError):
    """The file is not a package dtsx can read: bad XML, wrong structure, encrypted, too large."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        if self.file is None:
            return self.message
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class PackageNotFoundError(PackageLoadError):
    """The package (or project) file does not exist; the CLI exits with code 4."""


@dataclass(frozen=True)
class Problem:
    """One validation problem; ``code`` is a short stable slug (``unsupported-task``, ``cycle``)."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    ref_id: str | None = None

    def __str__(self) -> str:
        where = self.file or "<package>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        ref = f" [{self.ref_id}]" if self.ref_id else ""
        return f"{where}{ref}: {self.message} ({self.code})"

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "ref_id": self.ref_id,
        }


class PackageValidationError(DtsxError):
    """Planning found problems; ``problems`` holds every one of them, not just the first."""

    def __init__(self, problems: list[Problem], *, file: str | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        count = len(self.problems)
        head = f"{file}: " if file else ""
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{head}the package has {count} {noun} and cannot run:\n{lines}")


class PackageWriteError(DtsxError):
    """The package cannot be written as a file the loader reads back; the message names the element
    and the limit."""


class PluginError(DtsxError):
    """A plugin could not be registered or imported."""


class ExecutionError(DtsxError):
    """Raised inside tasks and connection managers while a package runs."""


class TaskFailedError(ExecutionError):
    """The task decided that it failed; the message says why and what to do."""


class PropertyValueError(TaskFailedError):
    """A task's properties refuse their values: ``problems`` holds one sentence per bad value,
    quoting it as the package wrote it (``Append="maybe" is not a boolean (True/False)``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


class ConnectionManagerError(ExecutionError):
    """A connection could not be made or used. Carries host, port and, for SMTP, the reply code."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        code: int | None = None,
        reply: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.code = code
        self.reply = reply
        super().__init__(message)


class ExpressionError(ExecutionError):
    """A bad expression: syntax, type, overflow, bad cast, bad argument.

    ``text`` is the whole expression and ``offset`` the 0-based character offset of the fault
    (``None`` where the fault is not at one place, e.g. a run-time overflow of the whole result).
    """

    def __init__(self, message: str, *, text: str = "", offset: int | None = None) -> None:
        self.text = text
        self.offset = offset
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.text:
            return self.message
        where = f" at offset {self.offset}" if self.offset is not None else ""
        return f"{self.message}{where} in expression {self.text!r}"
