"""Issue 10 item 9: the advice "disable it" for an unsupported task works from the command line:
``dtsx run PKG --set '\\Package\\X.Properties[Disable];True'`` validates and runs the package, with
the task disabled, as dtexec's /Set would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="T">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Legacy" DTS:ExecutableType="Acme.NoSuchTask" DTS:ObjectName="Legacy" />
  </DTS:Executables>
</DTS:Executable>
"""


def _dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from dtsx.engine.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_set_disable_makes_an_unsupported_task_valid_from_the_command_line(tmp_path: Path) -> None:
    package = tmp_path / "legacy.dtsx"
    package.write_text(PACKAGE, encoding="utf-8")
    refused = _dtsx("run", str(package))
    assert refused.returncode == 5 and "disable it" in refused.stderr, refused.stderr
    done = _dtsx("run", str(package), "--set", "\\Package\\Legacy.Properties[Disable];True")
    assert done.returncode == 0, done.stdout + done.stderr
