"""Bad inputs: each is refused with the documented error class, file and line — never a hang."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dtsx.engine.errors import PackageLoadError, PackageNotFoundError, PackageValidationError
from dtsx.engine.loader import MAX_PACKAGE_BYTES, load, load_bytes
from dtsx.engine.plan import build
from tests._shared import REPO_ROOT

BAD = REPO_ROOT / "tests" / "data" / "bad"


@pytest.mark.parametrize(
    ("name", "line", "words"),
    [
        ("not_xml.dtsx", 1, "not well-formed XML"),
        ("truncated.dtsx", 8, "truncated"),
        ("wrong_root.dtsx", 2, "<Project>"),
        ("unknown_format.dtsx", 6, "PackageFormatVersion '99'"),
        ("xxe.dtsx", 2, "DOCTYPE"),
        ("billion_laughs.dtsx", 2, "DOCTYPE"),
        ("encrypted_all.dtsx", 1, "EncryptAllWithPassword"),
    ],
)
def test_load_errors_name_file_and_line(name: str, line: int, words: str) -> None:
    path = BAD / name
    with pytest.raises(PackageLoadError) as info:
        load(path)
    err = info.value
    assert type(err) is PackageLoadError
    assert err.file == str(path) and err.line == line
    assert words in str(err) and str(err).startswith(f"{path}:{line}: ")


def test_xxe_never_reads_the_file() -> None:
    with pytest.raises(PackageLoadError) as info:
        load(BAD / "xxe.dtsx")
    assert "root:" not in str(info.value)


def test_missing_file_is_package_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dtsx"
    with pytest.raises(PackageNotFoundError) as info:
        load(missing)
    assert isinstance(info.value, PackageLoadError) and str(missing) in str(info.value)


def test_missing_project_dir_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(PackageNotFoundError):
        load(BAD / "cycle.dtsx", project_dir=tmp_path / "absent")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.dtsx"
    with open(big, "wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_PACKAGE_BYTES + 1)
    with pytest.raises(PackageLoadError) as info:
        load(big)
    assert "64 MiB" in str(info.value)


def test_fifty_megabyte_package_is_bounded(tmp_path: Path) -> None:
    """50 MB in one variable value: libxml2's text-node limit refuses it cleanly and quickly."""
    path = tmp_path / "fifty.dtsx"
    head = (
        b'<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
        b'DTS:refId="Package" '
        b'DTS:ObjectName="Big">\n<DTS:Property '
        b'DTS:Name="PackageFormatVersion">8</DTS:Property>\n<DTS:Variables>'
        b'<DTS:Variable DTS:Namespace="User" DTS:ObjectName="Blob"><DTS:VariableValue '
        b'DTS:DataType="8">'
    )
    tail = b"</DTS:VariableValue></DTS:Variable></DTS:Variables></DTS:Executable>\n"
    with open(path, "wb") as handle:
        handle.write(head)
        chunk = b"x" * (1024 * 1024)
        for _ in range(50):
            handle.write(chunk)
        handle.write(tail)
    assert os.path.getsize(path) > 50 * 1024 * 1024
    start = time.perf_counter()
    with pytest.raises(PackageLoadError) as info:
        load(path)
    assert time.perf_counter() - start < 60  # the behaviour under test is "no hang"
    assert info.value.file == str(path) and info.value.line is not None
    assert "10 MB" in str(info.value)


@pytest.mark.parametrize(
    ("name", "code", "line", "ref_id", "words"),
    [
        ("duplicate_dtsid.dtsx", "duplicate-dtsid", 12, "Package\\Second", "Package\\First"),
        (
            "constraint_missing.dtsx",
            "bad-constraint",
            12,
            "Package.PrecedenceConstraints[Constraint]",
            "Package\\Ghost",
        ),
        ("cycle.dtsx", "cycle", 8, "Package\\A", "'Package\\A', 'Package\\B'"),
        (
            "smtp_missing.dtsx",
            "invalid-task",
            17,
            "Package\\Send Mail Task",
            "{BBBBBBBB-0000-0000-0000-000000000002}",
        ),
        ("foreach_problems.dtsx", "missing-variable", 26, "Package\\Files", "User::NoSuchVariable"),
        (
            "foreach_problems.dtsx",
            "unsupported-enumerator",
            29,
            "Package\\Blobs",
            "ForEachBlobEnumerator",
        ),
    ],
)
def test_validation_problems_name_file_line_and_refid(
    name: str, code: str, line: int, ref_id: str, words: str
) -> None:
    path = BAD / name
    pkg = load(path)
    with pytest.raises(PackageValidationError) as info:
        build(pkg)
    matching = [p for p in info.value.problems if p.code == code]
    assert len(matching) == 1, info.value.problems
    problem = matching[0]
    assert (problem.file, problem.line, problem.ref_id) == (str(path), line, ref_id)
    assert words in problem.message


def test_every_problem_is_reported_not_just_the_first() -> None:
    with pytest.raises(PackageValidationError) as info:
        build(load(BAD / "foreach_problems.dtsx"))
    assert {p.code for p in info.value.problems} == {"missing-variable", "unsupported-enumerator"}
    assert "2 problems" in str(info.value)


def test_bad_expression_is_reported_with_its_location() -> None:
    pytest.importorskip("dtsx.engine.expressions.compiler")
    path = BAD / "bad_expression.dtsx"
    with pytest.raises(PackageValidationError) as info:
        build(load(path))
    (problem,) = info.value.problems
    assert problem.code == "expression" and problem.line == 9
    assert problem.ref_id == "Package.Variables[User::Broken]" and "1 + + (" in problem.message


def test_nesting_deeper_than_the_limit_is_refused_as_a_limit() -> None:
    head = (
        b'<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        b'DTS:ObjectName="Deep">'
        b'<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property><DTS:ObjectData>'
    )
    depth = 100_000
    data = head + b"<a>" * depth + b"</a>" * depth + b"</DTS:ObjectData></DTS:Executable>"
    with pytest.raises(PackageLoadError) as info:
        load_bytes(data, file="deep.dtsx")
    assert "256 levels" in str(info.value) and info.value.line == 1


def test_shallow_nesting_in_object_data_loads() -> None:
    head = (
        b'<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        b'DTS:ObjectName="Ok">'
        b'<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property><DTS:Executables>'
        b'<DTS:Executable DTS:refId="Package\\T" DTS:ExecutableType="Acme.Task" '
        b'DTS:ObjectName="T"><DTS:ObjectData>'
    )
    data = (
        head
        + b"<a>" * 200
        + b"</a>" * 200
        + b"</DTS:ObjectData></DTS:Executable></DTS:Executables></DTS:Executable>"
    )
    node = load_bytes(data, file="ok.dtsx").executables[0].object_data
    depth = 0
    while node.children:
        node, depth = node.children[0], depth + 1
    assert depth == 200


@pytest.mark.parametrize(
    "pattern",
    [
        "avgrishin_Dts2008_LoadExIndexMICEX.dtsx",
        "*ProSSIS_07EventBubbling.dtsx",
        "maabcodingschool*Part84*.dtsx",
    ],
)
def test_truncating_real_packages_anywhere_gives_a_load_error(pattern: str) -> None:
    from tests._shared import require_shared

    found = sorted(require_shared("corpus", "dtsx").glob(pattern))
    if not found:
        pytest.skip(f"no corpus file matches {pattern}")
    data = found[0].read_bytes()
    body_end = data.rstrip().rfind(b">")
    for cut in range(7, body_end, max(1, body_end // 60)):
        with pytest.raises(PackageLoadError) as info:
            load_bytes(data[:cut], file="cut.dtsx")
        assert info.value.file == "cut.dtsx" and info.value.line is not None


@pytest.mark.parametrize(
    ("attribute", "words"),
    [
        ('DTS:Disabled="maybe"', "Disabled='maybe' is not a boolean"),
        ('DTS:MaxErrorCount="lots"', "MaxErrorCount='lots' is not an integer"),
    ],
)
def test_bad_setting_values_name_the_setting_and_line(attribute: str, words: str) -> None:
    data = (
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="P">\n'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n<DTS:Executables>\n'
        '<DTS:Executable DTS:refId="Package\\A" DTS:ExecutableType="STOCK:SEQUENCE" '
        f'DTS:ObjectName="A" {attribute}/>\n'
        "</DTS:Executables></DTS:Executable>"
    ).encode()
    with pytest.raises(PackageLoadError) as info:
        load_bytes(data, file="v.dtsx")
    assert info.value.line == 4 and words in str(info.value)


def test_old_format_constraint_without_an_end_is_a_load_error() -> None:
    data = (
        b'<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
        b'DTS:ExecutableType="SSIS.Package.2">\n'
        b'<DTS:Property DTS:Name="PackageFormatVersion">3</DTS:Property>\n'
        b'<DTS:Property DTS:Name="ObjectName">Old</DTS:Property>\n'
        b"<DTS:PrecedenceConstraint>\n"
        b'<DTS:Property DTS:Name="ObjectName">Constraint</DTS:Property>\n'
        b'<DTS:Executable IDREF="{00000000-0000-0000-0000-000000000001}" DTS:IsFrom="-1"/>\n'
        b"</DTS:PrecedenceConstraint>\n"
        b"</DTS:Executable>"
    )
    with pytest.raises(PackageLoadError) as info:
        load_bytes(data, file="old.dtsx")
    assert info.value.line == 4 and "no To end" in str(info.value)


def test_old_format_constraint_to_an_unknown_guid_is_reported_by_the_planner() -> None:
    data = (
        b'<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
        b'DTS:ExecutableType="SSIS.Package.2">\n'
        b'<DTS:Property DTS:Name="PackageFormatVersion">3</DTS:Property>\n'
        b'<DTS:Property DTS:Name="ObjectName">Old</DTS:Property>\n'
        b'<DTS:Executable DTS:ExecutableType="STOCK:SEQUENCE">\n'
        b'<DTS:Property DTS:Name="ObjectName">A</DTS:Property>\n'
        b'<DTS:Property DTS:Name="DTSID">{aaaaaaaa-0000-0000-0000-000000000001}</DTS:Property>\n'
        b"</DTS:Executable>\n"
        b"<DTS:PrecedenceConstraint>\n"
        b'<DTS:Property DTS:Name="ObjectName">Constraint</DTS:Property>\n'
        b'<DTS:Executable IDREF="{AAAAAAAA-0000-0000-0000-000000000001}" DTS:IsFrom="-1"/>\n'
        b'<DTS:Executable IDREF="{BBBBBBBB-0000-0000-0000-000000000002}" DTS:IsFrom="0"/>\n'
        b"</DTS:PrecedenceConstraint>\n"
        b"</DTS:Executable>"
    )
    pkg = load_bytes(data, file="old.dtsx")
    pc = pkg.precedence_constraints[0]
    assert pc.from_ref == "Package\\A" and pc.to_ref == "{BBBBBBBB-0000-0000-0000-000000000002}"
    assert pc.ref_id == "Package.PrecedenceConstraints[Constraint]"
    with pytest.raises(PackageValidationError) as info:
        build(pkg)
    (problem,) = info.value.problems
    assert problem.code == "bad-constraint" and problem.line == 8


@pytest.mark.parametrize(
    ("name", "kind"), [("Mail.conmgr", ".conmgr"), ("Project.params", "Project.params")]
)
def test_a_project_file_with_the_wrong_root_names_itself(
    tmp_path: Path, name: str, kind: str
) -> None:
    package = tmp_path / "p.dtsx"
    package.write_bytes((REPO_ROOT / "samples" / "hello-mail.dtsx").read_bytes())
    (tmp_path / name).write_text('<?xml version="1.0"?>\n<Whatever/>\n', encoding="utf-8")
    with pytest.raises(PackageLoadError) as info:
        load(package)
    assert info.value.file == str(tmp_path / name) and info.value.line == 2
    assert f"this is not a {kind} file" in str(info.value)
