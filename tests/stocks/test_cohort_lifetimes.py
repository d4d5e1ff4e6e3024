"""Lifetimes that change with the year a cohort enters: by hand, against flodym, invariants."""

from __future__ import annotations

import math
import tracemalloc

import flodym as fd
import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critflow.stocks import Lifetime, dynamic_stock, inflow_driven, stock_driven
from critflow.stocks.cohorts import _same_columns
from critflow.stocks.lifetimes import PARAMETERS


def _lognormal_sf(age: float, mean: float, std: float) -> float:
    """Survival of a lognormal lifetime with this mean and std, from its definition."""
    sigma2 = math.log(1.0 + std**2 / mean**2)
    mu = math.log(mean) - sigma2 / 2.0
    return 0.5 * math.erfc((math.log(age) - mu) / math.sqrt(2.0 * sigma2))


def test_lognormal_by_cohort_by_hand():
    # two series, four cohorts; each cohort has its own mean and std
    mean = [[8.0, 3.0], [10.0, 3.5], [13.0, 4.0], [15.0, 6.0]]
    std = [[2.0, 1.0], [4.0, 1.0], [5.0, 2.0], [3.0, 2.5]]
    inflow = [[100.0, 40.0], [120.0, 0.0], [90.0, 60.0], [150.0, 20.0]]
    stock = np.zeros((4, 2))
    outflow = np.zeros((4, 2))
    for n in range(2):
        for t in range(4):
            for c in range(t + 1):  # enters mid-year c, counted at the end of year t
                sf = _lognormal_sf(t - c + 0.5, mean[c][n], std[c][n])
                before = 1.0 if c == t else _lognormal_sf(t - c - 0.5, mean[c][n], std[c][n])
                stock[t, n] += inflow[c][n] * sf
                outflow[t, n] += inflow[c][n] * (before - sf)
    lifetime = Lifetime.of("lognormal", mean=mean, std=std, cohort_varying=True)
    ours = inflow_driven(np.array(inflow), lifetime)
    assert np.allclose(ours.stock, stock, rtol=1e-13, atol=0)
    assert np.allclose(ours.outflow, outflow, rtol=1e-13, atol=0)
    back = stock_driven(stock, lifetime)
    assert np.allclose(back.inflow, inflow, rtol=0, atol=1e-11)
    by_cohort = ours.stock_by_cohort()
    assert by_cohort[3, 1, 0] == pytest.approx(120.0 * _lognormal_sf(2.5, 10.0, 4.0), rel=1e-13)
    assert by_cohort[1, 2, 0] == 0.0  # a cohort is not in stock before it enters


@pytest.mark.parametrize("distribution", sorted(PARAMETERS))
def test_survival_is_scipy_stats_to_the_last_bit(distribution):
    rng = np.random.default_rng(11)
    ages = np.concatenate([[0.0, 0.5, 1.0], rng.uniform(0.0, 300.0, 5000)])
    values = {
        "mean": rng.uniform(1.0, 60.0, ages.size),
        "std": rng.uniform(0.2, 30.0, ages.size),
        "shape": rng.uniform(0.5, 5.0, ages.size),
        "scale": rng.uniform(1.0, 60.0, ages.size),
    }
    p = {k: values[k] for k in PARAMETERS[distribution]}
    ours = Lifetime.of(distribution, **p).survival(ages)
    m = p.get("mean")
    expected = {
        "fixed": lambda: (ages < m).astype(float),
        "exponential": lambda: scipy.stats.expon.sf(ages, scale=m),
        "normal": lambda: scipy.stats.norm.sf(ages, loc=m, scale=p["std"]),
        "folded_normal": lambda: scipy.stats.foldnorm.sf(ages, m / p["std"], 0, scale=p["std"]),
        "weibull": lambda: scipy.stats.weibull_min.sf(ages, c=p["shape"], scale=p["scale"]),
        "lognormal": lambda: scipy.stats.lognorm.sf(
            ages,
            s=np.sqrt(np.log1p(p["std"] ** 2 / m**2)),
            scale=np.exp(np.log(m**2 / np.sqrt(m**2 + p["std"] ** 2))),
        ),
    }[distribution]()
    if distribution == "exponential":  # exp(-a/mean) as before, not scipy's expm1 form
        assert np.allclose(ours, expected, rtol=1e-15, atol=0)
    else:
        assert np.array_equal(ours, expected)


def _dims(n_years: int, n_regions: int, n_products: int) -> fd.DimensionSet:
    return fd.DimensionSet(
        dim_list=[
            fd.Dimension(name="time", letter="t", items=list(range(2000, 2000 + n_years))),
            fd.Dimension(name="region", letter="r", items=[f"r{i}" for i in range(n_regions)]),
            fd.Dimension(name="product", letter="p", items=[f"p{i}" for i in range(n_products)]),
        ]
    )


@pytest.mark.parametrize("by", ["cohort", "cohort and product", "cohort, region and product"])
@pytest.mark.parametrize("driven", ["inflow", "stock"])
def test_cohort_varying_lognormal_equals_flodym(by, driven):
    n_t, n_r, n_p = 50, 3, 4
    dims = _dims(n_t, n_r, n_p)
    rng = np.random.default_rng(2)
    growth = 1.0 + 0.8 * np.linspace(0.0, 1.0, n_t)
    letters, mean = {
        "cohort": (("t",), 12.0 * growth),
        "cohort and product": (("t", "p"), np.outer(growth, np.linspace(4.0, 30.0, n_p))),
        "cohort, region and product": (
            ("t", "r", "p"),
            rng.uniform(3.0, 30.0, (n_t, n_r, n_p)) * growth[:, None, None],
        ),
    }[by]
    std = 0.35 * mean
    theirs_lt = fd.LogNormalLifetime(
        dims=dims,
        mean=fd.FlodymArray(dims=dims[letters], values=mean),
        std=fd.FlodymArray(dims=dims[letters], values=std),
    )
    shape = {1: (n_t, 1, 1), 2: (n_t, 1, n_p), 3: (n_t, n_r, n_p)}[len(letters)]
    ours_lt = Lifetime.of(
        "lognormal", mean=mean.reshape(shape), std=std.reshape(shape), cohort_varying=True
    )
    t = np.arange(n_t, dtype=float)
    if driven == "inflow":
        inflow = rng.uniform(50, 150, dims.shape)
        ours = inflow_driven(inflow, ours_lt)
        theirs = fd.InflowDrivenDSM(dims=dims, lifetime_model=theirs_lt)
        theirs.inflow[...] = inflow
        theirs.compute()
        pairs = [(ours.stock, theirs.stock.values), (ours.outflow, theirs.outflow.values)]
        assert np.allclose(
            ours.stock_by_cohort(), theirs.get_stock_by_cohort(), rtol=0, atol=1e-12 * 150
        )
    else:
        stock = (1e4 / (1 + np.exp(-(t - 25) / 8)))[:, None, None] * rng.uniform(1, 2, (n_r, n_p))
        ours = stock_driven(stock, ours_lt)
        theirs = fd.StockDrivenDSM(dims=dims, lifetime_model=theirs_lt)
        theirs.stock[...] = stock
        theirs.compute()
        pairs = [(ours.inflow, theirs.inflow.values), (ours.outflow, theirs.outflow.values)]
        assert not ours.clipped.any()
    for a, b in pairs:
        assert np.abs(a - b).max() < 1e-12 * np.abs(b).max()


@st.composite
def cohort_models(draw):
    n_t = draw(st.integers(1, 30))
    n = draw(st.integers(1, 7))
    distribution = draw(st.sampled_from(sorted(PARAMETERS)))
    # series share lifetimes in groups of any sizes, as products shared by regions do
    groups = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    bounds = {
        "mean": (0.6, 25.0),
        "std": (0.2, 12.0),
        "shape": (0.6, 5.0),
        "scale": (0.6, 25.0),
    }
    params = {}
    for name in PARAMETERS[distribution]:
        low, high = bounds[name]
        by_group = draw(
            st.lists(
                st.lists(st.floats(low, high), min_size=4, max_size=4),
                min_size=n_t,
                max_size=n_t,
            )
        )
        params[name] = np.array(by_group)[:, groups]  # (cohorts, series)
    lifetime = Lifetime.of(distribution, cohort_varying=True, **params)
    floats = st.floats(0.0, 1e3)
    inflow = np.array(draw(st.lists(floats, min_size=n_t * n, max_size=n_t * n))).reshape(n_t, n)
    stock = np.array(draw(st.lists(floats, min_size=n_t * n, max_size=n_t * n))).reshape(n_t, n)
    driven = draw(st.sampled_from(["inflow", "stock", "switch"]))
    options = {
        "inflow": {"inflow": inflow},
        "stock": {"stock": stock},
        "switch": {
            "inflow": inflow,
            "stock": stock,
            "stock_driven": np.array(draw(st.lists(st.booleans(), min_size=n_t, max_size=n_t))),
        },
    }[driven]
    if draw(st.booleans()):
        options["initial_cohorts"] = np.array(
            draw(st.lists(floats, min_size=3 * n, max_size=3 * n))
        ).reshape(3, n)
    options["inflow_at"] = draw(st.sampled_from(["start", "middle", "end"]))
    return lifetime, options


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort_models())
def test_stock_is_what_came_in_minus_what_went_out(model):
    lifetime, options = model
    result = dynamic_stock(lifetime, **options)
    stock = np.asarray(result.stock)
    net = np.cumsum(np.asarray(result.inflow) - np.asarray(result.outflow), axis=0)
    scale = max(np.abs(stock).max(), np.abs(np.asarray(result.inflow)).max(), 1.0)
    assert np.abs(stock - np.asarray(result.initial_stock) - net).max() <= 1e-9 * scale
    assert np.asarray(result.outflow).min() >= -1e-9 * scale
    if "stock" in options:  # stock-driven years hold their target where an inflow can stay
        first_year = {"start": 1.0, "middle": 0.5, "end": 0.0}[options["inflow_at"]]
        s0 = lifetime.survival(np.full(stock.shape, first_year), slice(None))
        years = options.get("stock_driven", np.ones(stock.shape[0], bool))[:, None] & (s0 > 1e-3)
        assert np.abs(stock[years] - options["stock"][years]).max(initial=0) <= 1e-9 * scale
    # the cohorts add up to the stock
    assert np.abs(result.stock_by_cohort().sum(axis=1) - stock).max() <= 1e-9 * scale
    # all series at once equal each series alone (series share columns of the survival)
    n = stock.shape[1]
    for i in {0, n - 1}:
        alone_lt = Lifetime(
            lifetime.distribution, {k: v[:, i] for k, v in lifetime.parameters.items()}, True
        )
        alone = {
            k: (v[:, i] if isinstance(v, np.ndarray) and v.ndim == 2 else v)
            for k, v in options.items()
        }
        one = dynamic_stock(alone_lt, **alone)
        assert np.abs(np.asarray(one.stock) - stock[:, i]).max() <= 1e-12 * scale
        assert np.abs(np.asarray(one.outflow) - np.asarray(result.outflow)[:, i]).max() <= (
            1e-12 * scale
        )


def test_columns_with_the_same_key_stay_apart():
    # the key weighs the two rows 1.5 and 1.0: (1, 1.5) and (2, 0) both give 3.0
    values = np.array([[1.0, 2.0, 1.0, 5.0, 2.0], [1.5, 0.0, 1.5, 5.0, 0.0]])
    first, group, counts = _same_columns(values)
    assert group[0] == group[2]
    assert len({group[0], group[1], group[3], group[4]}) == 4  # (2, 0) is not (1, 1.5)
    assert counts.sum() == 5 and counts[group[0]] == 2
    assert np.array_equal(values[:, first[group]], values)  # a group holds equal columns only


def test_memory_grows_with_years_times_series_not_years_squared():
    n_t, n = 120, 400
    mean = np.linspace(5.0, 40.0, n)[None, :] * np.linspace(1.0, 1.5, n_t)[:, None]
    lifetime = Lifetime.of("lognormal", mean=mean, std=0.3 * mean, cohort_varying=True)
    inflow = np.ones((n_t, n))
    tracemalloc.start()
    inflow_driven(inflow, lifetime)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    table = n_t * n_t * n * 8  # one (years × cohorts × series) table, 46 MB
    assert peak < 0.2 * table, f"peak {peak / 1e6:.1f} MB"
