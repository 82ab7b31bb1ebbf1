"""The loader builds models without validation (it produces typed values itself) and the planner
has fast paths; these tests prove both give what validated models and the general paths give."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from dtsx.engine.errors import DtsxError, PackageValidationError
from dtsx.engine.loader import load, load_bytes
from dtsx.engine.model import (
    Executable,
    Package,
    PrecedenceConstraint,
    SourceLocation,
    XmlNode,
)
from dtsx.engine.plan import build

from tests._shared import REPO_ROOT, shared_dir


def _packages() -> list[Path]:
    base = shared_dir()
    found = sorted((base / "corpus" / "dtsx").glob("*.dtsx")) if base is not None else []
    return found + sorted((REPO_ROOT / "samples").glob("*.dtsx"))


PACKAGES = _packages()


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "dtsx_bench_load", REPO_ROOT / "bench" / "load.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_validates_to_itself(pkg: Package) -> None:
    """Strict validation of the dump (no coercion: a "1" where an int belongs fails) gives the
    same model back, so every value the loader stored has the declared type."""
    dumped = pkg.model_dump()
    again = Package.model_validate(dumped, strict=True)
    assert again.model_dump() == dumped
    # XmlNode.line is excluded from dumps; check it directly.
    for exe in pkg.walk():
        nodes = [n for n in (exe.object_data, exe.logging_options) if n is not None]
        for node in (d for n in nodes for d in n.iter()):
            assert node.line is None or type(node.line) is int


@pytest.mark.parametrize("path", PACKAGES, ids=[p.name[:60] for p in PACKAGES])
def test_loaded_packages_validate_strictly_to_themselves(path: Path) -> None:
    try:
        pkg = load(path)
    except DtsxError as exc:
        # Only the whole-file encrypted corpus packages may be refused; test_loader checks the
        # message.
        assert "encrypted" in str(exc), str(exc)
        return
    _assert_validates_to_itself(pkg)


def test_synthetic_benchmark_package_validates_and_plans() -> None:
    bench = _bench()
    pkg = load_bytes(bench.synthetic_package(50), file="bench.dtsx")
    _assert_validates_to_itself(pkg)
    plan = build(pkg)
    assert len(plan.tasks) == 50
    graph = plan.graphs["Package\\Seq"]
    assert graph.number_of_nodes() == 50 and graph.number_of_edges() == 50
    assert [
        c.name for c in graph.edges["Package\\Seq\\Mail 0", "Package\\Seq\\Mail 2"]["constraints"]
    ] == ["C 49"]


def test_shared_fields_set_is_not_changed_through_another_instance() -> None:
    pkg = load_bytes(_bench().synthetic_package(3), file="bench.dtsx")
    first, second = (e.object_data for e in pkg.executables[0].executables[:2])
    assert first is not None and second is not None
    first.text = "changed"
    assert second.text is None
    assert second.model_fields_set == set(XmlNode.model_fields)
    pc = pkg.executables[0].precedence_constraints[0]
    copy = pc.model_copy(update={"value": 1})
    assert (copy.value, pc.value) == (1, 0)
    assert pc.model_fields_set == set(PrecedenceConstraint.model_fields)
    assert isinstance(pc.location, SourceLocation) and pc.location.line is not None


def _sequence(edges: list[tuple[str, str]]) -> bytes:
    """Disabled tasks of an unknown type (never resolved) linked by ``edges`` inside one
    Sequence."""
    names = sorted({n for edge in edges for n in edge} | {"Lone"})
    tasks = "".join(
        f'<DTS:Executable DTS:refId="Package\\S\\{n}" DTS:ExecutableType="Tests.Nothing" '
        f'DTS:ObjectName="{n}" '
        'DTS:Disabled="True"><DTS:ObjectData><X/></DTS:ObjectData></DTS:Executable>'
        for n in names
    )
    links = "".join(
        f'<DTS:PrecedenceConstraint DTS:refId="Package\\S.PrecedenceConstraints[{a}-{b}]" '
        f'DTS:From="Package\\S\\{a}" DTS:To="Package\\S\\{b}" DTS:ObjectName="{a}-{b}"/>'
        for a, b in edges
    )
    return (
        '<?xml version="1.0"?>\n'
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="P">\n'
        '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
        '  <DTS:Executables><DTS:Executable DTS:refId="Package\\S" '
        'DTS:ExecutableType="STOCK:SEQUENCE" DTS:ObjectName="S">\n'
        f"    <DTS:Executables>{tasks}</DTS:Executables>\n"
        f"    <DTS:PrecedenceConstraints>{links}</DTS:PrecedenceConstraints>\n"
        "  </DTS:Executable></DTS:Executables>\n"
        "</DTS:Executable>"
    ).encode()


def test_acyclic_constraints_with_a_diamond_plan_cleanly() -> None:
    plan = build(
        load_bytes(_sequence([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]), file="d.dtsx")
    )
    assert plan.graphs["Package\\S"].number_of_edges() == 4


@pytest.mark.parametrize(
    ("edges", "through"),
    [
        ([("A", "B"), ("B", "C"), ("C", "B")], "'Package\\S\\B', 'Package\\S\\C'"),
        ([("A", "A"), ("A", "B")], "'Package\\S\\A'"),
    ],
    ids=["cycle-behind-a-tail", "self-loop"],
)
def test_cycles_are_found_and_named(edges: list[tuple[str, str]], through: str) -> None:
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(_sequence(edges), file="c.dtsx"))
    cycles = [p for p in info.value.problems if p.code == "cycle"]
    assert len(cycles) == 1 and f"cycle through {through};" in cycles[0].message


def test_executables_keep_every_model_field() -> None:
    pkg = load_bytes(_bench().synthetic_package(2), file="bench.dtsx")
    task = pkg.executables[0].executables[0]
    assert list(task.__dict__) == list(Executable.model_fields)
    assert task.locale_id == -1 and task.dtsid == "{00000000-0000-4000-8000-000000000000}"


def _one_constraint(attributes: str, children: str = "") -> bytes:
    close = f">{children}</DTS:PrecedenceConstraint>" if children else "/>"
    return (
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" xmlns:x="urn:other" '
        'DTS:refId="Package" '
        'DTS:ObjectName="P">\n<DTS:Property '
        'DTS:Name="PackageFormatVersion">8</DTS:Property>\n<DTS:Executables>\n'
        '<DTS:Executable DTS:refId="Package\\A" DTS:ExecutableType="STOCK:SEQUENCE" '
        'DTS:ObjectName="A"/>\n'
        '<DTS:Executable DTS:refId="Package\\B" DTS:ExecutableType="STOCK:SEQUENCE" '
        'DTS:ObjectName="B"/>\n'
        "</DTS:Executables>\n<DTS:PrecedenceConstraints>\n"
        '<DTS:PrecedenceConstraint DTS:refId="Package.PrecedenceConstraints[C]" '
        f"{attributes}{close}\n"
        "</DTS:PrecedenceConstraints></DTS:Executable>"
    ).encode()


@pytest.mark.parametrize(
    "attributes",
    [
        (
            'DTS:From="Package\\A" DTS:To="Package\\B" DTS:Value=" 1 " DTS:EvalOp="3" '
            'DTS:Expression="@x > 1" '
            'DTS:LogicalAnd="False" DTS:ObjectName="C" DTS:DTSID="{1}" x:Other="ignored"'
        ),
        'DTS:From="Package\\A" DTS:To="Package\\B" DTS:Value="" DTS:Expression="" '
        'DTS:LogicalAnd="-1"',
        'DTS:From="Package\\A" DTS:To="Package\\B"',
    ],
    ids=["every-setting", "blank-values-default", "defaults"],
)
def test_attribute_only_constraints_read_as_the_general_path_reads_them(attributes: str) -> None:
    """A <DTS:Property> child sends the same constraint down the general (2005/2008) path."""
    fast = load_bytes(_one_constraint(attributes), file="f.dtsx").precedence_constraints[0]
    child = '<DTS:Property DTS:Name="Unused">0</DTS:Property>'
    general = load_bytes(_one_constraint(attributes, child), file="f.dtsx").precedence_constraints[
        0
    ]
    assert fast.model_dump(exclude={"location"}) == general.model_dump(exclude={"location"})
    assert fast.location == SourceLocation(file="f.dtsx", line=8)


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        (
            'DTS:From="Package\\A" DTS:To="Package\\B" DTS:Value="high"',
            "Value='high' is not an integer",
        ),
        (
            'DTS:From="Package\\A" DTS:To="Package\\B" DTS:LogicalAnd="maybe"',
            "LogicalAnd='maybe' is not a boolean",
        ),
        ('DTS:From="Package\\A"', "has no To end"),
    ],
)
def test_attribute_only_constraint_errors_name_the_setting_and_line(
    attributes: str, words: str
) -> None:
    with pytest.raises(DtsxError) as info:
        load_bytes(_one_constraint(attributes), file="e.dtsx")
    assert "e.dtsx:8" in str(info.value) and words in str(info.value)


def _one_task(children: str) -> bytes:
    return (
        '<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" '
        'DTS:ObjectName="P">\n'
        '<DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n<DTS:Executables>\n'
        '<DTS:Executable DTS:refId="Package\\T" DTS:ExecutableType="Microsoft.SendMailTask" '
        'DTS:ObjectName="T" '
        'DTS:DTSID="{2}" DTS:LocaleID="1033" DTS:Disabled="True" DTS:Description="" '
        'DTS:Extra="kept">\n'
        f'{children}<DTS:ObjectData><M:Data xmlns:M="urn:m" M:To="a@b"><M:Row '
        'n="1">x</M:Row></M:Data></DTS:ObjectData>'
        "</DTS:Executable>\n</DTS:Executables></DTS:Executable>"
    ).encode()


@pytest.mark.parametrize(
    "variables", ["", "<DTS:Variables />", "<DTS:Variables></DTS:Variables><DTS:Variables/>"]
)
def test_plain_tasks_read_as_the_general_path_reads_them(variables: str) -> None:
    """An element the loader does not read sends the same task down the general path."""
    fast = load_bytes(_one_task(variables), file="t.dtsx").executables[0]
    general = load_bytes(_one_task(variables + "<DTS:Unread/>"), file="t.dtsx").executables[0]
    assert fast.model_dump() == general.model_dump()
    assert fast.model_fields_set == general.model_fields_set
    assert list(fast.__dict__) == list(general.__dict__)
    assert fast.object_data is not None and fast.object_data.children[0].nsmap == {"M": "urn:m"}
    assert (fast.locale_id, fast.disabled, fast.description, fast.properties) == (
        1033,
        True,
        None,
        {"Extra": "kept"},
    )


def test_overlapping_gc_pauses_leave_the_collector_as_they_found_it() -> None:
    """Pauses that overlap in time (two threads loading at once) re-enable the collector only
    when the last one ends, and never enable one that was off before the first began."""
    import gc
    import threading

    from dtsx.engine.gcpause import paused_gc

    assert gc.isenabled()
    first_in, second_out = threading.Event(), threading.Event()

    def first() -> None:
        with paused_gc():
            first_in.set()
            second_out.wait(10)
            assert not gc.isenabled()  # the second pause ended, this one has not

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with paused_gc():
        assert not gc.isenabled()
    second_out.set()
    thread.join(10)
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_a_pause_made_goes_to_the_oldest_generation_unscanned() -> None:
    import gc

    from dtsx.engine.gcpause import paused_gc

    gc.collect()
    with paused_gc():
        made = [[i] for i in range(5000)]  # tracked containers, young while the pause lasts
    # No young-generation pass is pending: the next allocation does not scan them.
    assert gc.get_count()[0] < 100
    assert gc.is_tracked(made[0]) and gc.get_freeze_count() == 0
    assert any(x is made[0] for x in gc.get_objects(generation=2))
    del made


def test_a_programs_frozen_objects_stay_frozen_across_a_pause() -> None:
    import gc

    from dtsx.engine.gcpause import paused_gc

    kept = [[1], [2]]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            _ = [[i] for i in range(100)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    del kept
