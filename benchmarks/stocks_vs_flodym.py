"""Dynamic stock models: critflow against flodym on the same inputs, in one run.

Cases (as in the MFA notes, section 7): 150 years × 30 regions × 20 products (600 series), lifetime
by product (mean 5…40 years), Normal(mean, 0.3·mean) or Weibull(shape 1.5…3.5, scale =
mean/Γ(1+1/shape)); inflow-driven with a logistic inflow ±10 %, stock-driven with a logistic
stock. Then 150 years × 5,000 series (100 regions × 50 products), critflow only unless --flodym-large.

Time = median of --repeat runs with fresh objects (flodym's survival table is rebuilt each run, as
critflow's survival vectors are). Peak memory = tracemalloc peak of one separate run (numpy
buffers are traced). Agreement = largest difference relative to the largest value.

    python benchmarks/stocks_vs_flodym.py [--repeat 3] [--flodym-large]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import flodym as fd
import numpy as np
from scipy.special import gamma

from critflow.stocks import Lifetime, inflow_driven, stock_driven


def inputs(n_years: int, n_regions: int, n_products: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = np.arange(n_years, dtype=float)
    shape = (n_years, n_regions, n_products)
    inflow = (1000 / (1 + np.exp(-(t - 60) / 15)))[:, None, None] * (
        1 + 0.1 * rng.uniform(-1, 1, size=shape)
    )
    level = 1 + rng.random((n_regions, n_products))
    stock = (5e4 / (1 + np.exp(-(t - 60) / 20)))[:, None, None] * level[None]
    return inflow, stock


def lifetimes(distribution: str, dims: fd.DimensionSet, n_products: int):
    mean = np.linspace(5.0, 40.0, n_products)
    by_product = dims[("p",)]
    if distribution == "normal":
        ours = Lifetime.of("normal", mean=mean, std=0.3 * mean)

        def theirs():
            return fd.NormalLifetime(
                dims=dims,
                mean=fd.FlodymArray(dims=by_product, values=mean),
                std=fd.FlodymArray(dims=by_product, values=0.3 * mean),
            )
    else:
        shape = np.linspace(1.5, 3.5, n_products)
        scale = mean / gamma(1 + 1 / shape)
        ours = Lifetime.of("weibull", shape=shape, scale=scale)

        def theirs():
            return fd.WeibullLifetime(
                dims=dims,
                weibull_shape=fd.FlodymArray(dims=by_product, values=shape),
                weibull_scale=fd.FlodymArray(dims=by_product, values=scale),
            )

    return ours, theirs


def run_ours(driven: str, data: np.ndarray, lifetime: Lifetime):
    if driven == "inflow":
        r = inflow_driven(data, lifetime)
        return r.stock, r.outflow
    r = stock_driven(data, lifetime)
    return r.inflow, r.outflow


def run_flodym(driven: str, data: np.ndarray, dims, make_lifetime):
    if driven == "inflow":
        dsm = fd.InflowDrivenDSM(dims=dims, lifetime_model=make_lifetime())
        dsm.inflow[...] = data
        dsm.compute()
        return dsm.stock.values, dsm.outflow.values
    dsm = fd.StockDrivenDSM(dims=dims, lifetime_model=make_lifetime())
    dsm.stock[...] = data
    dsm.compute()
    return dsm.inflow.values, dsm.outflow.values


def measure(function, repeat: int) -> tuple[float, float, tuple]:
    """Median seconds, tracemalloc peak in MB, and the result of the last run."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 1e6, result


def dims_of(n_years: int, n_regions: int, n_products: int) -> fd.DimensionSet:
    return fd.DimensionSet(
        dim_list=[
            fd.Dimension(name="time", letter="t", items=list(range(2000, 2000 + n_years))),
            fd.Dimension(name="region", letter="r", items=[f"r{i}" for i in range(n_regions)]),
            fd.Dimension(name="product", letter="p", items=[f"p{i}" for i in range(n_products)]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--flodym-large", action="store_true", help="also run flodym on 5,000 series"
    )
    args = parser.parse_args()

    print(
        f"{'case':<29} critflow ms  flodym ms   speed-up  critflow MB  flodym MB"
        "  memory ratio  agreement"
    )
    speedups = []
    n_years = 150
    for n_regions, n_products in ((30, 20), (100, 50)):
        dims = dims_of(n_years, n_regions, n_products)
        inflow, stock = inputs(n_years, n_regions, n_products)
        with_flodym = n_regions * n_products <= 600 or args.flodym_large
        for driven, data in (("inflow", inflow), ("stock", stock)):
            for distribution in ("normal", "weibull"):
                ours_lt, theirs_lt = lifetimes(distribution, dims, n_products)
                t_ours, m_ours, r_ours = measure(
                    lambda d=driven, x=data, lt=ours_lt: run_ours(d, x, lt), args.repeat
                )
                label = f"{n_years}×{n_regions * n_products} {driven}-driven {distribution}"
                if not with_flodym:
                    print(f"{label:<29} {1e3 * t_ours:>11.1f}  {'—':>9}  {'—':>9}  {m_ours:>11.1f}")
                    continue
                t_fd, m_fd, r_fd = measure(
                    lambda d=driven, x=data, mk=theirs_lt, dm=dims: run_flodym(d, x, dm, mk),
                    args.repeat,
                )
                agreement = max(
                    float(np.abs(a - b).max() / np.abs(b).max())
                    for a, b in zip(r_ours, r_fd, strict=True)
                )
                speedups.append(t_fd / t_ours)
                print(
                    f"{label:<29} {1e3 * t_ours:>11.1f}  {1e3 * t_fd:>9.1f}  {t_fd / t_ours:>8.1f}×"
                    f"  {m_ours:>11.1f}  {m_fd:>9.1f}  {m_fd / m_ours:>11.0f}×  {agreement:.1e}"
                )
    geometric = float(np.exp(np.mean(np.log(speedups[:4]))))
    print(
        f"\n150×600: geometric-mean speed-up {geometric:.1f}× (target ≥ 20×), "
        f"smallest {min(speedups[:4]):.1f}× (target ≥ 10×)"
    )


if __name__ == "__main__":
    main()
