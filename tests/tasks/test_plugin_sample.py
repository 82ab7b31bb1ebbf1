"""The sample third-party plugin in samples/plugin really registers through the registry:
by its decorator, and by an entry point found in a dist-info folder on sys.path."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtsx.engine.errors import PluginError
from dtsx.engine.model import XmlNode
from dtsx.engine.registry import Registry
from dtsx.tasks.base import TASKS, Task, ValidationContext

from tests._shared import REPO_ROOT
from tests.tasks._taskkit import make_ctx

PLUGIN = REPO_ROOT / "samples" / "plugin"
KEY = "Acme.HelloTask"


def write_dist_info(site: Path) -> None:
    """What 'pip install' would leave behind: METADATA and entry_points.txt from the pyproject."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_dist_info(tmp_path / "site")
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "acme_dtsx" or m.startswith("acme_dtsx.")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    # Leave the global registry as other tests expect it.
    TASKS._items.pop(KEY.lower(), None)
    for name in [m for m in sys.modules if m == "acme_dtsx" or m.startswith("acme_dtsx.")]:
        sys.modules.pop(name, None)


def fresh_registry() -> Registry[type[Task]]:
    return Registry(
        "task", "dtsx.tasks", check=lambda o: isinstance(o, type) and issubclass(o, Task)
    )


def test_entry_point_is_discovered_and_imported_on_demand(plugin_on_path: Path) -> None:
    registry = fresh_registry()
    assert KEY in registry.keys()  # noqa: SIM118 - keys() lists entry points without importing them
    assert "acme_dtsx.hello" not in sys.modules  # listing keys imports nothing
    cls = registry.get("Acme.HelloTask")
    assert "acme_dtsx.hello" in sys.modules
    assert cls.__name__ == "HelloTask" and issubclass(cls, Task)
    # registrations() would import every installed plugin; read just this one's record.
    assert registry._items[KEY.lower()].origin == "entry point acme_dtsx.hello:HelloTask"


def test_decorator_registers_in_the_global_registry(plugin_on_path: Path) -> None:
    from acme_dtsx.hello import HelloTask  # the import runs @register_task

    assert TASKS.get(KEY) is HelloTask
    assert "acme_dtsx.hello.HelloTask" in {r.origin for r in TASKS._items.values()}


def test_the_plugin_task_runs(plugin_on_path: Path) -> None:
    cls = fresh_registry().get(KEY)
    node = XmlNode(
        tag="ObjectData",
        children=[
            XmlNode(
                tag="HelloTaskData",
                attrs={"Greeting": "Bonjour", "Name": "monde", "ResultVariable": "User::Message"},
            )
        ],
    )
    task = cls.from_node(node)
    ctx = make_ctx({"User::Message": ""})
    task.execute(ctx)
    assert ctx.variables.get("User::Message") == "Bonjour, monde!"
    task.set_property("Name", "Welt")
    task.execute(ctx)
    assert ctx.variables.get("User::Message") == "Bonjour, Welt!"
    vctx = ValidationContext(connection_type=lambda r: None, has_variable=lambda n: False)
    assert cls(cls.Properties()).validate(vctx) == [
        "the Hello task has no Name; say whom to greet."
    ]


def test_a_second_class_under_the_same_key_is_refused(plugin_on_path: Path) -> None:
    registry = fresh_registry()
    registry.get(KEY)

    class Impostor(Task):
        def execute(self, ctx: object) -> None: ...

    with pytest.raises(
        PluginError, match="registered twice: by entry point acme_dtsx.hello:HelloTask and by"
    ):
        registry.add(KEY, Impostor, "tests.Impostor")


def test_dtsx_run_and_list_find_the_installed_plugin(tmp_path: Path) -> None:
    """The real path: a separate dtsx process discovers the entry point and runs hello.dtsx."""
    import json
    import os
    import subprocess

    site = tmp_path / "site"
    write_dist_info(site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN / "src")])}
    dtsx = [sys.executable, "-c", "from dtsx.engine.cli import main; main()"]
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            *dtsx,
            "run",
            str(PLUGIN / "hello.dtsx"),
            "--path-map",
            f"C:\\acme={tmp_path}",
            "--report-json",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "greetings.txt").read_text() == "Hello, WORLD!\n"
    assert json.loads(report.read_text())["variables"]["User::Message"] == "Hello, WORLD!"
    listed = subprocess.run(
        [*dtsx, "list"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    line = next(x for x in listed.stdout.splitlines() if KEY in x)
    assert "entry point acme_dtsx.hello:HelloTask" in line


def test_the_samples_own_tests_pass_with_dtsx_testing(tmp_path: Path) -> None:
    """samples/plugin/tests use the public harness (dtsx.testing) as a plugin author would: run
    them with pytest in a process where the plugin is installed (dist-info and source on the
    path), from the plugin's own folder."""
    import os
    import subprocess

    site = tmp_path / "site"
    write_dist_info(site)
    path = [str(site), str(PLUGIN / "src"), str(REPO_ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PLUGIN,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_run_task_runs_the_plugin_through_the_real_executor(plugin_on_path: Path) -> None:
    from dtsx.testing import file_connection, run_task

    cls = fresh_registry().get(KEY)
    out = plugin_on_path / "greetings.txt"
    run = run_task(
        cls,
        {"Greeting": "Hallo", "ResultVariable": "User::Message", "OutputConnection": "Out"},
        variables={"User::Message": "", "User::Who": "welt"},
        connections={"Out": file_connection(out, usage=1)},
        expressions={"Name": "UPPER(@[User::Who])"},
    )
    assert run.succeeded, run.errors
    assert run.variables["User::Message"] == "Hallo, WELT!"
    assert out.read_text(encoding="utf-8") == "Hallo, WELT!\n"
    # The events are the executor's own: the task's information, bracketed by Pre/PostExecute.
    names = [e.name for e in run.events if e.source_ref == "Package\\Task under test"]
    assert names.index("OnPreExecute") < names.index("OnInformation") < names.index("OnPostExecute")
