"""The shipped battery-recycling example: balances close and recoveries match closed forms."""

from __future__ import annotations

import numpy as np

import critflow
from tests.conftest import EXAMPLE


def test_example_balance_closes_per_element(example_results):
    into, out, stock = example_results.balance_arrays()
    kinds = np.array(example_results.inputs.topology.process_kinds)
    inner = (kinds != "source") & (kinds != "sink")
    residual = np.abs(into - out - stock)[..., inner]
    scale = np.maximum(into, out)[..., inner]
    assert np.all(residual <= 1e-9 * scale)
    # the whole system: what the sources send equals what the sinks receive, per element
    sources = out[..., kinds == "source"].sum(axis=-1)
    sinks = into[..., kinds == "sink"].sum(axis=-1)
    np.testing.assert_allclose(sinks, sources, rtol=1e-9)


def test_example_covers_every_element_period_and_scenario(example_results):
    flows = example_results.flows()
    spec = critflow.load_model(EXAMPLE).spec
    n_periods = spec.time.end - spec.time.start + 1
    assert len(flows) == len(spec.scenarios) * n_periods * len(spec.elements) * len(spec.flows)
    assert list(flows.columns) == [
        "scenario",
        "period",
        "flow",
        "from",
        "to",
        "element",
        "value",
        "unit",
    ]
    assert (flows["value"] >= 0).all()


def _recovery(results, scenario, element, product, year=2025):
    mass = results.to_dataset().flow_mass.sel(scenario=scenario, period=year, element=element)
    feed = float(mass.sel(flow=["nmc_cells", "lfp_cells"]).sum())
    return float(mass.sel(flow=product)) / feed


def test_nickel_recovery_matches_closed_form(example_results):
    # Ni: shredding 0.97, leach 0.98, impurity removal 0.99, crystallisation 0.99; the 1 % left in
    # the Li liquor returns to the leach with the mother liquor (share 0.85), so
    # R = 0.97 * 0.98 * 0.99 * 0.99 / (1 - 0.98 * 0.99 * 0.01 * 0.85)
    expected = 0.97 * 0.98 * 0.99 * 0.99 / (1 - 0.98 * 0.99 * 0.01 * 0.85)
    got = _recovery(example_results, "baseline", "Ni", "nickel_sulfate")
    assert abs(got - expected) < 1e-12
    assert abs(got - 0.940) < 0.001  # the flowsheet notes' worked example (Table 4.1e): Ni 94.0 %


def test_lithium_recovery_with_mother_liquor_recycle(example_results):
    # Li: black mass 0.95, leach 0.99, impurity removal 0.99, precipitation y per pass, mother
    # liquor (1 - y) returned with share 0.85: R = 0.95 c y / (1 - c (1 - y) 0.85), c = 0.99 * 0.99
    c = 0.99 * 0.99
    for scenario, y in (("baseline", 0.85), ("hot_li_precipitation", 0.90)):
        expected = 0.95 * c * y / (1 - c * (1 - y) * 0.85)
        got = _recovery(example_results, scenario, "Li", "lithium_carbonate")
        assert abs(got - expected) < 1e-12, scenario


def test_scenarios_change_what_they_should(example_results):
    ds = example_results.to_dataset().flow_mass
    base, hot, whole = (
        ds.sel(scenario=s) for s in ("baseline", "hot_li_precipitation", "no_decasing")
    )
    # a better Li precipitation yields more Li2CO3 and a smaller Li bleed, and leaves Ni alone
    assert (
        hot.sel(flow="lithium_carbonate", element="Li")
        > base.sel(flow="lithium_carbonate", element="Li")
    ).all()
    assert (hot.sel(flow="bleed", element="Li") < base.sel(flow="bleed", element="Li")).all()
    np.testing.assert_allclose(hot.sel(element="Ni"), base.sel(element="Ni"), rtol=1e-12)
    # no decasing: nothing leaves by the casing flows, and the cells enter the shredders whole
    assert float(whole.sel(flow=["nmc_casing", "lfp_casing"]).sum()) == 0.0
    np.testing.assert_allclose(
        whole.sel(flow="nmc_opened").sum("element"),
        whole.sel(flow="nmc_cells").sum("element"),
        rtol=1e-12,
    )


def test_feed_time_series_is_interpolated(example_results):
    goods = (
        example_results.to_dataset()
        .flow_mass.sum("element")
        .sel(scenario="baseline", flow="nmc_cells")
    )
    # {2025: 6000, 2030: 15000}: 1800 t/a more each year
    np.testing.assert_allclose(goods.values, 6000 + 1800 * np.arange(6), rtol=1e-12)
