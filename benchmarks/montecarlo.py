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
the indicators) per sample, timed on a subset and scaled to the full count.
"""

from __future__ import annotations

import argparse
import json
import resource
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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        chunk = args.chunk or (1000 if args.case == "battery" else 100)
        print(json.dumps(run(args.case, args.mode, args.samples, chunk)))
        return
    cases = list(CASES) if args.case == "all" else [args.case]
    modes = ["process", "cluster", "loop"] if args.mode == "all" else [args.mode]
    for case in cases:
        samples = args.samples or CASES[case]
        found = {}
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
            found[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            note = (
                " (extrapolated from {} samples)".format(found[mode]["measured_samples"])
                if mode == "loop"
                else ""
            )
            print(
                f"{case:10s} {mode:8s} {samples:6d} samples  {found[mode]['seconds']:8.2f} s  "
                f"peak {found[mode]['peak_mb']:7.0f} MB{note}",
                flush=True,
            )
        if "loop" in found:
            for mode in ("process", "cluster"):
                if mode in found:
                    print(
                        f"{case:10s} speed-up of {mode} over the Python loop: "
                        f"{found['loop']['seconds'] / found[mode]['seconds']:.1f}x"
                    )


if __name__ == "__main__":
    main()
