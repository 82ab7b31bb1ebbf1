"""Running the task test packages in tests/data/tasks: through the engine API and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dtsx.engine.paths import PathMap

from tests._shared import REPO_ROOT

__all__ = ["DATA", "PKGS", "WORK", "path_maps", "run_api", "run_cli"]

DATA = REPO_ROOT / "tests" / "data" / "tasks"
WORK = r"C:\dtsx-work"  # where the test packages read and write, mapped to tmp_path
PKGS = r"C:\dtsx-pkgs"  # where parent_v3 expects its child, mapped to DATA


def path_maps(work: Path) -> list[str]:
    return [f"{WORK}={work}", f"{PKGS}={DATA}"]


def run_api(name: str, work: Path, **options: Any) -> Any:
    """load -> build -> run, as the CLI does, without the CLI."""
    executor = pytest.importorskip("dtsx.engine.executor", reason="the executor has not landed")
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    plan = build(load(str(DATA / name)))
    return executor.run(
        plan, executor.RunOptions(path_map=PathMap.parse(path_maps(work)), **options)
    )


def run_cli(
    name: str, work: Path, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``dtsx run`` in a child process, with the package's Windows folders mapped."""
    exe = shutil.which("dtsx", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-m", "dtsx.engine.cli"]
    args = [*command, "run", str(DATA / name)]
    for spec in path_maps(work):
        args += ["--path-map", spec]
    return subprocess.run(
        [*args, *extra], capture_output=True, text=True, timeout=timeout, cwd=work, check=False
    )
