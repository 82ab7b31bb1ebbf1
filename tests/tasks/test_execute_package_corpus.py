"""Every real corpus package holding an Execute Process, File System or Execute Package task
loads and plans; the tasks read their ObjectData in both persistence styles."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.loader import load
from dtsx.engine.plan import build
from dtsx.tasks.base import TASKS
from dtsx.tasks.execute_package import ExecutePackageTask
from dtsx.tasks.execute_process import ExecuteProcessTask
from dtsx.tasks.file_system import FileSystemOperation, FileSystemTask

from tests._shared import require_shared, shared_dir, shared_params

MARKERS = ("ExecuteProcessData", "FileSystemData", "<ExecutePackageTask>")
MINE = (ExecuteProcessTask, FileSystemTask, ExecutePackageTask)


def corpus_files(folder: Path | None = None) -> list[Path]:
    folder = folder or require_shared("corpus", "dtsx")
    return sorted(
        f
        for f in folder.glob("*.dtsx")
        if any(m in f.read_text("utf-8-sig", "replace") for m in MARKERS)
    )


def my_tasks(path: Path) -> list[object]:
    package = load(str(path))
    try:
        plan = build(package, unsupported="skip")
    except PackageValidationError as exc:
        # Only SQL Server-stored children may be refused, and they must say why; other tasks
        # (Execute SQL) may name what the corpus lacks: project connection managers (.conmgr)
        # and project parameters (Project.params).
        msdb = [p for p in exc.problems if "stored in SQL Server" in p.message]
        lacking = [
            p for p in exc.problems if p.code == "missing-connection" or "$Project::" in p.message
        ]
        assert len(msdb) + len(lacking) == len(exc.problems), exc.problems
        if msdb:
            pytest.skip(
                f"{path.name}: refused before running, as expected for msdb-stored children"
            )
        ours = {
            exe.ref_id: exe
            for exe in package.walk()
            if exe.type_key in TASKS and issubclass(TASKS.get(exe.type_key), MINE)
        }
        assert not [p for p in lacking if p.ref_id in ours], lacking  # ours resolve theirs
        return [TASKS.get(exe.type_key).from_node(exe.object_data) for exe in ours.values()]
    return [t for t in plan.tasks.values() if isinstance(t, MINE)]


def test_corpus_has_these_tasks() -> None:
    assert len(corpus_files()) >= 15


@pytest.mark.parametrize(
    "name",
    [
        "avgrishin_Dts2008_LoadCBondsDB.dtsx",
        "atorres16_SSIS-read-error-console-app-mail_SSIS_Package.dtsx",
        "lucmilot_SSIS_2014_Book_850879_c03_download_Chapter3_ExecuteProcessTask.dtsx",
    ],
)
def test_execute_process_packages(name: str) -> None:
    path = require_shared("corpus", "dtsx", name)
    tasks = [t for t in my_tasks(path) if isinstance(t, ExecuteProcessTask)]
    assert len(tasks) == 1
    props = tasks[0].props
    assert props.executable.lower().endswith(".exe")
    if "LoadCBondsDB" in name:
        assert (
            props.timeout == 100
            and props.fail_on_return_code is False
            and props.window_style == "Hidden"
        )
    if "atorres16" in name:
        assert (
            props.stdout_variable == "User::StdOutput" and props.stderr_variable == "User::StdError"
        )


def test_file_system_packages() -> None:
    v3 = my_tasks(require_shared("corpus", "dtsx", "avgrishin_Dts2008_CmpPIFAcc2.dtsx"))
    ops = sorted(
        (t.props.operation, t.props.source, t.props.destination)
        for t in v3
        if isinstance(t, FileSystemTask)
    )
    assert ops == [
        (FileSystemOperation.MoveFile, "User::file", "arch"),
        (FileSystemOperation.DeleteFile, "User::FileName", ""),
    ]
    v6 = my_tasks(
        require_shared(
            "corpus",
            "dtsx",
            "lucmilot_SSIS_2014_Book_850879_c03_download_Chapter3_FileSystemTask.dtsx",
        )
    )
    (task,) = [t for t in v6 if isinstance(t, FileSystemTask)]
    assert (
        task.props.source == "{70083D03-1FE4-4FFF-8003-877E1898AE00}"
        and task.props.source_is_variable is False
    )


def test_execute_package_packages() -> None:
    path = require_shared(
        "corpus", "dtsx", "caslanr_SSIS-Packages_Replications_ETL_pkg_Master.dtsx"
    )
    tasks = [t for t in my_tasks(path) if isinstance(t, ExecutePackageTask)]
    assert {t.props.package_name for t in tasks} >= {
        "pkg_Master_landing.dtsx",
        "pkg_Master_staging.dtsx",
    }
    bindings = {
        (a.parameter_name, a.bound_to) for t in tasks for a in t.props.parameter_assignments
    }
    assert ("INT_ParentLog_ID", "User::INT_Log_ID") in bindings


def _collected() -> list[Path]:
    base = shared_dir()
    folder = base / "corpus" / "dtsx" if base else None
    return corpus_files(folder) if folder and folder.is_dir() else []


@pytest.mark.parametrize("path", shared_params(_collected()))
def test_every_such_package_plans(path: Path) -> None:
    # Tasks inside disabled containers are not built; the plan itself must succeed.
    assert isinstance(my_tasks(path), list)


def test_most_such_tasks_are_built() -> None:
    total = sum(
        len(my_tasks(p))
        for p in corpus_files()
        if "Bettcher" not in p.name and "LEV2-3" not in p.name
    )
    assert total >= 20
