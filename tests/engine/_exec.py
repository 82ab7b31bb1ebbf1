"""Helpers for the executor tests: the rule packages in tests/data/exec, in both styles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dtsx.engine import executor, loader, plan
from dtsx.engine.executor import RunOptions, RunResult

__all__ = ["DATA", "STYLES", "package_path", "run_rule", "results_by_ref"]

DATA = Path(__file__).resolve().parent.parent / "data" / "exec"
STYLES = pytest.mark.parametrize("style", ["v8", "v3"])


def package_path(rule: str, style: str) -> Path:
    return DATA / f"{rule}.{style}.dtsx"


def run_rule(rule: str, style: str, **options: Any) -> RunResult:
    built = plan.build(loader.load(package_path(rule, style)))
    return executor.run(built, RunOptions(**options))


def results_by_ref(result: RunResult) -> dict[str, str]:
    return {e.ref_id: e.result for e in result.executables}
