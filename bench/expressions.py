"""Benchmark: compiled SSIS expressions against Python's own eval of a precompiled equivalent.

Prints evaluations per second (median of several repetitions) for two expressions, next to
``eval()`` of the same logic compiled once by Python, and the ratio. Run:
``python bench/expressions.py``.
"""

from __future__ import annotations

import builtins
import statistics
import time
from datetime import datetime
from typing import Any
from collections.abc import Callable

from dtsx.engine.expressions import Value, compile, value_from_dotnet

REPETITIONS = 7
TARGET_RATE = 300_000
TARGET_RATIO = 15.0


def _rate(call: Callable[[], Any], loops: int) -> float:
    """Median evaluations per second over REPETITIONS timed runs of ``loops`` calls."""
    rates = []
    for _ in range(REPETITIONS):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        rates.append(loops / (time.perf_counter() - start))
    return statistics.median(rates)


def _case(
    name: str, ssis: str, python: str, variables: dict[str, Value], py_vars: dict[str, Any]
) -> bool:
    compiled = compile(ssis)
    lookup = variables.__getitem__
    code = builtins.compile(python, "<bench>", "eval")
    expected = eval(code, py_vars)  # noqa: S307 - the comparison baseline, fixed text
    got = compiled.evaluate(lookup).value
    assert got == expected, (got, expected)
    loops = 20_000
    ours = _rate(lambda: compiled.evaluate(lookup), loops)
    theirs = _rate(lambda: eval(code, py_vars), loops)  # noqa: S307
    ratio = theirs / ours
    ok = ours >= TARGET_RATE and ratio <= TARGET_RATIO
    print(f"{name}")
    print(f"  SSIS   {ssis}")
    print(f"  Python {python}")
    print(f"  dtsx compiled : {ours:12,.0f} evaluations/s")
    print(f"  Python eval   : {theirs:12,.0f} evaluations/s")
    print(
        f"  ratio         : {ratio:6.2f}x slower   target >= {TARGET_RATE:,}/s and <= "
        f"{TARGET_RATIO}x: "
        f"{'met' if ok else 'NOT met'}"
    )
    return ok


def main() -> int:
    ok = _case(
        "comparison",
        "@[User::i] < 1000000",
        "i < 1000000",
        {"User::i": value_from_dotnet("Int32", 123)},
        {"i": 123},
    )
    moment = datetime(2026, 11, 28, 3, 4, 5)
    ok &= _case(
        "string building",
        '"file_" + (DT_WSTR, 4) YEAR(@[User::d]) + ".csv"',
        '"file_" + str(d.year)[:4] + ".csv"',
        {"User::d": value_from_dotnet("DateTime", moment)},
        {"d": moment},
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
