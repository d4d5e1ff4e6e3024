"""Dynamic stock models: critflow against flodym on the same inputs, in one run.

Cases (inputs as in the MFA notes, section 7):

- 150 years × 600 series (30 regions × 20 products), lifetime by product (mean 5…40 years),
  Normal(mean, 0.3·mean) or Weibull(shape 1.5…3.5, scale = mean/Γ(1+1/shape)); inflow-driven with
  a logistic inflow ±10 %, stock-driven with a logistic stock.
- 200 years × 2,000 series (40 regions × 50 products), lognormal lifetime that changes with the
  year of entry: mean by product 5…40 years for the first cohort, 50 % longer for the last,
  std 0.3·mean; inflow- and stock-driven.
- 150 years × 5,000 series (100 regions × 50 products), the four fixed-lifetime cases, critflow
  only unless --flodym-large.
- With --by-series, the 200 × 2,000 cases again with a lifetime of every series its own (the mean
  also varies by region, ±10 %): no two series share their survival, so both tools evaluate the
  distribution at every cohort, age and series; critflow's edge is then only the cheaper
  evaluation.

Method: each case runs --repeat times per side, interleaved (critflow, flodym, then flodym,
critflow, …), with fresh objects every run (flodym's survival table is rebuilt each run, as
critflow's survival is). Time = wall clock, min / median / max; speed-up = ratio of the medians.
CPU speed-up = ratio of the median process CPU times, a check when other work shares the machine.
Peak memory = tracemalloc peak of one run in a fresh process per side (numpy buffers are traced;
the inputs are built before tracing starts). Agreement = largest |critflow − flodym| relative to
the largest |flodym| value over the two results (stock and outflow, or inflow and outflow); the
run exits with status 1 if it exceeds 1e-9.

    python benchmarks/stocks_vs_flodym.py [--repeat 3] [--flodym-large] [--by-series] [--only TEXT]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

import flodym as fd
import numpy as np
import scipy
from scipy.special import gamma

import critflow
from critflow.stocks import Lifetime, inflow_driven, stock_driven

AGREEMENT = 1e-9


@dataclass(frozen=True)
class Case:
    n_years: int
    n_regions: int
    n_products: int
    driven: str  # inflow | stock
    distribution: str  # normal | weibull | lognormal by cohort

    @property
    def key(self) -> str:
        return f"{self.n_years}x{self.n_series}-{self.driven}-{self.distribution.replace(' ', '-')}"

    @property
    def n_series(self) -> int:
        return self.n_regions * self.n_products

    @property
    def label(self) -> str:
        return f"{self.n_years}×{self.n_series:,} {self.driven}-driven, {self.distribution}"


def cases(by_series: bool = True) -> list[Case]:
    fixed = [
        Case(150, r, p, driven, distribution)
        for r, p in ((30, 20), (100, 50))
        for driven in ("inflow", "stock")
        for distribution in ("normal", "weibull")
    ]
    by_cohort = [Case(200, 40, 50, driven, "lognormal by cohort") for driven in ("inflow", "stock")]
    if by_series:
        by_cohort += [
            Case(200, 40, 50, driven, "lognormal by cohort and series")
            for driven in ("inflow", "stock")
        ]
    return fixed[:4] + by_cohort + fixed[4:]


def dims_of(case: Case) -> fd.DimensionSet:
    return fd.DimensionSet(
        dim_list=[
            fd.Dimension(name="time", letter="t", items=list(range(2000, 2000 + case.n_years))),
            fd.Dimension(name="region", letter="r", items=[f"r{i}" for i in range(case.n_regions)]),
            fd.Dimension(
                name="product", letter="p", items=[f"p{i}" for i in range(case.n_products)]
            ),
        ]
    )


def data_of(case: Case, seed: int = 1) -> np.ndarray:
    """The inflow (inflow-driven) or the stock (stock-driven), (years, regions, products)."""
    rng = np.random.default_rng(seed)
    t = np.arange(case.n_years, dtype=float)
    middle = 0.4 * case.n_years
    shape = (case.n_years, case.n_regions, case.n_products)
    inflow = (1000 / (1 + np.exp(-(t - middle) / 15)))[:, None, None] * (
        1 + 0.1 * rng.uniform(-1, 1, size=shape)
    )
    level = 1 + rng.random((case.n_regions, case.n_products))
    stock = (5e4 / (1 + np.exp(-(t - middle) / 20)))[:, None, None] * level[None]
    return inflow if case.driven == "inflow" else stock


def lifetimes(case: Case, dims: fd.DimensionSet):
    """critflow's and flodym's lifetime of a case, each built fresh by a call."""
    mean = np.linspace(5.0, 40.0, case.n_products)
    by_product = dims[("p",)]
    if case.distribution == "normal":

        def ours():
            return Lifetime.of("normal", mean=mean, std=0.3 * mean)

        def theirs():
            return fd.NormalLifetime(
                dims=dims,
                mean=fd.FlodymArray(dims=by_product, values=mean),
                std=fd.FlodymArray(dims=by_product, values=0.3 * mean),
            )

    elif case.distribution == "weibull":
        shape = np.linspace(1.5, 3.5, case.n_products)
        scale = mean / gamma(1 + 1 / shape)

        def ours():
            return Lifetime.of("weibull", shape=shape, scale=scale)

        def theirs():
            return fd.WeibullLifetime(
                dims=dims,
                weibull_shape=fd.FlodymArray(dims=by_product, values=shape),
                weibull_scale=fd.FlodymArray(dims=by_product, values=scale),
            )

    else:  # lognormal, mean and std by cohort and product (and region: every series its own)
        growth = 1 + 0.5 * np.linspace(0.0, 1.0, case.n_years)
        by_cohort = np.outer(growth, mean)[:, None, :]  # (years, 1, products)
        letters = dims[("t", "p")]
        if case.distribution.endswith("series"):
            region = 1 + 0.1 * np.linspace(-1.0, 1.0, case.n_regions)
            by_cohort = by_cohort * region[None, :, None]  # (years, regions, products)
            letters = dims[("t", "r", "p")]

        def ours():
            return Lifetime.of(
                "lognormal", mean=by_cohort, std=0.3 * by_cohort, cohort_varying=True
            )

        def theirs():
            values = by_cohort.reshape(letters.shape)
            return fd.LogNormalLifetime(
                dims=dims,
                mean=fd.FlodymArray(dims=letters, values=values),
                std=fd.FlodymArray(dims=letters, values=0.3 * values),
            )

    return ours, theirs


def runners(case: Case):
    """Two functions that run the case with critflow and with flodym from scratch."""
    dims = dims_of(case)
    data = data_of(case)
    ours_lt, theirs_lt = lifetimes(case, dims)

    def ours():
        if case.driven == "inflow":
            r = inflow_driven(data, ours_lt())
            return r.stock, r.outflow
        r = stock_driven(data, ours_lt())
        return r.inflow, r.outflow

    def theirs():
        if case.driven == "inflow":
            dsm = fd.InflowDrivenDSM(dims=dims, lifetime_model=theirs_lt())
            dsm.inflow[...] = data
            dsm.compute()
            return dsm.stock.values, dsm.outflow.values
        dsm = fd.StockDrivenDSM(dims=dims, lifetime_model=theirs_lt())
        dsm.stock[...] = data
        dsm.compute()
        return dsm.inflow.values, dsm.outflow.values

    return ours, theirs


def timed(function) -> tuple[float, float, tuple]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def peak_mb(case: Case, side: str) -> float:
    """tracemalloc peak of one run of one side, in a fresh Python process."""
    out = subprocess.run(
        [sys.executable, __file__, "--peak", side, case.key],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _peak_here(side: str, key: str) -> None:
    case = next(c for c in cases() if c.key == key)
    function = dict(zip(("critflow", "flodym"), runners(case), strict=True))[side]
    tracemalloc.start()
    function()
    print(tracemalloc.get_traced_memory()[1] / 1e6)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} logical CPUs, {memory:.0f} GiB RAM, {platform.platform()}"


def spread(seconds: list[float]) -> str:
    ms = [1e3 * s for s in seconds]
    return f"{min(ms):,.0f} / {statistics.median(ms):,.0f} / {max(ms):,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side and case")
    parser.add_argument("--flodym-large", action="store_true", help="flodym on 5,000 series too")
    parser.add_argument(
        "--by-series", action="store_true", help="also lifetimes that differ in every series"
    )
    parser.add_argument("--only", default="", help="only the cases whose label contains this")
    parser.add_argument("--peak", nargs=2, metavar=("SIDE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        _peak_here(*args.peak)
        return 0

    flodym = importlib.metadata.version("flodym")
    print(
        f"critflow {critflow.__version__} against flodym {flodym}; Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}"
    )
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{args.repeat} interleaved runs per side; wall ms min / median / max; peak memory = "
        "tracemalloc peak of one run in a fresh process\n"
    )
    header = (
        f"{'case':<56} {'critflow ms':>21} {'flodym ms':>26} {'speed-up':>9} {'cpu':>6}"
        f" {'critflow MB':>12} {'flodym MB':>10} {'memory':>7} {'agreement':>10}"
    )
    print(header)
    rows: dict[Case, tuple[float, float]] = {}
    worst = 0.0
    for case in cases(args.by_series):
        if args.only not in case.label:
            continue
        with_flodym = case.n_series <= 2000 or args.flodym_large
        ours, theirs = runners(case)
        walls: dict[str, list[float]] = {"critflow": [], "flodym": []}
        cpus: dict[str, list[float]] = {"critflow": [], "flodym": []}
        results = {}
        for i in range(args.repeat):
            order = [("critflow", ours), ("flodym", theirs)]
            if i % 2:
                order.reverse()
            for side, function in order:
                if side == "flodym" and not with_flodym:
                    continue
                wall, cpu, results[side] = timed(function)
                walls[side].append(wall)
                cpus[side].append(cpu)
        m_ours = peak_mb(case, "critflow")
        if not with_flodym:
            print(
                f"{case.label:<56} {spread(walls['critflow']):>21} {'—':>26} {'':>9} {'':>6}"
                f" {m_ours:>12,.1f}"
            )
            continue
        m_fd = peak_mb(case, "flodym")
        agreement = max(
            float(np.abs(a - b).max() / np.abs(b).max())
            for a, b in zip(results["critflow"], results["flodym"], strict=True)
        )
        worst = max(worst, agreement)
        speedup = statistics.median(walls["flodym"]) / statistics.median(walls["critflow"])
        cpu_speedup = statistics.median(cpus["flodym"]) / statistics.median(cpus["critflow"])
        rows[case] = (speedup, m_fd / m_ours)
        print(
            f"{case.label:<56} {spread(walls['critflow']):>21} {spread(walls['flodym']):>26}"
            f" {speedup:>8.1f}× {cpu_speedup:>5.0f}× {m_ours:>12,.1f} {m_fd:>10,.0f}"
            f" {m_fd / m_ours:>6.0f}× {agreement:>10.1e}"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    fixed = [v for c, v in rows.items() if c.n_series == 600]
    if fixed:
        geometric = float(np.exp(np.mean(np.log([s for s, _ in fixed]))))
        print(
            f"150×600, lifetime by product: geometric-mean speed-up {geometric:.1f}× "
            f"(target ≥ 20×), smallest {min(s for s, _ in fixed):.1f}×, "
            f"memory {min(m for _, m in fixed):.0f}× less or better"
        )
    varying = [v for c, v in rows.items() if c.distribution == "lognormal by cohort"]
    own = [v for c, v in rows.items() if c.distribution.endswith("series")]
    if varying:
        print(
            f"200×2,000, lifetime by cohort: smallest speed-up {min(s for s, _ in varying):.1f}× "
            f"(target ≥ 20×), memory {min(m for _, m in varying):.0f}× less or better "
            "(target ≥ 50×)"
        )
    if own:
        print(
            f"200×2,000, every series its own lifetime by cohort: smallest speed-up "
            f"{min(s for s, _ in own):.1f}×, memory {min(m for _, m in own):.0f}× less or better"
        )
    print(f"largest disagreement with flodym {worst:.1e} (limit {AGREEMENT:.0e})")
    return 0 if worst <= AGREEMENT else 1


if __name__ == "__main__":
    sys.exit(main())
