"""The File System task: copy, move, rename and delete files and directories, set attributes.

Source and destination are each one of: a FILE connection manager (by DTSID, name or refId;
its ``acquire()`` returns the mapped local path), a variable holding a path
(``TaskIsSourceVariable``), or, when nothing by that name exists, a literal path. Literal and
variable paths go through ``ctx.local_path`` (``--path-map``). As in SSIS, an existing
destination is replaced only when ``OverwriteDestination`` is true.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, Any

from dtsx.connections.base import unmapped_windows_path
from dtsx.engine.errors import TaskFailedError
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
            FileSystemOperation.CopyFile, validation_alias=AliasChoices("TaskOperationType", "Operation", "operation")
        )
        operation_name: str = Field("", validation_alias=AliasChoices("OperationName", "operation_name"))
        overwrite: SsisBool = Field(
            False, validation_alias=AliasChoices("TaskOverwriteDestFile", "OverwriteDestination", "overwrite")
        )
        source: str = Field("", validation_alias=AliasChoices("TaskSourcePath", "Source", "source"))
        source_is_variable: SsisBool = Field(
            False, validation_alias=AliasChoices("TaskIsSourceVariable", "IsSourcePathVariable", "source_is_variable")
        )
        destination: str = Field("", validation_alias=AliasChoices("TaskDestinationPath", "Destination", "destination"))
        destination_is_variable: SsisBool = Field(
            False,
            validation_alias=AliasChoices(
                "TaskIsDestinationVariable", "IsDestinationPathVariable", "destination_is_variable"
            ),
        )
        attributes: str = Field("Normal", validation_alias=AliasChoices("TaskFileAttributes", "Attributes", "attributes"))
        # No persisted name for this was found in real packages; None falls back to OverwriteDestination.
        use_directory_if_exists: SsisBool | None = Field(
            None,
            validation_alias=AliasChoices("TaskUseDirectoryIfExists", "UseDirectoryIfExists", "use_directory_if_exists"),
        )

    props: Properties

    # -- validation -------------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        p = self.props
        problems = self._check_end(vctx, "source", p.source, p.source_is_variable, ("Source", "SourceConnection"))
        if p.operation.needs_destination:
            problems += self._check_end(
                vctx, "destination", p.destination, p.destination_is_variable, ("Destination", "DestinationConnection")
            )
        if p.operation is FileSystemOperation.SetAttributes and not vctx.is_dynamic("Attributes"):
            unknown = [a for a in _split_attributes(p.attributes) if a not in _ATTRIBUTES]
            if unknown:
                problems.append(f"Attributes {p.attributes!r} has unknown names {unknown}; use ReadOnly, Hidden, Archive, System or Normal.")
        return problems

    def _check_end(
        self, vctx: ValidationContext, role: str, value: str, is_variable: bool, runtime: tuple[str, ...]
    ) -> list[str]:
        if vctx.is_dynamic(*runtime):
            return []
        op = self.props.operation.name
        if not value.strip():
            return [f"the File System task ({op}) has no {role}; set its {role} connection or variable."]
        if is_variable and not vctx.has_variable(value.strip()):
            return [f"the {role} variable {value.strip()!r} does not exist in the task's scope."]
        if is_variable:
            return []
        kind = vctx.connection_type(value.strip())
        if kind is None and not _looks_like_path(value):
            return [f"the {role} {value.strip()!r} names no connection manager of the package or project."]
        if kind is not None and kind.upper() not in ("FILE", "FLATFILE"):
            return [f"the {role} connection {value.strip()!r} is a {kind} connection; the File System task needs a FILE connection."]
        return []

    # -- execution --------------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        op = self.props.operation
        source = self._path(ctx, "source", self.props.source, self.props.source_is_variable)
        destination = (
            self._path(ctx, "destination", self.props.destination, self.props.destination_is_variable)
            if op.needs_destination
            else None
        )
        handler: Callable[..., None] = getattr(self, f"_{op.name}")
        try:
            handler(ctx, source, destination) if op.needs_destination else handler(ctx, source)
        except OSError as exc:
            target = f"{source} -> {destination}" if destination else source
            raise TaskFailedError(
                f"{op.name} failed on {target}: {exc.strerror or exc}; check the paths and their permissions."
            ) from exc

    def _path(self, ctx: TaskContext, role: str, ref: str, is_variable: bool) -> str:
        ref = ref.strip()
        if not ref:
            raise TaskFailedError(f"the File System task has no {role}; set its {role} connection or variable.")
        if is_variable:
            value = ctx.variables.get(ref)
            text = "" if value is None else str(value).strip()
            if not text:
                raise TaskFailedError(f"the {role} variable {ref} is empty; it must hold a file or folder path.")
            return _local(ctx, text, f"the {role} variable {ref} holds")
        finder = getattr(ctx.connections, "find", None)
        if finder is not None and finder(ref) is None and _looks_like_path(ref):
            return _local(ctx, ref, f"the {role}")  # a path given directly, e.g. by a property expression
        path = ctx.connections.acquire(ref)
        if not isinstance(path, str):
            raise TaskFailedError(
                f"the {role} connection {ref!r} is not a FILE connection (it gives {type(path).__name__}); "
                "point the task at a FILE connection manager or a variable."
            )
        return path

    # -- operations -------------------------------------------------------------------------

    def _CopyFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source)
        target = self._file_target(source, destination)
        shutil.copy2(source, target)
        ctx.events.information(f"copied {source} to {target}.")

    def _MoveFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source)
        target = self._file_target(source, destination)
        _replace_move(source, target)
        ctx.events.information(f"moved {source} to {target}.")

    def _RenameFile(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_file(source)
        # The destination is the new full name; an existing folder there means "into that folder".
        target = self._file_target(source, destination)
        _replace_move(source, target)
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
                    f"the directory {source} already exists; set UseDirectoryIfExists to True to use it."
                )
            return
        if os.path.exists(source):
            raise TaskFailedError(f"cannot create the directory {source}: a file with that name exists.")
        os.makedirs(source)
        ctx.events.information(f"created the directory {source}.")

    def _DeleteDirectory(self, ctx: TaskContext, source: str) -> None:
        _require_dir(source)
        shutil.rmtree(source)
        ctx.events.information(f"deleted the directory {source}.")

    def _DeleteDirectoryContent(self, ctx: TaskContext, source: str) -> None:
        _require_dir(source)
        for entry in os.scandir(source):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)
        ctx.events.information(f"deleted the content of {source}.")

    def _CopyDirectory(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_dir(source)
        if os.path.exists(destination) and not self.props.overwrite:
            raise _exists(destination)
        if os.path.isfile(destination):
            os.remove(destination)
        # The destination becomes a copy of the source folder (its content, recursively).
        shutil.copytree(source, destination, dirs_exist_ok=True)
        ctx.events.information(f"copied the directory {source} to {destination}.")

    def _MoveDirectory(self, ctx: TaskContext, source: str, destination: str) -> None:
        _require_dir(source)
        if os.path.exists(destination):
            if not self.props.overwrite:
                raise _exists(destination)
            _remove(destination)
        shutil.move(source, destination)
        ctx.events.information(f"moved the directory {source} to {destination}.")

    def _SetAttributes(self, ctx: TaskContext, source: str) -> None:
        if not os.path.exists(source):
            raise TaskFailedError(f"the file or directory {source} does not exist, so its attributes cannot be set.")
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
                f"the attributes {', '.join(ignored)} have no equivalent on this system and were not set on {source}."
            )

    def _file_target(self, source: str, destination: str) -> str:
        """The destination file: inside ``destination`` if it is a folder; refuses to overwrite."""
        target = os.path.join(destination, os.path.basename(source)) if os.path.isdir(destination) else destination
        if os.path.isdir(target):
            raise TaskFailedError(f"the destination {target} is a directory, so the file cannot be written there.")
        if os.path.exists(target) and not self.props.overwrite:
            raise _exists(target)
        parent = os.path.dirname(target) or "."
        if not os.path.isdir(parent):
            raise TaskFailedError(f"the destination folder {parent} does not exist; create it first (CreateDirectory) or map it with --path-map.")
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


def _require_file(path: str) -> None:
    if os.path.isdir(path):
        raise TaskFailedError(f"the source {path} is a directory; use a directory operation for it.")
    if not os.path.isfile(path):
        raise TaskFailedError(f"the source file {path} does not exist; check the path or map it with --path-map.")


def _require_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise TaskFailedError(f"the source directory {path} does not exist; check the path or map it with --path-map.")


def _exists(path: str) -> TaskFailedError:
    return TaskFailedError(
        f"the destination {path} already exists and OverwriteDestination is False; set it to True or remove the file."
    )


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _replace_move(source: str, target: str) -> None:
    # os.replace is atomic on one file system; shutil.move handles crossing file systems.
    try:
        os.replace(source, target)
    except OSError:
        shutil.move(source, target)
