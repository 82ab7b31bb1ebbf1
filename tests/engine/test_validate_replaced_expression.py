"""A task setting that a property expression replaces is not judged by its stale stored text.

An Expression Task whose ``Expression`` is built by a property expression runs what that builds;
the stored text (here reading a variable that no longer exists) never runs, so validate must not
refuse the package for it. What the property expression reads is still checked.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from dtsx.engine import loader, plan
from dtsx.engine.errors import PackageValidationError
from tests.engine.test_hardening_exec_locks import (
    package_xml,
    parameter_xml,
    run_file,
    variable_xml,
)


def _task(stored: str, built: str) -> str:
    return (
        '<DTS:Executable DTS:refId="Package\\Set" DTS:CreationName="Microsoft.ExpressionTask" '
        'DTS:DTSID="{5E000000-0000-4000-8000-000000000001}" DTS:ExecutableType="Microsoft.ExpressionTask" '
        'DTS:ObjectName="Set">'
        f'<DTS:PropertyExpression DTS:Name="Expression">{built}</DTS:PropertyExpression>'
        f"<DTS:ObjectData><ExpressionTask Expression={quoteattr(stored)} /></DTS:ObjectData></DTS:Executable>\n"
    )


def _write(tmp_path: Path, built: str) -> Path:
    path = tmp_path / "replaced.dtsx"
    path.write_text(
        package_xml([_task("@[User::Gone] = 1", built)], variables=variable_xml("X", "0")),
        encoding="utf-8",
    )
    return path


def test_a_stored_expression_that_a_property_expression_replaces_is_not_checked(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, '"@[User::X] = 5"')
    plan.build(loader.load(str(path)))  # no missing-variable for the stale User::Gone
    assert run_file(path).variables["User::X"] == 5


def test_what_the_property_expression_reads_is_still_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, '"@[User::X] = " + (DT_WSTR, 5) @[User::Missing]')
    with pytest.raises(PackageValidationError) as info:
        plan.build(loader.load(str(path)))
    assert [p.code for p in info.value.problems] == ["missing-variable"]
    assert "User::Missing" in info.value.problems[0].message


def test_a_sensitive_value_that_does_not_parse_is_named_but_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "secret.dtsx"
    path.write_text(
        package_xml(
            [],
            parameters=parameter_xml(
                "When", sensitive=True, data_type=7, value="hunter2-not-a-date"
            ),
        ),
        encoding="utf-8",
    )
    with pytest.raises(PackageValidationError) as info:
        plan.build(loader.load(str(path)))
    (problem,) = info.value.problems
    assert problem.code == "bad-value" and "$Package::When" in problem.message
    assert "hunter2" not in str(info.value)
