"""The plan's graphs are built on first read; they must hold exactly what an eager build holds,
and the build-time checks (constraint ends, cycles, repeated DTSIDs) must still run."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import pytest
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.loader import load_bytes
from dtsx.engine.model import Executable, Package
from dtsx.engine.plan import _no_repeat, build

from tests._shared import REPO_ROOT

DTS = 'xmlns:DTS="www.microsoft.com/SqlServer/Dts"'


def _package(
    names: list[str], edges: list[tuple[str, str]], dtsids: dict[str, str] | None = None
) -> bytes:
    """Disabled tasks of an unknown type (never resolved) in one Sequence, linked by ``edges``."""
    ids = dtsids or {}
    tasks = "".join(
        f'<DTS:Executable DTS:refId="Package\\S\\{n}" DTS:ExecutableType="Tests.Nothing" DTS:ObjectName="{n}" '
        + (f'DTS:DTSID="{ids[n]}" ' if n in ids else "")
        + 'DTS:Disabled="True"><DTS:ObjectData><X/></DTS:ObjectData></DTS:Executable>'
        for n in names
    )
    links = "".join(
        f'<DTS:PrecedenceConstraint DTS:refId="Package\\S.PrecedenceConstraints[{a}-{b}-{i}]" '
        f'DTS:From="Package\\S\\{a}" DTS:To="Package\\S\\{b}" DTS:ObjectName="{a}-{b}-{i}"/>'
        for i, (a, b) in enumerate(edges)
    )
    return f"""<?xml version="1.0"?>
<DTS:Executable {DTS} DTS:refId="Package" DTS:ObjectName="P">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:Executables><DTS:Executable DTS:refId="Package\\S" DTS:ExecutableType="STOCK:SEQUENCE" DTS:ObjectName="S">
    <DTS:Executables>{tasks}</DTS:Executables>
    <DTS:PrecedenceConstraints>{links}</DTS:PrecedenceConstraints>
  </DTS:Executable></DTS:Executables>
</DTS:Executable>""".encode()


def _eager(container: Executable) -> nx.DiGraph:
    """The graph as the planner built it before graphs were lazy."""
    graph = nx.DiGraph()
    graph.add_nodes_from(child.ref_id for child in container.executables)
    for pc in container.precedence_constraints:
        if graph.has_edge(pc.from_ref, pc.to_ref):
            graph.edges[pc.from_ref, pc.to_ref]["constraints"].append(pc)
        else:
            graph.add_edge(pc.from_ref, pc.to_ref, constraints=[pc])
    return graph


def _containers(pkg: Package) -> list[Executable]:
    return [e for e in pkg.walk() if e.kind.name != "TASK"]


def _same(a: nx.DiGraph, b: nx.DiGraph) -> None:
    assert list(a.nodes) == list(b.nodes)
    assert list(a.edges) == list(b.edges)
    for u, v in a.edges:
        assert a.edges[u, v]["constraints"] == b.edges[u, v]["constraints"]
        assert all(
            x is y
            for x, y in zip(a.edges[u, v]["constraints"], b.edges[u, v]["constraints"], strict=True)
        )


def test_graphs_mapping_behaves_like_the_dict_it_replaced() -> None:
    names = ["A", "B", "C", "D"]
    pkg = load_bytes(
        _package(names, [("A", "B"), ("A", "B"), ("B", "D"), ("C", "D")]), file="g.dtsx"
    )
    plan = build(pkg)
    graphs = plan.graphs
    assert isinstance(graphs, Mapping)
    expected = {c.ref_id: _eager(c) for c in _containers(pkg)}
    assert list(graphs) == list(expected) == ["Package", "Package\\S"]
    assert len(graphs) == 2 and "Package\\S" in graphs and "Package\\Nope" not in graphs
    assert graphs.get("Package\\Nope") is None
    with pytest.raises(KeyError):
        graphs["Package\\Nope"]
    for ref, graph in graphs.items():
        _same(graph, expected[ref])
    assert graphs["Package\\S"] is graphs.get("Package\\S")  # built once, then kept
    assert [g.number_of_edges() for g in graphs.values()] == [0, 3]
    assert dict(graphs) == {ref: graphs[ref] for ref in expected}
    assert len(graphs["Package\\S"].edges["Package\\S\\A", "Package\\S\\B"]["constraints"]) == 2


def test_benchmark_package_graph_equals_the_eager_build() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "dtsx_bench_load", REPO_ROOT / "bench" / "load.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pkg = load_bytes(bench.synthetic_package(200), file="bench.dtsx")
    plan = build(pkg)
    for container in _containers(pkg):
        _same(plan.graphs[container.ref_id], _eager(container))


def test_backward_constraints_without_a_cycle_plan_cleanly() -> None:
    # Every edge points to an earlier sibling: the document-order shortcut cannot decide, Kahn's does.
    names = ["A", "B", "C", "D"]
    plan = build(
        load_bytes(_package(names, [("D", "C"), ("C", "B"), ("B", "A"), ("D", "A")]), file="b.dtsx")
    )
    assert plan.graphs["Package\\S"].number_of_edges() == 4


def test_backward_cycle_is_reported() -> None:
    names = ["A", "B", "C"]
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(_package(names, [("A", "B"), ("C", "A"), ("B", "C")]), file="c.dtsx"))
    cycles = [p for p in info.value.problems if p.code == "cycle"]
    assert (
        len(cycles) == 1
        and "'Package\\S\\A', 'Package\\S\\B', 'Package\\S\\C'" in cycles[0].message
    )


def test_constraint_to_a_stranger_is_still_reported_at_build_time() -> None:
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(_package(["A", "B"], [("A", "Ghost")]), file="s.dtsx"))
    assert [p.code for p in info.value.problems] == ["bad-constraint"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{ABCDEF00-0000-4000-8000-000000000001}", "{abcdef00-0000-4000-8000-000000000001}"),
        ("{ABCDEF00-0000-4000-8000-000000000001}", "ABCDEF00-0000-4000-8000-000000000001"),
        ("{ABCDEF00-0000-4000-8000-000000000001}", " {ABCDEF00-0000-4000-8000-000000000001} "),
    ],
    ids=["case", "braces", "whitespace"],
)
def test_repeated_dtsids_in_any_spelling_are_reported(first: str, second: str) -> None:
    data = _package(["A", "B"], [], {"A": first, "B": second})
    with pytest.raises(PackageValidationError) as info:
        build(load_bytes(data, file="d.dtsx"))
    assert [p.code for p in info.value.problems] == ["duplicate-dtsid"]


def test_dtsids_equal_only_after_removing_inner_spaces_are_not_repeats() -> None:
    # The quick check sees these as equal; the exact key (outer whitespace only) does not.
    build(load_bytes(_package(["A", "B"], [], {"A": "{AB CD}", "B": "{ABCD}"}), file="d.dtsx"))


@pytest.mark.parametrize(
    "dtsids",
    [
        [],
        ["a"],
        ["{a}", "A"],
        [" {a} ", "a"],
        ["a b", "ab"],
        ["{a}b}", "a}b"],
        ["", ""],
        ["a\x00b", "a", "b"],
        ["ß", "SS"],
    ],
)
def test_quick_dtsid_check_never_misses_a_repeat(dtsids: list[str]) -> None:
    exact = len({d.strip().strip("{}").upper() for d in dtsids}) == len(dtsids)
    assert exact or not _no_repeat(dtsids)
