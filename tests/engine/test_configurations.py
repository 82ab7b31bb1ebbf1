"""Package configurations (2005-2008 deployment): XML .dtsConfig files, environment variables,
parent package variables and --config-file, applied as dtexec documents, through real packages,
real files and the real executor. What SSIS would only warn about is a warning here too."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from dtsx.engine import executor, plan
from dtsx.engine.bind import bind
from dtsx.engine.errors import PackageLoadError, PackageValidationError
from dtsx.engine.expressions import compile as compile_expression
from dtsx.engine.executor import RunOptions, parse_set
from dtsx.engine.loader import load, load_bytes, load_configuration_file
from dtsx.engine.model import package_configurations
from dtsx.engine.scopes import Scopes
from dtsx.engine.variables import VariableStore

from tests._shared import REPO_ROOT, require_shared

CONFIGS_V8 = """<DTS:Configurations>{items}</DTS:Configurations>"""
CONFIG_V8 = """<DTS:Configuration DTS:ConfigurationType="{type}" DTS:ConfigurationString="{string}"
  DTS:ConfigurationVariable="{target}" DTS:CreationName="" DTS:DTSID="{{7A1C2B3D-0000-4000-8000-00000000000{n}}}"
  DTS:ObjectName="{name}" />"""

PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:CreationName="Microsoft.Package"
  DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A0}}" DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="Configured">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  {configurations}
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[Mail]" DTS:CreationName="SMTP"
      DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A1}}" DTS:ObjectName="Mail">
      <DTS:ObjectData><SmtpConnectionManager ConnectionString="SmtpServer=design.example;" /></DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A2}}" DTS:Namespace="User"
      DTS:ObjectName="Count"><DTS:VariableValue DTS:DataType="3">1</DTS:VariableValue></DTS:Variable>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A3}}" DTS:Namespace="User"
      DTS:ObjectName="Label"><DTS:VariableValue DTS:DataType="8">design</DTS:VariableValue></DTS:Variable>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A4}}" DTS:Namespace="User"
      DTS:ObjectName="Doubled"><DTS:VariableValue DTS:DataType="3">0</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Double" DTS:CreationName="Microsoft.ExpressionTask"
      DTS:DTSID="{{7A1C2B3D-0000-4000-8000-0000000000A5}}" DTS:ExecutableType="Microsoft.ExpressionTask" DTS:ObjectName="Double">
      <DTS:ObjectData><ExpressionTask Expression="@[User::Doubled] = @[User::Count] * 2" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""

CONFIG_FILE = """<?xml version="1.0"?>
<DTSConfiguration>
  <DTSConfigurationHeading><DTSConfigurationFileInfo GeneratedBy="ops" GeneratedFromPackageName="Configured" /></DTSConfigurationHeading>
{entries}
</DTSConfiguration>
"""
ENTRY = """  <Configuration ConfiguredType="Property" Path="{path}" ValueType="{type}"><ConfiguredValue>{value}</ConfiguredValue></Configuration>"""
COUNT = "\\Package.Variables[User::Count].Properties[Value]"
LABEL = "\\Package.Variables[User::Label].Properties[Value]"
SERVER = "\\Package.Connections[Mail].Properties[SmtpServer]"


def config_file(folder: Path, name: str, **values: str) -> Path:
    paths = {"count": (COUNT, "Int32"), "label": (LABEL, "String"), "server": (SERVER, "String")}
    entries = "\n".join(
        ENTRY.format(path=paths[k][0], type=paths[k][1], value=v) for k, v in values.items()
    )
    path = folder / name
    path.write_text(CONFIG_FILE.format(entries=entries), encoding="utf-8")
    return path


def package(folder: Path, *configs: tuple[int, str, str]) -> Path:
    items = "".join(
        CONFIG_V8.format(type=t, string=s, target=target, n=i, name=f"c{i}")
        for i, (t, s, target) in enumerate(configs)
    )
    path = folder / "configured.dtsx"
    path.write_text(
        PACKAGE.format(configurations=CONFIGS_V8.format(items=items) if configs else ""),
        encoding="utf-8",
    )
    return path


def run(path: Path, **options: object) -> executor.RunResult:
    return executor.run(plan.build(load(path)), RunOptions(**options))  # type: ignore[arg-type]


def test_an_xml_configuration_at_a_windows_path_sets_variables_and_connections(
    tmp_path: Path,
) -> None:
    config_file(
        tmp_path, "Nightly.dtsConfig", count="21", label="from config", server="mail.corp.example"
    )
    result = run(
        package(tmp_path, (1, r"D:\ETL\Config\Nightly.dtsConfig", "")),
        path_map=lambda p: p.replace("D:\\ETL\\Config\\", f"{tmp_path}/"),
    )
    assert result.result == "Success" and result.warnings == []
    assert (
        result.variables["User::Doubled"] == 42 and result.variables["User::Label"] == "from config"
    )


def test_the_configured_server_reaches_the_connection_manager(tmp_path: Path) -> None:
    config_file(tmp_path, "c.dtsConfig", server="mail.corp.example")
    built = plan.build(load(package(tmp_path, (1, str(tmp_path / "c.dtsConfig"), ""))))
    store = VariableStore(lambda text, assign: compile_expression(text, assignment=assign))
    scopes = Scopes(store, built.package, datetime.now(), "1")
    strings = bind(built, RunOptions(), store, scopes).connection_strings
    assert "SmtpServer=mail.corp.example" in strings["Mail"]


def test_a_missing_or_unmapped_file_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    result = run(
        package(tmp_path, (1, str(tmp_path / "gone.dtsConfig"), ""), (1, r"E:\cfg\x.dtsConfig", ""))
    )
    assert result.result == "Success" and result.variables["User::Doubled"] == 2
    assert len(result.warnings) == 2
    assert (
        "gone.dtsConfig" in result.warnings[0]
        and "no such configuration file" in result.warnings[0]
    )
    assert "--path-map" in result.warnings[1]


def test_environment_variable_configurations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = config_file(tmp_path, "indirect.dtsConfig", label="indirect")
    monkeypatch.setenv("DTSX_TEST_COUNT", "5")
    monkeypatch.setenv("DTSX_TEST_CONFIG", str(file))
    monkeypatch.delenv("DTSX_TEST_UNSET", raising=False)
    result = run(
        package(
            tmp_path,
            (2, "DTSX_TEST_COUNT", COUNT),
            (5, "DTSX_TEST_CONFIG", ""),
            (2, "DTSX_TEST_UNSET", LABEL),
        )
    )
    assert result.variables["User::Doubled"] == 10 and result.variables["User::Label"] == "indirect"
    assert result.warnings == [
        next(w for w in result.warnings if "DTSX_TEST_UNSET is not set" in w)
    ]


def test_a_parent_package_variable_configuration(tmp_path: Path) -> None:
    path = package(tmp_path, (0, "User::ParentCount", COUNT))
    # Applied after everything else, the command line included, as SSIS applies them.
    as_child = run(path, variables={"User::ParentCount": 8}, sets=[parse_set("User::Count=50")])
    assert as_child.variables["User::Doubled"] == 16 and as_child.warnings == []
    alone = run(path)
    assert alone.variables["User::Doubled"] == 2 and "Execute Package" in alone.warnings[0]


def test_unsupported_kinds_are_named_in_a_warning(tmp_path: Path) -> None:
    result = run(
        package(
            tmp_path,
            (7, "&quot;Cfg&quot;;&quot;[dbo].[SSIS Configurations]&quot;;&quot;Nightly&quot;;", ""),
            (3, r"HKCU\x", COUNT),
        )
    )
    assert result.result == "Success"
    assert ["SQL Server table" in result.warnings[0], "registry entry" in result.warnings[1]] == [
        True,
        True,
    ]


def test_order_design_then_config_file_then_command_line_then_design_again(tmp_path: Path) -> None:
    design = config_file(tmp_path, "design.dtsConfig", count="3")
    extra = config_file(tmp_path, "extra.dtsConfig", count="100", label="extra")
    result = run(
        package(tmp_path, (1, str(design), "")),
        config_files=[str(extra)],
        sets=[parse_set("User::Count=50"), parse_set("User::Label=cli")],
    )
    # Count: configured at design time, so that value is applied again last (SSIS 2008+).
    # Label: only the config file and the command line set it; the command line comes later.
    assert result.variables["User::Doubled"] == 6 and result.variables["User::Label"] == "cli"


def test_a_config_file_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PackageValidationError) as info:
        run(package(tmp_path), config_files=[str(tmp_path / "nope.dtsConfig")])
    assert info.value.problems[0].code == "override-config" and "nope.dtsConfig" in str(info.value)


def test_values_stay_out_of_warnings(tmp_path: Path) -> None:
    config_file(tmp_path, "bad.dtsConfig", count="hunter2-secret")
    result = run(package(tmp_path, (1, str(tmp_path / "bad.dtsConfig"), "")))
    assert result.result == "Success" and len(result.warnings) == 1
    assert "User::Count" in result.warnings[0] and "hunter2" not in result.warnings[0]


def test_a_malformed_configuration_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.dtsConfig"
    path.write_text(
        '<DTSConfiguration>\n<Configuration ConfiguredType="Registry" Path="x"/>\n</DTSConfiguration>\n'
    )
    with pytest.raises(PackageLoadError) as info:
        load_configuration_file(path)
    assert info.value.line == 2 and "ConfiguredType" in str(info.value)


def test_the_2008_property_form_is_read(tmp_path: Path) -> None:
    pkg = load(require_shared("corpus", "dtsx", "avgrishin_Dts2008_LoadExIndexMICEX.dtsx"))
    [config] = package_configurations(pkg)
    assert (config.type, config.string, config.name) == (
        1,
        r"D:\User\vs\EMail\Rating\Rate.dtsConfig",
        "Rate",
    )


def test_omitted_type_means_parent_variable_as_ssis_defaults_it() -> None:
    text = PACKAGE.format(
        configurations=CONFIGS_V8.format(
            items=(
                '<DTS:Configuration DTS:ConfigurationString="User::P" DTS:ConfigurationVariable="'
                + COUNT
                + '" DTS:DTSID="{7A1C2B3D-0000-4000-8000-0000000000B1}" DTS:ObjectName="p" />'
            )
        )
    )
    [config] = package_configurations(load_bytes(text.encode(), file="p.dtsx"))
    assert (config.type, config.string, config.target) == (0, "User::P", COUNT)


def test_cli_run_and_dtexec_take_configuration_files(tmp_path: Path) -> None:
    config = config_file(tmp_path, "cli.dtsConfig", count="4")
    path = package(tmp_path)
    code = "import sys; from dtsx.engine.cli import main; sys.argv[0] = 'dtsx'; main(sys.argv[1:])"
    for args in (
        ["run", "--config-file", str(config), str(path), "--report-json", str(tmp_path / "r.json")],
        ["exec", "/F", str(path), "/ConfigFile", str(config)],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert '"User::Doubled": 8' in (tmp_path / "r.json").read_text()


def test_show_lists_the_configurations_in_their_order(tmp_path: Path) -> None:
    from dtsx.engine.render import show_text

    text = show_text(
        load(package(tmp_path, (1, r"D:\cfg\a.dtsConfig", ""), (2, "ETL_COUNT", COUNT)))
    )
    assert "Configurations (applied in this order at run time):\n" in text
    assert "  c0: XML configuration file D:\\cfg\\a.dtsConfig\n" in text
    assert f"  c1: environment variable ETL_COUNT -> {COUNT}\n" in text


PARENT = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:CreationName="Microsoft.Package"
  DTS:DTSID="{7A1C2B3D-0000-4000-8000-0000000000C0}" DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="Parent">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{7A1C2B3D-0000-4000-8000-0000000000C1}" DTS:Namespace="User"
      DTS:ObjectName="ParentCount"><DTS:VariableValue DTS:DataType="3">7</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Run child" DTS:CreationName="Microsoft.ExecutePackageTask"
      DTS:DTSID="{7A1C2B3D-0000-4000-8000-0000000000C2}" DTS:ExecutableType="Microsoft.ExecutePackageTask"
      DTS:ObjectName="Run child">
      <DTS:ObjectData><ExecutePackageTask><UseProjectReference>True</UseProjectReference>
        <PackageName>configured.dtsx</PackageName></ExecutePackageTask></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def test_a_child_run_by_execute_package_reads_its_parent_variable_configuration(
    tmp_path: Path,
) -> None:
    child = package(tmp_path, (0, "User::ParentCount", COUNT))
    child.write_text(
        child.read_text().replace(
            '"@[User::Doubled] = @[User::Count] * 2"', '"@[User::ParentCount] = @[User::Count] * 2"'
        )
    )
    parent = tmp_path / "parent.dtsx"
    parent.write_text(PARENT)
    result = run(parent)
    assert result.result == "Success", [e.errors for e in result.executables]
    assert (
        result.variables["User::ParentCount"] == 14
    )  # the child got 7 from its configuration, doubled it
