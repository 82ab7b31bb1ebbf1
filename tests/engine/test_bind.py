"""The bind stage (issue 10): user options and the package's configurations become the run's
initial state before anything runs, and only bind reads files through the loader; the
executor's pieces and overrides import neither the loader nor (overrides) the planner."""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import pytest

from dtsx.engine import plan
from dtsx.engine.bind import Binding, RunOptions, bind, load_child_plan
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.executor import parse_set
from dtsx.engine.expressions import compile as compile_expression
from dtsx.engine.model import ConnectionManagerSpec
from dtsx.engine.scopes import Scopes
from dtsx.engine.variables import VariableStore

from tests._shared import REPO_ROOT
from tests.engine._probe import package, probe, var

ENGINE = REPO_ROOT / "dtsx" / "engine"
# The running modules split out of the executor: none of them may read XML.
RUNNING = [
    "executor",
    "scheduler",
    "workers",
    "dispatch",
    "taskhost",
    "runstate",
    "results",
    "frames",
    "scopes",
    "containers",
    "enumerators",
    "overrides",
]

CONFIG = """<?xml version="1.0"?>
<DTSConfiguration>
  <Configuration ConfiguredType="Property" Path="\\Package.Variables[User::Count].Properties[Value]"
    ValueType="Int32"><ConfiguredValue>41</ConfiguredValue></Configuration>
</DTSConfiguration>
"""


def _mail() -> ConnectionManagerSpec:
    return ConnectionManagerSpec(
        ref_id="Package.ConnectionManagers[Mail]",
        name="Mail",
        dtsid="{5A5A0000-0000-4000-8000-000000000001}",
        creation_name="SMTP",
        type_key="SMTP",
        connection_string="SmtpServer=old;",
    )


def _bind(options: RunOptions) -> Binding:
    built = plan.build(
        package([probe("T")], variables=[var("Count"), var("Label", 8, "")], connections=[_mail()])
    )
    store = VariableStore(lambda text, assign: compile_expression(text, assignment=assign))
    scopes = Scopes(store, built.package, datetime.now(), "1")
    return bind(built, options, store, scopes)


def test_bind_applies_config_file_set_and_connection_in_ssis_order(tmp_path: Path) -> None:
    config = tmp_path / "c.dtsConfig"
    config.write_text(CONFIG, encoding="utf-8")
    options = RunOptions(
        config_files=[str(config)],
        sets=[parse_set("User::Label=from set"), parse_set("\\Package\\T.Properties[Seconds];0")],
        # any reference form the one resolver knows: the DTSID in lower case without braces
        connections={"5a5a0000-0000-4000-8000-000000000001": "SmtpServer=new;"},
    )
    binding = _bind(options)
    root = binding.root
    assert root.get("User::Count") == 41 and root.get("User::Label") == "from set"
    assert binding.connection_strings == {"Mail": "SmtpServer=new;"}
    assert binding.host_sets == {"Package\\T": {"Seconds": "0"}}


def test_bind_reports_every_override_it_cannot_apply_at_once() -> None:
    options = RunOptions(
        sets=[parse_set("User::Nope=1")],
        parameters={"Missing": "1"},
        connections={"No such manager": "x"},
    )
    with pytest.raises(PackageValidationError) as info:
        _bind(options)
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["override-connection", "override-parameter", "override-variable"]


def test_a_child_plan_is_loaded_and_planned_by_bind() -> None:
    child = load_child_plan(
        str(REPO_ROOT / "samples" / "hello-mail.dtsx"),
        project_dir=None,
        unsupported="fail",
        outer_variables=[],
    )
    assert child.package.name and child.tasks


def _imports(module: str) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    tree = ast.parse((ENGINE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", RUNNING)
def test_no_running_module_but_bind_imports_the_loader(module: str) -> None:
    assert "dtsx.engine.loader" not in _imports(module)


def test_overrides_imports_neither_the_planner_nor_the_loader() -> None:
    imported = _imports("overrides")
    assert not imported & {"dtsx.engine.plan", "dtsx.engine.loader"}


def test_bind_is_where_the_loader_is_used() -> None:
    assert "dtsx.engine.loader" in _imports("bind")
