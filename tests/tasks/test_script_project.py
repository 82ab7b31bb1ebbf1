"""Script Task projects read whole from a loaded package (dtsx.tasks.script_project).

Hand-written packages in tests/data/scripts cover what the corpus lacks (a C# project with two
sources in format 3, VB with several files and no binary in format 8, a 2005 VB project with a
.dll and a .pdb, hostile item names); the corpus (``$DTSX_SHARED``) gives one package per format
and language, the census of spec/script-task.md §3, and breakpoints that must land on statements.
"""

from __future__ import annotations

import base64
import re
from xml.sax.saxutils import unescape
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from dtsx.engine.errors import PackageLoadError
from dtsx.engine.loader import load
from dtsx.engine.model import Executable, Package
from dtsx.tasks.script_project import (
    ScriptProject,
    ScriptSource,
    project_path,
    read_script_project,
    safe_file_name,
    script_tasks,
)

from tests._shared import REPO_ROOT, corpus_packages, shared_params

DATA = REPO_ROOT / "tests" / "data" / "scripts"


def _projects(path: Path) -> list[tuple[Executable, ScriptProject]]:
    package = load(path)
    return [
        (e, read_script_project(e, format_version=package.format_version))
        for e in script_tasks(package)
    ]


def _only(path: Path) -> ScriptProject:
    (found,) = _projects(path)
    return found[1]


def _file_lines(path: Path) -> list[str]:
    """The package's lines as the XML parser counts them (CRLF is one line end)."""
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n").split("\n")


def _assert_lines_map(path: Path, source: ScriptSource, *, escaped: bool = False) -> None:
    """Every script line sits on the package line package_line() gives: the first line ends that
    package line (after the start tag or CDATA), the last begins its line (before the end tag),
    the others are the whole line. ``escaped``: the text is written as XML text, not CDATA."""
    raw = _file_lines(path)
    lines = source.lines
    for number, text in enumerate(lines, 1):
        line = source.package_line(number)
        assert line is not None
        found = unescape(raw[line - 1], {"&quot;": '"'}) if escaped else raw[line - 1]
        if len(lines) == 1:
            assert text.split("&")[0] in found, (source.path, number)
        elif number == 1:
            assert found.endswith(text), (source.path, number)
        elif number == len(lines):
            assert found.startswith(text), (source.path, number)
        else:
            assert found == text, (source.path, number)


# ----------------------------------------------------------------- hand-written packages


def test_format_3_drops_the_newline_before_cdata_and_keeps_every_piece() -> None:
    project = _only(DATA / "csharp.v3.dtsx")
    assert project.name == "ST_0b1d7e523c4a4f6b9e1a2d3c4b5a6978"
    assert project.language == "CSharp"
    assert project.entry_point == "Main"
    assert project.read_only_variables == ("User::Source", "System::PackageName")
    assert project.read_write_variables == ()  # 2008 writes ReadWriteVariables=""
    assert [s.path for s in project.sources] == ["scriptmain.cs", "helper.cs"]
    assert [s.name for s in project.sources] == ["\\scriptmain.cs", "\\helper.cs"]
    assert [f.path for f in project.project_files] == [
        "properties/assemblyinfo.cs",
        "st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj",
    ]
    entry = project.entry
    assert entry is not None and entry.text.startswith("using System;\n")
    assert entry.line == 10  # the line after <ProjectItem ...>, where <![CDATA[ starts
    assert entry.lines[11] == "      Dts.TaskResult = (int)ScriptResults.Success;"
    assert entry.package_line(12) == 21
    assert _file_lines(DATA / "csharp.v3.dtsx")[21 - 1] == entry.lines[11]
    for item in project.items:
        _assert_lines_map(DATA / "csharp.v3.dtsx", item)


def test_the_binary_is_kept_as_bytes() -> None:
    project = _only(DATA / "csharp.v3.dtsx")
    assert project.binary == b"MZ\x90\x00" + bytes(range(256)) * 2
    assert project.binary_name == "\\bin\\release\\st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj.dll"
    (binary,) = project.binaries
    assert binary.path == "bin/release/st_0b1d7e523c4a4f6b9e1a2d3c4b5a6978.csproj.dll"
    assert len(binary.sha256) == 64
    assert "MZ" not in repr(binary)  # the bytes stay out of reprs and logs


def test_a_breakpoint_of_format_3_lands_on_its_statement() -> None:
    project = _only(DATA / "csharp.v3.dtsx")
    entry = project.entry
    assert entry is not None
    # <Breakpoint File="\scriptmain.cs" Line="11" Column="7"/>: the statement starts there only
    # once the newline before <![CDATA[ is dropped.
    assert entry.lines[11 - 1][7 - 1 :].startswith("File.Copy(")


def test_format_8_visual_basic_with_several_files_and_no_binary() -> None:
    ((exe, project),) = _projects(DATA / "vb_several.v8.dtsx")
    assert exe.disabled
    assert project.language == "VisualBasic"
    assert project.entry_point == "Main"  # never written in 6/8
    assert project.read_only_variables == ("User::Folder",)
    assert project.read_write_variables == ("User::Count", "$Package::Total")
    assert [s.path for s in project.sources] == ["ScriptMain.vb", "Counter.vb"]
    # AssemblyInfo (My Project) and the designer file are project files, not the user's code.
    assert [f.path for f in project.project_files] == [
        "My Project/AssemblyInfo.vb",
        "ScriptMain.Designer.vb",
        "ST_7d8e9f0a1b2c4d3e9f4a5b6c7d8e9f0a.vbproj",
    ]
    assert project.binaries == () and project.binary is None and project.binary_name is None
    entry = project.entry
    assert entry is not None and entry.lines[0] == "' Счётчик строк"  # CDATA right after ">"
    assert [i.path for i in project.items][:2] == ["My Project/AssemblyInfo.vb", "ScriptMain.vb"]
    for item in project.items:
        _assert_lines_map(DATA / "vb_several.v8.dtsx", item)


def test_format_2_visual_basic_names_and_both_binaries() -> None:
    project = _only(DATA / "vb2005.v2.dtsx")
    assert project.language == "VisualBasic"  # written "Microsoft Visual Basic .NET"
    assert project.entry_point == "ScriptMain"  # 2005 names the class
    assert [s.path for s in project.sources] == ["ScriptMain.vsaitem"]
    assert [f.path for f in project.project_files] == [
        "ScriptTask_4d5e6f7a8b9c4daebf0123456789abcd.vsaproj"
    ]
    assert [b.path for b in project.binaries] == [
        "ScriptTask_4d5e6f7a8b9c4daebf0123456789abcd.dll",
        "ScriptTask_4d5e6f7a8b9c4daebf0123456789abcd.pdb",
    ]
    assert project.binary == base64.b64decode("TVqQAAMAAAAEAAAA")
    entry = project.entry
    assert entry is not None and entry.lines[0] == "Imports System" and entry.line == 9


def test_hostile_item_names_become_safe_relative_paths() -> None:
    (_, project), (_, empty) = _projects(DATA / "hostile.v8.dtsx")
    assert [s.path for s in project.sources] == [
        "x.cs",
        "evil.cs",
        "unc.cs",
        "_con.cs",
        "ScriptMain.cs",
    ]
    entry = project.entry
    assert entry is not None and entry.text == "// main\r\x7f[31m red"
    assert empty.sources == () and empty.project_files == () and empty.binaries == ()
    assert empty.entry is None and empty.language == "CSharp"


def test_a_script_task_without_object_data_is_an_empty_project() -> None:
    ((exe, project),) = _projects(REPO_ROOT / "tests" / "data" / "exec" / "unsupported.v8.dtsx")
    assert exe.name == "Script"
    assert project.name is None and project.items == () and project.entry_point == "Main"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("ScriptMain.cs", "ScriptMain.cs"),
        ("Properties\\AssemblyInfo.cs", "Properties/AssemblyInfo.cs"),
        ("\\properties\\resources.resx", "properties/resources.resx"),
        ("dts://Scripts/ST_1/ScriptMain.vsaitem", "ScriptMain.vsaitem"),
        ("C:\\Users\\me\\Temp\\SSIS\\abc\\ScriptMain.cs", "ScriptMain.cs"),
        ("\\\\server\\share\\a.cs", "a.cs"),
        ("../../x.cs", "x.cs"),
        ("a/./b/../c.cs", "a/c.cs"),
        ("My Project\\Settings.settings", "My Project/Settings.settings"),
        ('bad<>:"|?*name.cs', "bad_______name.cs"),
        ("nul.txt", "_nul.txt"),
        ("trailing. ", "trailing"),
        ("..", ""),
    ],
)
def test_project_path(name: str, path: str) -> None:
    assert project_path(name) == path


def test_safe_file_name() -> None:
    assert safe_file_name("../../escape") == "_.._escape"  # no leading dot: not hidden
    assert safe_file_name("..", "Script Task") == "Script Task"
    assert safe_file_name("Package\\Seq\\Task") == "Package_Seq_Task"
    assert safe_file_name("COM1") == "_COM1"
    assert len(safe_file_name("x" * 500)) == 120


def test_absolute_names_are_relative_to_the_project_files_folder(tmp_path: Path) -> None:
    root = "C:\\Users\\me\\AppData\\Local\\Temp\\SSIS\\0123\\"
    text = (DATA / "vb_several.v8.dtsx").read_text("utf-8")
    for name in ("My Project\\AssemblyInfo.vb", "ST_7d8e9f0a1b2c4d3e9f4a5b6c7d8e9f0a.vbproj"):
        text = text.replace(f'Name="{name}"', f'Name="{root}{name}"')
    path = tmp_path / "absolute.dtsx"
    path.write_text(text, "utf-8")
    project = _only(path)
    assert [f.path for f in project.project_files][0] == "My Project/AssemblyInfo.vb"


# ------------------------------------------------------------------------ malformed projects


_BROKEN = [
    ('Name="Counter.vb"', 'Name="My Project/../ScriptMain.vb"', "are both the file"),
    ('Name="Counter.vb"', 'Name=" "', "has no Name"),
    ('Language="VisualBasic"', 'Language="Python"', "neither CSharp nor VisualBasic"),
    ("<![CDATA[Module Counter", "<Inner/><![CDATA[Module Counter", "holds elements"),
    ("<ScriptProject\n", "<NotAScriptProject\n", "holds no <ScriptProject>"),
]


@pytest.mark.parametrize(("old", "new", "says"), _BROKEN, ids=[b[2] for b in _BROKEN])
def test_a_damaged_project_is_one_sentence_with_file_and_line(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    text = (DATA / "vb_several.v8.dtsx").read_text("utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    if new.startswith("<NotAScriptProject"):
        text = text.replace("</ScriptProject>", "</NotAScriptProject>")
    path = tmp_path / "broken.dtsx"
    path.write_text(text, "utf-8")
    with pytest.raises(PackageLoadError) as raised:
        _projects(path)
    message = str(raised.value)
    assert says in message
    assert re.match(
        rf"{re.escape(str(path))}:\d+: Script Task 'Count rows' \[Package\\Count rows\]", message
    )
    assert "\n" not in message


def test_a_binary_that_is_not_base64_is_refused(tmp_path: Path) -> None:
    text = (DATA / "csharp.v3.dtsx").read_text("utf-8").replace("TVqQ", "TV!Q", 1)
    path = tmp_path / "bad_binary.dtsx"
    path.write_text(text, "utf-8")
    with pytest.raises(PackageLoadError, match=r"BinaryItem .* is not base64"):
        _projects(path)


# ---------------------------------------------------------------------------------- corpus


def _corpus() -> list[Path]:
    return corpus_packages("ScriptProject")


CORPUS = _corpus()


@pytest.fixture(scope="module")
def corpus_projects() -> list[tuple[Package, Path, Executable, ScriptProject]]:
    if not CORPUS:
        pytest.skip(
            "the shared folder (corpus, vectors) is absent: set DTSX_SHARED or place it at ../shared"
        )
    found = []
    for path in CORPUS:
        package = load(path)
        for exe in script_tasks(package):
            found.append(
                (
                    package,
                    path,
                    exe,
                    read_script_project(exe, format_version=package.format_version),
                )
            )
    return found


def test_every_corpus_script_task_loads(corpus_projects: list) -> None:
    """The census of spec/script-task.md §1 and §3: 49 tasks in 28 packages, by format 1/19/9/20;
    45 with source (35 C#, 10 VB), 4 never edited; 2 with sources and no binary."""
    assert len(corpus_projects) == 49
    assert len({path for _, path, _, _ in corpus_projects}) == 28
    formats = Counter(package.format_version for package, _, _, _ in corpus_projects)
    assert formats == {2: 1, 3: 19, 6: 9, 8: 20}
    with_source = [p for _, _, _, p in corpus_projects if p.sources]
    assert Counter(p.language for p in with_source) == {"CSharp": 35, "VisualBasic": 10}
    assert all(p.entry is not None for p in with_source)  # ScriptMain found in all 45
    empty = [p for _, _, _, p in corpus_projects if not p.items]
    assert len(empty) == 4 and all(p.binary is None for p in empty)
    assert sum(1 for p in with_source if p.binary is None) == 2
    assert sum(1 for _, _, exe, _ in corpus_projects if exe.disabled) == 4
    entry_points = Counter(p.entry_point for _, _, _, p in corpus_projects)
    assert entry_points == {"Main": 48, "ScriptMain": 1}


def test_corpus_lines_map_to_the_package(corpus_projects: list) -> None:
    for _, path, _, project in corpus_projects:
        for item in project.items:
            _assert_lines_map(path, item)


def test_corpus_breakpoints_land_on_statements(corpus_projects: list) -> None:
    """The two 2008 breakpoints (Line 66 and 52, Column 7) hit statements only once the newline
    before <![CDATA[ is dropped (spec §1.3)."""
    hits = 0
    for _, _, exe, project in corpus_projects:
        assert exe.object_data is not None
        node = exe.object_data.find("ScriptProject")
        assert node is not None
        for point in node.findall("Breakpoint"):
            entry = project.entry
            assert entry is not None and point.get("File") == entry.name
            line, column = int(point.get("Line") or 0), int(point.get("Column") or 0)
            text = entry.lines[line - 1]
            assert text[: column - 1].strip() == "" and text[column - 1 :].strip(), text
            hits += 1
    assert hits == 2


_ONE_PER_FORMAT = {
    # (format, language): (package file prefix, script line, text on it)
    (2, "VisualBasic"): ("lucmilot_SSIS_2014_Book_850879_c14", None, None),
    (3, "CSharp"): (
        "avgrishin_Dts2008_CheckBourseList",
        50,
        "Dts.TaskResult = (int)ScriptResults.Success;",
    ),
    (6, "VisualBasic"): ("lucmilot_SSIS_2014_Book_850879_c06", None, None),
    (6, "CSharp"): (
        "lucmilot_SSIS_2014_Book_850879_c18_download_ch18_download_Code_Ch18_ProSSIS_11",
        None,
        None,
    ),
    (8, "CSharp"): ("Apress_", None, None),
    (8, "VisualBasic"): ("AmericanAg_", None, None),
}


@pytest.mark.parametrize(
    "key", list(_ONE_PER_FORMAT), ids=[f"{f}-{lang}" for f, lang in _ONE_PER_FORMAT]
)
def test_one_corpus_package_per_format_and_language(
    corpus_projects: list, key: tuple[int, str]
) -> None:
    prefix, script_line, text = _ONE_PER_FORMAT[key]
    found = [
        (path, project)
        for package, path, _, project in corpus_projects
        if path.name.startswith(prefix)
        and (package.format_version, project.language) == key
        and project.sources
    ]
    assert found, key
    path, project = found[0]
    entry = project.entry
    assert entry is not None and "ScriptMain" in entry.text
    _assert_lines_map(path, entry)
    if script_line is not None:
        assert entry.lines[script_line - 1].strip() == text
        line = entry.package_line(script_line)
        assert line is not None and _file_lines(path)[line - 1].strip() == text


@pytest.mark.parametrize("path", shared_params(CORPUS))
def test_corpus_package_projects_read(path: Path) -> None:
    for _, project in _projects(path):
        paths = [i.path.lower() for i in project.items] + [b.path.lower() for b in project.binaries]
        assert len(paths) == len(set(paths))
        assert all(not p.startswith("/") and ".." not in p.split("/") for p in paths)
        assert all(b.data[:2] == b"MZ" for b in project.binaries if b.path.endswith(".dll"))


def test_a_format_3_task_written_as_format_8_keeps_its_lines(tmp_path: Path) -> None:
    from dtsx.engine.writer import write_file

    path = tmp_path / "rewritten.dtsx"
    write_file(load(DATA / "csharp.v3.dtsx"), path)
    before, after = _only(DATA / "csharp.v3.dtsx"), _only(path)
    assert [s.text for s in after.items] == [s.text for s in before.items]
    for item in after.items:
        _assert_lines_map(path, item, escaped=True)


@given(st.text(alphabet=st.sampled_from(list("ab.:\\/ <>|?*\x00\x1fC\u0416")), max_size=40))
def test_project_paths_never_leave_the_folder(name: str) -> None:
    path = project_path(name)
    if not path:
        return
    parts = path.split("/")
    assert all(p and p not in (".", "..") for p in parts)
    assert not any(c in path for c in '\\<>:"|?*\x00\x1f')
    base = Path("/base")
    assert (base / path).resolve().is_relative_to(base)
