"""``dtsx show --scripts`` and ``dtsx scripts extract`` through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._shared import REPO_ROOT, shared_dir

DATA = REPO_ROOT / "tests" / "data" / "scripts"
EXIT_USAGE = 6
EXIT_LOAD_FAILED = 5


def dtsx(*args: str | Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from dtsx.engine.cli import main; sys.argv[0] = 'dtsx'; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- show --scripts


def test_show_scripts_prints_the_header_and_numbered_sources() -> None:
    done = dtsx("show", DATA / "csharp.v3.dtsx", "--scripts")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("Script Task 'Copy files' [Package\\Copy files]  (")
    assert out[0].endswith("csharp.v3.dtsx:5)")
    assert "  DTSID: {0B1D7E52-3C4A-4F6B-9E1A-2D3C4B5A6978}" in out
    assert (
        "  Language: CSharp; entry point: Main; project: ST_0b1d7e523c4a4f6b9e1a2d3c4b5a6978" in out
    )
    assert "  ReadOnlyVariables: User::Source, System::PackageName" in out
    assert "  ReadWriteVariables: (none)" in out
    assert any(line.startswith("  Binary: ") and "516 bytes" in line for line in out)
    assert '  Source scriptmain.cs (item "\\scriptmain.cs", package line 10):' in out
    assert "    12        Dts.TaskResult = (int)ScriptResults.Success;" in out
    assert '  Source helper.cs (item "\\helper.cs", package line 25):' in out
    assert not any("assemblyinfo" in line and line.startswith("  Source") for line in out)


def test_show_scripts_visual_basic_disabled_without_binary() -> None:
    done = dtsx("show", DATA / "vb_several.v8.dtsx", "--scripts")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].endswith("(disabled)")
    assert "  ReadWriteVariables: User::Count, $Package::Total" in out
    assert "  Binary: none" in out
    assert "     1  ' Счётчик строк" in out


def test_show_scripts_escapes_control_characters() -> None:
    done = dtsx("show", DATA / "hostile.v8.dtsx", "--scripts")
    assert done.returncode == 0, done.stderr
    assert "    1  // main\\x0d\\x7f[31m red" in done.stdout.splitlines()
    assert "\r" not in done.stdout and "\x7f" not in done.stdout
    assert "  No source files." in done.stdout


def test_show_scripts_json() -> None:
    done = dtsx("show", DATA / "vb2005.v2.dtsx", "--scripts", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["package"].endswith("vb2005.v2.dtsx")
    (script,) = document["scripts"]
    assert script["ref_id"] == "Package\\Convert"
    assert script["dtsid"] == "{4D5E6F7A-8B9C-4DAE-BF01-23456789ABCD}"
    assert (script["language"], script["entry_point"]) == ("VisualBasic", "ScriptMain")
    assert script["read_only_variables"] == ["User::Answer"]
    assert script["read_write_variables"] == ["User::Rate"]
    (source,) = script["sources"]
    assert source["path"] == "ScriptMain.vsaitem" and source["line"] == 9
    assert source["text"].startswith("Imports System\n")
    assert [b["path"].rsplit(".", 1)[1] for b in script["binaries"]] == ["dll", "pdb"]
    assert script["binaries"][0]["size"] == 12


def test_show_scripts_without_script_tasks() -> None:
    package = REPO_ROOT / "tests" / "data" / "exec" / "fail_package.v3.dtsx"
    done = dtsx("show", package, "--scripts")
    assert done.returncode == 0
    assert done.stdout.strip().endswith("no Script Tasks")
    assert json.loads(dtsx("show", package, "--scripts", "--json").stdout)["scripts"] == []


def test_show_scripts_of_a_damaged_project_is_one_line(tmp_path: Path) -> None:
    text = (DATA / "csharp.v3.dtsx").read_text("utf-8").replace("TVqQ", "TV!Q", 1)
    path = tmp_path / "bad.dtsx"
    path.write_text(text, "utf-8")
    done = dtsx("show", path, "--scripts")
    assert done.returncode == EXIT_LOAD_FAILED
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"dtsx: {path}:") and "is not base64" in line


def test_plain_show_is_unchanged_by_the_option() -> None:
    done = dtsx("show", DATA / "csharp.v3.dtsx")
    assert done.returncode == 0 and "Script Task 'Copy files'" not in done.stdout


# --------------------------------------------------------------------------- scripts extract


def test_extract_writes_each_project_as_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = dtsx("scripts", "extract", DATA / "csharp.v3.dtsx", out)
    assert done.returncode == 0, done.stderr
    folder = out / "Copy files"
    assert _tree(out) == {
        "Copy files/scriptmain.cs",
        "Copy files/helper.cs",
        "Copy files/properties/assemblyinfo.cs",
        "Copy files/st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj",
        "Copy files/bin/release/st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj.dll",
        "Copy files/script.json",
    }
    assert done.stdout.strip() == f"Package\\Copy files: 6 files in {out / 'Copy files'}"
    main = (folder / "scriptmain.cs").read_bytes()
    assert main.startswith(b"\xef\xbb\xbfusing System;\n")  # UTF-8 with a BOM, as VS reads it
    dll = (folder / "bin/release/st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj.dll").read_bytes()
    assert dll == b"MZ\x90\x00" + bytes(range(256)) * 2
    meta = json.loads((folder / "script.json").read_text("utf-8"))
    assert meta["ref_id"] == "Package\\Copy files"
    assert meta["dtsid"] == "{0B1D7E52-3C4A-4F6B-9E1A-2D3C4B5A6978}"
    assert (meta["language"], meta["entry_point"]) == ("CSharp", "Main")
    assert meta["read_only_variables"] == ["User::Source", "System::PackageName"]
    assert meta["read_write_variables"] == []
    assert meta["sources"][0] == {"name": "\\scriptmain.cs", "path": "scriptmain.cs", "line": 10}
    assert meta["binaries"][0]["size"] == len(dll)


def test_extract_visual_basic_keeps_text_and_folders(tmp_path: Path) -> None:
    out = tmp_path / "vb"
    assert dtsx("scripts", "extract", DATA / "vb_several.v8.dtsx", out).returncode == 0
    assert _tree(out) == {
        f"Count rows/{p}"
        for p in (
            "My Project/AssemblyInfo.vb",
            "ScriptMain.vb",
            "Counter.vb",
            "ScriptMain.Designer.vb",
            "ST_7d8e9f0a1b2c4d3e9f4a5b6c7d8e9f0a.vbproj",
            "script.json",
        )
    }
    text = (out / "Count rows" / "ScriptMain.vb").read_text("utf-8-sig")
    assert text.startswith("' Счётчик строк\nImports System.IO\n")


def test_extract_never_leaves_the_folder_and_names_folders_uniquely(tmp_path: Path) -> None:
    out = tmp_path / "hostile"
    done = dtsx("scripts", "extract", DATA / "hostile.v8.dtsx", out)
    assert done.returncode == 0, done.stderr
    # Two tasks named "../../escape": each folder is named from its refId, made safe.
    assert sorted(p.name for p in out.iterdir()) == [
        "Package_.._.._escape",
        "Package_Seq_.._.._escape",
    ]
    assert _tree(out / "Package_.._.._escape") == {
        "x.cs",
        "evil.cs",
        "unc.cs",
        "_con.cs",
        "ScriptMain.cs",
        "script.json",
    }
    assert _tree(out / "Package_Seq_.._.._escape") == {"script.json"}
    assert {p.name for p in tmp_path.iterdir()} == {"hostile"}  # nothing written beside it


def test_extract_refuses_a_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine", "utf-8")
    done = dtsx("scripts", "extract", DATA / "csharp.v3.dtsx", out)
    assert done.returncode == EXIT_USAGE
    (line,) = done.stderr.splitlines()
    assert (
        line
        == f"dtsx: {out} is not empty; give an empty or new folder, or --force to write into it."
    )
    assert _tree(out) == {"keep.txt"}
    forced = dtsx("scripts", "extract", DATA / "csharp.v3.dtsx", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "keep.txt" in _tree(out) and "Copy files/script.json" in _tree(out)


def test_extract_refuses_a_file_as_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", "utf-8")
    done = dtsx("scripts", "extract", DATA / "csharp.v3.dtsx", target, "--force")
    assert done.returncode == EXIT_USAGE and "is not a folder" in done.stderr


def test_extract_does_not_follow_a_link_out_of_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "linked"
    outside = tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "Copy files").symlink_to(outside, target_is_directory=True)
    done = dtsx("scripts", "extract", DATA / "csharp.v3.dtsx", out, "--force")
    assert done.returncode == EXIT_USAGE
    assert "leads out of" in done.stderr and "Traceback" not in done.stderr
    assert list(outside.iterdir()) == []


def test_extract_a_package_without_script_tasks_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none"
    package = REPO_ROOT / "tests" / "data" / "exec" / "fail_package.v3.dtsx"
    done = dtsx("scripts", "extract", package, out)
    assert done.returncode == 0 and "no Script Tasks" in done.stdout
    assert not out.exists()


def test_extract_a_missing_package_exits_4(tmp_path: Path) -> None:
    done = dtsx("scripts", "extract", tmp_path / "absent.dtsx", tmp_path / "out")
    assert done.returncode == 4 and len(done.stderr.splitlines()) == 1


def test_extract_the_corpus(tmp_path: Path) -> None:
    """Every corpus Script Task becomes a folder with its script.json (49, spec §1)."""
    base = shared_dir()
    if base is None:
        pytest.skip(
            "the shared folder (corpus, vectors) is absent: set DTSX_SHARED or place it at ../shared"
        )
    packages = sorted(
        f
        for f in (base / "corpus" / "dtsx").glob("*.dtsx")
        if "ScriptProject" in f.read_text("utf-8-sig", "replace")
    )
    folders = 0
    for number, package in enumerate(packages):
        out = tmp_path / str(number)
        done = dtsx("scripts", "extract", package, out)
        assert done.returncode == 0, done.stderr
        metas = list(out.glob("*/script.json"))
        assert len(metas) == len(done.stdout.splitlines())
        folders += len(metas)
    assert folders == 49
