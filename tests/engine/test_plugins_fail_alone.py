"""A broken or clashing plugin breaks only the packages that use its key.

The plugins here are installed for real: each is a module plus a ``*.dist-info`` folder
(METADATA and entry_points.txt, what ``pip install`` leaves) in a site folder put on the path of
the process, so ``importlib.metadata`` discovers them as it discovers any distribution:

- acme-broken 1.0: task ``Acme.BrokenTask`` whose module fails to import (a missing dependency),
  and connection manager ``ACMEQUEUE`` whose module raises while importing;
- acme-twin-a 1.0 and acme-twin-b 2.0: both register task ``Acme.TwinTask``, with different classes;
- acme-dup 1.0: registers ``Microsoft.ExecuteProcess``, which dtsx itself ships.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtsx.connections.base import ConnectionManager
from dtsx.engine.errors import PluginError
from dtsx.engine.registry import Registry, UnknownKeyError
from dtsx.tasks.base import Task
from tests._shared import REPO_ROOT

_TASK_MODULE = """
from dtsx.tasks.base import Task

class {name}(Task):
    def execute(self, ctx):
        return None
"""

# (distribution, version, module file -> source, entry_points.txt)
_DISTRIBUTIONS = [
    (
        "acme-broken",
        "1.0",
        {
            "acme_broken.py": "import acme_missing_dependency  # not installed\n",
            "acme_broken_queue.py": "raise RuntimeError('the queue driver is not configured')\n",
        },
        "[dtsx.tasks]\nAcme.BrokenTask = acme_broken:BrokenTask\n"
        "[dtsx.connections]\nACMEQUEUE = acme_broken_queue:QueueManager\n",
    ),
    (
        "acme-twin-a",
        "1.0",
        {"acme_twin_a.py": _TASK_MODULE.format(name="TwinA")},
        "[dtsx.tasks]\nAcme.TwinTask = acme_twin_a:TwinA\n",
    ),
    (
        "acme-twin-b",
        "2.0",
        {"acme_twin_b.py": _TASK_MODULE.format(name="TwinB")},
        "[dtsx.tasks]\nAcme.TwinTask = acme_twin_b:TwinB\n",
    ),
    (
        "acme-dup",
        "1.0",
        {"acme_dup.py": _TASK_MODULE.format(name="Impostor")},
        "[dtsx.tasks]\nMicrosoft.ExecuteProcess = acme_dup:Impostor\n",
    ),
]
_MODULES = {m[:-3] for _, _, files, _ in _DISTRIBUTIONS for m in files}


def install(site: Path) -> Path:
    """Install the four distributions into ``site``, as pip would."""
    for dist, version, files, entry_points in _DISTRIBUTIONS:
        for name, source in files.items():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            (site / name).write_text(source)
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(entry_points)
    return site


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in _MODULES:
        sys.modules.pop(name, None)


def tasks_registry() -> Registry[type[Task]]:
    return Registry(
        "task", "dtsx.tasks", check=lambda o: isinstance(o, type) and issubclass(o, Task)
    )


# --- the registry, in process ------------------------------------------------------------------


def test_a_broken_entry_point_breaks_only_its_own_key(site: Path) -> None:
    registry = tasks_registry()
    assert registry.get("Microsoft.SendMailTask").__name__ == "SendMailTask"
    with pytest.raises(PluginError) as caught:
        registry.get("Acme.BrokenTask")
    message = str(caught.value)
    assert "'Acme.BrokenTask'" in message and "acme_broken:BrokenTask" in message
    assert "acme-broken 1.0" in message
    assert "ModuleNotFoundError: No module named 'acme_missing_dependency'" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)  # the cause is kept
    assert "Acme.BrokenTask" not in registry
    assert registry.get("Microsoft.ExpressionTask").__name__ == "ExpressionTask"


def test_a_connection_module_that_raises_breaks_only_its_type(site: Path) -> None:
    registry: Registry[type[ConnectionManager]] = Registry("connection manager", "dtsx.connections")
    with pytest.raises(PluginError, match="RuntimeError: the queue driver is not configured"):
        registry.get("ACMEQUEUE")
    assert registry.get("SMTP").__name__ == "SmtpConnectionManager"


def test_two_distributions_with_one_key_break_that_key_and_name_both(site: Path) -> None:
    registry = tasks_registry()
    with pytest.raises(PluginError) as caught:
        registry.get("Acme.TwinTask")
    message = str(caught.value)
    assert "registered twice" in message
    assert "acme_twin_a:TwinA (acme-twin-a 1.0)" in message
    assert "acme_twin_b:TwinB (acme-twin-b 2.0)" in message
    assert "acme_twin_a" not in sys.modules  # neither is imported: which one would run?
    with pytest.raises(PluginError, match=r"acme_dup:Impostor \(acme-dup 1\.0\)"):
        registry.get("Microsoft.ExecuteProcess")
    assert registry.get("Microsoft.FileSystemTask").__name__ == "FileSystemTask"


def test_an_unknown_key_is_still_unknown_with_suggestions(site: Path) -> None:
    with pytest.raises(UnknownKeyError, match="Did you mean 'Acme.BrokenTask'"):
        tasks_registry().get("Acme.BrokenTsk")


def test_entries_list_everything_with_distribution_version_and_error(site: Path) -> None:
    entries = tasks_registry().entries()  # imports every entry point; must not raise
    by_target = {e.target: e for e in entries}
    mail = by_target["dtsx.tasks.send_mail:SendMailTask"]
    assert (mail.key, mail.distribution, mail.error) == ("Microsoft.SendMailTask", "dtsx", None)
    assert mail.version and not mail.broken
    broken = by_target["acme_broken:BrokenTask"]
    assert broken.broken and (broken.distribution, broken.version) == ("acme-broken", "1.0")
    assert "ModuleNotFoundError" in (broken.error or "")
    twins = [e for e in entries if e.key == "Acme.TwinTask"]
    assert {e.distribution for e in twins} == {"acme-twin-a", "acme-twin-b"}
    assert all(e.broken and "registered twice" in (e.error or "") for e in twins)
    processes = [e for e in entries if e.key == "Microsoft.ExecuteProcess"]
    assert {e.distribution for e in processes} == {"dtsx", "acme-dup"}
    assert all(e.broken for e in processes)
    healthy = {e.key for e in entries if not e.broken}
    assert {"Microsoft.SendMailTask", "Microsoft.FileSystemTask"} <= healthy


def test_a_class_registered_twice_breaks_the_key_and_keeps_the_message() -> None:
    registry = tasks_registry()

    class First(Task):
        def execute(self, ctx: object) -> None: ...

    class Second(First): ...

    registry.add("Tests.Clash", First, "tests.First")
    with pytest.raises(PluginError, match="registered twice: by tests.First and by tests.Second"):
        registry.add("Tests.Clash", Second, "tests.Second")
    with pytest.raises(PluginError, match="registered twice"):
        registry.get("Tests.Clash")
    (entry,) = [e for e in registry.entries() if e.key == "Tests.Clash"]
    assert entry.broken and entry.target == "tests.First"


# --- the command line, in a process of its own ---------------------------------------------------


def dtsx(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", "from dtsx.engine.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("plugins") / "site")


def test_hello_mail_validates_and_runs_beside_broken_plugins(
    installed: Path, tmp_path: Path
) -> None:
    validated = dtsx(installed, "validate", "samples/hello-mail.dtsx")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    outbox = tmp_path / "outbox"
    ran = dtsx(installed, "run", "samples/hello-mail.dtsx", "--dev-smtp", str(outbox))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(list(outbox.glob("*.eml"))) == 1
    assert "Acme" not in ran.stdout + ran.stderr  # nobody blames an unrelated plugin


def test_a_package_that_uses_a_broken_plugin_is_refused_naming_it(
    installed: Path, tmp_path: Path
) -> None:
    package = tmp_path / "uses-broken.dtsx"
    package.write_text(_package("Acme.BrokenTask", "Broken step"))
    done = dtsx(installed, "validate", str(package))
    out = done.stdout + done.stderr
    assert done.returncode != 0
    line = next(x for x in out.splitlines() if "Broken step" in x)
    assert "plugin-error" in line and "acme-broken 1.0" in line
    assert "ModuleNotFoundError" in line and "Traceback" not in out


def test_a_package_that_uses_a_clashing_key_is_refused_naming_both(
    installed: Path, tmp_path: Path
) -> None:
    package = tmp_path / "uses-process.dtsx"
    package.write_text(_package("Microsoft.ExecuteProcess", "Run it"))
    done = dtsx(installed, "validate", str(package))
    line = next(x for x in (done.stdout + done.stderr).splitlines() if "Run it" in x)
    assert done.returncode != 0 and "registered twice" in line
    assert "acme-dup 1.0" in line and "dtsx.tasks.execute_process:ExecuteProcessTask" in line


def test_dtsx_list_lists_the_built_ins_and_marks_the_broken(installed: Path) -> None:
    done = dtsx(installed, "list")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for key in (
        "Microsoft.SendMailTask",
        "Microsoft.ExpressionTask",
        "Microsoft.FileSystemTask",
        "Microsoft.ExecutePackageTask",
        "SMTP",
        "FILE",
        "FLATFILE",
    ):
        assert any(key in x for x in lines), key
    mail = next(x for x in lines if "Microsoft.SendMailTask" in x)
    assert "dtsx 0.1.0" in mail
    at = next(i for i, x in enumerate(lines) if "Acme.BrokenTask" in x)
    shown = " ".join(lines[at : at + 2])
    assert "broken" in shown.lower() and "ModuleNotFoundError" in shown


def _package(kind: str, name: str) -> str:
    return f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\{name}" DTS:ExecutableType="{kind}" DTS:ObjectName="{name}">
      <DTS:ObjectData><Data /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""
