"""Benchmark of the whole `critflow run` command, as a user meets it.

The engine benchmark's generated value chain (benchmarks/engine.py: layered processes with recycle
loops, 30 elements, 100 periods) at 50, 100, 200 and 400 processes is written to a model file;
each size is run as `critflow run MODEL --out DIR` and `critflow validate MODEL` in fresh
processes, interleaved (run 50, validate 50, run 100, …, then the next repetition in rotated
order). Prints for every size the wall time and peak resident memory (the child's ru_maxrss from
wait4; Linux counts the benchmark's own ~60 MB before exec into it, a floor only) as
min / median / max, the median CPU time (user + system of all the child's threads, from wait4),
the ratios run / validate of the medians of wall and CPU time (on a machine busy with other work
the wall times follow the load; the CPU times much less), and the growth exponent b of run time
≈ a·processesᵇ fitted on the medians (least squares in log-log).

    python benchmarks/run.py [--sizes 50,100,200,400] [--repeats 3] [--excel summary] [--phases]

``--phases`` also times the parts of one run of the largest size in a fresh process, the full
tables written on the caller's thread (in `critflow run` they go beside the rest on a second one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, interleaved, spread
from engine import MIN_PROCESSES, generate


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak resident bytes and CPU seconds (user + system, every thread) of
    ``command`` run to completion."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{error}")
    return seconds, usage.ru_maxrss * 1024.0, usage.ru_utime + usage.ru_stime  # Linux: kB


PHASES = """
import sys, time
from pathlib import Path
from critflow.cli import one_blas_thread
one_blas_thread()  # as the command does
start = time.perf_counter()
import openpyxl, pandas, pyarrow
from critflow.analysis import Run
from critflow.engine import solve
from critflow.model.load import load_model
from critflow.report import html, sankey, tables
from critflow.report.content import RunInfo
parts = {"imports": time.perf_counter() - start}
def part(name, work):
    begin = time.perf_counter()
    result = work()
    parts[name] = time.perf_counter() - begin
    return result
model = part("read and check the model", lambda: load_model(sys.argv[1]))
results = part("solve", lambda: solve(model))
run, out = Run(model, results), Path(sys.argv[2])
part("flows and balance, Parquet and CSV", lambda: tables.write_bulk_tables(results, out))
found = part("indicator tables", lambda: tables.indicator_tables(run))
workbook = out / "results.xlsx"
shown = tables.summary_period(results.inputs.periods, None)
part("summary workbook", lambda: tables._summary_workbook(run, found, shown, workbook))
info = RunInfo(model_file=sys.argv[1], sha256="-", ran_at="-", version="-")
part("report (fate shares included)", lambda: html.write_report(run, info, out / "report.html"))
part("of it: fate shares", lambda: sankey.fate_arrays(results, model.spec))
for name, seconds in parts.items():
    print(f"  {name:40} {seconds:6.2f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="process counts")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each case")
    parser.add_argument("--elements", type=int, default=30)
    parser.add_argument("--periods", type=int, default=100)
    parser.add_argument("--excel", default="summary", help="summary, full or none")
    parser.add_argument("--phases", action="store_true", help="time the parts of the largest run")
    args = parser.parse_args()
    if min(int(n) for n in args.sizes.split(",")) < MIN_PROCESSES:
        parser.error(f"--sizes: every process count must be at least {MIN_PROCESSES}")
    sizes = [int(s) for s in args.sizes.split(",")]

    header(
        "critflow run end to end (subprocess: wall time, peak RSS)",
        ["pandas", "pyarrow", "openpyxl"],
    )
    print(
        f"model: benchmarks/engine.py's value chain, {args.elements} elements × {args.periods} "
        f"periods; --excel {args.excel}; {args.repeats} interleaved repetitions"
    )
    work = Path(tempfile.mkdtemp(prefix="critflow-bench-run-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    os.environ.clear()
    os.environ.update(env)
    cli = [sys.executable, "-m", "critflow"]
    try:
        cases = {}
        for n in sizes:
            model = work / f"chain{n}.json"
            model.write_text(json.dumps(generate(n, args.elements, args.periods, 1)))
            out = work / f"out{n}"
            cases[("run", n)] = lambda m=model, o=out: timed(
                [*cli, "run", str(m), "--out", str(o), "--excel", args.excel]
            )
            cases[("validate", n)] = lambda m=model: timed([*cli, "validate", str(m)])
        timed([*cli, "validate", str(work / f"chain{sizes[0]}.json")])  # warm the caches
        found = interleaved(cases, args.repeats)
        if args.phases:
            largest = work / f"chain{max(sizes)}.json"
            print(f"\nparts of one run of {max(sizes)} processes (fresh process, seconds):")
            subprocess.run(
                [sys.executable, "-c", PHASES, str(largest), str(work / "phases")], check=True
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{'processes':>9}  {'command':8}  {'wall s (min / median / max)':>28}  "
        f"{'peak MB (min / median / max)':>30}  {'CPU s (median)':>14}  run/validate "
        "(wall, CPU)"
    )
    medians = []
    for n in sizes:
        run_s = statistics.median(s for s, _, _ in found[("run", n)])
        validate_s = statistics.median(s for s, _, _ in found[("validate", n)])
        run_cpu = statistics.median(c for _, _, c in found[("run", n)])
        validate_cpu = statistics.median(c for _, _, c in found[("validate", n)])
        medians.append(run_s)
        for command in ("run", "validate"):
            rows = found[(command, n)]
            ratio = (
                f"{run_s / validate_s:6.2f}x, {run_cpu / validate_cpu:.2f}x"
                if command == "run"
                else ""
            )
            print(
                f"{n:9d}  {command:8}  {spread([s for s, _, _ in rows]):>28}  "
                f"{spread([b for _, b, _ in rows], 2**-20, 0):>30}  "
                f"{statistics.median(c for _, _, c in rows):14.2f}  {ratio}"
            )
    if len(sizes) > 1:
        slope, _ = np.polyfit(np.log(sizes), np.log(medians), 1)
        print(f"\nrun time grows as processes^{slope:.2f} (least squares on the medians, log-log)")


if __name__ == "__main__":
    main()
