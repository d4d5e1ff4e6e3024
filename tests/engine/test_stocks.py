"""Stock processes inside a model: agreement with the stand-alone cohort model, balances, loops."""

from __future__ import annotations

import numpy as np
import pytest

from critflow.stocks import Lifetime, inflow_driven
from tests.conftest import error_text, solve_text

FLEET = """
critflow: 1
name: fleet
time: {start: 2020, end: 2050}
unit: t/a
elements: [Li, Co, rest]
processes:
  - {id: mine, kind: source}
  - {id: production, kind: market, balancing: primary}
  - id: fleet
    kind: stock
    lifetime: {distribution: weibull, shape: 2.3, scale: 12}
    DRIVEN
  - id: collection
    kind: transfer
    transfer: {to_recycling: {default: 0.8}, lost: {default: 0.2}}
  - id: recycling
    kind: transfer
    transfer: {secondary: {default: 0.9, rest: 0.0}, residue: {default: 0.1, rest: 1.0}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: production}
  - {id: sales, from: production, to: fleet, SALES composition: {Li: 0.02, Co: 0.01}}
  - {id: eol, from: fleet, to: collection}
  - {id: to_recycling, from: collection, to: recycling}
  - {id: lost, from: collection, to: landfill}
  - {id: secondary, from: recycling, to: production}
  - {id: residue, from: recycling, to: landfill}
"""

INFLOW = "value: {2020: 500, 2050: 2000},"


def fleet(driven: str = "driven_by: inflow", sales: str = INFLOW, open_loop: bool = False):
    text = FLEET.replace("DRIVEN", driven).replace("SALES", sales)
    if open_loop:  # secondary material sold outside the system
        text = text.replace("from: recycling, to: production}", "from: recycling, to: landfill}")
    return solve_text(text)


def _flow(results, flow: str) -> np.ndarray:
    f = results.inputs.topology.flow_ids.index(flow)
    return results.mass_kg[0, :, :, f] / 1000.0  # (P, E) in t


def test_inflow_driven_stock_equals_the_cohort_model():
    results = fleet()
    sales = _flow(results, "sales").sum(axis=1)
    expected = inflow_driven(sales, Lifetime.of("weibull", shape=2.3, scale=12))
    stock = results.stocks.stock_kg[0, :, :, 0].sum(axis=1) / 1000.0
    assert np.allclose(stock, expected.stock, rtol=1e-12)
    assert np.allclose(_flow(results, "eol").sum(axis=1), expected.outflow, rtol=1e-12)


def test_recycle_loop_through_the_stock_balances():
    results = fleet()
    assert results.max_relative_residual() < 1e-9
    # whole horizon: what came from the mine minus what was landfilled stays in use
    mined = _flow(results, "primary").sum(axis=0)
    landfilled = (_flow(results, "lost") + _flow(results, "residue")).sum(axis=0)
    in_use = results.stocks.stock_kg[0, -1, :, 0] / 1000.0
    assert np.allclose(mined - landfilled, in_use, rtol=1e-10)
    # recycled Li returns: secondary = 0.8 * 0.9 of the end-of-life Li every year
    li = results.inputs.topology.elements.index("Li")
    assert np.allclose(
        _flow(results, "secondary")[:, li], 0.72 * _flow(results, "eol")[:, li], rtol=1e-12
    )


def test_stock_driven_goods_reach_the_target():
    results = fleet(
        "driven_by: stock\n    stock: {2020: 5000, 2050: 30000}\n    initial_stock: {total: 4000}",
        sales="",
    )
    goods = results.stocks.stock_kg[0, :, :, 0].sum(axis=1) / 1000.0
    target = np.interp(np.arange(2020, 2051), [2020, 2050], [5000, 30000])
    assert np.allclose(goods, target, rtol=1e-12)
    assert results.max_relative_residual() < 1e-9
    assert results.stocks.initial_kg[0, :, 0].sum() / 1000.0 == pytest.approx(4000, rel=1e-12)


def test_switch_from_inflow_to_stock():
    results = fleet(
        "driven_by: {until: 2030, then: stock}\n    stock: {2031: 12000, 2050: 25000}",
    )
    years = results.inputs.periods
    sales = _flow(results, "sales").sum(axis=1)
    early = years <= 2030
    assert np.allclose(sales[early], np.interp(years[early], [2020, 2050], [500, 2000]))
    goods = results.stocks.stock_kg[0, :, :, 0].sum(axis=1) / 1000.0
    assert np.allclose(goods[~early], np.interp(years[~early], [2031, 2050], [12000, 25000]))


def test_falling_target_is_clipped_and_noted():
    from critflow.engine.stock_solve import clipping_notes

    falling = "driven_by: stock\n    stock: {2020: 5000, 2035: 20000, 2040: 3000, 2050: 3000}"
    results = fleet(falling, sales="", open_loop=True)
    notes = clipping_notes(results.inputs, results.stocks)
    assert notes and "2037" in notes[0].what
    assert (results.mass_kg >= 0).all()
    assert results.max_relative_residual() < 1e-9
    with pytest.raises(Exception, match="negative inflow"):
        fleet(falling + "\n    negative_inflow: error", sales="", open_loop=True)
    # closed loop: more comes back from recycling than production needs in the falling years
    with pytest.raises(Exception, match="balancing input cannot be negative"):
        fleet(falling, sales="")


@pytest.mark.parametrize(
    ("driven", "expected"),
    [
        (
            "lifetime: {distribution: weibull, shape: 2.3, scale: -4}",
            "scale = -4 is impossible for a weibull lifetime",
        ),
        ("lifetime: {distribution: weibull, shape: 0, scale: 12}", "shape = 0 is impossible"),
        ("lifetime: {distribution: normal, mean: 12}", "the normal lifetime needs 'std'"),
        (
            "driven_by: stock\n    stock: {2030: 5000, 2050: 30000}",
            "covers 2030–2050 but the stock is stock-driven in 2020–2029",
        ),
        (
            "initial_stock: {total: 1000, cohorts: {2015: 300, 2018: 400}}",
            "sum to 700 t, not the total 1000 t",
        ),
        ("driven_by: stock", "gives no `stock`"),
    ],
)
def test_bad_stock_settings_name_the_process_and_parameter(driven, expected):
    text = FLEET.replace("SALES", INFLOW if "driven_by: stock" not in driven else "")
    if driven.startswith("lifetime"):
        text = text.replace(
            "lifetime: {distribution: weibull, shape: 2.3, scale: 12}\n    DRIVEN", driven
        )
    else:
        text = text.replace("DRIVEN", driven)
    message = error_text(text)
    assert expected in message
    assert "line" in message


def test_stock_without_outflow_route():
    text = FLEET.replace("DRIVEN", "").replace("SALES", INFLOW)
    text = text.replace("  - {id: eol, from: fleet, to: collection}\n", "")
    text = text.replace(
        "  - id: collection\n    kind: transfer\n", "  - id: collection\n    kind: transfer\n", 1
    )
    message = error_text(text)
    assert "stock 'fleet' has no outflow route" in message


def test_trace_of_a_cohort_accounts_for_all_of_it():
    from scipy.stats import weibull_min

    from critflow.indicators.matrace import longevity, trace_cohort

    results = fleet()
    trace = trace_cohort(results, "fleet", 2025)
    totals = trace.groupby(["period", "element"])["share"].sum()
    assert np.allclose(totals, 1.0, atol=1e-12)
    li = trace[trace["element"] == "Li"].set_index(["period", "where"])["share"]
    survival = weibull_min.sf(np.arange(26) + 0.5, 2.3, scale=12)
    first = li.xs("fleet (first life)", level="where").to_numpy()
    assert np.allclose(first, survival, rtol=1e-12)
    # recycled Li comes back into later cohorts; 'rest' is never recycled
    assert li.xs("fleet (after recycling)", level="where").iloc[-1] > 0.05
    rest = trace[(trace["element"] == "rest") & (trace["where"] == "fleet (after recycling)")]
    assert np.allclose(rest["share"], 0.0, atol=1e-12)
    years = longevity(trace).set_index("element")["years"]
    assert years["Li"] > years["rest"] == pytest.approx(survival.sum(), rel=1e-12)


def test_trace_in_an_open_loop_ends_in_the_sink():
    from scipy.stats import weibull_min

    from critflow.indicators.matrace import trace_cohort

    trace = trace_cohort(fleet(open_loop=True), "fleet", 2030)
    landfill = trace[(trace["where"] == "landfill") & (trace["element"] == "Co")]["share"]
    survival = weibull_min.sf(np.arange(21) + 0.5, 2.3, scale=12)
    assert np.allclose(landfill.to_numpy(), 1 - survival, rtol=1e-10)


def test_cohort_varying_and_element_lifetimes_in_a_model():
    text = FLEET.replace("SALES", INFLOW).replace(
        "DRIVEN", "lifetime_by_element: {Co: {distribution: weibull, shape: 3, scale: 20}}"
    )
    text = text.replace(
        "lifetime: {distribution: weibull, shape: 2.3, scale: 12}",
        "lifetime: {distribution: weibull, shape: 2.3, scale: {2020: 10, 2040: 14}}",
    )
    results = solve_text(text)
    topo = results.inputs.topology
    years = np.arange(2020, 2051)
    for element, lifetime in (
        (
            "Li",
            Lifetime.of(
                "weibull",
                shape=2.3,
                scale=np.interp(years, [2020, 2040], [10, 14]),
                cohort_varying=True,
            ),
        ),
        ("Co", Lifetime.of("weibull", shape=3.0, scale=20.0)),
    ):
        e = topo.elements.index(element)
        expected = inflow_driven(_flow(results, "sales")[:, e], lifetime)
        assert np.allclose(results.stocks.stock_kg[0, :, e, 0] / 1000, expected.stock, rtol=1e-12)
        assert np.allclose(_flow(results, "eol")[:, e], expected.outflow, rtol=1e-12)
