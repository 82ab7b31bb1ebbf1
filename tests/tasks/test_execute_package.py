"""Execute Package task: reading both formats, resolving the child, bindings, results.

The runs here hand the task a small recording ``run_package`` (the executor's entry point);
end-to-end runs of real parent/child files are in test_execute_package_e2e.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dtsx.connections.base import ConnectionSettings
from dtsx.connections.file import FileConnectionManager
from dtsx.engine.errors import PackageLoadError, TaskFailedError
from dtsx.engine.model import XmlNode
from dtsx.tasks.base import TASKS, ValidationContext
from dtsx.tasks.execute_package import ExecutePackageTask, result_name

from tests.tasks._taskkit import PathConnections, make_ctx


def el(tag: str, text: str | None = None, *children: XmlNode) -> XmlNode:
    return XmlNode(tag=tag, text=text, children=list(children))


V8_NODE = el(
    "ObjectData",
    None,
    el(
        "ExecutePackageTask",
        None,
        el("UseProjectReference", "True"),
        el("PackageName", "child.dtsx"),
        el(
            "ParameterAssignment",
            None,
            el("ParameterName", "MyMessage"),
            el("BindedVariableOrParameterName", "System::PackageName"),
        ),
        el(
            "ParameterAssignment",
            None,
            el("ParameterName", "LogId"),
            el("BindedVariableOrParameterName", "User::INT_Log_ID"),
        ),
    ),
)
V3_NODE = el(
    "ObjectData",
    None,
    el(
        "ExecutePackageTask",
        None,
        el("ExecuteOutOfProcess", "False"),
        el("PackageName", r"\SKY_RGT\05_EXPORT\X"),
        el("PackagePassword", "s3cret"),
        el("PackageID"),
        el("VersionID"),
        el("Connection", "{ec96a8f4-184b-427a-8ef2-b774bee13f83}"),
    ),
)


@dataclass
class Outcome:
    result: Any


class Recorder:
    def __init__(self, result: Any = "Success", error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.result = result
        self.error = error

    def __call__(
        self, path: str, *, parameters: dict[str, Any], variables: dict[str, Any]
    ) -> Outcome:
        self.calls.append((path, parameters, variables))
        if self.error is not None:
            raise self.error
        return Outcome(self.result)


def test_registered_under_every_spelling() -> None:
    for name in (
        "Microsoft.ExecutePackageTask",
        "SSIS.ExecutePackageTask.3",
        "SSIS.ExecutePackageTask.2",
    ):
        assert TASKS.get(name) is ExecutePackageTask


def test_reads_both_formats() -> None:
    v8 = ExecutePackageTask.from_node(V8_NODE).props
    assert v8.use_project_reference is True and v8.package_name == "child.dtsx"
    assert [(a.parameter_name, a.bound_to) for a in v8.parameter_assignments] == [
        ("MyMessage", "System::PackageName"),
        ("LogId", "User::INT_Log_ID"),
    ]
    v3 = ExecutePackageTask.from_node(V3_NODE).props
    assert v3.use_project_reference is False and v3.connection.startswith("{ec96a8f4")
    assert v3.package_password == "s3cret" and "s3cret" not in repr(v3)


def test_project_reference_runs_child_beside_parent(tmp_path: Path) -> None:
    (tmp_path / "child.dtsx").write_text("<x/>")
    rec = Recorder()
    ctx = make_ctx(
        {"System::PackageName": "Parent", "User::INT_Log_ID": 42},
        package_path=str(tmp_path / "parent.dtsx"),
        run_package=rec,
    )
    ExecutePackageTask.from_node(V8_NODE).execute(ctx)
    path, params, _ = rec.calls[0]
    assert path == str(tmp_path / "child.dtsx")
    assert params == {"MyMessage": "Parent", "LogId": 42}


def test_missing_child_fails_clearly(tmp_path: Path) -> None:
    ctx = make_ctx(
        {"System::PackageName": "P", "User::INT_Log_ID": 1},
        package_path=str(tmp_path / "parent.dtsx"),
        run_package=Recorder(),
    )
    with pytest.raises(
        TaskFailedError, match=r"child package child.dtsx was not found at .*child.dtsx"
    ):
        ExecutePackageTask.from_node(V8_NODE).execute(ctx)


def test_unbound_parameter_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "child.dtsx").write_text("<x/>")
    ctx = make_ctx(
        {"System::PackageName": "P"},
        package_path=str(tmp_path / "parent.dtsx"),
        run_package=Recorder(),
    )
    with pytest.raises(
        TaskFailedError, match="LogId is bound to User::INT_Log_ID, which is no variable"
    ):
        ExecutePackageTask.from_node(V8_NODE).execute(ctx)


@pytest.mark.parametrize("result", ["Failure", 1, "Canceled"])
def test_child_failure_fails_the_task(tmp_path: Path, result: Any) -> None:
    (tmp_path / "child.dtsx").write_text("<x/>")
    ctx = make_ctx(
        {"System::PackageName": "P", "User::INT_Log_ID": 1},
        package_path=str(tmp_path / "parent.dtsx"),
        run_package=Recorder(result),
    )
    with pytest.raises(
        TaskFailedError,
        match=f"child package child.dtsx finished with result {result_name(result)}",
    ):
        ExecutePackageTask.from_node(V8_NODE).execute(ctx)


def test_file_connection_and_password_hint(tmp_path: Path) -> None:
    child = tmp_path / "X.dtsx"
    child.write_text("<x/>")
    cm = FileConnectionManager(ConnectionSettings("Child", "FILE", str(child)))
    conns = PathConnections({"{ec96a8f4-184b-427a-8ef2-b774bee13f83}": cm})
    rec = Recorder(error=PackageLoadError("the package is encrypted", file=str(child)))
    ctx = make_ctx(connections=conns, run_package=rec)
    with pytest.raises(
        TaskFailedError, match="could not run: .*encrypted.*cannot decrypt password-protected"
    ) as info:
        ExecutePackageTask.from_node(V3_NODE).execute(ctx)
    assert rec.calls[0][0] == str(child)
    assert "s3cret" not in str(info.value)


def test_validate() -> None:
    types = {"{F}": "FILE", "{DB}": "OLEDB"}
    vctx = ValidationContext(
        connection_type=types.get, has_variable=lambda n: n == "System::PackageName"
    )
    problems = ExecutePackageTask.from_node(V8_NODE).validate(vctx)
    assert problems == [
        "the child parameter 'LogId' is bound to 'User::INT_Log_ID', which is no variable or "
        "parameter in the task's scope."
    ]
    by_conn = ExecutePackageTask(
        ExecutePackageTask.Properties(Connection="{DB}", PackageName=r"\CorpDw\x")
    )
    assert (
        "stored in SQL Server (the task's Connection is of type OLEDB)" in by_conn.validate(vctx)[0]
    )
    assert ExecutePackageTask(ExecutePackageTask.Properties(Connection="{F}")).validate(vctx) == []
    assert "no Connection" in ExecutePackageTask(ExecutePackageTask.Properties()).validate(vctx)[0]
    dynamic = ValidationContext(types.get, lambda n: False, frozenset({"connection"}))
    assert ExecutePackageTask(ExecutePackageTask.Properties()).validate(dynamic) == []


def test_result_names() -> None:
    assert [result_name(x) for x in (0, 1, 2, 3, True, "Success")] == [
        "Success",
        "Failure",
        "Completion",
        "Canceled",
        "Success",
        "Success",
    ]
