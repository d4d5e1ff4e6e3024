"""Benchmark of the balance engine on a generated value chain.

200 processes (10 sources, 20 sinks, 170 transfer processes in a chain of layers, with recycle
loops), 30 elements, 100 periods. Prints the time of each step, process-element-periods per
second, the cost of the first period against each later one (the factorisation is reused), and
the same work done the naive way — one sparse solve per element and period with
scipy.sparse.linalg.spsolve — as the reference to beat. No Python MFA package solves
transfer-coefficient systems with recycle loops itself (flodym and ODYM leave the system equations
to the user's compute()), so the naive scipy loop is the peer here.

The solve and the peer run --repeats times, interleaved (critflow, peer, critflow, …); times are
min / median / max and the speed-up is the ratio of the medians.

    python benchmarks/engine.py [--periods 100] [--elements 30] [--processes 200] [--seed 1]
                                [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla

import critflow
from critflow.engine.assemble import assemble_matrix, assemble_rhs, build_structure
from critflow.engine.balance import solve_flows
from critflow.engine.compile import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved, spread

MIN_PROCESSES = 40
"""The generated chain has 10 sources and 20 sinks; at least 10 units between them."""


def generate(n_processes: int, n_elements: int, n_periods: int, seed: int) -> dict:
    """A layered value chain with recycle loops, as a model-file mapping."""
    rng = np.random.default_rng(seed)
    elements = [f"E{i:02d}" for i in range(1, n_elements)] + ["rest"]
    n_sources, n_sinks = 10, 20
    n_transfer = n_processes - n_sources - n_sinks
    transfer_ids = [f"unit{i:03d}" for i in range(n_transfer)]
    sink_ids = [f"sink{i:02d}" for i in range(n_sinks)]
    processes: list[dict] = [{"id": f"source{i:02d}", "kind": "source"} for i in range(n_sources)]
    flows: list[dict] = []
    for i in range(n_sources):
        composition = rng.dirichlet(np.ones(n_elements))[:-1] * 0.999
        flows.append(
            {
                "id": f"feed{i:02d}",
                "from": f"source{i:02d}",
                "to": transfer_ids[(i * n_transfer) // n_sources],
                "value": {
                    2000: float(rng.uniform(500, 1500)),
                    2000 + n_periods: float(rng.uniform(1500, 3000)),
                },
                "composition": dict(zip(elements[:-1], map(float, composition), strict=True)),
            }
        )
    for u, pid in enumerate(transfer_ids):
        outputs = [(f"{pid}_to_sink", sink_ids[u % n_sinks])]
        if u + 1 < n_transfer:
            outputs.append((f"{pid}_forward", transfer_ids[u + 1]))
        if u >= 5 and u % 4 == 0:  # a recycle loop back up the chain
            outputs.append((f"{pid}_recycle", transfer_ids[u - int(rng.integers(1, 5))]))
        shares = rng.dirichlet(np.ones(len(outputs)) * 2.0, size=n_elements)  # (E, outputs)
        shares[:, 0] = 1.0 - shares[:, 1:].sum(axis=1)  # exact sums
        transfer = {}
        for k, (flow_id, target) in enumerate(outputs):
            transfer[flow_id] = dict(zip(elements, map(float, shares[:, k]), strict=True))
            flows.append({"id": flow_id, "from": pid, "to": target})
        processes.append({"id": pid, "kind": "transfer", "transfer": transfer})
    processes += [{"id": s, "kind": "sink"} for s in sink_ids]
    return {
        "critflow": 1,
        "name": "generated value chain",
        "time": {"start": 2000, "end": 2000 + n_periods - 1},
        "unit": "t/a",
        "elements": elements,
        "processes": processes,
        "flows": flows,
    }


def naive(inputs) -> tuple[np.ndarray, float]:
    """The peer: one spsolve per scenario, element and period (no batching, no reuse)."""
    structure = build_structure(inputs.topology)
    n_s, n_p, n_e, n_f = inputs.given_mass_kg.shape
    out = np.empty((n_s, n_p, n_e, n_f))
    start = time.perf_counter()
    for s in range(n_s):
        for p in range(n_p):
            for e in range(n_e):
                mask = inputs.given_mask[s, e][None, :]
                tau = inputs.transfer_coefficients[s, p, e][None, :]
                matrix = assemble_matrix(structure, tau, mask)
                rhs = assemble_rhs(structure, mask, inputs.given_mass_kg[s, p, e][None, None, :])
                out[s, p, e] = spla.spsolve(matrix, rhs[:, 0])
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=200)
    parser.add_argument("--elements", type=int, default=30)
    parser.add_argument("--periods", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each side")
    args = parser.parse_args()
    if args.processes < MIN_PROCESSES:
        parser.error(f"--processes must be at least {MIN_PROCESSES} (10 sources, 20 sinks, units)")
    header("balance engine: one sparse system per period, all elements at once", ["scipy", "numpy"])

    data = generate(args.processes, args.elements, args.periods, args.seed)
    start = time.perf_counter()
    model = critflow.model_from_dict(data)
    t_load = time.perf_counter() - start
    start = time.perf_counter()
    inputs = evaluate(model)
    t_eval = time.perf_counter() - start
    timings: dict[str, float] = {}
    start = time.perf_counter()
    mass = solve_flows(inputs, timings)
    t_solve = time.perf_counter() - start

    # first period alone (assemble + factorise + solve) against all periods
    one = evaluate(critflow.model_from_dict({**data, "time": {"start": 2000, "end": 2000}}))
    repeats = 5
    start = time.perf_counter()
    for _ in range(repeats):
        solve_flows(one)
    t_first = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        solve_flows(inputs)
    t_all = (time.perf_counter() - start) / repeats
    per_later = (t_all - t_first) / (args.periods - 1)

    topo = inputs.topology
    n_pep = len(topo.process_ids) * topo.n_elements * inputs.periods.size
    results = critflow.FlowResults(inputs, mass)
    print(
        f"model: {len(topo.process_ids)} processes, {topo.n_flows} flows, {topo.n_elements} elements, "
        f"{inputs.periods.size} periods"
    )
    print(f"load + check       {t_load * 1e3:8.1f} ms")
    print(f"evaluate           {t_eval * 1e3:8.1f} ms")
    print(
        f"solve              {t_solve * 1e3:8.1f} ms  (assemble {timings['assemble'] * 1e3:.1f}, "
        f"factorise {timings['factorise'] * 1e3:.1f}, triangular solves {timings['solve'] * 1e3:.1f})"
    )
    print(f"load+evaluate+solve{(t_load + t_eval + t_solve):8.3f} s")
    print(f"throughput         {n_pep / t_solve:,.0f} process-element-periods per second (solve)")
    print(
        f"first period       {t_first * 1e3:8.2f} ms   each later period {per_later * 1e3:8.3f} ms   "
        f"ratio {t_first / per_later:,.1f}x"
    )
    print(f"largest relative balance residual {results.max_relative_residual():.1e}")

    def ours() -> float:
        start = time.perf_counter()
        solve_flows(inputs)
        return time.perf_counter() - start

    found = interleaved({"critflow": ours, "peer": lambda: naive(inputs)[1]}, args.repeats)
    reference, _ = naive(inputs)
    agreement = np.abs(reference - mass).max() / np.abs(mass).max()
    speedup = statistics.median(found["peer"]) / statistics.median(found["critflow"])
    print(f"solve, min / median / max over {args.repeats} interleaved runs:")
    print(f"  critflow (batched, factorisation reused) {spread(found['critflow'], 1e3, 1)} ms")
    print(f"  peer (scipy spsolve per element and period) {spread(found['peer'], 1e3, 1)} ms")
    print(
        f"critflow is {speedup:,.1f}x faster (medians); results agree to {agreement:.1e} (relative)"
    )


if __name__ == "__main__":
    main()
