"""Monte Carlo benchmark: batched samples against a Python loop of single solves, in-process and on a
2-worker local Dask cluster, with peak memory.

    python benchmarks/montecarlo.py                 # both cases, every mode
    python benchmarks/montecarlo.py --case battery --samples 10000 --mode process

Cases: ``battery`` — the shipped example (examples/battery_recycling_hydromet.yaml, 4 scenarios,
6 years, 10 elements, 4 uncertain inputs), 10,000 samples, flows and indicators; ``generated`` — the
200-process, 30-element value chain of benchmarks/engine.py (5 years) with every feed and every
tenth unit's forward share of E01 uncertain, 1,000 samples. Each case and mode runs in a fresh
process so that its peak memory (ru_maxrss; for the cluster, the largest worker's) is its own.
The peer is the same work as a Python loop: one evaluation, one solve (and, for the battery case,
the indicators) per sample, timed on a subset and scaled to the full count. With --reps R the modes
run R times interleaved (process, cluster, loop, process, …) and each prints min / median / max.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

CASES = {"battery": 10_000, "generated": 1_000}


def load(case: str):
    import critflow

    if case == "battery":
        return critflow.load_model(ROOT / "examples" / "battery_recycling_hydromet.yaml")
    from engine import generate  # benchmarks/engine.py

    spec = generate(200, 30, 5, seed=1)
    for flow in spec["flows"]:
        if "value" in flow:  # feeds: ±5 % (normal)
            v = float(np.mean(list(flow["value"].values())))
            flow["value"] = {"value": v, "distribution": "normal", "sd": 0.05 * v}
    for process in spec["processes"][10::10]:
        for out, shares in process.get("transfer", {}).items():
            if out.endswith("_forward"):
                s = shares["E01"]
                shares["E01"] = {
                    "value": s,
                    "distribution": "triangular",
                    "low": 0.9 * s,
                    "high": min(1.0, 1.1 * s),
                }
    return critflow.model_from_dict(spec)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(case: str, mode: str, samples: int, chunk: int) -> dict:
    from critflow.engine.balance import solve_flows
    from critflow.engine.cluster import dask_client
    from critflow.engine.compile import evaluate
    from critflow.engine.montecarlo import monte_carlo
    from critflow.engine.results import FlowResults
    from critflow.indicators.sampled import indicator_samples
    from critflow.model.uncertainty import Draws, Sampler, collect

    model = load(case)
    extras = indicator_samples if case == "battery" else None
    if mode == "loop":
        inputs = tuple(collect(model.spec))
        subset = min(samples, 200 if case == "battery" else 20)
        draws = Sampler(inputs, 1).draws(0, subset, subset)
        start = time.perf_counter()
        for i in range(subset):  # the same work per sample: evaluate, solve, indicators
            evaluated = evaluate(model, None, Draws(draws.values[i : i + 1], draws.column_of))
            mass = solve_flows(evaluated)
            if extras is not None:
                extras(model, FlowResults(evaluated, mass))
        per_sample = (time.perf_counter() - start) / subset
        return {"seconds": per_sample * samples, "measured_samples": subset, "peak_mb": peak_mb()}
    start = time.perf_counter()
    with dask_client(workers=2 if mode == "cluster" else None) as client:
        result = monte_carlo(model, samples, seed=1, chunk_size=chunk, extras=extras, client=client)
        worker_peak = 0.0
        if client is not None:
            worker_peak = max(client.run(peak_mb).values())
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mb": max(peak_mb(), worker_peak),
        "client_peak_mb": peak_mb(),
        "quantities": sum(int(np.prod(s)) for s in result.shapes.values()),
        "inputs": len(result.inputs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--mode", choices=["process", "cluster", "loop", "all"], default="all")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--reps", type=int, default=1, help="interleaved runs of every mode")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        chunk = args.chunk or (1000 if args.case == "battery" else 100)
        print(json.dumps(run(args.case, args.mode, args.samples, chunk)))
        return
    cases = list(CASES) if args.case == "all" else [args.case]
    modes = ["process", "cluster", "loop"] if args.mode == "all" else [args.mode]
    print(f"machine: {machine()}")
    print(f"critflow {version('critflow')}, dask {version('dask')}, NumPy {np.__version__}")
    for case in cases:
        samples = args.samples or CASES[case]
        found: dict[str, list[dict]] = {mode: [] for mode in modes}
        for _ in range(args.reps):
            for mode in modes:
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    "--case",
                    case,
                    "--mode",
                    mode,
                    "--samples",
                    str(samples),
                ]
                if args.chunk:
                    command += ["--chunk", str(args.chunk)]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                found[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for mode, runs in found.items():
            seconds = sorted(r["seconds"] for r in runs)
            note = (
                " (extrapolated from {} samples)".format(runs[0]["measured_samples"])
                if mode == "loop"
                else ""
            )
            print(
                f"{case:10s} {mode:8s} {samples:6d} samples  min / median / max over "
                f"{len(runs)} interleaved runs {seconds[0]:.2f} / {statistics.median(seconds):.2f}"
                f" / {seconds[-1]:.2f} s  peak {max(r['peak_mb'] for r in runs):7.0f} MB{note}",
                flush=True,
            )
        if "loop" in found:
            for mode in ("process", "cluster"):
                if mode in found:
                    loop = statistics.median(r["seconds"] for r in found["loop"])
                    ours = statistics.median(r["seconds"] for r in found[mode])
                    print(f"{case:10s} speed-up of {mode} over the Python loop: {loop / ours:.1f}x")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} CPUs{load}; Python {platform.python_version()}"


def version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(package)
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    main()
