"""Benchmark: load + plan a synthetic package of 10,000 tasks and 10,000 precedence constraints.

Prints, from one run: load time, plan time, load+plan, the raw lxml parse-and-walk time of the
same bytes, their ratio (target <= 3), and peak memory (tracemalloc over a separate load+plan,
and the process's max RSS). Run: ``python bench/load.py [--tasks N] [--repeat R]``.

The loader and the planner pause Python's cyclic collector while they allocate; when the pause
ends, what they made moves to the oldest generation unscanned (``dtsx/engine/gcpause.py``), so
no young-generation pass over it is left pending. The line "load+plan incl. pending GC" runs a
young-generation collection inside the clock (``gc.collect(0)``) to show that nothing is.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

from dtsx.engine.loader import load_bytes
from dtsx.engine.plan import build
from lxml import etree

__all__ = ["main", "synthetic_package"]

_SMTP_ID = "{5A5A5A5A-0000-4000-8000-000000000001}"


def synthetic_package(tasks: int) -> bytes:
    """A format-8 package: one Sequence holding ``tasks`` Send Mail tasks in a chain, plus one
    extra constraint per task beyond the chain so constraints == tasks."""
    parts = [
        (
            '<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" '
            'DTS:refId="Package" '
            'DTS:CreationName="Microsoft.Package" DTS:ExecutableType="Microsoft.Package" '
            'DTS:ObjectName="Bench" '
            'DTS:DTSID="{5A5A5A5A-0000-4000-8000-000000000000}">\n'
            '  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>\n'
            "  <DTS:ConnectionManagers>\n"
            '    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[SMTP]" '
            f'DTS:CreationName="SMTP" DTS:DTSID="{_SMTP_ID}" DTS:ObjectName="SMTP">\n'
            "      <DTS:ObjectData><SmtpConnectionManager "
            'ConnectionString="SmtpServer=127.0.0.1;UseWindowsAuthentication=False;'
            'EnableSsl=False;" '
            "/></DTS:ObjectData>\n"
            "    </DTS:ConnectionManager>\n  </DTS:ConnectionManagers>\n"
            '  <DTS:Executables>\n    <DTS:Executable DTS:refId="Package\\Seq" '
            'DTS:CreationName="STOCK:SEQUENCE" '
            'DTS:ExecutableType="STOCK:SEQUENCE" DTS:ObjectName="Seq">\n      <DTS:Executables>\n'
        )
    ]
    for i in range(tasks):
        parts.append(
            f'        <DTS:Executable DTS:refId="Package\\Seq\\Mail {i}" '
            'DTS:CreationName="Microsoft.SendMailTask" '
            f'DTS:DTSID="{{00000000-0000-4000-8000-{i:012d}}}" '
            'DTS:ExecutableType="Microsoft.SendMailTask" '
            f'DTS:LocaleID="-1" DTS:ObjectName="Mail {i}">\n'
            "          <DTS:Variables />\n          <DTS:ObjectData>\n"
            f'            <SendMailTask:SendMailTaskData SendMailTask:SMTPServer="{_SMTP_ID}" '
            'SendMailTask:From="etl@example.com" '
            f'SendMailTask:To="ops@example.com" SendMailTask:Subject="Step {i}" '
            f'SendMailTask:MessageSource="Body {i}" '
            'xmlns:SendMailTask="www.microsoft.com/sqlserver/dts/tasks/sendmailtask" />\n'
            "          </DTS:ObjectData>\n        </DTS:Executable>\n"
        )
    parts.append("      </DTS:Executables>\n      <DTS:PrecedenceConstraints>\n")
    edges = [(i, i + 1) for i in range(tasks - 1)] + [(0, 2)]  # a chain, plus one skip edge
    for n, (a, b) in enumerate(edges[:tasks]):
        parts.append(
            '        <DTS:PrecedenceConstraint DTS:refId="Package\\Seq.PrecedenceConstraints[C '
            f'{n}]" DTS:CreationName="" '
            f'DTS:DTSID="{{11111111-0000-4000-8000-{n:012d}}}" DTS:From="Package\\Seq\\Mail {a}" '
            f'DTS:To="Package\\Seq\\Mail {b}" DTS:LogicalAnd="True" DTS:ObjectName="C {n}" />\n'
        )
    parts.append(
        "      </DTS:PrecedenceConstraints>\n    </DTS:Executable>\n  "
        "</DTS:Executables>\n</DTS:Executable>\n"
    )
    return "".join(parts).encode("utf-8")


def raw_parse_and_walk(data: bytes) -> int:
    """The floor: parse with lxml, read every element's tag, attribute items and text once, and
    drop the tree, exactly as the loader drops its tree (neither frees its result in the clock).
    The parser has the loader's settings, so both parse the same way."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    root = etree.fromstring(data, parser)
    count = 0
    for el in root.iter():
        el.tag, el.text, el.items()
        count += 1
    return count


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` runs; the result is freed after the clock stops, for every measure
    alike."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def _with_pending_gc(result: object) -> object:
    """Run now any young-generation collection the collector's pause left pending."""
    gc.collect(0)
    return result


def _report_times(data: bytes, pkg: object, repeat: int) -> None:
    t_load = _best(lambda: load_bytes(data, file="bench.dtsx"), repeat)
    t_plan = _best(lambda: build(pkg), repeat)  # type: ignore[arg-type]
    t_both = _best(lambda: build(load_bytes(data, file="bench.dtsx")), repeat)
    t_both_gc = _best(lambda: _with_pending_gc(build(load_bytes(data, file="bench.dtsx"))), repeat)
    t_raw = _best(lambda: raw_parse_and_walk(data), repeat)
    print(f"load:             {t_load * 1000:8.1f} ms")
    print(f"plan:             {t_plan * 1000:8.1f} ms")
    print(f"load+plan:        {t_both * 1000:8.1f} ms")
    print(f"raw lxml parse+walk: {t_raw * 1000:5.1f} ms")
    print(f"ratio load+plan / raw: {t_both / t_raw:.2f}  (target <= 3)")
    print(f"ratio load / raw:      {t_load / t_raw:.2f}")
    print(f"load+plan incl. pending GC: {t_both_gc * 1000:8.1f} ms; ratio {t_both_gc / t_raw:.2f}")


def _report_memory(data: bytes) -> None:
    gc.collect()
    tracemalloc.start()
    kept = build(load_bytes(data, file="bench.dtsx"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    print(
        f"peak memory (tracemalloc, load+plan): {peak / 1e6:.1f} MB; process max RSS: {rss_mb:.1f} "
        "MB"
    )
    del kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs for each timing")
    args = parser.parse_args(argv)
    data = synthetic_package(args.tasks)
    pkg = load_bytes(data, file="bench.dtsx")
    constraints = sum(len(e.precedence_constraints) for e in pkg.walk())
    plan = build(pkg)
    print(
        f"package: {args.tasks} tasks, {constraints} constraints, {len(data) / 1e6:.1f} MB; "
        f"planned {len(plan.tasks)} tasks"
    )

    _report_times(data, pkg, args.repeat)
    del plan, pkg
    _report_memory(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
