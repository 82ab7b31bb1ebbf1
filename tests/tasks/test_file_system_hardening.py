"""File System task on hostile trees: links out of the tree, loops, special files, depth,
cancellation.

Each operation runs on real files in tmp_path, through the task plugin API (a TaskContext as the
executor builds it) or a whole package run with ``dtsx run``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.file_system import FileSystemTask

from tests.tasks._taskkit import make_ctx


class CancelAfter(threading.Event):
    """A cancel event that the run sets after the task has looked at it ``looks`` times.

    It stands for a user pressing Ctrl-C part way through, at a point the test chooses.
    """

    def __init__(self, looks: int) -> None:
        super().__init__()
        self.left = looks

    def is_set(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.set()
        return super().is_set()


def task_for(
    op: str,
    source: Path,
    destination: Path | None = None,
    *,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
) -> tuple[FileSystemTask, object]:
    values = {"User::Src": str(source), "User::Dst": str(destination) if destination else ""}
    task = FileSystemTask(
        FileSystemTask.Properties.model_validate(
            {
                "TaskOperationType": op,
                "TaskSourcePath": "User::Src",
                "TaskIsSourceVariable": "True",
                "TaskDestinationPath": "User::Dst",
                "TaskIsDestinationVariable": "True",
                "TaskOverwriteDestFile": str(overwrite),
            }
        )
    )
    ctx = make_ctx(values)
    if cancel is not None:
        ctx.cancel_event = cancel
    return task, ctx


def bounded(fn: Callable[[], None], seconds: float = 20) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test (not hang) if it does not finish. Returns what it
    raised."""
    raised: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            raised.append(exc)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"the task was still running after {seconds}s"
    return raised[0] if raised else None


def files(root: Path, contents: dict[str, str]) -> Path:
    """Make ``root`` holding these files (relative path: text); returns ``root``."""
    root.mkdir(exist_ok=True)
    for rel, text in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def one_sentence(exc: BaseException | None) -> str:
    assert isinstance(exc, TaskFailedError), repr(exc)
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and "[(" not in text, text
    return text


def test_copy_directory_copies_links_as_links_and_never_follows_out(tmp_path: Path) -> None:
    outside = files(tmp_path / "outside", {"secret.txt": "not to be copied"})
    src = files(tmp_path / "src", {"sub/f.txt": "x"})
    (src / "out").symlink_to(outside)  # absolute, out of the tree
    (src / "sub" / "up").symlink_to("../..")  # relative, out of the tree
    (src / "sub" / "loop").symlink_to("..")  # a loop back to the top of the tree
    (src / "self").symlink_to(".")
    (src / "rel").symlink_to("sub/f.txt")
    (src / "abs_in").symlink_to(
        src / "sub" / "f.txt"
    )  # absolute but inside: must point into the copy
    (src / "dangling").symlink_to("missing.txt")
    dst = tmp_path / "dst"
    task, ctx = task_for("CopyDirectory", src, dst)
    assert bounded(lambda: task.execute(ctx)) is None
    assert (dst / "sub" / "f.txt").read_text() == "x"
    assert os.path.islink(dst / "out") and os.readlink(dst / "out") == str(outside)
    assert os.readlink(dst / "sub" / "up") == str(
        tmp_path
    )  # where it led, not a new escape from dst
    assert os.readlink(dst / "sub" / "loop") == ".." and os.readlink(dst / "self") == "."
    assert os.readlink(dst / "rel") == "sub/f.txt"
    assert os.readlink(dst / "abs_in") == "sub/f.txt" and (dst / "abs_in").read_text() == "x"
    assert os.readlink(dst / "dangling") == "missing.txt"
    assert sorted(p.name for p in dst.rglob("*") if not p.is_symlink()) == ["f.txt", "sub"]
    (warning,) = ctx.events.warnings
    assert "2 link(s)" in warning and "not followed" in warning


def test_a_link_to_the_root_is_copied_as_a_link(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "rootlink").symlink_to("/")
    dst = tmp_path / "dst"
    task, ctx = task_for("CopyDirectory", src, dst)
    assert bounded(lambda: task.execute(ctx), seconds=10) is None
    assert os.readlink(dst / "rootlink") == "/" and os.listdir(dst) == ["rootlink"]


def test_special_file_in_a_tree_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    os.mkfifo(src / "pipe")
    dst = tmp_path / "dst"
    task, ctx = task_for("CopyDirectory", src, dst)
    text = one_sentence(bounded(lambda: task.execute(ctx)))
    assert f"{src / 'pipe'} is a named pipe (FIFO), not a regular file" in text
    assert text.endswith("nothing was copied.") and not dst.exists()


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_copy_file_refuses_a_special_source_instead_of_hanging(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "in"
    if kind == "fifo":
        os.mkfifo(source)
    else:
        source.symlink_to("/dev/zero")  # a source that never ends
    task, ctx = task_for("CopyFile", source, tmp_path / "out.bin")
    text = one_sentence(bounded(lambda: task.execute(ctx), seconds=10))
    noun = "a named pipe (FIFO)" if kind == "fifo" else "a character device"
    assert f"{source} is {noun}, not a regular file, so it cannot be copied" in text
    assert not (tmp_path / "out.bin").exists()


def test_copy_file_onto_a_link_replaces_the_link_not_its_target(tmp_path: Path) -> None:
    src = tmp_path / "new.txt"
    src.write_text("new")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    task, ctx = task_for("CopyFile", src, link, overwrite=True)
    task.execute(ctx)
    assert not link.is_symlink() and link.read_text() == "new" and victim.read_text() == "keep me"
    # A dangling link is an existing destination too: refused without OverwriteDestination.
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "created-through-link.txt")
    task, ctx = task_for("CopyFile", src, dangling)
    with pytest.raises(TaskFailedError, match="already exists and OverwriteDestination is False"):
        task.execute(ctx)
    assert not (tmp_path / "created-through-link.txt").exists()


def test_copy_directory_over_a_destination_never_writes_through_its_links(tmp_path: Path) -> None:
    outside = files(tmp_path / "outside", {"f.txt": "outside"})
    src = files(tmp_path / "src", {"sub/f.txt": "copied", "g.txt": "copied"})
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside)
    (dst / "g.txt").symlink_to(outside / "f.txt")
    task, ctx = task_for("CopyDirectory", src, dst, overwrite=True)
    task.execute(ctx)
    assert (outside / "f.txt").read_text() == "outside" and os.listdir(outside) == ["f.txt"]
    assert (dst / "sub" / "f.txt").read_text() == "copied" and not (dst / "sub").is_symlink()
    assert (dst / "g.txt").read_text() == "copied" and not (dst / "g.txt").is_symlink()


def test_copy_or_move_a_directory_into_itself_is_refused(tmp_path: Path) -> None:
    src = files(tmp_path / "src", {"f.txt": "x"})
    (src / "copy").mkdir()
    for op in ("CopyDirectory", "MoveDirectory"):
        task, ctx = task_for(op, src, src / "copy", overwrite=True)
        text = one_sentence(bounded(functools.partial(task.execute, ctx)))
        assert "the destination is the source or inside it" in text
    assert sorted(os.listdir(src)) == ["copy", "f.txt"] and os.listdir(src / "copy") == []


def test_move_directory_never_deletes_its_source_to_replace_the_destination(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    (parent / "src").mkdir(parents=True)
    (parent / "src" / "f.txt").write_text("x")
    task, ctx = task_for("MoveDirectory", parent / "src", parent, overwrite=True)
    with pytest.raises(
        TaskFailedError, match="it holds the source .* which would be deleted with it"
    ):
        task.execute(ctx)
    assert (parent / "src" / "f.txt").read_text() == "x"


def test_deep_trees_copy_and_delete_without_recursion_limits(tmp_path: Path) -> None:
    depth = 1100  # deeper than Python's recursion limit
    src = tmp_path / "s"
    deepest = src
    for _ in range(depth + 1):  # one level at a time: pathlib and os.makedirs recurse
        deepest.mkdir()
        deepest = deepest / "d"
    deepest = deepest.parent
    (deepest / "f").write_text("bottom")
    dst = tmp_path / "c"
    try:
        task, ctx = task_for("CopyDirectory", src, dst)
        task.execute(ctx)
        assert Path(os.path.join(dst, *["d"] * depth, "f")).read_text() == "bottom"
        task, ctx = task_for("DeleteDirectoryContent", dst)
        task.execute(ctx)
        assert os.listdir(dst) == []
        task, ctx = task_for("DeleteDirectory", src)
        task.execute(ctx)
        assert not src.exists()
    finally:  # pytest's own clean-up of tmp_path recurses, so never leave a deep tree behind
        subprocess.run(["rm", "-rf", str(src), str(dst)], check=False)


def test_delete_directory_on_a_link_removes_the_link_only(tmp_path: Path) -> None:
    target = files(tmp_path / "target", {"keep/f.txt": "x"})
    link = tmp_path / "link"
    link.symlink_to(target)
    task, ctx = task_for("DeleteDirectory", link)
    task.execute(ctx)
    assert not os.path.lexists(link) and (target / "keep" / "f.txt").read_text() == "x"
    assert "was not touched" in ctx.events.infos[-1]


def test_delete_directory_content_keeps_what_its_links_point_to(tmp_path: Path) -> None:
    outside = files(tmp_path / "outside", {"f.txt": "x"})
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "to_outside").symlink_to(outside)
    (d / "file_link").symlink_to(outside / "f.txt")
    task, ctx = task_for("DeleteDirectoryContent", d)
    task.execute(ctx)
    assert os.listdir(d) == [] and (outside / "f.txt").read_text() == "x"


def test_copy_directory_stops_between_files_when_canceled_and_says_what_is_left(
    tmp_path: Path,
) -> None:
    src = files(tmp_path / "src", {f"f{i}.txt": str(i) for i in range(6)})
    dst = tmp_path / "dst"
    task, ctx = task_for("CopyDirectory", src, dst, cancel=CancelAfter(4))
    with pytest.raises(TaskFailedError) as caught:
        task.execute(ctx)
    text = one_sentence(caught.value)
    assert "the run was canceled while copying" in text
    copied = [n for n in os.listdir(dst) if n.endswith(".txt")]
    assert 0 < len(copied) < 6
    assert (
        f"{len(copied)} file(s), 0 folder(s) and 0 link(s) were already copied to {dst} and were "
        "left there" in text
    )
    assert not [n for n in os.listdir(dst) if n.endswith(".partial")]


def test_a_large_file_is_copied_in_chunks_that_a_cancel_stops(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as out:
        out.truncate(64 << 20)  # sparse: cheap to make, 64 chunks to read
    dst = tmp_path / "copy.bin"
    task, ctx = task_for("CopyFile", src, dst, cancel=CancelAfter(3))
    with pytest.raises(
        TaskFailedError, match=f"canceled while copying .*; {dst} was left as it was"
    ):
        task.execute(ctx)
    assert os.listdir(tmp_path) == ["big.bin"]


def test_delete_directory_content_honours_cancellation(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for i in range(6):
        (d / f"f{i}").write_text("x")
    task, ctx = task_for("DeleteDirectoryContent", d, cancel=CancelAfter(3))
    with pytest.raises(
        TaskFailedError,
        match="canceled while deleting .* entries were removed and the rest is still there",
    ):
        task.execute(ctx)
    assert 0 < len(os.listdir(d)) < 6


def _other_device(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if (
        not shm.is_dir()
        or not os.access(shm, os.W_OK)
        or shm.stat().st_dev == tmp_path.stat().st_dev
    ):
        pytest.skip("needs a writable /dev/shm on another file system than the temporary folder")
    return shm


def test_move_directory_across_file_systems_keeps_links_and_refuses_special_files(
    tmp_path: Path,
) -> None:
    shm = _other_device(tmp_path)
    src = files(tmp_path / "src", {"sub/f.txt": "x"})
    (src / "sub" / "loop").symlink_to("..")
    dst = shm / f"dtsx-move-{os.getpid()}-{tmp_path.name}"
    try:
        task, ctx = task_for("MoveDirectory", src, dst)
        task.execute(ctx)
        assert not src.exists() and (dst / "sub" / "f.txt").read_text() == "x"
        assert os.readlink(dst / "sub" / "loop") == ".."
    finally:
        subprocess.run(["rm", "-rf", str(dst)], check=False)
    src.mkdir()
    os.mkfifo(src / "pipe")
    task, ctx = task_for("MoveDirectory", src, dst)
    try:
        text = one_sentence(bounded(lambda: task.execute(ctx)))
        assert (
            "is a named pipe (FIFO)" in text
            and "nothing was copied" in text
            and (src / "pipe").exists()
        )
    finally:
        subprocess.run(["rm", "-rf", str(dst)], check=False)


PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package" DTS:DTSID="{{5247FF33-1EE1-4BAF-B5C9-91451B1FDD06}}"
  DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="copytree">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Copy tree" DTS:CreationName="Microsoft.FileSystemTask"
      DTS:DTSID="{{47D2E206-A50E-44C5-BA78-A29B43A7C496}}"
      DTS:ExecutableType="Microsoft.FileSystemTask"
      DTS:ObjectName="Copy tree">
      <DTS:ObjectData>
        <FileSystemData TaskOperationType="CopyDirectory" TaskSourcePath="{src}"
          TaskDestinationPath="{dst}" />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def test_dtsx_run_of_a_looping_tree_with_a_pipe_fails_with_one_sentence(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "loop").symlink_to("..")
    os.mkfifo(src / "sub" / "pipe")
    package = tmp_path / "copytree.dtsx"
    package.write_text(PACKAGE.format(src=src, dst=dst))
    exe = shutil.which("dtsx", path=os.path.dirname(sys.executable))
    assert exe, "the dtsx command is not installed next to this Python"
    done = subprocess.run(
        [exe, "run", str(package)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "RecursionError" not in output
    assert f"{src / 'sub' / 'pipe'} is a named pipe (FIFO), not a regular file" in output
    assert not dst.exists()


def test_canceling_a_package_run_stops_a_directory_copy_part_way(tmp_path: Path) -> None:
    import time

    from dtsx.engine import executor
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    count = 4000  # thousands of small files: far longer to copy than the cancel takes to arrive
    src = files(tmp_path / "src", {f"f{i:05d}.txt": "x" for i in range(count)})
    dst = tmp_path / "dst"
    package = tmp_path / "copytree.dtsx"
    package.write_text(PACKAGE.format(src=src, dst=dst))
    cancel = threading.Event()
    box: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: box.update(
            result=executor.run(build(load(str(package))), executor.RunOptions(cancel_event=cancel))
        )
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not dst.exists() and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    cancel.set()  # the copy has begun: dst is made once the source is listed
    worker.join(30)
    assert not worker.is_alive()
    result = box["result"]
    assert result.exit_code == 3, result  # type: ignore[attr-defined]
    copied = [n for n in os.listdir(dst) if n.endswith(".txt")]
    assert len(copied) < count and not [n for n in os.listdir(dst) if n.endswith(".partial")]
    (error,) = result.executable("Package\\Copy tree").errors  # type: ignore[attr-defined]
    left = (
        f"{len(copied)} file(s), 0 folder(s) and 0 link(s) were already copied"
        if copied
        else "nothing was copied"
    )
    assert "the run was canceled while copying" in error and left in error
