"""Issue 9, item 7(a): values derived from sensitive values are sensitive.

A Sensitive parameter copied into a variable by an Expression Task used to appear in
``--report-json``. Now a variable assigned from an expression that read a sensitive value, a
variable whose own expression (EvaluateAsExpression) reads one, and a variable given a
``$Sensitive::`` value are all masked in the report; and any event or error message that would
carry the value (a failed cast quoting it) shows ``********`` in the console, the JSON lines log
and the report. Everything through the real ``dtsx run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.engine.test_hardening_exec_locks import (
    expression_task,
    package_xml,
    parameter_xml,
    task_xml,
    variable_xml,
)

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
SECRET = "hunter2-Vault-77"


def _package(tmp_path: Path) -> Path:
    variables = (
        variable_xml("Copy", "none", 8)
        + variable_xml("Twice", "none", 8)
        + variable_xml("Shown", "none", 8, expression='"pwd=" + @[$Package::Pwd]')
        + variable_xml("Plain", "none", 8)
        + variable_xml("Num", "0", 3)
    )
    tasks = [
        expression_task("Copy", "@[User::Copy] = @[$Package::Pwd]"),
        expression_task("Plain", '@[User::Plain] = "public"'),
    ]
    path = tmp_path / "sensitive.dtsx"
    text = package_xml(tasks, variables=variables, parameters=parameter_xml("Pwd", sensitive=True))
    # Copy runs first; then one task copies the copy, one quotes it in a failed cast.
    tail = expression_task("Twice", '@[User::Twice] = "x" + @[User::Copy]') + expression_task(
        "Cast", "@[User::Num] = (DT_I4)@[User::Copy]"
    )
    constraints = "".join(
        f'<DTS:PrecedenceConstraint DTS:refId="Package.PrecedenceConstraints[{t}]" DTS:CreationName="" '
        f'DTS:DTSID="{{00000000-0000-0000-0001-00000000000{i}}}" DTS:From="Package\\Copy" DTS:To="Package\\{t}" '
        f'DTS:ObjectName="{t}" />'
        for i, t in enumerate(("Twice", "Cast"))
    )
    text = text.replace(
        "</DTS:Executables>",
        tail
        + "</DTS:Executables>\n<DTS:PrecedenceConstraints>"
        + constraints
        + "</DTS:PrecedenceConstraints>",
    )
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict, str]:
    report, log = tmp_path / "report.json", tmp_path / "log.jsonl"
    done = subprocess.run(
        [
            *DTSX,
            "run",
            str(_package(tmp_path)),
            "--param",
            f"Pwd={SECRET}",
            "--reporting",
            "V",
            "--report-json",
            str(report),
            "--log-jsonl",
            str(log),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, json.loads(report.read_text(encoding="utf-8")), log.read_text(encoding="utf-8")


def test_derived_values_are_masked_in_the_report(tmp_path: Path) -> None:
    done, report, _ = _run(tmp_path)
    values = report["variables"]
    assert values["User::Copy"] == "********"
    assert values["User::Twice"] == "********"  # derived from a derived value
    assert values["User::Shown"] == "********"  # EvaluateAsExpression over the parameter
    assert values["User::Plain"] == "public"  # nothing else is masked
    assert SECRET not in json.dumps(report)
    assert done.returncode == 1  # the cast fails, as it should


def test_messages_mask_the_value_everywhere(tmp_path: Path) -> None:
    done, report, log = _run(tmp_path)
    cast = next(e for e in report["executables"] if e["ref_id"] == "Package\\Cast")
    assert cast["result"] == "Failure" and cast["errors"]
    assert "********" in cast["errors"][0]
    assert SECRET not in log and '"OnError"' in log and "********" in log
    assert SECRET not in done.stdout + done.stderr


def test_a_sensitive_set_marks_its_variable(tmp_path: Path) -> None:
    _, report, log = _run(tmp_path, "--set", "$Sensitive::User::Plain=Other-Secret-99")
    # Plain is assigned "public" by its task afterwards: the variable stays sensitive.
    assert report["variables"]["User::Plain"] == "********"
    assert "Other-Secret-99" not in log


def test_a_child_package_masks_what_its_parent_gave_it_from_a_secret(tmp_path: Path) -> None:
    """The child's parameter is not marked sensitive; its value came from the parent's secret."""
    child = package_xml(
        [expression_task("Cast", "@[User::Num] = (DT_I4)@[$Package::Greeting]")],
        variables=variable_xml("Num", "0", 3),
        parameters=parameter_xml("Greeting"),
    )
    (tmp_path / "child.dtsx").write_text(child, encoding="utf-8")
    run_child = task_xml(
        "Run child",
        "Microsoft.ExecutePackageTask",
        (
            "<ExecutePackageTask><UseProjectReference>True</UseProjectReference><PackageName>child.dtsx</PackageName>"
            "<ParameterAssignment><ParameterName>Greeting</ParameterName>"
            "<BindedVariableOrParameterName>$Package::Pwd</BindedVariableOrParameterName></ParameterAssignment>"
            "</ExecutePackageTask>"
        ),
    )
    parent = tmp_path / "parent.dtsx"
    parent.write_text(
        package_xml([run_child], parameters=parameter_xml("Pwd", sensitive=True)), encoding="utf-8"
    )
    log = tmp_path / "log.jsonl"
    done = subprocess.run(
        [
            *DTSX,
            "run",
            str(parent),
            "--param",
            f"Pwd={SECRET}",
            "--log-jsonl",
            str(log),
            "--project-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = log.read_text(encoding="utf-8")
    assert "is not a number" in text and "********" in text
    assert SECRET not in text + done.stdout + done.stderr
