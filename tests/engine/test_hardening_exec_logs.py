"""Issue 9, the smaller items of the executor: logs that cannot be written, and a --set that a
property expression overrides.

``--log-jsonl /dev/full`` used to end in a Python traceback after the run (the mail already
sent), losing the summary; now it is one warning, once, and the summary and exit code stand.
Any log sink that raises is dropped with one warning, and the run goes on. A ``--set`` on a
property that a property expression also sets was ignored without a word; SSIS lets the
expression win, and now a warning names both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from dtsx.engine.events import RunEvent
from tests.engine.test_hardening_exec_locks import (
    expression_task,
    package_xml,
    run_file,
    variable_xml,
)

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=60, check=False)


def _simple(tmp_path: Path, failing: bool = False) -> Path:
    tasks = [expression_task("Add", "@[User::X] = @[User::X] + 1")]
    if failing:
        # Divides by zero at run time, whatever X is; a constant 1 / 0 is refused while planning.
        tasks.append(expression_task("Bad", "@[User::X] = 1 / (@[User::X] - @[User::X])"))
    path = tmp_path / "simple.dtsx"
    path.write_text(package_xml(tasks, variables=variable_xml("X", "0")), encoding="utf-8")
    return path


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("failing", [False, True])
def test_a_log_that_cannot_be_written_is_one_warning(tmp_path: Path, failing: bool) -> None:
    done = dtsx("run", str(_simple(tmp_path, failing)), "--log-jsonl", "/dev/full")
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    # The run's own result stands, and so does the process's exit code.
    assert ("Failure (exit 1)" if failing else "Success (exit 0)") in done.stdout
    assert done.returncode == (1 if failing else 0)
    warnings = [line for line in output.splitlines() if "/dev/full" in line]
    assert len(warnings) == 1, output
    assert "the log file /dev/full cannot be written (No space left on device)" in warnings[0]


class _Broken:
    def __call__(self, event: RunEvent) -> None:
        raise RuntimeError("disk on fire")

    def close(self) -> None:
        return None


class _Kept:
    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def __call__(self, event: RunEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None


def test_a_raising_sink_is_dropped_with_one_warning(tmp_path: Path) -> None:
    kept = _Kept()
    result = run_file(_simple(tmp_path), sinks=[_Broken(), kept])
    assert result.result == "Success" and result.exit_code == 0 and result.variables["User::X"] == 1
    notes = [e.message for e in kept.events if e.name == "OnWarning"]
    assert notes == [
        "the log _Broken raised RuntimeError: disk on fire; the run goes on without it."
    ]
    assert notes[0] in result.warnings
    assert sum(1 for e in kept.events if e.name == "OnPostExecute") == 2  # the task and the package


def _expression_property(tmp_path: Path) -> Path:
    """An Expression Task whose Expression property is itself set by a property expression."""
    task = expression_task("T", "@[User::X] = 1").replace(
        "<DTS:ObjectData>",
        f'<DTS:PropertyExpression DTS:Name="Expression">{escape(chr(34) + "@[User::X] = 2" + chr(34))}'
        "</DTS:PropertyExpression><DTS:ObjectData>",
    )
    variables = variable_xml("X", "0") + variable_xml(
        "Computed", "0", 3, expression="@[User::X] * 10"
    )
    path = tmp_path / "expr.dtsx"
    path.write_text(package_xml([task], variables=variables), encoding="utf-8")
    return path


def test_a_set_beaten_by_a_property_expression_warns(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    done = dtsx(
        "run",
        str(_expression_property(tmp_path)),
        "--report-json",
        str(report),
        "--set",
        "\\Package\\T.Properties[Expression];@[User::X] = 3",
    )
    assert done.returncode == 0, done.stderr
    assert '"User::X": 2' in report.read_text()  # as in SSIS, the expression wins
    lines = [line for line in done.stdout.splitlines() if "Warning" in line]
    assert len(lines) == 1, done.stdout
    assert (
        "Properties[Expression];@[User::X] = 3" in lines[0]
        and "sets Expression of 'Package\\\\T'" in lines[0]
    )
    assert "the property expression '\"@[User::X] = 2\"' sets it too" in lines[0]


def test_a_set_of_an_expression_variable_warns(tmp_path: Path) -> None:
    done = dtsx("run", str(_expression_property(tmp_path)), "--set", "User::Computed=5")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "Warning" in line]
    assert (
        len(lines) == 1 and "User::Computed" in lines[0] and "EvaluateAsExpression" in lines[0]
    ), done.stdout
