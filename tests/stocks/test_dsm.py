"""Dynamic stock models: against flodym, closed forms, mass balance, the clip policy."""

from __future__ import annotations

import flodym as fd
import numpy as np
import pytest
import xarray as xr
from scipy.special import gamma

from critflow.errors import CritflowError
from critflow.stocks import Lifetime, dynamic_stock, inflow_driven, stock_driven

YEARS = list(range(2000, 2060))


def _dims(n_regions: int, n_products: int) -> fd.DimensionSet:
    return fd.DimensionSet(
        dim_list=[
            fd.Dimension(name="time", letter="t", items=YEARS),
            fd.Dimension(name="region", letter="r", items=[f"r{i}" for i in range(n_regions)]),
            fd.Dimension(name="product", letter="p", items=[f"p{i}" for i in range(n_products)]),
        ]
    )


def _lifetimes(distribution: str, dims: fd.DimensionSet, n_products: int):
    mean = np.linspace(5.0, 40.0, n_products)
    by_product = dims[("p",)]
    if distribution == "normal":
        ours = Lifetime.of("normal", mean=mean, std=0.3 * mean)
        theirs = fd.NormalLifetime(
            dims=dims,
            mean=fd.FlodymArray(dims=by_product, values=mean),
            std=fd.FlodymArray(dims=by_product, values=0.3 * mean),
        )
    else:
        shape = np.linspace(1.5, 3.5, n_products)
        scale = mean / gamma(1 + 1 / shape)
        ours = Lifetime.of("weibull", shape=shape, scale=scale)
        theirs = fd.WeibullLifetime(
            dims=dims,
            weibull_shape=fd.FlodymArray(dims=by_product, values=shape),
            weibull_scale=fd.FlodymArray(dims=by_product, values=scale),
        )
    return ours, theirs


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("distribution", ["normal", "weibull"])
@pytest.mark.parametrize(("n_regions", "n_products"), [(1, 1), (30, 20)])
def test_inflow_driven_equals_flodym(distribution, n_regions, n_products):
    dims = _dims(n_regions, n_products)
    rng = np.random.default_rng(3)
    inflow = rng.uniform(50, 150, size=dims.shape)
    ours_lt, theirs_lt = _lifetimes(distribution, dims, n_products)
    ours = inflow_driven(inflow, ours_lt)
    theirs = fd.InflowDrivenDSM(dims=dims, lifetime_model=theirs_lt)
    theirs.inflow[...] = inflow
    theirs.compute()
    assert _relative(ours.stock, theirs.stock.values) < 1e-12
    assert _relative(ours.outflow, theirs.outflow.values) < 1e-12
    assert np.allclose(
        ours.stock_by_cohort(), theirs.get_stock_by_cohort(), rtol=0, atol=1e-12 * inflow.max()
    )


@pytest.mark.parametrize("distribution", ["normal", "weibull"])
@pytest.mark.parametrize(("n_regions", "n_products"), [(1, 1), (30, 20)])
def test_stock_driven_equals_flodym(distribution, n_regions, n_products):
    dims = _dims(n_regions, n_products)
    t = np.arange(len(YEARS), dtype=float)
    stock = (1e4 / (1 + np.exp(-(t - 25) / 8)))[:, None, None] * np.ones(dims.shape[1:])
    ours_lt, theirs_lt = _lifetimes(distribution, dims, n_products)
    ours = stock_driven(stock, ours_lt)
    theirs = fd.StockDrivenDSM(dims=dims, lifetime_model=theirs_lt)
    theirs.stock[...] = stock
    theirs.compute()
    assert _relative(ours.inflow, theirs.inflow.values) < 1e-12
    assert _relative(ours.outflow, theirs.outflow.values) < 1e-12
    assert np.abs(ours.stock - stock).max() < 1e-12 * stock.max()


def test_cohort_varying_lifetime_equals_flodym():
    dims = _dims(1, 1)
    scale = np.interp(YEARS, [2000, 2040], [10.0, 20.0])[:, None, None]
    lifetime = Lifetime.of("weibull", shape=2.0, scale=scale, cohort_varying=True)
    theirs_lt = fd.WeibullLifetime(
        dims=dims,
        weibull_shape=2.0,
        weibull_scale=fd.FlodymArray(dims=dims[("t",)], values=scale[:, 0, 0]),
    )
    inflow = np.linspace(10, 100, len(YEARS))[:, None, None]
    ours = inflow_driven(inflow, lifetime)
    theirs = fd.InflowDrivenDSM(dims=dims, lifetime_model=theirs_lt)
    theirs.inflow[...] = inflow
    theirs.compute()
    assert _relative(ours.stock, theirs.stock.values) < 1e-12
    assert _relative(ours.outflow, theirs.outflow.values) < 1e-12


def test_fixed_lifetime_shifts_the_inflow():
    inflow = np.arange(1.0, 31.0)
    result = inflow_driven(inflow, Lifetime.of("fixed", mean=5))
    # a cohort entering mid-year t is still there at the end of t+4 (age 4.5 < 5), gone by t+5
    assert np.array_equal(result.outflow[5:], inflow[:-5])
    assert np.all(result.outflow[:5] == 0)


def test_exponential_lifetime_decays_geometrically():
    inflow = np.zeros(40)
    inflow[0] = 1000.0
    mean = 7.0
    result = inflow_driven(inflow, Lifetime.of("exponential", mean=mean))
    assert result.stock[0] == pytest.approx(1000.0 * np.exp(-0.5 / mean), rel=1e-14)
    ratios = result.stock[1:] / result.stock[:-1]
    assert np.allclose(ratios, np.exp(-1.0 / mean), rtol=1e-13, atol=0)


@pytest.mark.parametrize("driven", ["inflow", "stock", "switch"])
def test_mass_balance_over_the_horizon(driven):
    rng = np.random.default_rng(7)
    inflow = rng.uniform(0, 100, size=(80, 12))
    stock = np.cumsum(rng.uniform(0, 80, size=(80, 12)), axis=0)
    lifetime = Lifetime.of("lognormal", mean=np.linspace(3, 30, 12), std=4.0)
    switch = np.arange(80) >= 30
    options = {
        "inflow": {"inflow": inflow},
        "stock": {"stock": stock},
        "switch": {"inflow": inflow, "stock": stock, "stock_driven": switch},
    }[driven]
    result = dynamic_stock(lifetime, initial_stock=500.0, **options)
    assert result.balance() < 1e-12
    assert float(np.asarray(result.initial_stock)[0]) == pytest.approx(500.0, rel=1e-12)


def test_initial_stock_from_lifetime_is_a_steady_state():
    lifetime = Lifetime.of("weibull", shape=2.3, scale=15.5)
    # a stock in steady state with inflow q holds q × (sum of survival over ages)
    steady = inflow_driven(np.full(400, 100.0), lifetime).stock[-1]
    result = inflow_driven(np.full(20, 100.0), lifetime, initial_stock=steady)
    assert np.allclose(result.stock, steady, rtol=1e-10)
    assert np.allclose(result.outflow, 100.0, rtol=1e-10)


def test_falling_stock_is_clipped_and_reported():
    years = np.arange(30)
    stock = np.concatenate([np.linspace(10, 100, 15), np.linspace(100, 20, 15)])
    lifetime = Lifetime.of("normal", mean=30.0, std=5.0)
    result = stock_driven(stock, lifetime)
    assert (result.inflow >= 0).all()
    assert np.allclose(result.stock, stock, rtol=1e-12)
    clipped = years[result.clipped]
    assert clipped.size and clipped.min() >= 15
    # retired surplus is an outflow: stock change = inflow - outflow every year
    change = np.diff(np.concatenate([[0.0], result.stock]))
    assert np.allclose(change, result.inflow - result.outflow, atol=1e-12 * stock.max())
    assert (result.outflow >= 0).all()
    assert result.balance() < 1e-12
    by_cohort = result.stock_by_cohort()
    assert np.allclose(by_cohort.sum(axis=1), stock, rtol=1e-12)
    assert (by_cohort >= 0).all()
    with pytest.raises(CritflowError, match="negative inflow"):
        stock_driven(stock, lifetime, negative_inflow="error")


def test_a_target_of_zero_empties_the_stock_and_later_cohorts_still_count():
    # exponential, mean 1: a cohort keeps exp(-0.5) at the end of its year, exp(-1) a year on
    target = np.array([1.0, 0.0, 2.0, 1.5])
    result = stock_driven(target, Lifetime.of("exponential", mean=1.0))
    q0 = 1.0 / np.exp(-0.5)
    assert result.retired[1] == pytest.approx(q0 * np.exp(-1.5), rel=1e-14)  # all of cohort 0
    assert result.inflow[2] == pytest.approx(2.0 / np.exp(-0.5), rel=1e-14)
    by_cohort = result.stock_by_cohort()
    assert np.allclose(by_cohort.sum(axis=1), target, rtol=1e-14)
    assert by_cohort[3, 0] == 0.0 and by_cohort[3, 2] > 0


def test_labelled_arrays_keep_their_labels():
    inflow = xr.DataArray(
        np.ones((10, 2)),
        dims=("time", "region"),
        coords={"time": np.arange(2020, 2030), "region": ["BE", "NL"]},
    )
    scale = xr.DataArray([10.0, 20.0], dims="region", coords={"region": ["BE", "NL"]})
    result = inflow_driven(inflow, Lifetime.of("weibull", shape=2.0, scale=scale))
    assert result.stock.dims == ("time", "region")
    assert float(result.stock.sel(region="NL", time=2029)) > float(
        result.stock.sel(region="BE", time=2029)
    )


@pytest.mark.parametrize(
    ("distribution", "values", "message"),
    [
        ("weibull", {"shape": 0.0, "scale": 10.0}, "shape = 0 is impossible"),
        ("weibull", {"shape": 2.0, "scale": -3.0}, "scale = -3 is impossible"),
        ("normal", {"mean": 10.0}, "needs 'std'"),
        ("gamma", {"mean": 10.0}, "not a lifetime distribution"),
        ("fixed", {"mean": 10.0, "std": 2.0}, "no parameter 'std'"),
    ],
)
def test_impossible_lifetimes_are_refused(distribution, values, message):
    with pytest.raises(CritflowError, match=message):
        Lifetime.of(distribution, **values)


def test_initial_cohorts_must_sum_to_the_total():
    with pytest.raises(CritflowError, match="cohorts sum to 30"):
        inflow_driven(
            np.ones(5),
            Lifetime.of("fixed", mean=10),
            initial_stock=40.0,
            initial_cohorts=np.array([10.0, 20.0]),
        )


def test_docstring_example():
    import doctest

    import critflow.stocks.dsm

    assert doctest.testmod(critflow.stocks.dsm).failed == 0
