"""A child package run by an Execute Package task reads its parent's variables by name (SSIS lets
it see every parent variable it does not shadow), so the planner must accept those names for the
child; a name that neither package defines is still refused, naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from dtsx.engine import executor
from dtsx.engine.loader import load
from dtsx.engine.plan import build

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
_ids = iter(range(1, 10**6))


def _guid() -> str:
    return f"{{7B000000-0000-4000-8000-{next(_ids):012d}}}"


def _variable(name: str, value: str, expression: str | None = None) -> str:
    extra = (
        f' DTS:EvaluateAsExpression="True" DTS:Expression={quoteattr(expression)}'
        if expression
        else ""
    )
    return (
        f'<DTS:Variable DTS:CreationName="" DTS:DTSID="{_guid()}" DTS:Namespace="User" DTS:ObjectName="{name}"{extra}>'
        f'<DTS:VariableValue DTS:DataType="8">{value}</DTS:VariableValue></DTS:Variable>'
    )


def _expression_task(name: str, expression: str, property_expression: str = "") -> str:
    return (
        f'<DTS:Executable DTS:refId="Package\\{name}" DTS:CreationName="Microsoft.ExpressionTask" DTS:DTSID="{_guid()}" '
        f'DTS:ExecutableType="Microsoft.ExpressionTask" DTS:ObjectName="{name}">{property_expression}'
        f"<DTS:ObjectData><ExpressionTask Expression={quoteattr(expression)} /></DTS:ObjectData></DTS:Executable>"
    )


def _execute_package(name: str, child: str) -> str:
    return (
        f'<DTS:Executable DTS:refId="Package\\{name}" DTS:CreationName="Microsoft.ExecutePackageTask" DTS:DTSID="{_guid()}" '
        f'DTS:ExecutableType="Microsoft.ExecutePackageTask" DTS:ObjectName="{name}"><DTS:ObjectData><ExecutePackageTask>'
        f"<UseProjectReference>True</UseProjectReference><PackageName>{child}</PackageName>"
        "</ExecutePackageTask></DTS:ObjectData></DTS:Executable>"
    )


def _package(path: Path, variables: list[str], executables: list[str]) -> Path:
    path.write_text(
        '<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        f'DTS:CreationName="Microsoft.Package" DTS:DTSID="{_guid()}" DTS:ExecutableType="Microsoft.Package" '
        f'DTS:ObjectName="{path.stem}" DTS:ProtectionLevel="0"><DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>'
        f"<DTS:Variables>{''.join(variables)}</DTS:Variables><DTS:Executables>{''.join(executables)}</DTS:Executables>"
        "</DTS:Executable>\n",
        encoding="utf-8",
    )
    return path


def _run(parent: Path) -> executor.RunResult:
    return executor.run(build(load(str(parent))), executor.RunOptions())


def _parent(tmp_path: Path) -> Path:
    variables = [_variable("ParentOnly", "from the parent"), _variable("Result", "")]
    return _package(
        tmp_path / "parent.dtsx", variables, [_execute_package("Run child", "child.dtsx")]
    )


# Where the child reads the parent's variable: each is checked by the planner in its own way.
READS = {
    "Expression Task": ([], '@[User::Result] = @[User::ParentOnly] + " seen"', ""),
    "variable expression": (
        [_variable("Derived", "", '@[User::ParentOnly] + " seen"')],
        "@[User::Result] = @[User::Derived]",
        "",
    ),
    "property expression": (
        [],
        '@[User::Result] = "unchanged"',
        '<DTS:PropertyExpression DTS:Name="Expression">"@[User::Result] = \\"" + @[User::ParentOnly] + " seen\\""'
        "</DTS:PropertyExpression>",
    ),
}


@pytest.mark.parametrize("where", list(READS))
def test_child_reads_a_variable_only_its_parent_defines(tmp_path: Path, where: str) -> None:
    own, expression, property_expression = READS[where]
    _package(
        tmp_path / "child.dtsx", own, [_expression_task("Copy", expression, property_expression)]
    )
    result = _run(_parent(tmp_path))
    assert (result.result, result.exit_code) == ("Success", 0), [
        e.errors for e in result.executables
    ]
    assert result.variables["User::Result"] == "from the parent seen"


def test_grandchild_reads_the_grandparents_variable_through_the_child(tmp_path: Path) -> None:
    _package(
        tmp_path / "grandchild.dtsx",
        [],
        [_expression_task("Copy", '@[User::Result] = @[User::ParentOnly] + "/" + @[User::Middle]')],
    )
    _package(
        tmp_path / "child.dtsx",
        [_variable("Middle", "child")],
        [_execute_package("Run grandchild", "grandchild.dtsx")],
    )
    result = _run(_parent(tmp_path))
    assert (result.result, result.exit_code) == ("Success", 0), [
        e.errors for e in result.executables
    ]
    assert result.variables["User::Result"] == "from the parent/child"


def test_child_reading_a_variable_neither_defines_is_still_refused(tmp_path: Path) -> None:
    _package(
        tmp_path / "child.dtsx",
        [],
        [_expression_task("Copy", "@[User::Result] = @[User::Nowhere]")],
    )
    result = _run(_parent(tmp_path))
    assert (result.result, result.exit_code) == ("Failure", 1)
    errors = result.executable("Package\\Run child").errors
    assert len(errors) == 1 and "could not run" in errors[0], errors
    assert "User::Nowhere" in errors[0] and "missing-variable" in errors[0], errors
    assert result.variables["User::Result"] == ""


def test_validate_of_the_child_alone_cannot_know_the_parent(tmp_path: Path) -> None:
    # Validated on its own, the child's parent-only name is reported (the parent is unknown);
    # the parent package validates clean, as its child is only planned when it runs.
    child = _package(
        tmp_path / "child.dtsx",
        [],
        [_expression_task("Copy", "@[User::Result] = @[User::ParentOnly]")],
    )
    parent = _parent(tmp_path)
    alone = subprocess.run(
        [*DTSX, "validate", str(child)], capture_output=True, text=True, timeout=60
    )
    assert alone.returncode == 5 and "User::ParentOnly" in alone.stdout + alone.stderr, alone
    assert "Traceback" not in alone.stderr
    whole = subprocess.run(
        [*DTSX, "validate", str(parent)], capture_output=True, text=True, timeout=60
    )
    assert whole.returncode == 0, whole
