"""The File System task: copy, move, rename and delete files and directories, set attributes.

Source and destination are each one of: a FILE connection manager (by DTSID, name or refId;
its ``acquire()`` returns the mapped local path), a variable holding a path
(``TaskIsSourceVariable``), or, when nothing by that name exists, a literal path. Literal and
variable paths go through ``ctx.local_path`` (``--path-map``). As in SSIS, an existing
destination is replaced only when ``OverwriteDestination`` is true.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from dtsx.engine.paths import unmapped_windows_path
from dtsx.engine.errors import TaskFailedError
from dtsx.engine.files import NotARegularFile, file_kind, open_regular
from dtsx.tasks.base import Task, TaskContext, TaskProperties, ValidationContext, register_task
from dtsx.tasks.base import SsisBool
from pydantic import AliasChoices, BeforeValidator, Field

__all__ = ["FileSystemOperation", "FileSystemTask"]


class FileSystemOperation(IntEnum):
    """DTSFileSystemOperation: the codes and the names persisted in ``TaskOperationType``."""

    CopyFile = 0
    MoveFile = 1
    DeleteFile = 2
    RenameFile = 3
    SetAttributes = 4
    CreateDirectory = 5
    CopyDirectory = 6
    MoveDirectory = 7
    DeleteDirectory = 8
    DeleteDirectoryContent = 9

    @property
    def needs_destination(self) -> bool:
        return self in _WITH_DESTINATION


_WITH_DESTINATION = {
    FileSystemOperation.CopyFile,
    FileSystemOperation.MoveFile,
    FileSystemOperation.RenameFile,
    FileSystemOperation.CopyDirectory,
    FileSystemOperation.MoveDirectory,
}
_ATTRIBUTES = {"normal", "readonly", "hidden", "system", "archive"}


def _operation(value: Any) -> Any:
    if isinstance(value, FileSystemOperation) or value is None:
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return FileSystemOperation(int(text))
    for op in FileSystemOperation:
        if op.name.lower() == text.lower():
            return op
    names = ", ".join(op.name for op in FileSystemOperation)
    raise ValueError(f"unknown operation {text!r}; it must be one of {names}")


@register_task("Microsoft.FileSystemTask")
class FileSystemTask(Task):
    """Performs one file-system operation on one source (and destination)."""

    class Properties(TaskProperties):
        operation: Annotated[FileSystemOperation, BeforeValidator(_operation)] = Field(
            FileSystemOperation.CopyFile,
            validation_alias=AliasChoices("TaskOperationType", "Operation", "operation"),
        )
        operation_name: str = Field(
            "", validation_alias=AliasChoices("OperationName", "operation_name")
        )
        overwrite: SsisBool = Field(
            False,
            validation_alias=AliasChoices(
                "TaskOverwriteDestFile", "OverwriteDestination", "overwrite"
            ),
        )
        source: str = Field("", validation_alias=AliasChoices("TaskSourcePath", "Source", "source"))
        source_is_variable: SsisBool = Field(
            False,
            validation_alias=AliasChoices(
                "TaskIsSourceVariable", "IsSourcePathVariable", "source_is_variable"
            ),
        )
        destination: str = Field(
            "", validation_alias=AliasChoices("TaskDestinationPath", "Destination", "destination")
        )
        destination_is_variable: SsisBool = Field(
            False,
            validation_alias=AliasChoices(
                "TaskIsDestinationVariable", "IsDestinationPathVariable", "destination_is_variable"
            ),
        )
        attributes: str = Field(
            "Normal",
            validation_alias=AliasChoices("TaskFileAttributes", "Attributes", "attributes"),
        )
        # No persisted name for this was found in real packages; None falls back to
        # OverwriteDestination.
        use_directory_if_exists: SsisBool | None = Field(
            None,
            validation_alias=AliasChoices(
                "TaskUseDirectoryIfExists", "UseDirectoryIfExists", "use_directory_if_exists"
            ),
        )

    props: Properties

    # -- validation -------------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        p = self.props
        problems = self._check_end(
            vctx, "source", p.source, p.source_is_variable, ("Source", "SourceConnection")
        )
        if p.operation.needs_destination:
            problems += self._check_end(
                vctx,
                "destination",
                p.destination,
                p.destination_is_variable,
                ("Destination", "DestinationConnection"),
            )
        if p.operation is FileSystemOperation.SetAttributes and not vctx.is_dynamic("Attributes"):
            unknown = [a for a in _split_attributes(p.attributes) if a not in _ATTRIBUTES]
            if unknown:
                problems.append(
                    f"Attributes {p.attributes!r} has unknown names {unknown}; use ReadOnly, "
                    "Hidden, Archive, System or Normal."
                )
        return problems

    def _check_end(
        self,
        vctx: ValidationContext,
        role: str,
        value: str,
        is_variable: bool,
        runtime: tuple[str, ...],
    ) -> list[str]:
        if vctx.is_dynamic(*runtime):
            return []
        op = self.props.operation.name
        if not value.strip():
            return [
                f"the File System task ({op}) has no {role}; set its {role} connection or variable."
            ]
        if is_variable and not vctx.has_variable(value.strip()):
            return [f"the {role} variable {value.strip()!r} does not exist in the task's scope."]
        if is_variable:
            return []
        kind = vctx.connection_type(value.strip())
        if kind is None and not _looks_like_path(value):
            return [
                f"the {role} {value.strip()!r} names no connection manager of the package or "
                "project."
            ]
        if kind is not None and kind.upper() not in ("FILE", "FLATFILE"):
            return [
                f"the {role} connection {value.strip()!r} is a {kind} connection; the File System "
                "task needs a FILE connection."
            ]
        return []

    # -- execution --------------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        op = self.props.operation
        source = self._path(ctx, "source", self.props.source, self.props.source_is_variable)
        destination = (
            self._path(
                ctx, "destination", self.props.destination, self.props.destination_is_variable
            )
            if op.needs_destination
            else None
        )
        handler: Callable[..., None] = getattr(self, f"_{op.name}")
        try:
            handler(ctx, source, destination) if op.needs_destination else handler(ctx, source)
        except OSError as exc:
            target = f"{source} -> {destination}" if destination else source
            raise TaskFailedError(
                f"{op.name} failed on {target}: {exc.strerror or exc}; check the paths and their "
                "permissions."
            ) from exc

    def _path(self, ctx: TaskContext, role: str, ref: str, is_variable: bool) -> str:
        ref = ref.strip()
        if not ref:
            raise TaskFailedError(
                f"the File System task has no {role}; set its {role} connection or variable."
            )
        if is_variable:
            value = ctx.variables.get(ref)
            text = "" if value is None else str(value).strip()
            if not text:
                raise TaskFailedError(
                    f"the {role} variable {ref} is empty; it must hold a file or folder path."
                )
            return _local(ctx, text, f"the {role} variable {ref} holds")
        finder = getattr(ctx.connections, "find", None)
        if finder is not None and finder(ref) is None and _looks_like_path(ref):
            return _local(
                ctx, ref, f"the {role}"
            )  # a path given directly, e.g. by a property expression
        path = ctx.connections.acquire(ref)
        if not isinstance(path, str):
            raise TaskFailedError(
                f"the {role} connection {ref!r} is not a FILE connection (it gives "
                f"{type(path).__name__}); "
                "point the task at a FILE connection manager or a variable."
            )
        return path

    # -- operations -------------------------------------------------------------------------

    def _CopyFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source, regular=True)
        target = self._file_target(source, destination)
        _copy_file(ctx, source, target, follow=True)
        ctx.events.information(f"copied {source} to {target}.")

    def _MoveFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source)
        target = self._file_target(source, destination)
        _replace_move(ctx, source, target)
        ctx.events.information(f"moved {source} to {target}.")

    def _RenameFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source)
        # The destination is the new full name; an existing folder there means "into that folder".
        target = self._file_target(source, destination)
        _replace_move(ctx, source, target)
        ctx.events.information(f"renamed {source} to {target}.")

    def _DeleteFile(self, ctx: TaskContext, source: str) -> None:
        _require_file(source)
        os.remove(source)
        ctx.events.information(f"deleted {source}.")

    def _CreateDirectory(self, ctx: TaskContext, source: str) -> None:
        if os.path.isdir(source):
            reuse = self.props.use_directory_if_exists
            if reuse is None:
                reuse = self.props.overwrite
            if not reuse:
                raise TaskFailedError(
                    f"the directory {source} already exists; set UseDirectoryIfExists to True to "
                    "use it."
                )
            return
        if os.path.exists(source):
            raise TaskFailedError(
                f"cannot create the directory {source}: a file with that name exists."
            )
        os.makedirs(source)
        ctx.events.information(f"created the directory {source}.")

    def _DeleteDirectory(self, ctx: TaskContext, source: str) -> None:
        _require_dir(source)
        if os.path.islink(source):
            # The task names the link: remove it, never what it points to.
            os.remove(source)
            ctx.events.information(
                f"removed the link {source}; the directory it points to was not touched."
            )
            return
        _delete_tree(ctx, source, keep_root=False)
        ctx.events.information(f"deleted the directory {source}.")

    def _DeleteDirectoryContent(self, ctx: TaskContext, source: str) -> None:
        _require_dir(source)
        _delete_tree(ctx, source, keep_root=True)
        ctx.events.information(f"deleted the content of {source}.")

    def _CopyDirectory(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_dir(source)
        _refuse_inside(source, destination, "copy")
        if os.path.lexists(destination) and not self.props.overwrite:
            raise _exists(destination)
        if os.path.lexists(destination) and not os.path.isdir(destination):
            os.remove(destination)
        # The destination becomes a copy of the source folder (its content, recursively).
        _copy_tree(ctx, source, destination)
        ctx.events.information(f"copied the directory {source} to {destination}.")

    def _MoveDirectory(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_dir(source)
        _refuse_inside(source, destination, "move")
        if os.path.lexists(destination):
            if not self.props.overwrite:
                raise _exists(destination)
            _refuse_inside(destination, source, "replace")
            _remove(ctx, destination)
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another file system: copy, then remove the source only once the copy is whole.
            _copy_tree(ctx, source, destination)
            _delete_tree(ctx, source, keep_root=False, cancellable=False)
        ctx.events.information(f"moved the directory {source} to {destination}.")

    def _SetAttributes(self, ctx: TaskContext, source: str) -> None:
        if not os.path.exists(source):
            raise TaskFailedError(
                f"the file or directory {source} does not exist, so its attributes cannot be set."
            )
        wanted = set(_split_attributes(self.props.attributes))
        mode = os.stat(source).st_mode
        write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        if "readonly" in wanted:
            os.chmod(source, mode & ~write_bits)
        else:
            os.chmod(source, mode | stat.S_IWUSR)
        ignored = sorted(wanted & {"hidden", "system", "archive"})
        if ignored:
            ctx.events.warning(
                f"the attributes {', '.join(ignored)} have no equivalent on this system and were "
                f"not set on {source}."
            )

    def _file_target(self, source: str, destination: str) -> str:
        """The destination file: inside ``destination`` if it is a folder; refuses to overwrite."""
        target = (
            os.path.join(destination, os.path.basename(source))
            if os.path.isdir(destination)
            else destination
        )
        if os.path.isdir(target) and not os.path.islink(target):
            raise TaskFailedError(
                f"the destination {target} is a directory, so the file cannot be written there."
            )
        # lexists: a link there (even a dangling one) is an existing destination, replaced, never
        # written through.
        if os.path.lexists(target) and not self.props.overwrite:
            raise _exists(target)
        parent = os.path.dirname(target) or "."
        if not os.path.isdir(parent):
            raise TaskFailedError(
                f"the destination folder {parent} does not exist; create it first "
                "(CreateDirectory) or map it with --path-map."
            )
        return target


def _local(ctx: TaskContext, path: str, what: str) -> str:
    local = ctx.local_path(path)
    problem = unmapped_windows_path(path, local)
    if problem is not None:
        raise TaskFailedError(f"{what} {problem}.")
    return local


def _split_attributes(text: str) -> list[str]:
    return [a.strip().lower() for a in text.replace("|", ",").split(",") if a.strip()]


def _looks_like_path(text: str) -> bool:
    return any(ch in text for ch in "/\\") or (len(text) > 1 and text[1] == ":")


def _require_file(path: str, *, regular: bool = False) -> None:
    if os.path.isdir(path):
        raise TaskFailedError(
            f"the source {path} is a directory; use a directory operation for it."
        )
    if not os.path.lexists(path):
        raise TaskFailedError(
            f"the source file {path} does not exist; check the path or map it with --path-map."
        )
    if regular:
        _require_regular(path, os.stat(path).st_mode)


def _require_regular(path: str, mode: int) -> None:
    """Copying reads the source to its end: a FIFO would block and a device may never end."""
    if not stat.S_ISREG(mode):
        raise _not_copyable(path, file_kind(mode))


def _not_copyable(path: str, kind: str) -> TaskFailedError:
    return TaskFailedError(
        f"the source {path} is {kind}, not a regular file, so it cannot be copied; "
        "point the task at a regular file (or remove it from the folder being copied)."
    )


def _require_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise TaskFailedError(
            f"the source directory {path} does not exist; check the path or map it with --path-map."
        )


def _refuse_inside(outer: str, inner: str, verb: str) -> None:
    """Refuse when ``inner`` is ``outer`` or lies inside it (a copy into itself never ends)."""
    real_outer, real_inner = os.path.realpath(outer), os.path.realpath(inner)
    if _within(real_inner, real_outer):
        if verb == "replace":
            raise TaskFailedError(
                f"cannot replace the destination {outer}: it holds the source {inner}, which would "
                "be deleted "
                "with it; choose another destination."
            )
        raise TaskFailedError(
            f"cannot {verb} {outer} to {inner}: the destination is the source or inside it; "
            "choose a destination outside the source folder."
        )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _exists(path: str) -> TaskFailedError:
    return TaskFailedError(
        f"the destination {path} already exists and OverwriteDestination is False; set it to True "
        "or remove the file."
    )


def _remove(ctx: TaskContext, path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        _delete_tree(ctx, path, keep_root=False)
    else:
        os.remove(path)


def _replace_move(ctx: TaskContext, source: str, target: str) -> None:
    # os.replace is atomic on one file system and replaces a link at the target rather than its
    # target.
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_file(ctx, source, target, follow=False)
        os.remove(source)


def _check_cancel(ctx: TaskContext, doing: str) -> None:
    if ctx.cancelled:
        raise _Canceled(f"the run was canceled while {doing}.")


class _Canceled(TaskFailedError):
    """Cancellation seen between files or chunks; the caller adds what was left behind."""


# -- copying files and trees ------------------------------------------------------------------

_CHUNK = 1 << 20  # bytes read between two looks at the cancel event


def _copy_file(ctx: TaskContext, source: str, target: str, *, follow: bool) -> None:
    """Copy one regular file in chunks into a temporary sibling of ``target``, then rename it over.

    A canceled or failed copy leaves ``target`` as it was, and the rename replaces a link at
    ``target`` instead of writing through it. ``follow`` False refuses a source that is a link.
    """
    try:
        _copy_file_chunks(ctx, source, target, follow)
    except _Canceled as exc:
        raise _Canceled(f"{exc.args[0].rstrip('.')}; {target} was left as it was.") from exc


def _copy_file_chunks(ctx: TaskContext, source: str, target: str, follow: bool) -> None:
    try:
        fd = open_regular(source, follow=follow)
    except NotARegularFile as exc:
        raise _not_copyable(source, exc.kind) from exc
    with open(fd, "rb", closefd=True) as reader:
        out_fd, partial = tempfile.mkstemp(
            dir=os.path.dirname(target) or ".", prefix=".dtsx-", suffix=".partial"
        )
        try:
            with open(out_fd, "wb", closefd=True) as writer:
                while chunk := reader.read(_CHUNK):
                    _check_cancel(ctx, f"copying {source}")
                    writer.write(chunk)
            shutil.copystat(source, partial)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise


@dataclass
class _TreeEntry:
    rel: str  # path inside the tree
    kind: str  # "dir", "file" or "link"
    link: str = ""  # a link's target, as the copy must hold it


@dataclass
class _Tally:
    files: int = 0
    dirs: int = 0
    links: int = 0

    def add(self, kind: str) -> None:
        if kind == "file":
            self.files += 1
        elif kind == "dir":
            self.dirs += 1
        else:
            self.links += 1

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs or self.links)

    def __str__(self) -> str:
        return f"{self.files} file(s), {self.dirs} folder(s) and {self.links} link(s)"


def _plan_tree(ctx: TaskContext, root: str) -> list[_TreeEntry]:
    """Every entry below ``root``, parents first, without following a link or recursing.

    Links are copied as links; a directory seen twice (a bind-mount loop) and special files
    are refused before anything is written.
    """
    real_root = os.path.realpath(root)
    top = os.stat(root)
    seen = {(top.st_dev, top.st_ino)}
    entries: list[_TreeEntry] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        _check_cancel(ctx, f"listing {root}")
        with os.scandir(os.path.join(root, rel_dir)) as listing:
            for item in listing:
                rel = os.path.join(rel_dir, item.name)
                if item.is_symlink():
                    entries.append(_TreeEntry(rel, "link", _link_target(real_root, item.path)))
                elif item.is_dir(follow_symlinks=False):
                    info = item.stat(follow_symlinks=False)
                    if (info.st_dev, info.st_ino) in seen:
                        raise TaskFailedError(
                            f"the folder {item.path} is a folder already met in {root} (a loop, "
                            "e.g. a bind mount); "
                            "remove the loop from the source"
                        )
                    seen.add((info.st_dev, info.st_ino))
                    entries.append(_TreeEntry(rel, "dir"))
                    pending.append(rel)
                else:
                    _require_regular(item.path, item.stat(follow_symlinks=False).st_mode)
                    entries.append(_TreeEntry(rel, "file"))
    return entries


def _link_target(real_root: str, link: str) -> str:
    """The target a copied link gets: the same relative text when it stays in the tree, else where
    it leads."""
    text = os.readlink(link)
    link_dir = os.path.dirname(link)
    resolved = os.path.realpath(os.path.join(link_dir, text))
    if not _within(resolved, real_root):
        return resolved  # outside the tree: point at the same place, absolutely
    rel_dir = os.path.relpath(os.path.realpath(link_dir), real_root)
    lexical = os.path.normpath(os.path.join(rel_dir, text))
    if (
        not os.path.isabs(text)
        and lexical != os.pardir
        and not lexical.startswith(os.pardir + os.sep)
    ):
        return text  # relative and inside: kept as written, so it points inside the copy
    return os.path.relpath(resolved, os.path.realpath(link_dir))


def _copy_tree(ctx: TaskContext, source: str, destination: str) -> None:
    """Copy the tree under ``source`` into ``destination``; a failure says what is left there."""
    done = _Tally()
    try:
        entries = _plan_tree(ctx, source)
        os.makedirs(destination, exist_ok=True)
        for entry in entries:
            _check_cancel(ctx, f"copying {source}")
            _copy_entry(
                ctx, os.path.join(source, entry.rel), os.path.join(destination, entry.rel), entry
            )
            done.add(entry.kind)
        for entry in reversed(entries):  # folder times last: copying into a folder changes them
            if entry.kind == "dir":
                shutil.copystat(
                    os.path.join(source, entry.rel), os.path.join(destination, entry.rel)
                )
    except (OSError, TaskFailedError) as exc:
        reason = (
            str(exc)
            if isinstance(exc, TaskFailedError)
            else f"{exc.strerror or exc} ({exc.filename})"
        )
        left = (
            f"{done} were already copied to {destination} and were left there; remove them or run "
            "the task "
            "again with OverwriteDestination True"
            if done
            else "nothing was copied"
        )
        raise TaskFailedError(
            f"copying {source} to {destination} stopped: {reason.rstrip('.')}; {left}."
        ) from exc
    outside = [e.rel for e in entries if e.kind == "link" and os.path.isabs(e.link)]
    if outside:
        shown = ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else "")
        ctx.events.warning(
            f"{len(outside)} link(s) in {source} point outside it ({shown}); they were copied as "
            "links to the same places, not followed."
        )


def _copy_entry(ctx: TaskContext, source: str, target: str, entry: _TreeEntry) -> None:
    existing = os.lstat(target) if os.path.lexists(target) else None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        if entry.kind == "dir":
            return  # merge into the folder already there
        raise TaskFailedError(
            f"the destination {target} is a folder, so {source} cannot be written there"
        )
    if entry.kind == "file":
        _copy_file(ctx, source, target, follow=False)  # replaces a file or link already there
        return
    if existing is not None:
        os.remove(target)  # a file or link where a folder or link goes: never write through it
    if entry.kind == "dir":
        os.mkdir(target)
    else:
        os.symlink(entry.link, target)


# -- deleting trees ------------------------------------------------------------------------------


def _delete_tree(ctx: TaskContext, root: str, *, keep_root: bool, cancellable: bool = True) -> None:
    """Delete what is under ``root`` (and ``root`` unless ``keep_root``) without following a link.

    Iterative, so depth is no limit; each folder is opened without following a link and its
    entries removed through that handle, so a folder swapped for a link is never descended.
    """
    folders: list[str] = []
    pending = [root]
    removed = 0
    try:
        while pending:
            folder = pending.pop()
            folders.append(folder)
            fd = os.open(
                folder, os.O_RDONLY | os.O_DIRECTORY | (os.O_NOFOLLOW if folder != root else 0)
            )
            try:
                with os.scandir(fd) as listing:
                    for item in listing:
                        if cancellable:
                            _check_cancel(ctx, f"deleting {root}")
                        if item.is_dir(follow_symlinks=False):
                            pending.append(os.path.join(folder, item.name))
                        else:
                            os.unlink(item.name, dir_fd=fd)
                            removed += 1
            finally:
                os.close(fd)
        for folder in reversed(folders[1:] if keep_root else folders):
            os.rmdir(folder)
            removed += 1
    except (OSError, TaskFailedError) as exc:
        reason = (
            str(exc)
            if isinstance(exc, TaskFailedError)
            else f"{exc.strerror or exc} ({exc.filename or folder})"
        )
        raise TaskFailedError(
            f"deleting under {root} stopped: {reason.rstrip('.')}; {removed} entries were removed "
            "and the rest is still there."
        ) from exc
