"""Opening files that a package names, without being stopped by what they turn out to be.

A path in a package, a parameter or a command line may name a FIFO (opening it waits for a
writer, forever), a device (``/dev/zero`` never ends) or a directory. Every reader of such a path
opens it here: non-blocking, so a FIFO cannot hang the open, then checks what was opened (fstat,
so the path cannot be swapped between the check and the read). Imports nothing from dtsx, so the
loader, the connection managers and the tasks may all use it.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["NotARegularFile", "file_kind", "open_regular"]

# O_NOCTTY: a terminal device must not become the controlling terminal; O_CLOEXEC: child
# processes (Execute Process) do not inherit the descriptor.
_FLAGS = (
    os.O_RDONLY
    | os.O_NONBLOCK
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


class NotARegularFile(OSError):
    """The path names something other than a regular file; ``kind`` says what (``strerror`` too)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"it is {kind}, not a regular file", path)
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, as a sentence names it ("a named pipe (FIFO)")."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def open_regular(path: str, *, follow: bool = True, allow_fifo: bool = False) -> int:
    """A blocking read-only descriptor of the regular file at ``path`` (the caller closes it).

    Raises NotARegularFile for anything else (a FIFO too, unless ``allow_fifo``), without ever
    waiting on it; ``follow`` False refuses a symbolic link (ELOOP). Other failures are the
    OSError the system gave (FileNotFoundError, PermissionError, ...); a NUL in the path is
    ValueError, as ``os.open`` raises it.
    """
    _require(
        path, (os.stat if follow else os.lstat)(path).st_mode, allow_fifo
    )  # no device is ever opened
    fd = os.open(path, _FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    try:
        _require(
            path, os.fstat(fd).st_mode, allow_fifo
        )  # what was opened: the path may have changed
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _require(path: str, mode: int, allow_fifo: bool) -> None:
    if not (stat.S_ISREG(mode) or (allow_fifo and stat.S_ISFIFO(mode))):
        raise NotARegularFile(path, file_kind(mode))
