"""What validate calls valid runs: it ends with an execution result, never with exit 6.

Every package of the shared corpus and of tests/data that plans clean (``--unsupported skip``,
every drive letter mapped into a temp folder) is run with ``dtsx run`` as a user runs it: mail
into a ``--dev-smtp`` folder, the same path maps, and a short time limit after which it is
interrupted like Ctrl-C. The exit code must be 0 (success), 1 (failure) or 3 (canceled): a 5
or 6 would mean a mistake that validate let through, found only by running.
"""

from __future__ import annotations

import os
import signal
import string
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dtsx.engine.paths import PathMap
from dtsx.engine.errors import PackageLoadError, PackageValidationError
from dtsx.engine.loader import load
from dtsx.engine.plan import build
from tests._shared import REPO_ROOT, shared_dir, shared_params

DTSX = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
START_SECONDS = 120  # to load and plan, on a loaded machine
RUN_SECONDS = 8  # of running; then the run is interrupted, and must end canceled
WORKERS = max(2, os.cpu_count() or 2)
EXECUTION_CODES = {0, 1, 3}


def _packages() -> list[Path]:
    found = sorted((REPO_ROOT / "tests" / "data").rglob("*.dtsx"))
    base = shared_dir()
    if base is not None:
        found += sorted((base / "corpus" / "dtsx").glob("*.dtsx"))
    return found


def _path_maps(root: Path) -> list[str]:
    maps = []
    for letter in string.ascii_uppercase:
        (root / letter).mkdir(parents=True, exist_ok=True)
        maps.append(f"{letter}:\\={root / letter}")
    return maps


def _validates(path: Path, maps: list[str]) -> bool:
    try:
        build(load(path), unsupported="skip", path_map=PathMap.parse(maps).map)
    except (PackageLoadError, PackageValidationError):
        return False
    return True


def _run(path: Path, work: Path, maps: list[str]) -> subprocess.CompletedProcess[str]:
    """``dtsx run``; RUN_SECONDS after the run starts (the dev SMTP line: loading and planning
    are done), it is interrupted as a user's Ctrl-C would, and must then end canceled."""
    args = [*DTSX, "run", str(path), "--unsupported", "skip", "--dev-smtp", str(work / "mail")]
    for rule in maps:
        args += ["--path-map", rule]
    proc = subprocess.Popen(
        args, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started = threading.Event()
    err: list[str] = []
    out: list[str] = []

    def read_err() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            err.append(line)
            if "dev SMTP sink on" in line:
                started.set()
        started.set()  # the process ended before running anything

    readers = [
        threading.Thread(target=read_err),
        threading.Thread(target=lambda: out.extend(proc.stdout)),
    ]  # type: ignore[arg-type]
    for reader in readers:
        reader.start()
    started.wait(START_SECONDS)
    try:
        proc.wait(timeout=RUN_SECONDS)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            err.append("\n(the run did not stop within 30 s of an interrupt, and was killed)")
    for reader in readers:
        reader.join()
    return subprocess.CompletedProcess(args, proc.returncode, "".join(out), "".join(err))


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Path, subprocess.CompletedProcess[str] | None]:
    """Every package's run (None: validate refuses it), several at once: each run is mostly the
    interpreter starting, and a few wait out the time limit."""

    def one(path: Path) -> subprocess.CompletedProcess[str] | None:
        work = tmp_path_factory.mktemp("run")
        maps = _path_maps(work / "drives")
        return _run(path, work, maps) if _validates(path, maps) else None

    paths = _packages()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def _params() -> list[object]:
    params = [pytest.param(p, id=p.name[:60]) for p in _packages()]
    if shared_dir() is None:
        params += shared_params([])  # one skipped row naming the absent corpus
    return params


@pytest.mark.parametrize("path", _params())
def test_a_package_validate_calls_valid_runs_or_fails_as_an_execution(
    path: Path | None, runs: dict[Path, subprocess.CompletedProcess[str] | None]
) -> None:
    assert path is not None
    proc = runs[path]
    if proc is None:
        pytest.skip("validate refuses it: a refused package is not run")
    assert proc.returncode in EXECUTION_CODES, (
        f"{path.name} validated clean but `dtsx run` exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
