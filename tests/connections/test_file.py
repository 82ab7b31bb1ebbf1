"""FILE / FLATFILE connection managers and the --path-map mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtsx.connections.base import CONNECTIONS, ConnectionSettings
from dtsx.engine.paths import looks_like_windows_path
from dtsx.connections.file import FileConnectionManager, FlatFileConnectionManager
from dtsx.engine.paths import PathMap, PathMapError
from dtsx.engine.errors import ConnectionManagerError, DtsxError

MAP = PathMap.parse(
    [
        r"C:\data=/srv/data",
        r"c:\data\in=/in/",
        r"\\fileserver\share=/mnt/share",
        "D:=/d",
        r"E:/fwd=/e",
    ]
)

PATH_TABLE = [
    (r"C:\data\x\y.csv", "/srv/data/x/y.csv"),
    (r"c:\DATA\in\a.txt", "/in/a.txt"),  # longest prefix, case-insensitive
    (r"C:\data", "/srv/data"),
    (r"C:\data\\", "/srv/data"),
    ("C:/data/z.txt", "/srv/data/z.txt"),
    (r"C:\database\x", "C:/database/x"),  # a prefix matches whole components only
    (r"\\fileserver\share\f\g.txt", "/mnt/share/f/g.txt"),
    (r"\\FILESERVER\Share", "/mnt/share"),
    (r"\\other\share\f", "//other/share/f"),
    (r"D:\q\R.TXT", "/d/q/R.TXT"),  # the rest keeps its case
    (r"E:\fwd\a", "/e/a"),
    (r"F:\z\w", "F:/z/w"),  # unmatched Windows paths get forward slashes
    ("/tmp/a", "/tmp/a"),
    ("/tmp/we\\ird", "/tmp/we\\ird"),  # not Windows-looking: backslash untouched
    ("rel\\x.txt", "rel/x.txt"),
    ("plain.txt", "plain.txt"),
    ("", ""),
]


@pytest.mark.parametrize(("windows", "local"), PATH_TABLE)
def test_path_map(windows: str, local: str) -> None:
    assert MAP(windows) == local
    assert MAP.map(windows) == local


def test_empty_map_still_normalises_windows_paths() -> None:
    empty = PathMap.parse([])
    assert not empty
    assert empty(r"C:\a\b") == "C:/a/b"
    assert empty("/x/y") == "/x/y"


@pytest.mark.parametrize("spec", ["C:\\data", "=/srv", "C:\\data=", "  =  "])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(PathMapError, match="WINDOWS=LOCAL") as info:
        PathMap.parse([spec])
    assert isinstance(info.value, DtsxError)


def test_windows_looking() -> None:
    assert (
        looks_like_windows_path("C:\\x")
        and looks_like_windows_path("c:")
        and looks_like_windows_path("\\\\s\\h")
    )
    assert (
        looks_like_windows_path("a\\b")
        and not looks_like_windows_path("/a/b")
        and not looks_like_windows_path("a/b\\c")
    )


def settings(
    path: str, usage: str | None = None, name: str = "Input", **kw: object
) -> ConnectionSettings:
    props = {} if usage is None else {"FileUsageType": usage}
    return ConnectionSettings(name, "FILE", path, properties=props, **kw)  # type: ignore[arg-type]


def test_registered() -> None:
    assert CONNECTIONS.get("FILE") is FileConnectionManager
    assert CONNECTIONS.get("FLATFILE") is FlatFileConnectionManager


def test_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    f.write_text("x")
    assert FileConnectionManager(settings(str(f))).acquire() == str(f)
    assert FileConnectionManager(settings(str(f), "0")).acquire() == str(f)
    f.unlink()
    with pytest.raises(
        ConnectionManagerError,
        match=r"'Input' needs an existing file at .*in.csv, which does not exist",
    ) as info:
        FileConnectionManager(settings(str(f))).acquire()
    assert isinstance(info.value.__cause__, FileNotFoundError)  # the OS error is kept (--debug)


def test_windows_path_error_mentions_path_map() -> None:
    with pytest.raises(ConnectionManagerError, match=r"C:\\in\\a.csv .*--path-map") as info:
        FileConnectionManager(settings(r"C:\in\a.csv", local_path=PathMap.parse([]))).acquire()
    assert "Input" in str(info.value)
    mapped = PathMap.parse([r"C:\in=/definitely/not/here"])
    with pytest.raises(
        ConnectionManagerError, match=r"here /definitely/not/here/a.csv.*check the --path-map rule"
    ):
        FileConnectionManager(settings(r"C:\in\a.csv", local_path=mapped)).acquire()


def test_mapping_and_usage_types(tmp_path: Path) -> None:
    (tmp_path / "arch").mkdir()
    pm = PathMap.parse([f"C:\\ProSSIS={tmp_path}"])
    assert FileConnectionManager(settings(r"C:\ProSSIS\arch", "2", local_path=pm)).acquire() == str(
        tmp_path / "arch"
    )
    with pytest.raises(ConnectionManagerError, match="existing folder"):
        FileConnectionManager(settings(r"C:\ProSSIS\missing", "2", local_path=pm)).acquire()
    # Create file / create folder: the path need not exist yet.
    assert FileConnectionManager(
        settings(r"C:\ProSSIS\new.txt", "1", local_path=pm)
    ).acquire() == str(tmp_path / "new.txt")
    assert FileConnectionManager(
        settings(r"C:\ProSSIS\newdir", "3", local_path=pm)
    ).acquire() == str(tmp_path / "newdir")
    assert not (tmp_path / "newdir").exists()


def test_check_and_bad_usage() -> None:
    assert FileConnectionManager.check(settings("x", "0")) == []
    problems = FileConnectionManager.check(settings("", "7"))
    assert (
        problems[0]
        == "connection manager 'Input' has no file path (its ConnectionString is empty)."
    )
    assert "FileUsageType '7'" in problems[1]
    with pytest.raises(ConnectionManagerError, match="has no file path"):
        FileConnectionManager(settings("  ")).acquire()


def test_flat_file(tmp_path: Path) -> None:
    f = tmp_path / "rows.csv"
    f.write_text("a,b\n")
    s = ConnectionSettings("Rows", "FLATFILE", str(f), properties={"fileusagetype": "0"})
    assert FlatFileConnectionManager(s).acquire() == str(f)


@pytest.mark.parametrize("usage", ["0", "1", "2", "3"])
def test_unmapped_windows_path_is_refused_for_every_usage(usage: str) -> None:
    for local_path in (PathMap.parse([]), lambda p: p):
        with pytest.raises(
            ConnectionManagerError,
            match=r"'Input' points at C:\\out\\x is a Windows path that no --path-map",
        ):
            FileConnectionManager(settings(r"C:\out\x", usage, local_path=local_path)).acquire()
