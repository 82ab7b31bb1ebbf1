"""``dtsx validate | show | graph`` through the real console entry point, in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._shared import REPO_ROOT, require_shared

BAD = REPO_ROOT / "tests" / "data" / "bad"
SHOW_KEYS = {
    "name",
    "format_version",
    "protection_level",
    "executables",
    "precedence_constraints",
    "event_handlers",
    "connections",
    "variables",
    "parameters",
}
EXE_KEYS = {
    "ref_id",
    "name",
    "type",
    "disabled",
    "executables",
    "precedence_constraints",
    "event_handlers",
}
PC_KEYS = {"from", "to", "value", "eval_op", "expression", "logical_and"}


def dtsx(*args: str | Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from dtsx.engine.cli import main; sys.argv[0] = 'dtsx'; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def _corpus(pattern: str) -> Path:
    base = require_shared("corpus", "dtsx")
    found = sorted(base.glob(pattern))
    if not found:
        pytest.skip(f"no corpus file matches {pattern}")
    return found[0]


def _valid_package(tmp_path: Path) -> Path:
    path = tmp_path / "ok.dtsx"
    path.write_text(
        """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="Ok">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[DB]" DTS:CreationName="OLEDB"
      DTS:ObjectName="DB"
      DTS:DTSID="{AAAAAAAA-0000-0000-0000-000000000001}">
      <DTS:ObjectData><DTS:ConnectionManager
        DTS:ConnectionString="Data Source=db;User ID=sa;Password=hunter2;" /></DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Seq" DTS:ExecutableType="STOCK:SEQUENCE"
      DTS:ObjectName="Seq">
      <DTS:Executables>
        <DTS:Executable DTS:refId="Package\\Seq\\A" DTS:ExecutableType="STOCK:SEQUENCE"
          DTS:ObjectName="A" />
        <DTS:Executable DTS:refId="Package\\Seq\\B" DTS:ExecutableType="STOCK:SEQUENCE"
          DTS:ObjectName="B" DTS:Disabled="True" />
      </DTS:Executables>
      <DTS:PrecedenceConstraints>
        <DTS:PrecedenceConstraint DTS:refId="Package\\Seq.PrecedenceConstraints[C]"
          DTS:From="Package\\Seq\\A"
          DTS:To="Package\\Seq\\B" DTS:ObjectName="C" DTS:Value="1" DTS:EvalOp="4"
            DTS:Expression="1 &lt; 2" DTS:LogicalAnd="False" />
      </DTS:PrecedenceConstraints>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
""",
        encoding="utf-8",
    )
    return path


def test_validate_exit_codes(tmp_path: Path) -> None:
    ok = _valid_package(tmp_path)
    assert dtsx("validate", ok).returncode == 0
    bad = dtsx("validate", BAD / "cycle.dtsx")
    assert bad.returncode == 5 and "cycle.dtsx:8" in bad.stdout and "(cycle)" in bad.stdout
    assert dtsx("validate", tmp_path / "missing.dtsx").returncode == 4
    assert dtsx("validate", ok, tmp_path / "missing.dtsx").returncode == 4
    assert dtsx("validate", ok, BAD / "not_xml.dtsx").returncode == 5
    assert "Traceback" not in bad.stderr


def test_validate_json(tmp_path: Path) -> None:
    ok = _valid_package(tmp_path)
    result = dtsx("validate", "--json", ok, BAD / "duplicate_dtsid.dtsx", BAD / "xxe.dtsx")
    assert result.returncode == 5
    packages = json.loads(result.stdout)["packages"]
    assert [p["valid"] for p in packages] == [True, False, False]
    assert set(packages[0]) >= {"path", "valid", "problems"}
    (dup,) = packages[1]["problems"]
    assert (
        dup["code"] == "duplicate-dtsid"
        and dup["line"] == 12
        and dup["ref_id"] == "Package\\Second"
    )
    assert packages[2]["problems"][0]["line"] == 2


def test_validate_unsupported_skip_warns(tmp_path: Path) -> None:
    path = tmp_path / "script.dtsx"
    path.write_text(
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="S">'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property><DTS:Executables>'
        '<DTS:Executable DTS:refId="Package\\S" DTS:ExecutableType="Microsoft.ScriptTask" '
        'DTS:ObjectName="S"/>'
        "</DTS:Executables></DTS:Executable>",
        encoding="utf-8",
    )
    assert dtsx("validate", path).returncode == 5
    skipped = dtsx("validate", "--unsupported", "skip", path)
    assert (
        skipped.returncode == 0
        and "warning:" in skipped.stderr
        and "Script Tasks" in skipped.stderr
    )


def test_show_json_shape_and_masking(tmp_path: Path) -> None:
    result = dtsx("show", "--json", _valid_package(tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == SHOW_KEYS
    assert (doc["name"], doc["format_version"], doc["protection_level"]) == (
        "Ok",
        8,
        "EncryptSensitiveWithUserKey",
    )
    (seq,) = doc["executables"]
    assert set(seq) == EXE_KEYS and seq["type"] == "STOCK:SEQUENCE"
    assert [e["name"] for e in seq["executables"]] == ["A", "B"] and seq["executables"][1][
        "disabled"
    ] is True
    (pc,) = seq["precedence_constraints"]
    assert set(pc) == PC_KEYS
    assert pc == {
        "from": "Package\\Seq\\A",
        "to": "Package\\Seq\\B",
        "value": "Failure",
        "eval_op": "ExpressionOrConstraint",
        "expression": "1 < 2",
        "logical_and": False,
    }
    (cm,) = doc["connections"]
    assert set(cm) == {"name", "dtsid", "type", "connection_string"} and cm["type"] == "OLEDB"
    assert "hunter2" not in result.stdout and "Password=********" in cm["connection_string"]


def test_show_json_on_corpus_handlers_variables_and_parameters() -> None:
    doc = json.loads(dtsx("show", "--json", _corpus("*ProSSIS_07EventBubbling.dtsx")).stdout)
    assert doc["format_version"] == 6 and doc["protection_level"] == "DontSaveSensitive"
    assert [h["event"] for h in doc["event_handlers"]] == ["OnError"]
    assert set(doc["event_handlers"][0]) == {"event", "executables", "precedence_constraints"}
    var = next(v for v in doc["variables"] if v["name"] == "Count")
    assert set(var) == {
        "namespace",
        "name",
        "data_type",
        "value",
        "expression",
        "evaluate_as_expression",
        "scope",
    }
    assert (var["data_type"], var["value"], var["scope"]) == ("Int32", "0", "Package")
    nested = doc["executables"][0]["executables"][1]["executables"][0]
    assert [h["event"] for h in nested["event_handlers"]] == ["OnError", "OnPreExecute"]
    params = json.loads(dtsx("show", "--json", _corpus("maabcodingschool*Part84*.dtsx")).stdout)[
        "parameters"
    ]
    assert params and set(params[0]) == {"name", "data_type", "value", "sensitive", "required"}


def test_show_text_and_errors(tmp_path: Path) -> None:
    result = dtsx("show", _valid_package(tmp_path))
    assert (
        result.returncode == 0 and "Package 'Ok'" in result.stdout and "(disabled)" in result.stdout
    )
    assert "hunter2" not in result.stdout
    missing = dtsx("show", tmp_path / "gone.dtsx")
    assert (
        missing.returncode == 4
        and missing.stderr.startswith("dtsx: ")
        and "Traceback" not in missing.stderr
    )
    broken = dtsx("show", BAD / "truncated.dtsx")
    assert broken.returncode == 5 and "truncated.dtsx:8" in broken.stderr


def test_graph_dot_is_valid_for_graphviz(tmp_path: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("graphviz 'dot' is not installed")
    for package in (
        _valid_package(tmp_path),
        _corpus("*ProSSIS_07EventBubbling.dtsx"),
        _corpus("avgrishin_Dts2008_LoadExIndexMICEX.dtsx"),
    ):
        result = dtsx("graph", "--format", "dot", package)
        assert result.returncode == 0, result.stderr
        check = subprocess.run(
            [dot, "-Tsvg"],
            input=result.stdout,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert "<svg" in check.stdout and not check.stderr.strip()


def test_graph_content_dot_and_mermaid(tmp_path: Path) -> None:
    package = _valid_package(tmp_path)
    dot = dtsx("graph", "--format", "dot", package).stdout
    assert dot.startswith('digraph "Ok" {') and "subgraph cluster_" in dot
    assert 'label="Failure or 1 < 2"' in dot and "style=dashed" in dot and "gray60" in dot
    mermaid = dtsx("graph", "--format", "mermaid", package).stdout
    assert mermaid.startswith("flowchart TD") and 'subgraph n0["Seq [STOCK:SEQUENCE]"]' in mermaid
    assert '-. "Failure or 1 < 2" .->' in mermaid and "class " in mermaid and " disabled" in mermaid
    assert dtsx("graph", "--format", "png", package).returncode == 6


def test_every_corpus_package_through_validate_show_and_graph() -> None:
    """In process (click's runner): no corpus package makes any of the three commands crash."""
    from click.testing import CliRunner

    from dtsx.engine.cli import cli

    base = require_shared("corpus", "dtsx")
    files = sorted(str(p) for p in base.glob("*.dtsx"))
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", "--json", "--unsupported", "skip", *files])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 5)
    entries = json.loads(result.stdout)["packages"]
    assert [e["path"] for e in entries] == files
    encrypted = [e for e in entries if any("encrypted" in p["message"] for p in e["problems"])]
    assert len(encrypted) == 2 and all(
        p["code"] == "load-error" for e in encrypted for p in e["problems"]
    )
    for path in files:
        if any(e["path"] == path for e in encrypted):
            continue
        for args in (
            ["show", "--json", path],
            ["show", path],
            ["graph", path],
            ["graph", "--format", "mermaid", path],
        ):
            outcome = runner.invoke(cli, args)
            assert outcome.exit_code == 0 and outcome.exception is None, (args, outcome.output)
