"""The planner: graphs per container, type resolution, task validation, reference checks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from dtsx.engine.errors import PackageValidationError, Problem
from dtsx.engine.loader import load, load_bytes
from dtsx.engine.model import ExecutableKind
from dtsx.engine.plan import build
from dtsx.tasks.base import TASKS, Task, TaskContext, TaskProperties, ValidationContext
from tests._shared import require_shared


class _ProbeProperties(TaskProperties):
    connection: str = Field("", alias="Connection")
    count: int = Field(0, alias="Count")


class ProbeTask(Task):
    """A test-only task: reports what the planner's ValidationContext told it."""

    Properties: ClassVar[type[TaskProperties]] = _ProbeProperties
    seen: ClassVar[list[ValidationContext]] = []

    def validate(self, vctx: ValidationContext) -> list[str]:
        ProbeTask.seen.append(vctx)
        return ["the probe always objects."] if self.props.count == 13 else []  # type: ignore[attr-defined]

    def execute(self, ctx: TaskContext) -> None:
        return None


if "Tests.PlanProbeTask" not in TASKS:
    TASKS.add("Tests.PlanProbeTask", ProbeTask, "tests/engine/test_plan.py")


def _package(body: str, *, variables: str = "", connections: str = "") -> bytes:
    return f"""<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:ObjectName="T">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>{connections}</DTS:ConnectionManagers>
  <DTS:Variables>{variables}</DTS:Variables>
  <DTS:Executables>{body}</DTS:Executables>
</DTS:Executable>
""".encode()


def _probe(name: str, attrs: str, extra: str = "", children: str = "") -> str:
    return f"""
    <DTS:Executable DTS:refId="Package\\{name}" DTS:ExecutableType="Tests.PlanProbeTask" DTS:ObjectName="{name}" {extra}>
      {children}
      <DTS:ObjectData><Probe {attrs} /></DTS:ObjectData>
    </DTS:Executable>"""


def _problems(data: bytes, **kwargs: str) -> list[Problem]:
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(data, file="t.dtsx"), **kwargs)
    return info.value.problems


def test_probe_task_builds_and_sees_dynamic_properties_and_variables() -> None:
    ProbeTask.seen.clear()
    body = _probe(
        "P",
        'Count="2"',
        children='<DTS:PropertyExpression DTS:Name="Connection">@[User::X]</DTS:PropertyExpression>',
    )
    variables = '<DTS:Variable DTS:Namespace="User" DTS:ObjectName="X"><DTS:VariableValue DTS:DataType="8">a</DTS:VariableValue></DTS:Variable>'
    plan = build(load_bytes(_package(body, variables=variables), file="t.dtsx"))
    task = plan.tasks["Package\\P"]
    assert isinstance(task, ProbeTask) and task.props.count == 2  # type: ignore[attr-defined]
    vctx = ProbeTask.seen[-1]
    assert vctx.is_dynamic("connection") and not vctx.is_dynamic("Count")
    assert (
        vctx.has_variable("User::X") and vctx.has_variable("X") and not vctx.has_variable("User::Y")
    )
    assert vctx.has_variable("System::PackageName")


def test_bad_property_invalid_task_and_missing_connection_are_all_reported() -> None:
    body = (
        _probe("Bad", 'Count="many"')
        + _probe("Objects", 'Count="13"')
        + _probe("Orphan", 'Connection="{DDDDDDDD-0000-0000-0000-000000000009}"')
        + _probe("Fine", 'Connection="{AAAAAAAA-0000-0000-0000-000000000001}"')
    )
    cm = (
        '<DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[F]" DTS:CreationName="FILE" '
        'DTS:DTSID="{aaaaaaaa-0000-0000-0000-000000000001}" DTS:ObjectName="F" />'
    )
    problems = _problems(_package(body, connections=cm))
    by_ref = {p.ref_id: p for p in problems}
    assert set(by_ref) == {"Package\\Bad", "Package\\Objects", "Package\\Orphan"}
    assert (
        by_ref["Package\\Bad"].code == "bad-property"
        and 'Count="many" is not a whole number' in by_ref["Package\\Bad"].message
    )
    assert (
        by_ref["Package\\Objects"].code == "invalid-task"
        and "always objects" in by_ref["Package\\Objects"].message
    )
    assert by_ref["Package\\Orphan"].code == "missing-connection"
    assert all(p.file == "t.dtsx" and p.line is not None for p in problems)


def test_disabled_tasks_are_not_resolved_or_validated() -> None:
    body = (
        '<DTS:Executable DTS:refId="Package\\Off" DTS:ExecutableType="Acme.NoSuchTask" DTS:ObjectName="Off" DTS:Disabled="True" />'
        + _probe("Also off", 'Count="13"', 'DTS:Disabled="True"')
    )
    plan = build(load_bytes(_package(body), file="t.dtsx"))
    assert plan.tasks == {} and set(plan.graphs["Package"].nodes) == {
        "Package\\Off",
        "Package\\Also off",
    }


def test_unknown_task_fails_or_is_skipped_with_a_warning() -> None:
    body = '<DTS:Executable DTS:refId="Package\\X" DTS:ExecutableType="Acme.NoSuchTask, Acme, Version=1.0" DTS:ObjectName="X" />'
    (problem,) = _problems(_package(body))
    assert (
        problem.code == "unsupported-task"
        and "Acme.NoSuchTask" in problem.message
        and problem.line == 6
    )
    plan = build(load_bytes(_package(body), file="t.dtsx"), unsupported="skip")
    assert plan.skipped == {"Package\\X"}
    assert [w.code for w in plan.warnings] == ["unsupported-task"] and "skip" in plan.warnings[
        0
    ].message


def test_script_task_message_says_it_cannot_run() -> None:
    body = '<DTS:Executable DTS:refId="Package\\S" DTS:ExecutableType="Microsoft.ScriptTask" DTS:ObjectName="S" />'
    (problem,) = _problems(_package(body))
    assert (
        problem.code == "unsupported-task" and "Script Tasks cannot run in dtsx" in problem.message
    )


def test_build_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError):
        build(load_bytes(_package(""), file="t.dtsx"), unsupported="maybe")


def _corpus(pattern: str) -> Path:
    base = require_shared("corpus", "dtsx")
    found = sorted(base.glob(pattern))
    if not found:
        pytest.skip(f"no corpus file matches {pattern}")
    return found[0]


def test_corpus_graphs_executables_and_expressions() -> None:
    pkg = load(_corpus("avgrishin_Dts2008_LoadExIndexMICEX.dtsx"))
    plan = build(pkg, unsupported="skip")
    containers = {e.ref_id for e in pkg.walk() if e.kind is not ExecutableKind.TASK}
    assert set(plan.graphs) == containers
    assert set(plan.executables) == {e.ref_id for e in pkg.walk()}
    loop = plan.graphs["Package\\Load Indexes"]
    assert set(loop.nodes) == {
        c.ref_id for c in plan.executables["Package\\Load Indexes"].executables
    }
    edge = loop.edges[
        "Package\\Load Indexes\\count rec", "Package\\Load Indexes\\ExchangeIndexInsert"
    ]
    assert [pc.expression for pc in edge["constraints"]] == ["@c>0"]
    assert plan.graphs["Package"].number_of_edges() == 2
    # Both Send Mail tasks (one in the OnError handler) resolve their SMTP manager by GUID.
    assert {r for r in plan.tasks if "Send Mail" in r} == {
        "Package\\Load Indexes\\Send Mail Task",
        "Package.EventHandlers[OnError]\\Send Mail Task",
    }
    assert "Package\\Download Ru Data\\Process files" in plan.skipped
    pytest.importorskip("dtsx.engine.expressions.compiler")
    assert ("@c>0", False) in plan.expressions and ("@d = @db", True) in plan.expressions


def test_project_connection_resolves_send_mail_smtp_server() -> None:
    path = _corpus("larryloi_*.dtsx")
    project = require_shared("corpus", "project")

    def send_mail_problems(**kwargs: object) -> list[Problem]:
        try:
            build(load(path, **kwargs), unsupported="skip")  # type: ignore[arg-type]
        except PackageValidationError as exc:
            return [p for p in exc.problems if "Send Mail" in (p.ref_id or "")]
        return []

    assert send_mail_problems(project_dir=project) == []
    missing = send_mail_problems()
    assert missing and "{88471E4C-F28E-4330-9CD6-AB7C0CD793CB}" in missing[0].message


def test_ado_enumerator_source_variable_must_exist() -> None:
    loop = """
    <DTS:Executable DTS:refId="Package\\Rows" DTS:ExecutableType="STOCK:FOREACHLOOP" DTS:ObjectName="Rows">
      <DTS:ForEachEnumerator DTS:CreationName="Microsoft.SqlServer.Dts.Runtime.Enumerators.ADO.ForEachADOEnumerator, Microsoft.SqlServer.ForEachADOEnumerator, Version=11.0.0.0">
        <DTS:ObjectData><FEEADO EnumType="EnumerateRowsInFirstTable" VarName="User::{name}" /></DTS:ObjectData>
      </DTS:ForEachEnumerator>
    </DTS:Executable>"""
    variables = '<DTS:Variable DTS:Namespace="User" DTS:ObjectName="Rows"><DTS:VariableValue DTS:DataType="13" /></DTS:Variable>'
    plan = build(
        load_bytes(_package(loop.replace("{name}", "Rows"), variables=variables), file="t.dtsx")
    )
    assert plan.executables["Package\\Rows"].enumerator.type_key == "Microsoft.ForEachADOEnumerator"
    (problem,) = _problems(_package(loop.replace("{name}", "Missing"), variables=variables))
    assert (
        problem.code == "missing-variable"
        and "User::Missing" in problem.message
        and problem.line == 8
    )  # the enumerator element


def test_item_and_from_variable_enumerators_are_supported() -> None:
    loops = """
    <DTS:Executable DTS:refId="Package\\Items" DTS:ExecutableType="STOCK:FOREACHLOOP" DTS:ObjectName="Items">
      <DTS:ForEachEnumerator DTS:CreationName="DTS.ForEachItemEnumerator.3" DTS:ObjectName="{E0000000-0000-0000-0000-000000000001}">
        <DTS:ObjectData><FEIEItems><FEIEItem><FEIEItemValue Type="8" Value="a" /><FEIEItemValue Type="3" Value="1" /></FEIEItem></FEIEItems></DTS:ObjectData>
      </DTS:ForEachEnumerator>
    </DTS:Executable>
    <DTS:Executable DTS:refId="Package\\FromVar" DTS:ExecutableType="STOCK:FOREACHLOOP" DTS:ObjectName="FromVar">
      <DTS:ForEachEnumerator DTS:CreationName="Microsoft.SqlServer.Dts.Runtime.Enumerators.FromVar.ForEachFromVarEnumerator, Microsoft.SqlServer.ForEachFromVarEnumerator, Version=13.0.0.0" DTS:ObjectName="{E0000000-0000-0000-0000-000000000002}">
        <DTS:ObjectData><FEEFVE VariableName="User::List" /></DTS:ObjectData>
      </DTS:ForEachEnumerator>
    </DTS:Executable>"""
    variables = '<DTS:Variable DTS:Namespace="User" DTS:ObjectName="List"><DTS:VariableValue DTS:DataType="13" /></DTS:Variable>'
    plan = build(load_bytes(_package(loops, variables=variables), file="t.dtsx"))
    items = plan.executables["Package\\Items"].enumerator
    from_var = plan.executables["Package\\FromVar"].enumerator
    assert (
        items.type_key == "Microsoft.ForEachItemEnumerator"
        and items.object_data.children[0].local_name == "FEIEItems"
    )
    assert from_var.type_key == "Microsoft.ForEachFromVarEnumerator" and from_var.properties == {
        "VariableName": "User::List"
    }
    (problem,) = _problems(_package(loops, variables=""))
    assert problem.code == "missing-variable" and "User::List" in problem.message


# -- issue 10: the run's --set values, decided property expressions, errors that keep their cause


def _unsupported(name: str = "X") -> str:
    return (
        f'<DTS:Executable DTS:refId="Package\\{name}" DTS:ExecutableType="Acme.NoSuchTask" '
        f'DTS:ObjectName="{name}" />'
    )


def _sets(*texts: str) -> list[object]:
    from dtsx.engine.executor import parse_set

    return [parse_set(text) for text in texts]


@pytest.mark.parametrize(
    "path", ["\\Package\\X.Properties[Disable]", "\\package\\x.Properties[disabled]"]
)
def test_set_disable_true_on_an_unsupported_task_satisfies_validation(path: str) -> None:
    # The unsupported-task advice says "disable it": --set must be a way to do so.
    pkg = load_bytes(_package(_unsupported() + _probe("Fine", 'Count="1"')), file="t.dtsx")
    plan = build(pkg, sets=_sets(f"{path};True"))  # type: ignore[arg-type]
    assert plan.warnings == [] and set(plan.tasks) == {"Package\\Fine"}


@pytest.mark.parametrize("value", ["False", "maybe", ""])
def test_set_disable_other_than_true_still_validates_the_task(value: str) -> None:
    pkg = load_bytes(_package(_unsupported()), file="t.dtsx")
    with pytest.raises(PackageValidationError) as info:
        build(pkg, sets=_sets(f"\\Package\\X.Properties[Disable];{value}"))  # type: ignore[arg-type]
    assert [p.code for p in info.value.problems] == ["unsupported-task"]


def test_a_task_disabled_by_set_runs_as_disabled() -> None:
    from dtsx.engine import executor

    sets = _sets("\\Package\\X.Properties[Disable];True")
    plan = build(load_bytes(_package(_unsupported()), file="t.dtsx"), sets=sets)  # type: ignore[arg-type]
    result = executor.run(plan, executor.RunOptions(sets=sets))  # type: ignore[arg-type]
    assert result.result == "Success"


def test_set_connection_string_is_checked_instead_of_the_stored_one() -> None:
    cm = (
        '<DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[Mail]" '
        'DTS:CreationName="SMTP" DTS:DTSID="{aaaaaaaa-0000-0000-0000-000000000001}" '
        'DTS:ObjectName="Mail"><DTS:ObjectData><SmtpConnectionManager '
        'ConnectionString="SmtpServer=localhost;Port=nope;" /></DTS:ObjectData>'
        "</DTS:ConnectionManager>"
    )
    body = _probe("Use", 'Connection="Mail"')
    pkg = load_bytes(_package(body, connections=cm), file="t.dtsx")
    with pytest.raises(PackageValidationError) as info:
        build(pkg)
    assert [p.code for p in info.value.problems] == ["bad-connection"]
    good = "\\Package.Connections[mail].Properties[ConnectionString];SmtpServer=localhost;Port=25;"
    build(pkg, sets=_sets(good))  # type: ignore[arg-type]
    # --set comes after --conn, as in the run: the --set string is the one checked.
    with pytest.raises(PackageValidationError):
        build(
            pkg,
            connections={"Mail": "SmtpServer=localhost;"},
            sets=_sets(good.replace("Port=25", "Port=0")),  # type: ignore[arg-type]
        )


def test_each_property_expression_is_decided_once_on_the_plan() -> None:
    from dtsx.engine.plan import PropertyAssignment, PropertyTarget

    expressions = (
        '<DTS:PropertyExpression DTS:Name=" Count ">1</DTS:PropertyExpression>'
        '<DTS:PropertyExpression DTS:Name="disable">false</DTS:PropertyExpression>'
    )
    loop = (
        '<DTS:Executable DTS:refId="Package\\L" DTS:ExecutableType="STOCK:FORLOOP" '
        'DTS:ObjectName="L" DTS:EvalExpression="false">'
        '<DTS:PropertyExpression DTS:Name="EvalExpression">"false"</DTS:PropertyExpression>'
        '<DTS:PropertyExpression DTS:Name="LoggingMode">1</DTS:PropertyExpression>'
        "</DTS:Executable>"
    )
    plan = build(load_bytes(_package(_probe("P", "", children=expressions) + loop), file="t.dtsx"))
    assert plan.assignments["Package\\P"] == (
        PropertyAssignment(
            "Count", PropertyTarget.TASK, None, "1", plan.assignments["Package\\P"][0].location
        ),
        PropertyAssignment(
            "disable",
            PropertyTarget.HOST,
            "disabled",
            "false",
            plan.assignments["Package\\P"][1].location,
        ),
    )
    assert plan.assignments["Package\\P"][0].location.line is not None
    assert [(a.name, a.target, a.field) for a in plan.assignments["Package\\L"]] == [
        ("EvalExpression", PropertyTarget.HOST, "eval_expression"),
        ("LoggingMode", PropertyTarget.IGNORED, None),
    ]
    # The task's validation saw the same names, stripped and in lower case.
    assert ProbeTask.seen[-1].dynamic_properties == frozenset({"count", "disable"})


def test_unsupported_task_keeps_the_registrys_did_you_mean() -> None:
    body = (
        '<DTS:Executable DTS:refId="Package\\X" DTS:ExecutableType="Tests.PlanProbeTsk" '
        'DTS:ObjectName="X" />'
    )
    (problem,) = _problems(_package(body))
    assert problem.code == "unsupported-task"
    assert "(did you mean 'Tests.PlanProbeTask'" in problem.message  # the nearest first


def test_a_broken_expression_engine_is_an_error_not_silence(tmp_path: Path) -> None:
    # Before issue 10 a failed import of the expression engine switched every expression
    # check off without a word; now the import error reaches the caller.
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['dtsx.engine.expressions'] = None\n"
        "from dtsx.engine.loader import load\n"
        "from dtsx.engine.plan import build\n"
        "try:\n"
        "    build(load(sys.argv[1]))\n"
        "except ImportError as exc:\n"
        "    print('ImportError', exc)\n"
        "else:\n"
        "    print('planned')\n"
    )
    package = Path(__file__).resolve().parents[2] / "samples" / "hello-mail.dtsx"
    done = subprocess.run(
        [sys.executable, "-c", script, str(package)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("ImportError"), done.stdout + done.stderr


# -- speed code: each fast path of the planner equals its plain reference


def _fast_path_packages() -> list[Path]:
    from tests._shared import REPO_ROOT, shared_dir

    found = sorted((REPO_ROOT / "tests" / "data").rglob("*.dtsx"))
    found += sorted((REPO_ROOT / "samples").rglob("*.dtsx"))
    base = shared_dir()
    if base is not None:
        found += sorted((base / "corpus").rglob("*.dtsx"))
    return found


def _outcome(path: Path) -> object:
    """Everything a plan (or its problems) holds that the fast paths could change."""
    try:
        pkg = load(str(path), project_dir=None)
    except Exception as exc:  # noqa: BLE001 - a package the loader refuses has no plan to compare
        return ("load", type(exc).__name__)
    try:
        plan = build(pkg, unsupported="skip")
    except PackageValidationError as exc:
        return ("problems", [(p.code, p.message, p.line, p.ref_id) for p in exc.problems])
    graphs = {
        ref: (
            list(g.nodes),
            [(u, v, [c.ref_id for c in d["constraints"]]) for u, v, d in g.edges(data=True)],
        )
        for ref, g in plan.graphs.items()
    }
    return (
        list(plan.executables),
        sorted(plan.tasks),
        plan.assignments,
        sorted(plan.skipped),
        [(w.code, w.message, w.line, w.ref_id) for w in plan.warnings],
        sorted(plan.expressions),
        graphs,
    )


def test_the_planners_fast_paths_equal_their_plain_references(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dtsx.engine import plan as planner

    packages = _fast_path_packages()
    assert len(packages) > 50
    fast = [_outcome(p) for p in packages]
    cls = planner._Planner
    monkeypatch.setattr(cls, "_index_children", cls._index_children_plain)
    monkeypatch.setattr(cls, "_check_children", cls._check_children_plain)
    monkeypatch.setattr(
        planner._TaskChecks,
        "reference_attributes",
        lambda self, data: planner._reference_attributes_plain(data),
    )
    monkeypatch.setattr(
        planner, "_no_cycle", lambda nodes, known, cs: planner._no_cycle_plain(nodes, cs)
    )
    plain = [_outcome(p) for p in packages]
    for path, a, b in zip(packages, fast, plain, strict=True):
        assert a == b, path


@pytest.mark.parametrize("seed", range(40))
def test_the_cycle_check_equals_networkx(seed: int) -> None:
    import random

    from dtsx.engine.model import PrecedenceConstraint
    from dtsx.engine.plan import _no_cycle, _no_cycle_plain

    rng = random.Random(seed)
    nodes = [f"Package\\N{i}" for i in range(rng.randint(1, 8))]
    constraints = [
        PrecedenceConstraint(
            ref_id=f"Package.PrecedenceConstraints[C{i}]",
            from_ref=rng.choice(nodes),
            to_ref=rng.choice(nodes),
        )
        for i in range(rng.randint(1, 10))
    ]
    assert _no_cycle(nodes, set(nodes), constraints) == _no_cycle_plain(nodes, constraints)


def test_the_local_name_cache_equals_the_plain_function() -> None:
    from dtsx.engine.model import LOCAL_NAMES, LocalNames, local_name

    keys = ["{www.microsoft.com/SqlServer/Dts}ObjectName", "Plain", "{a}b}c", "{}x", ""]
    assert (
        [LOCAL_NAMES[k] for k in keys]
        == [local_name(k) for k in keys]
        == [
            "ObjectName",
            "Plain",
            "c",
            "x",
            "",
        ]
    )
    small = LocalNames(limit=2)
    assert [small[k] for k in keys] == [local_name(k) for k in keys] and len(small) == 2


def test_a_connection_manager_of_a_broken_plugin_is_a_problem_naming_it(tmp_path: Path) -> None:
    # A real (throwaway) distribution whose entry point cannot be imported, on a subprocess's path.
    import subprocess
    import sys

    dist = tmp_path / "site" / "acme_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[dtsx.connections]\nACME.BROKEN = acme_no_such_module:Manager\n"
    )
    cm = (
        '<DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[Odd]" '
        'DTS:CreationName="ACME.BROKEN" DTS:ObjectName="Odd" />'
    )
    package = tmp_path / "p.dtsx"
    package.write_bytes(_package("", connections=cm))
    script = (
        "import sys\n"
        "from dtsx.engine.errors import PackageValidationError\n"
        "from dtsx.engine.loader import load\n"
        "from dtsx.engine.plan import build\n"
        "try:\n"
        "    build(load(sys.argv[1]))\n"
        "except PackageValidationError as exc:\n"
        "    for p in exc.problems: print(p.code, p.ref_id, p.message)\n"
        "else:\n"
        "    print('planned')\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    out = done.stdout + done.stderr
    assert out.startswith("plugin-error Package.ConnectionManagers[Odd]"), out
    assert "acme_no_such_module" in out or "acme-broken" in out, out
