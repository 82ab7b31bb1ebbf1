"""Start-up cost of the ``dtsx`` command: ``dtsx run samples/hello-mail.dtsx --dev-smtp DIR``.

Measures, in fresh processes and interleaved within each repetition so that a busy machine slows
all of them alike:

* hello-mail: the README's first command, run by the installed ``dtsx`` console script (or
  ``python -c 'from dtsx.engine.cli import main; main()'`` where there is none), storing its
  message in a temporary folder;
* libraries: ``python -c 'import networkx, pydantic, lxml.etree, click'``, the import of the
  libraries dtsx is built on - what the command would cost if dtsx itself cost nothing;
* python: ``python -c pass``, the interpreter alone.

Prints the median wall time of each (after one untimed warm-up round) and the ratios; the
target is hello-mail <= 0.3 s.

    python bench/startup.py [--reps 15]

Not a test: it prints figures and exits 0; it exits 1 if hello-mail did not run successfully.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "samples" / "hello-mail.dtsx"
TARGET_S = 0.3
LIBRARIES = "import networkx, pydantic, lxml.etree, click"


def _dtsx_command() -> list[str]:
    """The console script beside this interpreter, as a user runs it; else the same entry point."""
    script = Path(sys.executable).with_name("dtsx")
    if script.is_file():
        return [str(script)]
    found = shutil.which("dtsx")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from dtsx.engine.cli import main; main()"]


def _wall(argv: list[str]) -> float:
    """Seconds from start to exit of one process; a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=15, help="timed repetitions (default 15)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dtsx-startup-") as outbox:
        contenders = {
            "hello-mail": [*_dtsx_command(), "run", str(PACKAGE), "--dev-smtp", outbox],
            "libraries": [sys.executable, "-c", LIBRARIES],
            "python": [sys.executable, "-c", "pass"],
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for rep in range(args.reps + 1):
            for name, command in contenders.items():
                elapsed = _wall(command)
                if rep:  # the first round warms the file cache and is not counted
                    times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"start-up, median of {args.reps} runs (wall seconds):")
    for name, command in contenders.items():
        shown = " ".join([Path(command[0]).name, *command[1:]])
        print(f"  {name:<11} {median[name]:6.3f} s   {shown}")
    verdict = "met" if median["hello-mail"] <= TARGET_S else "NOT met"
    print(
        f"hello-mail / libraries: {median['hello-mail'] / median['libraries']:.2f}x; "
        f"hello-mail - python: {median['hello-mail'] - median['python']:.3f} s; "
        f"target hello-mail <= {TARGET_S} s: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
