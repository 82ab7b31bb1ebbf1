"""A Required parameter is refused only when nothing gave it a value: a --set or a package
configuration applied after --param may still give it one (H4 found the check ran before them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtsx.engine.errors import PackageValidationError
from dtsx.engine.executor import parse_set
from tests.engine.test_hardening_exec_locks import (
    expression_task,
    package_xml,
    parameter_xml,
    run_file,
    variable_xml,
)


def _package(tmp_path: Path, data_type: int) -> Path:
    path = tmp_path / "required.dtsx"
    path.write_text(
        package_xml(
            [expression_task("Copy", "@[User::Out] = (DT_WSTR, 20)@[$Package::Need]")],
            variables=variable_xml("Out", "none", 8),
            parameters=parameter_xml("Need", required=True, value="", data_type=data_type),
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("data_type", [8, 3])  # String, Int32 (whose empty value converts to 0)
def test_a_set_gives_a_required_parameter_its_value(tmp_path: Path, data_type: int) -> None:
    result = run_file(
        _package(tmp_path, data_type),
        sets=[parse_set("\\Package.Variables[$Package::Need].Value;42")],
    )
    assert result.result == "Success" and result.variables["User::Out"] == "42"


@pytest.mark.parametrize("data_type", [8, 3])
def test_a_required_parameter_nothing_gives_is_refused(tmp_path: Path, data_type: int) -> None:
    with pytest.raises(PackageValidationError) as caught:
        run_file(_package(tmp_path, data_type))
    assert [p.code for p in caught.value.problems] == ["required-parameter"]
    assert "parameter $Package::Need is Required and has no value" in str(caught.value)
