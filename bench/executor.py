"""Executor throughput: no-op tasks through the full executor vs a plain thread-pool DAG walk.

Prints, for chains, fan-outs and layered lattices of 100, 1,000 and 10,000 no-op tasks:
tasks per second and microseconds per task through ``executor.run`` (events, scopes, constraint
evaluation, result records included), the same DAG walked by a plain ``ThreadPoolExecutor``
with in-degree counting, the ratio of the two, and the process's peak resident memory.

    python bench/executor.py [--sizes 100,1000,10000] [--workers N]
"""

from __future__ import annotations

import argparse
import gc
import queue
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable

import networkx as nx
from dtsx.engine import executor, plan
from dtsx.engine.model import (
    Executable,
    ExecutableKind,
    Package,
    PrecedenceConstraint,
    XmlNode,
)
from dtsx.tasks.base import Task, TaskContext, register_task

NOOP = "Bench.NoOp"


@register_task(NOOP)
class NoOpTask(Task):
    """Does nothing: what is measured is the executor around it."""

    def execute(self, ctx: TaskContext) -> None:
        return None


def _task(i: int) -> Executable:
    return Executable(
        kind=ExecutableKind.TASK,
        ref_id=f"Package\\T{i}",
        name=f"T{i}",
        raw_type=NOOP,
        type_key=NOOP,
        object_data=XmlNode(tag="ObjectData"),
    )


def _edge(a: int, b: int) -> PrecedenceConstraint:
    return PrecedenceConstraint(
        ref_id=f"Package.PrecedenceConstraints[{a}-{b}]",
        from_ref=f"Package\\T{a}",
        to_ref=f"Package\\T{b}",
    )


def chain(n: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(n - 1)]


def fan_out(n: int) -> list[tuple[int, int]]:
    """One root, n - 2 parallel tasks, one join."""
    return [(0, i) for i in range(1, n - 1)] + [(i, n - 1) for i in range(1, n - 1)]


def lattice(n: int) -> list[tuple[int, int]]:
    """Layers of width ~sqrt(n); each node waits for two nodes of the layer before."""
    width = max(2, int(n**0.5))
    edges = []
    for i in range(width, n):
        layer_start = (i // width) * width
        prev = layer_start - width
        j = i - layer_start
        edges.append((prev + j, i))
        edges.append((prev + (j + 1) % width, i))
    return edges


SHAPES: dict[str, Callable[[int], list[tuple[int, int]]]] = {
    "chain": chain,
    "fan-out": fan_out,
    "lattice": lattice,
}


def build_package(n: int, edges: list[tuple[int, int]], workers: int) -> Package:
    return Package(
        ref_id="Package",
        name=f"bench{n}",
        executables=[_task(i) for i in range(n)],
        precedence_constraints=[_edge(a, b) for a, b in edges],
        max_concurrent_executables=workers,
    )


def plain_walk(n: int, edges: list[tuple[int, int]], workers: int) -> float:
    """The same DAG through a bare thread pool: in-degree counting, a completion queue."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    pending = {v: graph.in_degree(v) for v in graph}
    done: queue.SimpleQueue[int] = queue.SimpleQueue()

    def work(v: int) -> None:
        done.put(v)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running = 0
        for v in [v for v, d in pending.items() if d == 0]:
            pool.submit(work, v)
            running += 1
        while running:
            v = done.get()
            running -= 1
            for w in graph.successors(v):
                pending[w] -= 1
                if pending[w] == 0:
                    pool.submit(work, w)
                    running += 1
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(shape: str, n: int, workers: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` runs each (the machine is shared; the minimum is the least disturbed).

    Every executor run gets a plan of its own, as ``dtsx run`` does. The planner builds
    container graphs on first read; the "plan s" column forces them, so that their cost is
    shown with planning (where it was when they were built eagerly) rather than hidden by
    reusing one plan for every run. Before each timed walk the cyclic collector is run, so
    that neither contender pays for garbage the other (or the planner) left behind; each still
    pays for its own."""
    edges = SHAPES[shape](n)
    pkg = build_package(n, edges, workers)
    plans, runs, walks = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        built = plan.build(pkg)
        for ref in built.graphs:
            built.graphs[ref]
        plans.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        result = executor.run(built)
        runs.append(time.perf_counter() - t0)
        if result.result != "Success" or sum(e.iterations for e in result.executables) != n:
            raise SystemExit(
                f"bench run of {shape} {n} did not run every task once: {result.result}"
            )
        del built, result
        gc.collect()
        walks.append(plain_walk(n, edges, workers))
    return {"plan_s": min(plans), "run_s": min(runs), "walk_s": min(walks)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument(
        "--workers", type=int, default=4, help="MaxConcurrentExecutables for both walks"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the best is shown"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}, workers {args.workers}, best of {args.repeat}")
    header = (
        f"{'shape':<8} {'tasks':>6} {'executor t/s':>13} {'us/task':>8} {'plain t/s':>10} "
        f"{'us/task':>8} {'ratio':>6} {'plan s':>7} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        for shape in SHAPES:
            m = measure(shape, n, args.workers, args.repeat)
            per_task = m["run_s"] / n * 1e6
            plain = m["walk_s"] / n * 1e6
            print(
                f"{shape:<8} {n:>6} {n / m['run_s']:>13.0f} {per_task:>8.1f} "
                f"{n / m['walk_s']:>10.0f} {plain:>8.1f} "
                f"{m['run_s'] / m['walk_s']:>6.2f} {m['plan_s']:>7.2f} {peak_rss_mb():>8.1f}"
            )


if __name__ == "__main__":
    main()
