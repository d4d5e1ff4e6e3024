"""Start-up as users meet it: the whole command, a fresh interpreter each time.

Runs, interleaved, ``critflow --help``, ``critflow --version``, ``critflow validate`` of the shipped
battery example and the yardstick ``python -c "import typer, rich"`` (issue 19: ``--help`` within
3x of the yardstick, ``validate`` within 1 s on 2 cores), and prints min / median / max wall time
and peak memory (ru_maxrss of the child).

    .venv/bin/python benchmarks/startup.py [--repeats 15] [--python .venv/bin/python]

Point ``--python`` at the interpreter of the install to measure (the `make demo` install has no
test extras; the `make test` one imports dask through pint when pint is used). Bytecode caches are
written on the warm-up run, as they are for an installed package.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved, spread

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "battery_recycling_hydromet.yaml"


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak MiB (the child's own ru_maxrss) of one run of ``command``."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    python = args.python
    critflow = [python, "-m", "critflow"]
    commands = {
        "import typer, rich (yardstick)": [python, "-c", "import typer, rich"],
        "critflow --help": [*critflow, "--help"],
        "critflow --version": [*critflow, "--version"],
        "critflow validate (battery example)": [*critflow, "validate", str(EXAMPLE)],
    }
    header("Start-up of the critflow command (fresh interpreter per run)", ["typer", "rich"])
    print(f"python: {python}")
    for command in commands.values():  # warm-up: bytecode caches, pint's cache, the disk cache
        timed(command)
    found = interleaved(
        {name: (lambda c=c: timed(c)) for name, c in commands.items()}, args.repeats
    )
    print(f"{'command':38} {'wall s (min / median / max)':30} peak MiB")
    for name, runs in found.items():
        seconds = [s for s, _ in runs]
        print(f"{name:38} {spread(seconds, digits=3):30} {max(m for _, m in runs):.0f}")
    median = {name: statistics.median(s for s, _ in runs) for name, runs in found.items()}
    yardstick = median["import typer, rich (yardstick)"]
    print(
        f"--help / yardstick: {median['critflow --help'] / yardstick:.2f}x (target 3x); "
        f"validate median {median['critflow validate (battery example)']:.2f} s (target 1 s)"
    )


if __name__ == "__main__":
    main()
