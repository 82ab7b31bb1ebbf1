"""Opening files that a package names, without being stopped by what they turn out to be.

A path in a package, a parameter or a command line may name a FIFO (opening it waits for a
writer, forever), a device (``/dev/zero`` never ends) or a directory. Every reader of such a path
opens it here: non-blocking, so a FIFO cannot hang the open, then checks what was opened (fstat,
so the path cannot be swapped between the check and the read). Imports nothing from dtsx, so the
loader, the connection managers and the tasks may all use it.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat

__all__ = [
    "ALLOW_SHARED_SECRET_FILES_ENV",
    "NotARegularFile",
    "SECRET_FILE_LIMIT",
    "SecretFileError",
    "decode_marked_or_utf8",
    "file_kind",
    "open_regular",
    "read_secret_file",
]

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


# The switch that lets a secret file be shared with other users (as a group-readable file on a
# server where a service group shares one account). Off: such a file is refused, as ssh refuses
# a private key that others can read.
ALLOW_SHARED_SECRET_FILES_ENV = "DTSX_ALLOW_SHARED_SECRET_FILES"
SECRET_FILE_LIMIT = 64 * 1024  # bytes read at most: a password is one short line


class SecretFileError(PermissionError):
    """A password file that dtsx refuses to read; ``strerror`` is one clause saying why and what to
    do."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(errno.EACCES, reason, path)


def read_secret_file(path: str, *, allow_shared: bool | None = None) -> str:
    """A password kept in a file (``PasswordFile``, ``--decrypt-file``): its first line, without
    the line break (LF or CRLF); spaces may belong to the password. The file must be a regular
    file (or a pipe, as ``<(command)`` gives) that other users can neither read nor write, unless
    ``allow_shared`` or the environment variable ``DTSX_ALLOW_SHARED_SECRET_FILES=1`` says
    otherwise.

    Raises OSError (SecretFileError for a refused file, whose ``strerror`` says why), or
    UnicodeDecodeError for a file that is not UTF-8.
    """
    if allow_shared is None:
        allow_shared = os.environ.get(ALLOW_SHARED_SECRET_FILES_ENV, "").strip().lower() in (
            "1",
            "true",
            "yes",
        )
    full = os.path.expanduser(path)
    try:
        fd = open_regular(
            full, allow_fifo=True
        )  # a pipe as `<(command)` gives; never waits to open
    except NotARegularFile:
        raise SecretFileError(
            path, "it is not a regular file; keep the password in a plain file"
        ) from None
    try:
        info = os.fstat(fd)  # of what was opened, so the file cannot be swapped after the check
        _check_secret_file(path, info.st_mode, allow_shared)
        data = _first_line(fd, path)
    finally:
        os.close(fd)
    text = data.decode("utf-8").removeprefix("\ufeff")  # Notepad's UTF-8 byte-order mark
    if not text:
        raise SecretFileError(path, "its first line is empty; write the password on the first line")
    return text


def _check_secret_file(path: str, mode: int, allow_shared: bool) -> None:
    if stat.S_ISFIFO(mode):
        return
    if mode & 0o077 and not allow_shared:
        raise SecretFileError(
            path,
            f"its mode {stat.S_IMODE(mode):04o} lets other users read or change it; run chmod 600 "
            "on it, "
            f"or set {ALLOW_SHARED_SECRET_FILES_ENV}=1 to accept that",
        )


def _first_line(fd: int, path: str) -> bytes:
    """The bytes before the first line break, reading no more than SECRET_FILE_LIMIT."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(fd, SECRET_FILE_LIMIT + 1 - len(data))
        if not chunk:
            break
        data += chunk
        if len(data) > SECRET_FILE_LIMIT and b"\n" not in data:
            raise SecretFileError(
                path,
                f"its first line is longer than {SECRET_FILE_LIMIT} bytes; "
                "write the password alone on the first line",
            )
    line = data.split(b"\n", 1)[0]
    return line[:-1] if line.endswith(b"\r") else line


def decode_marked_or_utf8(data: bytes) -> str | None:
    """A text file's bytes as its readers take them: a byte-order mark decides (UTF-8, UTF-16;
    bytes that do not decode are replaced), else UTF-8; None when it is neither, for the caller's
    fallback (Send Mail: Windows-1252 with a warning; Execute SQL: the task's CodePage)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
