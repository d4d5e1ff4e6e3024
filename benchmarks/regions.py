"""A regional system with products in use: critflow (a model file with dimensions) against the
same system written in flodym as its documentation intends (an MFASystem subclass with compute()).

The system, by default 27 regions × 20 products × 10 elements × 100 years: products enter use in
each region (a logistic inflow ±10 %, fixed seed), each product with its element composition; they
leave by a normal lifetime (mean 5…40 years by product, std 0.3 · mean); the end-of-life products of
a region are collected together and each element is recovered with its own share (0.50…0.95) or
lost. critflow reads the model from a mapping (``model_from_dict``: schema, expansion of the
dimensions into 27 × 20 stock processes, checks) and solves it; flodym builds its MFASystem from
numpy arrays and computes. Both start from the same numpy inputs.

Method: --repeat runs per side, interleaved; time = wall clock, min / median / max; speed-up = ratio
of the medians. Peak memory = tracemalloc peak of one run in a fresh process per side. Agreement =
largest |critflow − flodym| / max |flodym| of the recovered element mass by year, region and
element; the run exits with status 1 above 1e-9.

    python benchmarks/regions.py [--regions 27] [--products 20] [--elements 10] [--years 100]
                                 [--repeat 3]

With --samples N it runs a Monte Carlo of the same system instead (critflow only: flodym has no
sampling): the recovery of the first element drawn per region and the products' mean lifetimes
scaled by one drawn factor (``with_distributions``), N samples in chunks of --chunk-size, in this
process, on a local Dask cluster of --workers K processes, or on a running scheduler
(--scheduler tcp://host:8786). It prints the wall time of the whole run (the central solve and the
check of the drawn shares included), samples/s, and the mean ± sd of the recovered first element
in the last year summed over regions. Every chunk keeps statistics of every flow and stock (a
512-bin histogram each: about 2 kB per flow or stock × element × year), so the full-size system
needs some GB; fewer --years or --elements keep it small.

    python benchmarks/regions.py --samples 200 [--chunk-size 20] [--workers 2 | --scheduler ADDR]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header


def inputs(n_r: int, n_p: int, n_e: int, n_t: int, seed: int = 1) -> dict:
    """The system's numbers: inflow (t, r, p) goods, composition (p, e), lifetime by product,
    recovery by element (the last element is the remainder 'rest')."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_t, dtype=float)
    inflow = (1000 / (1 + np.exp(-(t - 0.4 * n_t) / 15)))[:, None, None] * (
        1 + 0.1 * rng.uniform(-1, 1, size=(n_t, n_r, n_p))
    )
    fractions = rng.uniform(0.001, 0.05, size=(n_p, n_e - 1))
    composition = np.concatenate([fractions, 1 - fractions.sum(axis=1, keepdims=True)], axis=1)
    return {
        "inflow": inflow,
        "composition": composition,
        "mean": np.linspace(5.0, 40.0, n_p),
        "recovery": np.linspace(0.5, 0.95, n_e),
        "years": list(range(2000, 2000 + n_t)),
        "regions": [f"R{i:02d}" for i in range(n_r)],
        "products": [f"P{i:02d}" for i in range(n_p)],
        "elements": [f"E{i}" for i in range(n_e - 1)] + ["rest"],
    }


def critflow_model(data: dict) -> dict:
    """The system as a critflow model file (a mapping, as YAML would give it)."""
    years, regions, products, elements = (
        data["years"],
        data["regions"],
        data["products"],
        data["elements"],
    )
    mean, recovery = data["mean"], data["recovery"]
    inflow = {
        r: {
            "product": {
                p: {y: float(data["inflow"][k, i, j]) for k, y in enumerate(years)}
                for j, p in enumerate(products)
            }
        }
        for i, r in enumerate(regions)
    }
    composition = {
        e: {"product": {p: float(data["composition"][j, m]) for j, p in enumerate(products)}}
        for m, e in enumerate(elements[:-1])
    }
    return {
        "critflow": 1,
        "name": "regions benchmark",
        "time": {"start": years[0], "end": years[-1]},
        "elements": elements,
        "dimensions": {"region": regions, "product": products},
        "processes": [
            {"id": "sales", "kind": "source", "over": ["region", "product"]},
            {
                "id": "use",
                "kind": "stock",
                "over": ["region", "product"],
                "lifetime": {
                    "distribution": "normal",
                    "mean": {"product": {p: float(m) for p, m in zip(products, mean, strict=True)}},
                    "std": {
                        "product": {p: float(0.3 * m) for p, m in zip(products, mean, strict=True)}
                    },
                },
            },
            {
                "id": "collection",
                "kind": "transfer",
                "over": ["region"],
                "transfer": {
                    "recovered": {e: float(x) for e, x in zip(elements, recovery, strict=True)},
                    "lost": {e: float(1 - x) for e, x in zip(elements, recovery, strict=True)},
                },
            },
            {"id": "recycling", "kind": "sink", "over": ["region"]},
            {"id": "landfill", "kind": "sink"},
        ],
        "flows": [
            {
                "id": "inflow",
                "from": "sales",
                "to": "use",
                "value": {"region": inflow},
                "composition": composition,
            },
            {"id": "end_of_life", "from": "use", "to": "collection"},
            {"id": "recovered", "from": "collection", "to": "recycling"},
            {"id": "lost", "from": "collection", "to": "landfill"},
        ],
    }


def with_distributions(model: dict, spread: float = 0.1) -> dict:
    """The model with uncertain inputs for a Monte Carlo: the recovery of the first element by
    the collection, drawn independently in each region (triangular, ±``spread`` of its value,
    capped at 1; the lost share absorbs the difference), and the mean lifetime of every product
    scaled by one drawn factor ``lifetime_factor`` (triangular 1 ± ``spread``)."""
    model = copy.deepcopy(model)
    model["parameters"] = {
        "lifetime_factor": {
            "value": 1.0,
            "distribution": "triangular",
            "low": 1.0 - spread,
            "high": 1.0 + spread,
        }
    }
    by_id = {p["id"]: p for p in model["processes"]}
    lifetime = by_id["use"]["lifetime"]
    lifetime["mean"] = {
        "product": {p: f"{m!r} * lifetime_factor" for p, m in lifetime["mean"]["product"].items()}
    }
    recovered = by_id["collection"]["transfer"]["recovered"]
    first = model["elements"][0]
    x = recovered[first]
    recovered[first] = {
        "region": {
            r: {
                "value": x,
                "distribution": "triangular",
                "low": x * (1 - spread),
                "high": min(x * (1 + spread), 1.0),
            }
            for r in model["dimensions"]["region"]
        }
    }
    return model


def _warm_monte_carlo() -> None:
    import scipy.stats  # noqa: F401

    import critflow.engine.montecarlo
    import critflow.engine.stock_solve  # noqa: F401


def monte_carlo_run(
    data: dict, samples: int, chunk_size: int, workers: int | None, scheduler: str | None
) -> int:
    """Monte Carlo of the system with ``with_distributions``; prints samples/s."""
    from critflow.engine.cluster import dask_client
    from critflow.engine.montecarlo import monte_carlo
    from critflow.model.load import model_from_dict

    model = model_from_dict(with_distributions(critflow_model(data)))
    where = (
        f"scheduler {scheduler}"
        if scheduler
        else f"local Dask cluster of {workers} workers"
        if workers
        else "in-process"
    )
    _warm_monte_carlo()  # imports (scipy.stats for the draws) are not timed, here or on workers
    with dask_client(workers, scheduler) as client:
        if client is not None:
            client.run(_warm_monte_carlo)
        start = time.perf_counter()
        result = monte_carlo(model, samples, seed=1, chunk_size=chunk_size, client=client)
        seconds = time.perf_counter() - start
    recovered = [i for i, f in enumerate(model.spec.flows) if f.id.startswith("recovered")]
    sd = result.sd("flows")[0, -1, 0, recovered]  # by region (drawn independently)
    mean = result.mean("flows")[0, -1, 0, recovered].sum()
    print(
        f"Monte Carlo: {samples} samples in chunks of {chunk_size}, {where}: {seconds:.2f} s, "
        f"{samples / seconds:.1f} samples/s"
    )
    print(
        f"recovered {data['elements'][0]} in {data['years'][-1]} (sum over regions): mean "
        f"{mean:.6g}, sd by region {sd.min():.3g}…{sd.max():.3g}; "
        f"stocks: {result.shapes['stocks'][-1]} stock processes"
    )
    return 0


def run_critflow(data: dict) -> np.ndarray:
    """Recovered element mass (t, r, e) from critflow."""
    from critflow.engine import solve
    from critflow.model.load import model_from_dict

    results = solve(model_from_dict(critflow_model(data)))
    ds = results.to_dataset().flow_mass.sel(scenario="baseline")
    recovered = ds.isel(flow=(ds.flow_id == "recovered").values)
    order = [list(recovered.region.values).index(r) for r in data["regions"]]
    return np.asarray(recovered.values)[:, :, order].transpose(0, 2, 1)


def run_flodym(data: dict) -> np.ndarray:
    """Recovered element mass (t, r, e) from flodym, written as its documentation shows: a
    definition of dimensions, processes, flows and the stock, and a compute()."""
    import flodym as fd

    dims = fd.DimensionSet(
        dim_list=[
            fd.Dimension(name="time", letter="t", items=data["years"]),
            fd.Dimension(name="region", letter="r", items=data["regions"]),
            fd.Dimension(name="product", letter="p", items=data["products"]),
            fd.Dimension(name="element", letter="e", items=data["elements"]),
        ]
    )
    processes = fd.make_processes(["sysenv", "use", "collection"])
    flows = fd.make_empty_flows(
        processes=processes,
        flow_definitions=[
            fd.FlowDefinition(
                from_process="sysenv", to_process="use", dim_letters=("t", "r", "p", "e")
            ),
            fd.FlowDefinition(
                from_process="use", to_process="collection", dim_letters=("t", "r", "e")
            ),
            fd.FlowDefinition(
                from_process="collection",
                to_process="sysenv",
                dim_letters=("t", "r", "e"),
                name_override="recovered",
            ),
        ],
        dims=dims,
    )
    stocks = fd.make_empty_stocks(
        stock_definitions=[
            fd.StockDefinition(
                name="in_use",
                process="use",
                dim_letters=("t", "r", "p", "e"),
                subclass=fd.InflowDrivenDSM,
                lifetime_model_class=fd.NormalLifetime,
            )
        ],
        processes=processes,
        dims=dims,
    )
    parameters = {
        "inflow": fd.Parameter(dims=dims[("t", "r", "p")], values=data["inflow"]),
        "composition": fd.Parameter(dims=dims[("p", "e")], values=data["composition"]),
        "mean": fd.Parameter(dims=dims[("p",)], values=data["mean"]),
        "recovery": fd.Parameter(dims=dims[("e",)], values=data["recovery"]),
    }

    class RegionsMFA(fd.MFASystem):
        def compute(self) -> None:
            p = self.parameters
            self.flows["sysenv => use"][...] = p["inflow"] * p["composition"]
            stock = self.stocks["in_use"]
            stock.inflow[...] = self.flows["sysenv => use"]
            stock.lifetime_model.mean = p["mean"]
            stock.lifetime_model.std = 0.3 * p["mean"]
            stock.compute()
            self.flows["use => collection"][...] = stock.outflow
            self.flows["recovered"][...] = self.flows["use => collection"] * p["recovery"]

    mfa = RegionsMFA(
        dims=dims, parameters=parameters, processes=processes, flows=flows, stocks=stocks
    )
    mfa.compute()
    return mfa.flows["recovered"].values


SIDES = {"critflow": run_critflow, "flodym": run_flodym}


def _warm(side: str) -> None:
    """Import what a side uses, so that neither time nor memory counts imports."""
    if side == "critflow":
        import pyarrow  # noqa: F401
        import xarray  # noqa: F401

        import critflow.engine
        import critflow.model.load  # noqa: F401
    else:
        import flodym  # noqa: F401


def _peak_here(side: str, sizes: list[int]) -> None:
    data = inputs(*sizes)
    _warm(side)
    tracemalloc.start()
    SIDES[side](data)
    print(tracemalloc.get_traced_memory()[1] / 1e6)


def peak_mb(side: str, sizes: list[int]) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--peak", side, *map(str, sizes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=27)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--elements", type=int, default=10)
    parser.add_argument("--years", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=int, help="run a Monte Carlo of N samples instead")
    parser.add_argument("--chunk-size", type=int, default=20, help="samples per chunk")
    parser.add_argument("--workers", type=int, help="local Dask cluster of K worker processes")
    parser.add_argument("--scheduler", help="a running Dask scheduler, tcp://host:8786")
    parser.add_argument("--peak", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        _peak_here(args.peak[0], [int(x) for x in args.peak[1:]])
        return 0
    sizes = [args.regions, args.products, args.elements, args.years]
    if args.samples is not None or args.workers or args.scheduler:
        if args.samples is None:
            parser.error("--workers and --scheduler run a Monte Carlo: give --samples N too")
        header(
            f"Regions benchmark, Monte Carlo: {sizes[0]} regions × {sizes[1]} products × "
            f"{sizes[2]} elements × {sizes[3]} years",
            ["numpy", "scipy", "distributed"],
        )
        from critflow.errors import CritflowError

        try:
            return monte_carlo_run(
                inputs(*sizes), args.samples, args.chunk_size, args.workers, args.scheduler
            )
        except CritflowError as exc:
            print(exc, file=sys.stderr)
            return 2
    header(
        f"Regions benchmark: {sizes[0]} regions × {sizes[1]} products × {sizes[2]} elements × "
        f"{sizes[3]} years, critflow model file vs flodym MFASystem",
        ["flodym", "numpy", "scipy"],
    )
    data = inputs(*sizes)
    for side in SIDES:
        _warm(side)
    times: dict[str, list[float]] = {"critflow": [], "flodym": []}
    results: dict[str, np.ndarray] = {}
    for i in range(args.repeat):
        for side in ["critflow", "flodym"] if i % 2 == 0 else ["flodym", "critflow"]:
            start = time.perf_counter()
            results[side] = SIDES[side](data)
            times[side].append(time.perf_counter() - start)
    for side, seconds in times.items():
        print(
            f"{side:9s} {min(seconds):7.2f} / {statistics.median(seconds):7.2f} / "
            f"{max(seconds):7.2f} s (min / median / max), peak {peak_mb(side, sizes):8.1f} MB"
        )
    ratio = statistics.median(times["flodym"]) / statistics.median(times["critflow"])
    print(f"speed-up (flodym / critflow, medians): {ratio:.2f}")
    scale = np.abs(results["flodym"]).max()
    agreement = np.abs(results["critflow"] - results["flodym"]).max() / scale
    print(f"agreement: max |critflow - flodym| / max |flodym| = {agreement:.1e}")
    return 0 if agreement <= 1e-9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
