"""File System task: every operation on real files in tmp_path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from dtsx.connections.base import ConnectionSettings
from dtsx.connections.file import FileConnectionManager
from dtsx.engine.errors import ConnectionManagerError, TaskFailedError
from dtsx.engine.model import XmlNode
from dtsx.tasks.base import TASKS, ValidationContext
from dtsx.tasks.file_system import FileSystemOperation, FileSystemTask

from tests.tasks._taskkit import PathConnections, make_ctx


def fs(op: str, source: str = "", destination: str = "", **props: object) -> FileSystemTask:
    data = {
        "TaskOperationType": op,
        "TaskSourcePath": source,
        "TaskDestinationPath": destination,
        **props,
    }
    return FileSystemTask(FileSystemTask.Properties.model_validate(data))


def by_var(
    op: str, source: Path, destination: Path | None = None, **props: object
) -> tuple[FileSystemTask, object]:
    """A task whose paths come from variables, and a context holding them."""
    values = {"User::Src": str(source), "User::Dst": str(destination) if destination else ""}
    task = fs(
        op,
        "User::Src",
        "User::Dst",
        TaskIsSourceVariable="True",
        TaskIsDestinationVariable="True",
        **props,
    )
    return task, make_ctx(values)


def test_registered_and_operation_codes() -> None:
    assert TASKS.get("Microsoft.FileSystemTask") is FileSystemTask
    v3 = (
        "Microsoft.SqlServer.Dts.Tasks.FileSystemTask.FileSystemTask, "
        "Microsoft.SqlServer.FileSystemTask, Version=10.0.0.0"
    )
    assert TASKS.get(v3) is FileSystemTask
    assert [op.name for op in sorted(FileSystemOperation)] == [
        "CopyFile",
        "MoveFile",
        "DeleteFile",
        "RenameFile",
        "SetAttributes",
        "CreateDirectory",
        "CopyDirectory",
        "MoveDirectory",
        "DeleteDirectory",
        "DeleteDirectoryContent",
    ]
    assert fs("7").props.operation is FileSystemOperation.MoveDirectory
    assert fs("deletefile").props.operation is FileSystemOperation.DeleteFile


def test_reads_2008_object_data() -> None:
    node = XmlNode(
        tag="ObjectData",
        children=[
            XmlNode(
                tag="FileSystemData",
                attrs={
                    "TaskOperationType": "MoveFile",
                    "OperationName": "",
                    "TaskOverwriteDestFile": "True",
                    "TaskSourcePath": "User::file",
                    "TaskIsSourceVariable": "True",
                    "TaskDestinationPath": "arch",
                    "TaskIsDestinationVariable": "False",
                    "TaskFileAttributes": "Normal",
                },
            )
        ],
    )
    task = FileSystemTask.from_node(node)
    assert task.props.operation is FileSystemOperation.MoveFile
    assert task.props.overwrite is True and task.props.source_is_variable is True
    assert task.props.destination == "arch" and task.props.destination_is_variable is False


def test_copy_file_into_folder_and_to_name(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("one")
    (tmp_path / "out").mkdir()
    task, ctx = by_var("CopyFile", src, tmp_path / "out")
    task.execute(ctx)
    assert (tmp_path / "out" / "a.txt").read_text() == "one" and src.exists()
    task, ctx = by_var("CopyFile", src, tmp_path / "out" / "b.txt")
    task.execute(ctx)
    assert (tmp_path / "out" / "b.txt").read_text() == "one"


def test_copy_file_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.txt", tmp_path / "b.txt"
    src.write_text("new")
    dst.write_text("old")
    task, ctx = by_var("CopyFile", src, dst)
    with pytest.raises(TaskFailedError, match="already exists and OverwriteDestination is False"):
        task.execute(ctx)
    assert dst.read_text() == "old"
    task, ctx = by_var("CopyFile", src, dst, TaskOverwriteDestFile="True")
    task.execute(ctx)
    assert dst.read_text() == "new"


def test_move_file(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    (tmp_path / "arch").mkdir()
    task, ctx = by_var("MoveFile", src, tmp_path / "arch")
    task.execute(ctx)
    assert not src.exists() and (tmp_path / "arch" / "a.txt").read_text() == "x"
    src.write_text("y")
    task, ctx = by_var("MoveFile", src, tmp_path / "arch")
    with pytest.raises(TaskFailedError, match="already exists"):
        task.execute(ctx)
    assert src.exists()
    task, ctx = by_var("MoveFile", src, tmp_path / "arch", TaskOverwriteDestFile="True")
    task.execute(ctx)
    assert (tmp_path / "arch" / "a.txt").read_text() == "y" and not src.exists()


def test_rename_file(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    task, ctx = by_var("RenameFile", src, tmp_path / "b.txt")
    task.execute(ctx)
    assert not src.exists() and (tmp_path / "b.txt").read_text() == "x"


def test_rename_into_missing_folder_fails_clearly(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    task, ctx = by_var("RenameFile", src, tmp_path / "nope" / "b.txt")
    with pytest.raises(TaskFailedError, match="destination folder .*nope does not exist"):
        task.execute(ctx)


def test_delete_file(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    task, ctx = by_var("DeleteFile", src)
    task.execute(ctx)
    assert not src.exists()
    with pytest.raises(TaskFailedError, match="source file .*a.txt does not exist"):
        task.execute(ctx)


def test_create_directory_and_use_if_exists(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y"
    task, ctx = by_var("CreateDirectory", target)
    task.execute(ctx)
    assert target.is_dir()
    with pytest.raises(TaskFailedError, match="already exists; set UseDirectoryIfExists"):
        task.execute(ctx)
    task, ctx = by_var("CreateDirectory", target, UseDirectoryIfExists="True")
    task.execute(ctx)
    assert target.is_dir()


def test_delete_directory_and_content(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "f.txt").write_text("x")
    (d / "sub" / "g.txt").write_text("y")
    task, ctx = by_var("DeleteDirectoryContent", d)
    task.execute(ctx)
    assert d.is_dir() and list(d.iterdir()) == []
    task, ctx = by_var("DeleteDirectory", d)
    task.execute(ctx)
    assert not d.exists()
    with pytest.raises(TaskFailedError, match="source directory .* does not exist"):
        task.execute(ctx)


def test_copy_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("x")
    dst = tmp_path / "dst"
    task, ctx = by_var("CopyDirectory", src, dst)
    task.execute(ctx)
    assert (dst / "sub" / "f.txt").read_text() == "x" and (src / "sub" / "f.txt").exists()
    with pytest.raises(TaskFailedError, match="already exists"):
        task.execute(ctx)
    (src / "sub" / "f.txt").write_text("z")
    task, ctx = by_var("CopyDirectory", src, dst, TaskOverwriteDestFile="True")
    task.execute(ctx)
    assert (dst / "sub" / "f.txt").read_text() == "z"


def test_move_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("x")
    dst = tmp_path / "moved"
    task, ctx = by_var("MoveDirectory", src, dst)
    task.execute(ctx)
    assert not src.exists() and (dst / "f.txt").read_text() == "x"
    src.mkdir()
    task, ctx = by_var("MoveDirectory", src, dst)
    with pytest.raises(TaskFailedError, match="already exists"):
        task.execute(ctx)
    task, ctx = by_var("MoveDirectory", src, dst, TaskOverwriteDestFile="True")
    task.execute(ctx)
    assert not src.exists() and dst.is_dir() and not (dst / "f.txt").exists()


def test_set_attributes(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    task, ctx = by_var("SetAttributes", f, TaskFileAttributes="ReadOnly, Hidden")
    task.execute(ctx)
    assert not os.stat(f).st_mode & stat.S_IWUSR
    assert any("hidden" in w for w in ctx.events.warnings)
    task, ctx = by_var("SetAttributes", f, TaskFileAttributes="Normal")
    task.execute(ctx)
    assert os.stat(f).st_mode & stat.S_IWUSR


def test_paths_through_file_connections_and_path_map(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "arch").mkdir()
    (tmp_path / "in" / "MyFile.txt").write_text("data")

    def local(p: str) -> str:
        return p.replace("C:\\ProSSIS", str(tmp_path)).replace("\\", "/")

    src = FileConnectionManager(
        ConnectionSettings("MyFile", "FILE", r"C:\ProSSIS\in\MyFile.txt", local_path=local)
    )
    dst = FileConnectionManager(
        ConnectionSettings(
            "Archive",
            "FILE",
            r"C:\ProSSIS\arch",
            properties={"FileUsageType": "2"},
            local_path=local,
        )
    )
    conns = PathConnections(
        {
            "{70083D03-1FE4-4FFF-8003-877E1898AE00}": src,
            "{5EF362C1-FF2F-4973-ACD2-85B49113483C}": dst,
        }
    )
    task = fs(
        "MoveFile",
        "{70083D03-1FE4-4FFF-8003-877E1898AE00}",
        "{5EF362C1-FF2F-4973-ACD2-85B49113483C}",
    )
    task.execute(make_ctx(connections=conns))
    assert (tmp_path / "arch" / "MyFile.txt").read_text() == "data"
    with pytest.raises(
        ConnectionManagerError,
        match=r"'MyFile' needs an existing file at C:\\ProSSIS\\in\\MyFile.txt",
    ):
        task.execute(make_ctx(connections=conns))


def test_literal_path_when_no_connection_has_that_name(tmp_path: Path) -> None:
    target = tmp_path / "made"
    task = fs("CreateDirectory", r"C:\out\made")
    task.execute(make_ctx(local_path=lambda p: str(target) if p == r"C:\out\made" else p))
    assert target.is_dir()


def test_empty_variable_fails_clearly() -> None:
    task = fs("DeleteFile", "User::F", TaskIsSourceVariable="True")
    with pytest.raises(TaskFailedError, match="source variable User::F is empty"):
        task.execute(make_ctx({"User::F": ""}))


def test_validate() -> None:
    types = {"{A}": "FILE", "Db": "OLEDB"}
    vctx = ValidationContext(connection_type=types.get, has_variable=lambda n: n == "User::F")
    assert fs("DeleteFile", "{A}").validate(vctx) == []
    assert fs("CopyFile", "{A}").validate(vctx) == [
        "the File System task (CopyFile) has no destination; set its destination connection or "
        "variable."
    ]
    assert fs("CopyFile", "User::G", "{A}", TaskIsSourceVariable="True").validate(vctx) == [
        "the source variable 'User::G' does not exist in the task's scope."
    ]
    assert fs("DeleteFile", "Nope").validate(vctx) == [
        "the source 'Nope' names no connection manager of the package or project."
    ]
    assert "is a OLEDB connection" in fs("DeleteFile", "Db").validate(vctx)[0]
    dynamic = ValidationContext(types.get, lambda n: False, frozenset({"source"}))
    assert fs("DeleteFile", "").validate(dynamic) == []


def test_unmapped_windows_paths_are_never_used_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    task = fs("CreateDirectory", "User::D", TaskIsSourceVariable="True")
    with pytest.raises(
        TaskFailedError,
        match=r"variable User::D holds C:\\out\\new is a Windows path that no --path-map",
    ):
        task.execute(make_ctx({"User::D": r"C:\out\new"}))
    with pytest.raises(TaskFailedError, match=r"the source C:\\out\\new is a Windows path"):
        fs("CreateDirectory", r"C:\out\new").execute(make_ctx())
    assert list(tmp_path.iterdir()) == []
