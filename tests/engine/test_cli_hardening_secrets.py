"""Secrets off the command line: NAME@env:VARIABLE and NAME@file:PATH for --set, --param and
--conn (and dtexec's /Set, /Par, /Conn), and a warning when a secret is given in argv.

Every test runs the real ``dtsx`` in a subprocess on a package whose Expression Task copies two
parameters into a variable (the report shows what reached the run) and whose File System task
creates the folder a FILE connection names (the folder shows what --conn gave).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
SECRET = "s3cr3t-Value;with=odd chars"

PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package"
  DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B00}" DTS:ExecutableType="Microsoft.Package"
    DTS:ObjectName="secrets">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[Dir]" DTS:CreationName="FILE"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B01}" DTS:ObjectName="Dir">
      <DTS:ObjectData><DTS:ConnectionManager DTS:FileUsageType="3"
        DTS:ConnectionString="DESIGN_FOLDER" />
      </DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:PackageParameters>
    <DTS:PackageParameter DTS:CreationName="" DTS:DataType="8"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B02}"
      DTS:ObjectName="Token"><DTS:Property DTS:DataType="8"
        DTS:Name="ParameterValue">design</DTS:Property>
    </DTS:PackageParameter>
    <DTS:PackageParameter DTS:CreationName="" DTS:DataType="8"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B03}"
      DTS:Sensitive="True" DTS:ObjectName="Pwd" />
  </DTS:PackageParameters>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B04}"
      DTS:Namespace="User"
      DTS:ObjectName="Out"><DTS:VariableValue
        DTS:DataType="8">none</DTS:VariableValue></DTS:Variable>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B05}"
      DTS:Namespace="User"
      DTS:ObjectName="Given"><DTS:VariableValue
        DTS:DataType="8">none</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Copy" DTS:CreationName="Microsoft.ExpressionTask"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B06}"
        DTS:ExecutableType="Microsoft.ExpressionTask" DTS:ObjectName="Copy">
      <DTS:ObjectData>
        <ExpressionTask
          Expression="@[User::Out] = @[$Package::Token] + &quot;|&quot; + @[$Package::Pwd] + &quot;|&quot; + @[User::Given]" />
      </DTS:ObjectData>
    </DTS:Executable>
    <DTS:Executable DTS:refId="Package\\Make" DTS:CreationName="Microsoft.FileSystemTask"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B07}"
        DTS:ExecutableType="Microsoft.FileSystemTask" DTS:ObjectName="Make">
      <DTS:ObjectData>
        <FileSystemData TaskOperationType="CreateDirectory" TaskSourcePath="Dir"
          TaskIsSourceVariable="False" />
      </DTS:ObjectData>
    </DTS:Executable>
    <DTS:Executable DTS:refId="Package\\Reveal" DTS:CreationName="Microsoft.FileSystemTask"
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B09}"
        DTS:ExecutableType="Microsoft.FileSystemTask" DTS:ObjectName="Reveal">
      <DTS:ObjectData>
        <FileSystemData TaskOperationType="CreateDirectory" TaskSourcePath="User::Out"
          TaskIsSourceVariable="True" />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
  <DTS:PrecedenceConstraints>
    <DTS:PrecedenceConstraint DTS:refId="Package.PrecedenceConstraints[Then]" DTS:CreationName=""
      DTS:DTSID="{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B0A}" DTS:From="Package\\Copy"
        DTS:To="Package\\Reveal"
      DTS:ObjectName="Then" />
  </DTS:PrecedenceConstraints>
</DTS:Executable>
"""  # noqa: E501 - the Copy task's expression is one attribute value, as a package stores it


def revealed(folder: Path) -> list[str]:
    """What reached the run: the Reveal task names a folder Token|Pwd|Given in the working folder
    (the report masks values that come from sensitive ones, so it cannot show them)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.count("|") == 2)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.dtsx"
    path.write_text(PACKAGE.replace("DESIGN_FOLDER", str(tmp_path / "design")), encoding="utf-8")
    return path


@pytest.fixture
def idle_package(tmp_path: Path) -> Path:
    """The same package with both tasks disabled: the warnings come, nothing is created."""
    path = tmp_path / "idle.dtsx"
    text = PACKAGE.replace("DESIGN_FOLDER", str(tmp_path / "design"))
    for task in ("ExpressionTask", "FileSystemTask"):
        text = text.replace(
            f'DTS:ExecutableType="Microsoft.{task}"',
            f'DTS:ExecutableType="Microsoft.{task}" DTS:Disabled="True"',
        )
    path.write_text(text, encoding="utf-8")
    return path


def private_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def dtsx(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DTSX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def report(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_run_takes_every_value_from_the_environment_or_a_file(
    package: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "made"
    secret_file = private_file(tmp_path / "pwd.txt", SECRET)
    out = tmp_path / "r.json"
    proc = dtsx(
        "run",
        str(package),
        "--report-json",
        str(out),
        "--param",
        "$Package::Token@env:H4_TOKEN",
        "--param",
        f"Pwd@file:{secret_file}",
        "--conn",
        "Dir@env:H4_DIR",
        "--set",
        "User::Given@env:H4_GIVEN",
        env={"H4_TOKEN": "tok", "H4_DIR": str(folder), "H4_GIVEN": SECRET},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert revealed(tmp_path) == [f"tok|{SECRET}|{SECRET}"]
    assert folder.is_dir()
    assert SECRET not in out.read_text()
    assert "warning" not in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_exec_takes_the_same_forms(package: Path, tmp_path: Path) -> None:
    folder = tmp_path / "made"
    conn_file = private_file(tmp_path / "dir.txt", str(folder))
    proc = dtsx(
        "exec",
        "/F",
        str(package),
        "/Par",
        "$Package::Pwd(String)@env:H4_PWD",
        "/Conn",
        f"Dir@file:{conn_file}",
        "/Set",
        "\\Package.Variables[User::Given].Properties[Value]@env:H4_PWD",
        env={"H4_PWD": SECRET},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert folder.is_dir()
    assert revealed(tmp_path) == [f"design|{SECRET}|{SECRET}"]
    assert SECRET not in proc.stdout + proc.stderr


def test_a_literal_value_that_mentions_env_stays_literal(package: Path, tmp_path: Path) -> None:
    proc = dtsx(
        "run",
        str(package),
        "--param",
        "Pwd=x@env:NOPE",
        "--set",
        "User::Given=a@file:nope",
        "--conn",
        f"Dir={tmp_path / 'lit'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert revealed(tmp_path) == ["design|x@env:NOPE|a@file:nope"]


@pytest.mark.parametrize(
    "option, spec",
    [
        ("--param", "Pwd@env:H4_SURELY_UNSET"),
        ("--conn", "Dir@env:H4_SURELY_UNSET"),
        ("--set", "User::Given@env:H4_SURELY_UNSET"),
    ],
)
def test_an_unset_variable_is_one_sentence_and_exit_6(
    package: Path, option: str, spec: str
) -> None:
    proc = dtsx("run", str(package), option, spec)
    assert proc.returncode == 6, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "H4_SURELY_UNSET is not set" in lines[0]
        and "Traceback" not in proc.stderr
    )


@pytest.mark.parametrize(
    "option, name", [("--param", "Pwd"), ("--conn", "Dir"), ("--set", "User::Given")]
)
def test_a_missing_or_unreadable_file_is_one_sentence_naming_it(
    package: Path, tmp_path: Path, option: str, name: str
) -> None:
    for source, reason in ((tmp_path / "missing", "No such file"), (tmp_path, "")):
        proc = dtsx("run", str(package), option, f"{name}@file:{source}")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 6 and len(lines) == 1, proc.stderr
        assert f"{name}@file:{source}: cannot read it" in lines[0] and reason in lines[0]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--param", f"Pwd={SECRET}"], "the sensitive parameter Pwd (--param)"),
        (["--param", f"$Package::Pwd={SECRET}"], "the sensitive parameter $Package::Pwd (--param)"),
        (["--set", f"$Package::Pwd={SECRET}"], "the value of --set $Package::Pwd"),
        (["--set", f"$Sensitive::User::Given={SECRET}"], "the value of --set User::Given"),
        (["--conn", "Dir=x;Password=hunter2"], "the password in --conn Dir"),
        (["--param", "CM.Dir.Password=hunter2"], "the password in --param CM.Dir.Password"),
    ],
)
def test_a_secret_in_argv_is_warned_about_in_one_sentence(
    idle_package: Path, args: list[str], named: str
) -> None:
    proc = dtsx("run", str(idle_package), *args)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "process listing" in line]
    assert len(warnings) == 1, proc.stderr
    assert named in warnings[0] and "NAME@env:VARIABLE" in warnings[0]
    assert SECRET not in proc.stderr and "hunter2" not in proc.stderr


def test_exec_warns_the_same_way(idle_package: Path) -> None:
    proc = dtsx(
        "exec",
        "/F",
        str(idle_package),
        "/Par",
        f"$Package::Pwd(String);{SECRET}",
        "/Conn",
        "Dir;Pwd=hunter2",
    )
    warnings = [line for line in proc.stderr.splitlines() if "process listing" in line]
    assert len(warnings) == 1, proc.stderr
    assert "$Package::Pwd (/Par)" in warnings[0] and "the password in /Conn Dir" in warnings[0]


def test_plain_values_give_no_warning(package: Path, tmp_path: Path) -> None:
    proc = dtsx(
        "run",
        str(package),
        "--param",
        "Token=t",
        "--set",
        "User::Given=g",
        "--conn",
        f"Dir={tmp_path / 'd'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "process listing" not in proc.stderr


def test_the_running_process_argv_holds_no_secret(package: Path, tmp_path: Path) -> None:
    """What ps shows of a running dtsx: read /proc/PID/cmdline while the run waits on a file."""
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    script = (
        f"touch {started}; i=0; while [ ! -e {gate} ] &amp;&amp; [ $i -lt 200 ]; "
        "do sleep 0.05; i=$((i+1)); done"
    )
    waiting = PACKAGE.replace(
        "</DTS:Executables>",
        f"""
    <DTS:Executable DTS:refId="Package\\Wait" DTS:CreationName="Microsoft.ExecuteProcess"
      DTS:DTSID="{{7C0D8E51-1111-4A51-9B44-0C2A4F4F6B08}}"
        DTS:ExecutableType="Microsoft.ExecuteProcess" DTS:ObjectName="Wait">
      <DTS:ObjectData><ExecuteProcessData Executable="/bin/sh"
        Arguments="-c &quot;{script}&quot;" />
      </DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>""",
    )
    package.write_text(waiting.replace("DESIGN_FOLDER", str(tmp_path / "design")), encoding="utf-8")
    proc = subprocess.Popen(
        [*DTSX, "run", str(package), "--param", "Pwd@env:H4_PWD", "--conn", "Dir@env:H4_DIR"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "H4_PWD": SECRET, "H4_DIR": str(tmp_path / "made")},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert started.exists(), proc.stderr.read() if proc.poll() is not None else "never started"
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode("utf-8", "replace")
        assert "Pwd@env:H4_PWD" in cmdline and SECRET not in cmdline
        gate.touch()
        out, err = proc.communicate(timeout=30)
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err


CONFIG = """<?xml version="1.0"?>
<DTSConfiguration>
  <Configuration ConfiguredType="Property" Path="{path}"
    ValueType="String"><ConfiguredValue>{value}</ConfiguredValue></Configuration>
</DTSConfiguration>
"""


def test_a_config_file_sets_a_sensitive_parameter_off_the_command_line(
    package: Path, tmp_path: Path
) -> None:
    config = tmp_path / "secret.dtsConfig"
    config.write_text(
        CONFIG.format(
            path="\\Package.Variables[$Package::Pwd].Properties[Value]", value="cfg-secret"
        )
    )
    proc = dtsx(
        "run",
        str(package),
        "--config-file",
        str(config),
        "--conn",
        f"Dir={tmp_path / 'made'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert revealed(tmp_path) == ["design|cfg-secret|none"]
    assert "cfg-secret" not in proc.stdout + proc.stderr


def test_a_config_file_path_dtsx_cannot_apply_says_why(package: Path, tmp_path: Path) -> None:
    config = tmp_path / "secret.dtsConfig"
    config.write_text(
        CONFIG.format(path="\\Package.Parameters[Pwd].Properties[Value]", value="cfg-secret")
    )
    proc = dtsx(
        "run",
        str(package),
        "--config-file",
        str(config),
        "--conn",
        f"Dir={tmp_path / 'made'}",
        cwd=tmp_path,
    )
    said = [line for line in proc.stdout.splitlines() if "Parameters[Pwd]" in line]
    assert said and "cfg-secret" not in proc.stdout + proc.stderr, proc.stdout


@pytest.mark.parametrize("how", ["config", "set"])
def test_a_required_parameter_may_come_from_a_config_file_or_set(
    package: Path, tmp_path: Path, how: str
) -> None:
    package.write_text(
        package.read_text().replace(
            'DTS:Sensitive="True"', 'DTS:Sensitive="True" DTS:Required="True"'
        )
    )
    config = tmp_path / "secret.dtsConfig"
    config.write_text(
        CONFIG.format(
            path="\\Package.Variables[$Package::Pwd].Properties[Value]", value="cfg-secret"
        )
    )
    given = (
        ["--config-file", str(config)] if how == "config" else ["--set", "$Package::Pwd@env:H4_PWD"]
    )
    proc = dtsx(
        "run",
        str(package),
        *given,
        "--conn",
        f"Dir={tmp_path / 'made'}",
        env={"H4_PWD": "x"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
