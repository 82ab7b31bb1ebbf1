"""`dtsx validate` and `dtsx run` check Windows paths against the run's --path-map before anything
runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
VALID = ROOT / "tests" / "data" / "validate" / "valid.dtsx"


def dtsx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DTSX, *args], capture_output=True, text=True, timeout=120, check=False)


def windows_package(tmp_path: Path) -> Path:
    text = VALID.read_text(encoding="utf-8").replace(
        'DTS:ConnectionString="/tmp/dtsx-validate-body.txt"',
        'DTS:ConnectionString="D:\\feeds\\body.txt"',
    )
    assert "D:\\feeds" in text
    package = tmp_path / "windows.dtsx"
    package.write_text(text, encoding="utf-8")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "body.txt").write_text("hello\n", encoding="utf-8")
    return package


def test_validate_names_an_unmapped_windows_path_and_takes_path_map(tmp_path: Path) -> None:
    package = windows_package(tmp_path)
    bare = dtsx("validate", "--json", str(package))
    said = json.loads(bare.stdout)["packages"][0]
    found = [p for p in said["problems"] + said["warnings"] if p["code"] == "unmapped-path"]
    assert found and "D:\\feeds\\body.txt" in found[0]["message"] and found[0]["line"] == 11, (
        bare.stdout
    )
    mapped = dtsx(
        "validate", "--json", "--path-map", f"D:\\feeds={tmp_path / 'feeds'}", str(package)
    )
    entry = json.loads(mapped.stdout)["packages"][0]
    assert not [p for p in entry["problems"] + entry["warnings"] if p["code"] == "unmapped-path"], (
        mapped.stdout
    )


def test_validate_refuses_a_malformed_path_map_in_one_sentence(tmp_path: Path) -> None:
    proc = dtsx("validate", "--path-map", "no-equals-sign", str(VALID))
    assert proc.returncode == 6 and "Traceback" not in proc.stderr, proc.stderr
    assert "--path-map" in proc.stderr or "no-equals-sign" in proc.stderr
