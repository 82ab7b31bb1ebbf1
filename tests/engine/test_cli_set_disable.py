"""The advice "disable it" works from the command line: a --set (or dtexec /Set) of an
unsupported executable's Disable property satisfies validation, as a disabled one in the file
would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine._exec import package_path

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
DISABLE = "\\Package\\Script.Properties[Disable];True"


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("style", ["v8", "v3"])
@pytest.mark.parametrize("command", ["run", "exec"])
def test_setting_disable_on_an_unsupported_task_lets_the_package_run(
    command: str, style: str, tmp_path: Path
) -> None:
    pkg = str(package_path("unsupported", style))
    report = tmp_path / "r.json"
    if command == "run":
        proc = dtsx("run", pkg, "--set", DISABLE, "--report-json", str(report))
    else:
        proc = dtsx("exec", "--report-json", str(report), "/F", pkg, "/Set", DISABLE)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["variables"]["User::R_After"] == 1
    # Disabled by the user, not skipped as unsupported: no "Skipped", nothing counted.
    results = {e["ref_id"]: e["result"] for e in data["executables"]}
    assert results["Package\\Script"] == "NotRun" and "skipped" not in data
    assert "skipped as unsupported" not in proc.stdout


def test_disable_false_still_refuses_the_unsupported_task() -> None:
    pkg = str(package_path("unsupported", "v8"))
    proc = dtsx("run", pkg, "--set", "\\Package\\Script.Properties[Disable];False")
    assert proc.returncode == 5 and "Script" in proc.stderr


def test_validate_only_with_disable_is_valid() -> None:
    pkg = str(package_path("unsupported", "v8"))
    proc = dtsx("exec", "/F", pkg, "/Set", DISABLE, "/Va")
    assert proc.returncode == 0 and "is valid" in proc.stdout, proc.stderr
