"""Start-up cost of the ``dtsx`` command: ``dtsx run samples/hello-mail.dtsx --dev-smtp DIR``.

Measures, in fresh processes and interleaved within each repetition so that a busy machine slows
all of them alike:

* hello-mail: the README's first command, run by the installed ``dtsx`` console script (or
  ``python -c 'from dtsx.engine.cli import main; main()'`` where there is none), storing its
  message in a temporary folder;
* libraries: ``python -c 'import networkx, pydantic, lxml.etree, click'``, the import of the
  libraries dtsx is built on - what the command would cost if dtsx itself cost nothing;
* python: ``python -c pass``, the interpreter alone.

Prints the median wall and CPU time of each (after one untimed warm-up round) and the ratios;
the target is hello-mail <= 0.3 s wall. On a machine shared with other work, wall time grows
with the load; the CPU time and the ratio to the libraries' import move much less.

    python bench/startup.py [--reps 15]

Not a test: it prints figures and exits 0; it exits 1 if hello-mail did not run successfully.
"""

from __future__ import annotations

import argparse
import os
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


# As installed: with bytecode caches (the warm-up round writes any that are missing), whatever
# PYTHONDONTWRITEBYTECODE the calling shell has; without one, every run would compile from source.
_ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# The CLI of another checkout: an editable install's import hook would still find this one, so it
# is taken off before the other checkout's folder goes first on sys.path. Entry points keep their
# module names, so the plugins come from that checkout too.
_OTHER_CHECKOUT = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__\n"
    "                    and 'editable' not in getattr(f, '__module__', '')]\n"
    "sys.path.insert(0, {path!r})\n"
    "from dtsx.engine.cli import main\n"
    "main()\n"
)


def _dtsx_command() -> list[str]:
    """The console script beside this interpreter, as a user runs it; else the same entry point."""
    script = Path(sys.executable).with_name("dtsx")
    if script.is_file():
        return [str(script)]
    found = shutil.which("dtsx")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from dtsx.engine.cli import main; main()"]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process from start to exit; a failure stops the
    benchmark. CPU time (user + system, from wait4) is what the process itself spent, so it moves
    less than wall time when other work shares the machine."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if child.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {child.returncode}: {errors.decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=15, help="timed repetitions (default 15)")
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also time hello-mail with the dtsx package of another checkout (e.g. `git archive "
        "OLD | tar -x -C DIR`), to quote before and after in one run",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dtsx-startup-") as outbox:
        contenders = {
            "hello-mail": [*_dtsx_command(), "run", str(PACKAGE), "--dev-smtp", outbox],
            "libraries": [sys.executable, "-c", LIBRARIES],
            "python": [sys.executable, "-c", "pass"],
        }
        if args.compare:
            contenders["compared"] = [
                sys.executable,
                "-c",
                _OTHER_CHECKOUT.format(path=str(Path(args.compare).resolve())),
                *contenders["hello-mail"][-4:],
            ]
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for rep in range(args.reps + 1):
            for name, command in contenders.items():
                elapsed, spent = _timed(command, _ENVIRONMENT)
                if rep:  # the first round warms the caches and is not counted
                    wall[name].append(elapsed)
                    cpu[name].append(spent)
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"start-up, median of {args.reps} runs (seconds):")
    print(f"  {'':<11} {'wall':>6}   {'cpu':>6}")
    for name, command in contenders.items():
        shown = " ".join([Path(command[0]).name, *command[1:]])
        if name == "compared":
            shown = f"dtsx of {args.compare}: {' '.join(command[3:])}"
        print(f"  {name:<11} {median[name]:6.3f}   {median_cpu[name]:6.3f}   {shown}")
    if args.compare:
        print(
            f"hello-mail / compared ({args.compare}): "
            f"{median['hello-mail'] / median['compared']:.2f}x wall"
        )
    verdict = "met" if median["hello-mail"] <= TARGET_S else "NOT met"
    print(
        f"hello-mail / libraries: {median['hello-mail'] / median['libraries']:.2f}x wall, "
        f"{median_cpu['hello-mail'] / median_cpu['libraries']:.2f}x cpu; "
        f"target hello-mail <= {TARGET_S} s wall: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
