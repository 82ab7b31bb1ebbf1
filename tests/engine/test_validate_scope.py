"""Which names an expression may read: what the run resolves is accepted, what it cannot is a
problem, and what only the run can know (DelayValidation, a missing project) is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtsx.engine.errors import PackageValidationError, Problem
from dtsx.engine.loader import load, load_bytes
from dtsx.engine.plan import Plan, build


def _package(expression: str, *, delay: bool = False, namespace: str = "User") -> bytes:
    flag = ' DTS:DelayValidation="True"' if delay else ""
    return f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Variables>
    <DTS:Variable DTS:Namespace="{namespace}" DTS:ObjectName="N"><DTS:VariableValue DTS:DataType="3">1</DTS:VariableValue></DTS:Variable>
    <DTS:Variable DTS:Namespace="User" DTS:ObjectName="Out"><DTS:VariableValue DTS:DataType="8"></DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Seq" DTS:ExecutableType="STOCK:SEQUENCE" DTS:ObjectName="Seq"{flag}>
      <DTS:PropertyExpression DTS:Name="Description">{expression}</DTS:PropertyExpression>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
""".encode()


def _plan(data: bytes, **options: object) -> Plan:
    return build(load_bytes(data, file="scope.dtsx"), **options)  # type: ignore[arg-type]


def _problems(data: bytes) -> list[Problem]:
    with pytest.raises(PackageValidationError) as caught:
        _plan(data)
    return caught.value.problems


@pytest.mark.parametrize(
    "expression",
    [
        "(DT_WSTR, 10) @[User::N]",
        "(DT_WSTR, 10) @N",  # unqualified: any namespace
        "@[System::PackageName]",
        "@PackageName",  # an unqualified System variable
    ],
)
def test_names_the_run_resolves_are_accepted(expression: str) -> None:
    assert _plan(_package(expression)).warnings == []


def test_an_unqualified_name_finds_a_variable_of_another_namespace() -> None:
    assert _plan(_package("(DT_WSTR, 10) @N", namespace="Etl")).warnings == []
    (problem,) = _problems(_package("(DT_WSTR, 10) @[User::N]", namespace="Etl"))
    assert problem.code == "missing-variable" and "(did you mean 'Etl::N'?)" in problem.message


def test_delay_validation_turns_an_unknown_variable_into_a_warning() -> None:
    (problem,) = _problems(_package("@[User::FromParent]"))
    assert problem.code == "missing-variable" and problem.line == 10
    (warning,) = _plan(_package("@[User::FromParent]", delay=True)).warnings
    assert warning.code == "missing-variable" and warning.ref_id == "Package\\Seq"


def test_outer_variables_are_visible_to_the_package() -> None:
    _plan(_package("@[User::FromParent]"), outer_variables=["User::FromParent"])


def test_project_parameters_are_a_warning_without_the_project_and_checked_with_it(
    tmp_path: Path,
) -> None:
    (warning,) = _plan(_package("@[$Project::Missing]")).warnings
    assert warning.code == "missing-variable" and "--project-dir" in warning.message
    (tmp_path / "Project.params").write_text(
        '<?xml version="1.0"?><SSIS:Parameters xmlns:SSIS="www.microsoft.com/SqlServer/SSIS">'
        '<SSIS:Parameter SSIS:Name="Folder"><SSIS:Properties>'
        '<SSIS:Property SSIS:Name="DataType">18</SSIS:Property><SSIS:Property SSIS:Name="Value">/tmp</SSIS:Property>'
        "</SSIS:Properties></SSIS:Parameter></SSIS:Parameters>",
        encoding="utf-8",
    )
    path = tmp_path / "scope.dtsx"
    path.write_bytes(_package("@[$Project::Foldr]"))
    with pytest.raises(PackageValidationError) as caught:
        build(load(path))
    (problem,) = caught.value.problems
    assert (
        problem.code == "missing-variable"
        and "(did you mean '$Project::Folder'?)" in problem.message
    )
    path.write_bytes(_package("@[$Project::Folder]"))
    build(load(path))


def test_an_empty_item_list_is_a_loop_over_nothing_but_unknown_elements_are_not(
    tmp_path: Path,
) -> None:
    text = (Path(__file__).resolve().parent.parent / "data" / "validate" / "valid.dtsx").read_text(
        encoding="utf-8"
    )
    start, end = text.index("<FEIEItems>"), text.index("</FEIEItems>") + len("</FEIEItems>")
    path = tmp_path / "items.dtsx"
    path.write_text(text[:start] + "<FEIEItems />" + text[end:], encoding="utf-8")
    assert build(load(path)).warnings == []
    path.write_text(
        text[:start] + "<FEIEItems><Row>a</Row></FEIEItems>" + text[end:], encoding="utf-8"
    )
    with pytest.raises(PackageValidationError) as caught:
        build(load(path))
    assert [p.code for p in caught.value.problems] == ["empty-enumerator"]
