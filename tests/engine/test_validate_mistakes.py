"""``dtsx validate`` catches each authoring mistake before anything runs.

A valid package (tests/data/validate/valid.dtsx) gets one mistake at a time; ``dtsx validate
--json`` must report it with its problem code, the line of the mistake, the refId and, where
there is one, the nearest valid name. Errors make validate exit 5; warnings leave it at 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dtsx.engine.errors import PackageValidationError
from dtsx.engine.loader import load
from dtsx.engine.plan import build
from dtsx.tasks.base import Task
from dtsx.tasks.expression_task import ExpressionTask

VALID = Path(__file__).resolve().parent.parent / "data" / "validate" / "valid.dtsx"
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
# The Expression Task lists its expression to the planner through Task.expressions().
TASK_EXPRESSIONS = pytest.mark.skipif(
    getattr(ExpressionTask, "expressions", None) is getattr(Task, "expressions", None),
    reason="the Expression Task does not list its expression yet (dtsx/tasks/expression_task.py: expressions())",
)


@dataclass(frozen=True)
class Mistake:
    old: str  # text of the valid package to replace (it must occur)
    new: str  # the mistake
    code: str  # the problem code validate must report
    anchor: str  # text on the line the problem must name (searched after the change)
    hint: str = ""  # what the message must contain: the nearest valid name, the form expected
    error: bool = True  # False: a warning, and the package stays valid


MISTAKES = {
    # Unknown variables, wherever an expression is.
    "constraint expression": Mistake(
        'DTS:Expression="@[User::Count] &gt; 0"',
        'DTS:Expression="@[User::Cuont] &gt; 0"',
        "missing-variable",
        "User::Cuont",
        "User::Count",
    ),
    "task property expression": Mistake(
        '+ " " + @[User::Label]</DTS:PropertyExpression>',
        '+ " " + @[User::Labl]</DTS:PropertyExpression>',
        "missing-variable",
        "User::Labl",
        "User::Label",
    ),
    "For Loop InitExpression": Mistake(
        'DTS:InitExpression="@[User::I] = 0"',
        'DTS:InitExpression="@[User::J] = 0"',
        "missing-variable",
        "User::J",
        "User::I",
    ),
    "For Loop EvalExpression": Mistake(
        'DTS:EvalExpression="@[User::I] &lt; 2"',
        'DTS:EvalExpression="@[User::Ii] &lt; 2"',
        "missing-variable",
        "User::Ii",
        "User::I",
    ),
    "For Loop AssignExpression": Mistake(
        "@[User::I] = @[User::I] + 1",
        "@[User::I] = @[User::Ij] + 1",
        "missing-variable",
        "User::Ij",
        "User::I",
    ),
    "container property expression": Mistake(
        'DTS:Name="Disable">@[User::Count]',
        'DTS:Name="Disable">@[User::Conut]',
        "missing-variable",
        "User::Conut",
        "User::Count",
    ),
    "EvaluateAsExpression variable": Mistake(
        '+ @[User::Label]"><DTS:VariableValue',
        '+ @[User::Lable]"><DTS:VariableValue',
        "missing-variable",
        "User::Lable",
        "User::Label",
    ),
    "enumerator property expression": Mistake(
        'DTS:Name="Directory">@[User::Folder]',
        'DTS:Name="Directory">@[User::Fodler]',
        "missing-variable",
        "User::Fodler",
        "User::Folder",
    ),
    # Property expressions on properties that do not exist.
    "task property": Mistake(
        'DTS:Name="Subject">', 'DTS:Name="Subjet">', "unknown-property", "Subjet", "Subject"
    ),
    "container property": Mistake(
        'DTS:Name="Disable">', 'DTS:Name="Disabel">', "unknown-property", "Disabel", "Disable"
    ),
    "enumerator property": Mistake(
        'DTS:Name="Directory">', 'DTS:Name="Directry">', "unknown-property", "Directry", "Directory"
    ),
    # An event handler for an event that is never raised.
    "event name": Mistake(
        'DTS:EventName="OnError">',
        'DTS:EventName="OnErorr">',
        "unknown-event",
        "OnErorr",
        "OnError",
    ),
    # Type codes and values.
    "DataType 99": Mistake(
        'ObjectName="Count"><DTS:VariableValue DTS:DataType="3">',
        'ObjectName="Count"><DTS:VariableValue DTS:DataType="99">',
        "bad-datatype",
        'DataType="99"',
    ),
    "DataType 999999": Mistake(
        'ObjectName="Count"><DTS:VariableValue DTS:DataType="3">',
        'ObjectName="Count"><DTS:VariableValue DTS:DataType="999999">',
        "bad-datatype",
        'DataType="999999"',
    ),
    "Int32 value": Mistake(
        'DTS:DataType="3">0</DTS:VariableValue></DTS:Variable>\n    <DTS:Variable DTS:CreationName="" '
        'DTS:DTSID="{7A000000-0000-4000-8000-000000000011}"',
        'DTS:DataType="3">zero</DTS:VariableValue></DTS:Variable>\n    <DTS:Variable DTS:CreationName="" '
        'DTS:DTSID="{7A000000-0000-4000-8000-000000000011}"',
        "bad-value",
        ">zero<",
        "Int32",
    ),
    "DateTime value": Mistake(
        ">2024-01-31T08:00:00<", ">world<", "bad-value", ">world<", "DateTime"
    ),
    "Item value type": Mistake(
        'Type="8" Value="first"', 'Type="77" Value="first"', "bad-datatype", 'Type="77"'
    ),
    # Connection-string keys of a built-in connection manager.
    "SMTP key": Mistake("Port=25;", "Prot=25;", "bad-connection", 'DTS:ObjectName="Mail"', "Port"),
    # Data of built-in tasks and enumerators that nothing reads.
    "task attribute": Mistake(
        'SendMailTask:Subject="status"',
        'SendMailTask:Subjct="status"',
        "unknown-data",
        "SendMailTask:Subjct",
        "Subject",
        error=False,
    ),
    "enumerator attribute": Mistake(
        '<FEFEProperty Folder="/tmp" />',
        '<FEFEProperty Foldr="/tmp" />',
        "unknown-data",
        'Foldr="/tmp"',
        "Folder",
        error=False,
    ),
    "item attribute": Mistake(
        'Type="8" Value="first"',
        'Type="8" Valeu="first"',
        "unknown-data",
        'Valeu="first"',
        "Value",
        error=False,
    ),
    "Item enumerator without items": Mistake(
        "FEIEItem>",
        "FEIERow>",
        "empty-enumerator",
        'DTS:refId="Package\\Items.ForEachEnumerator"',
        "FEIEItem",
    ),
    # A constraint end written as a name where a refId is expected.
    "constraint From as a name": Mistake(
        'DTS:From="Package\\Init"',
        'DTS:From="Init"',
        "bad-constraint",
        'DTS:From="Init"',
        "From='Package\\Init'",
    ),
}


def _inject(tmp_path: Path, mistake: Mistake) -> tuple[Path, int]:
    text = VALID.read_text(encoding="utf-8")
    assert mistake.old in text, f"the valid package no longer holds {mistake.old!r}"
    changed = text.replace(mistake.old, mistake.new)
    line = next(i for i, row in enumerate(changed.splitlines(), 1) if mistake.anchor in row)
    path = tmp_path / "mistake.dtsx"
    path.write_text(changed, encoding="utf-8")
    return path, line


def _validate(*args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [*DTSX, "validate", "--json", *args], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["packages"][0]


def test_the_valid_package_is_valid_without_warnings() -> None:
    code, entry = _validate(str(VALID))
    assert code == 0 and entry["valid"], entry
    assert entry["warnings"] == [], entry["warnings"]


def _cases() -> list[object]:
    marks = {"task expression": [TASK_EXPRESSIONS]}
    cases = [pytest.param(m, id=name) for name, m in MISTAKES.items()]
    task_expression = Mistake(
        "@[User::Count] = @[User::Count] + 1",
        "@[User::Count] = @[User::Cnt] + 1",
        "missing-variable",
        "User::Cnt",
        "User::Count",
    )
    cases.append(
        pytest.param(task_expression, id="task expression", marks=marks["task expression"])
    )
    return cases


@pytest.mark.parametrize("mistake", _cases())
def test_each_injected_mistake_is_reported_with_code_line_and_nearest_name(
    tmp_path: Path, mistake: Mistake
) -> None:
    path, line = _inject(tmp_path, mistake)
    code, entry = _validate(str(path))
    found = entry["problems"] if mistake.error else entry["warnings"]
    matching = [p for p in found if p["code"] == mistake.code]
    assert matching, f"no {mistake.code} among {entry}"
    problem = matching[0]
    assert problem["file"] == str(path) and problem["line"] == line, problem
    assert problem["ref_id"], problem
    assert mistake.hint in problem["message"], problem["message"]
    assert code == (5 if mistake.error else 0), entry
    if not mistake.error:
        assert entry["valid"] and entry["problems"] == [], entry


def test_dev_smtp_does_not_hide_a_bad_smtp_connection_string(tmp_path: Path) -> None:
    path, line = _inject(tmp_path, MISTAKES["SMTP key"])
    sink = tmp_path / "mail"
    proc = subprocess.run(
        [*DTSX, "run", str(path), "--dev-smtp", str(sink)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert (
        f"{path}:{line}" in proc.stderr
        and "'Prot'" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not list(sink.glob("*.eml")) if sink.exists() else True


def _with_body_path(tmp_path: Path, stored: str, expression: str = "") -> Path:
    text = VALID.read_text(encoding="utf-8").replace("/tmp/dtsx-validate-body.txt", stored)
    if expression:
        text = text.replace(
            'DTS:ObjectName="Body">',
            f'DTS:ObjectName="Body"><DTS:PropertyExpression DTS:Name="ConnectionString">{expression}</DTS:PropertyExpression>',
        )
    path = tmp_path / "paths.dtsx"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(path: Path, fragment: str) -> int:
    return next(
        i
        for i, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if fragment in row
    )


def test_a_windows_path_no_path_map_maps_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = _with_body_path(tmp_path, "C:\\data\\body.txt")
    with pytest.raises(PackageValidationError) as caught:
        build(load(path), path_map=lambda p: p)
    (problem,) = [p for p in caught.value.problems if p.code == "unmapped-path"]
    assert (
        problem.line == _line_of(path, 'DTS:ObjectName="Body"')
        and problem.ref_id == "Package.ConnectionManagers[Body]"
    )
    assert "C:\\data\\body.txt" in problem.message and "--path-map" in problem.message
    # A rule that maps the folder makes it valid; so does a caller that maps paths its own way.
    build(load(path), path_map=lambda p: p.replace("C:\\data\\", f"{tmp_path}/"))
    build(load(path))


def test_a_windows_path_an_expression_may_replace_is_only_a_warning(tmp_path: Path) -> None:
    path = _with_body_path(
        tmp_path, "C:\\data\\body.txt", expression="@[User::Folder] + &quot;/body.txt&quot;"
    )
    plan = build(load(path), path_map=lambda p: p)
    assert [
        w.code for w in plan.warnings
    ] == []  # the expression replaces the whole string: nothing to check
    folder = VALID.read_text(encoding="utf-8").replace(
        '<FEFEProperty Folder="/tmp" />', '<FEFEProperty Folder="D:\\in" />'
    )
    path.write_text(folder, encoding="utf-8")
    plan = build(load(path), path_map=lambda p: p)  # Directory is set by a property expression
    assert plan.warnings == []
    static = folder.replace(
        '<DTS:PropertyExpression DTS:Name="Directory">@[User::Folder]</DTS:PropertyExpression>', ""
    )
    path.write_text(static, encoding="utf-8")
    with pytest.raises(PackageValidationError) as caught:
        build(load(path), path_map=lambda p: p)
    assert [p.code for p in caught.value.problems] == ["unmapped-path"]
    assert "D:\\in" in caught.value.problems[0].message


def test_connection_overrides_are_checked_instead_of_the_stored_string(tmp_path: Path) -> None:
    path, _line = _inject(tmp_path, MISTAKES["SMTP key"])
    build(load(path), connections={"Mail": "SmtpServer=127.0.0.1;Port=2525;"})
    with pytest.raises(PackageValidationError) as caught:
        build(
            load(VALID),
            connections={"{7A000000-0000-4000-8000-000000000001}": "SmtpServer=127.0.0.1;Prot=1;"},
        )
    assert [p.code for p in caught.value.problems] == ["bad-connection"]


def test_a_constraint_to_an_executable_of_another_container_says_so(tmp_path: Path) -> None:
    text = VALID.read_text(encoding="utf-8").replace(
        'DTS:To="Package\\Loop"', 'DTS:To="Package\\Loop\\Step"'
    )
    path = tmp_path / "nested.dtsx"
    path.write_text(text, encoding="utf-8")
    code, entry = _validate(str(path))
    (problem,) = entry["problems"]
    assert code == 5 and problem["code"] == "bad-constraint"
    assert "not directly inside 'Package'" in problem["message"], problem
