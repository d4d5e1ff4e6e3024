"""Mass-balance tracing of origins through mixing and recycle loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import critflow
from critflow.errors import CritflowError
from critflow.indicators import origin_masses
from critflow.indicators.catalogue import Context, IndicatorNotAvailableError, evaluate_indicator
from critflow.indicators.tracing import role_masses
from tests.conftest import EXAMPLE, ROOT, model_text

LOOP = """
critflow: 1
name: smelter with dross recycle
time: {start: 2025, end: 2025}
elements: [Cu]
processes:
  - {id: mine, kind: source}
  - {id: scrapyard, kind: source}
  - id: smelter
    kind: transfer
    transfer: {crude: {default: 0.9}, slag: {default: 0.1}}
  - id: refinery
    kind: transfer
    transfer: {cathode: {default: 0.8}, dross: {default: 0.2}}
  - {id: users, kind: sink, consumption: true}
  - {id: dump, kind: sink}
flows:
  - {id: ore, from: mine, to: smelter, value: 300}
  - {id: scrap, from: scrapyard, to: smelter, value: 100, origin: post_consumer}
  - {id: crude, from: smelter, to: refinery}
  - {id: dross, from: refinery, to: smelter}
  - {id: cathode, from: refinery, to: users, product: cathode}
  - {id: slag, from: smelter, to: dump}
"""


def test_origins_mix_in_proportion_through_a_loop():
    model = model_text(LOOP)
    results = critflow.solve(model)
    origins = origin_masses(model, results)
    # every process mixes its inputs, so every flow downstream of the smelter carries the feed ratio
    # 100 / 400 = 25 % post-consumer, the dross loop included
    topo = results.inputs.topology
    for flow in ("crude", "dross", "cathode", "slag"):
        f = topo.flow_index[flow]
        share = origins["post_consumer"][0, 0, 0, f] / results.mass_kg[0, 0, 0, f]
        assert share == pytest.approx(0.25, abs=1e-12), flow
    ctx = Context(model, results)
    np.testing.assert_allclose(evaluate_indicator(ctx, "recycled_content"), 0.25, atol=1e-12)
    np.testing.assert_allclose(evaluate_indicator(ctx, "secondary_supply_share"), 0.25, atol=1e-12)


def test_origins_sum_to_the_flows_of_the_example():
    model = critflow.load_model(EXAMPLE)
    results = critflow.solve(model)
    origins = origin_masses(model, results)
    total = sum(origins.values())
    np.testing.assert_allclose(total, results.mass_kg, rtol=1e-9, atol=1e-9 * results.mass_kg.max())
    np.testing.assert_allclose(origins["post_consumer"], results.mass_kg, rtol=1e-9, atol=1e-6)


# --- shares of demand from recycling: traced through loops and stocks ---------------------------

EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"


def _interp(points: dict[int, float], years: np.ndarray) -> np.ndarray:
    """The model file's time series: linear between the given years, constant outside."""
    keys = sorted(points)
    return np.interp(years, keys, [points[k] for k in keys])


def ev_hand_shares(year: int) -> dict[str, float]:
    """Share of the EV example's demand (Li, Ni, Co in new packs) met by recycled material in
    ``year``, recomputed by hand from the model file's numbers.

    Demand is the packs sold (the market's one output). What the market gets from recycling in
    year t is collection (0.90) x recycling yield (Li 0.80, Ni 0.95, Co 0.95) x the element in the
    packs leaving the fleet in t. Packs leave by a Weibull lifetime (shape 2.3, scale 15.5 years):
    a cohort enters mid-year, so of cohort c a share SF(t-c-1/2) - SF(t-c+1/2) leaves in year t
    (1 - SF(1/2) in its own year), SF(a) = exp(-(a/15.5)^2.3). The fleet of end-2014 (cohorts
    2011-2014: 2000, 3000, 4000, 5000 t in use) entered as w_c = stock_c / SF(2014-c+1/2) t and
    has the composition of 2015's packs. Sales of year c: registrations x kWh x kg/kWh / 1000 t,
    with the element fractions of the cells (x 0.70 cell share) by the NMC/LFP mix.
    """
    import pandas as pd

    regs = pd.read_csv(ROOT / "examples/data/eu_bev_registrations.csv", comment="#")
    years = np.arange(2015, year + 1)
    registrations = regs.set_index("year").loc[years, "bev_registrations"].to_numpy(float)
    kwh = _interp({2015: 25, 2020: 50, 2024: 60, 2030: 65, 2050: 70}, years)
    lfp = _interp({2015: 0.0, 2020: 0.03, 2024: 0.10, 2030: 0.35, 2050: 0.40}, years)
    nmc_kg = _interp({2015: 5.51, 2020: 5.23, 2030: 4.99}, years)
    packs = registrations * kwh * ((1 - lfp) * nmc_kg + lfp * 6.66) / 1000  # t
    fractions = {
        "Li": 0.70 * ((1 - lfp) * 0.022 + lfp * 0.015),
        "Ni": 0.70 * (1 - lfp) * _interp({2015: 0.061, 2020: 0.109, 2030: 0.145}, years),
        "Co": 0.70 * (1 - lfp) * _interp({2015: 0.061, 2020: 0.036, 2030: 0.018}, years),
    }

    def survival(age):
        return np.exp(-((np.asarray(age, float) / 15.5) ** 2.3))

    def leaving(age):  # share of a cohort leaving in its year `age` (0: the year it entered)
        return np.where(
            age == 0, 1 - survival(0.5), survival(np.maximum(age - 0.5, 0)) - survival(age + 0.5)
        )

    initial = {2011: 2000.0, 2012: 3000.0, 2013: 4000.0, 2014: 5000.0}
    shares = {}
    recycled_sum = demand_sum = 0.0
    for element, fraction in fractions.items():
        element_in = packs * fraction
        end_of_life = (element_in * leaving(year - years)).sum()
        for c, in_use in initial.items():
            end_of_life += in_use / survival(2014 - c + 0.5) * fraction[0] * leaving(year - c)
        recycled = 0.90 * {"Li": 0.80, "Ni": 0.95, "Co": 0.95}[element] * end_of_life
        shares[element] = recycled / element_in[-1]
        recycled_sum += recycled
        demand_sum += element_in[-1]
    shares["SRM"] = recycled_sum / demand_sum  # Li, Ni, Co are all strategic raw materials
    return shares


@pytest.fixture(scope="module")
def ev():
    model = critflow.load_model(EV)
    return model, critflow.solve(model, ["baseline"])


@pytest.mark.parametrize("year", [2027, 2030, 2040])
def test_ev_example_shares_of_demand_from_recycling_by_hand(ev, year):
    model, results = ev
    ctx = Context(model, results)
    p = list(results.inputs.periods).index(year)
    hand = ev_hand_shares(year)
    for element in ("Li", "Ni", "Co", "SRM"):
        for name in ("secondary_supply_share", "eol_recycling_input_rate", "recycling_input_rate"):
            value = evaluate_indicator(ctx, name, element)[0, p]
            assert value == pytest.approx(hand[element], rel=1e-9), (name, element)
    # the model's own ratio (secondary Li / Li in new packs) says the same
    assert evaluate_indicator(ctx, "li_demand_covered_by_recycling")[0, p] == pytest.approx(
        hand["Li"], rel=1e-9
    )
    assert 0.02 < hand["Li"] < 0.5 and hand["SRM"] > hand["Li"]  # non-zero, as the README says


def test_a_recycling_plant_has_no_demand_so_no_share_of_it():
    # the shipped plant takes in only post-consumer cells: its inputs are 100 % secondary, which
    # says nothing about a region's supply; the shares are not available, with the reason
    model = critflow.load_model(EXAMPLE)
    ctx = Context(model, critflow.solve(model, ["baseline"]))
    for name in (
        "secondary_supply_share",
        "eol_recycling_input_rate",
        "recycling_input_rate",
        "old_scrap_ratio",
        "production_residue_share",
    ):
        with pytest.raises(IndicatorNotAvailableError, match="does not represent demand"):
            evaluate_indicator(ctx, name, "Li")


STOCKPILE = """
critflow: 1
name: a stockpile of recycled cobalt between a recycler and a market
time: {start: 2020, end: 2023}
elements: [Co]
processes:
  - {id: mine, kind: source}
  - {id: scrap_dealer, kind: source}
  - {id: market, kind: market, balancing: primary}
  - id: stockpile
    kind: stock
    lifetime: {distribution: fixed, mean: 1}
  - {id: users, kind: sink}
flows:
  - {id: primary, from: mine, to: market}
  - {id: scrap, from: scrap_dealer, to: stockpile, value: {2020: 40, 2021: 10, 2022: 0, 2023: 0}, origin: pre_consumer}
  - {id: release, from: stockpile, to: market, origin: as_entered}
  - {id: demand, from: market, to: users, value: 100}
"""


def test_secondary_origin_passes_through_a_stockpile():
    # A fixed lifetime of 1 year: what enters mid-year t is still there at the end of t
    # (SF(0.5) = 1) and has left by the end of t+1 (SF(1.5) = 0). Release: 2020 0, 2021 40,
    # 2022 10, 2023 0 t, all of it the pre-consumer scrap that entered a year before; demand is
    # 100 t each year, so the share of demand from recycling is 0 %, 40 %, 10 %, 0 % — the origin
    # crosses the year boundary inside the stock.
    model = model_text(STOCKPILE)
    results = critflow.solve(model)
    topo = results.inputs.topology
    release = results.mass_kg[0, :, 0, topo.flow_index["release"]] / 1000
    np.testing.assert_allclose(release, [0, 40, 10, 0], atol=1e-9)
    ctx = Context(model, results)
    np.testing.assert_allclose(
        evaluate_indicator(ctx, "secondary_supply_share")[0], [0.0, 0.40, 0.10, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(
        evaluate_indicator(ctx, "production_residue_share")[0], [0.0, 0.40, 0.10, 0.0], atol=1e-12
    )
    origins = origin_masses(model, results)
    np.testing.assert_allclose(sum(origins.values()), results.mass_kg, atol=1e-6)
    # relabelled instead (the default for a stock: products in use release end-of-life material)
    relabelled = model_text(STOCKPILE.replace(", origin: as_entered", ""))
    ctx = Context(relabelled, critflow.solve(relabelled))
    np.testing.assert_allclose(
        evaluate_indicator(ctx, "eol_recycling_input_rate")[0], [0.0, 0.40, 0.10, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(evaluate_indicator(ctx, "old_scrap_ratio")[0, 1:3], 1.0)


CLOSED_LOOP = """
critflow: 1
name: closed loop through products in use
time: {start: 2020, end: 2022}
elements: [Li, rest]
processes:
  - {id: mine, kind: source}
  - {id: factory, kind: market, balancing: primary}
  - id: in_use
    kind: stock
    lifetime: {distribution: fixed, mean: 1}
    initial_stock: {cohorts: {2019: 50}}
  - id: recycler
    kind: transfer
    transfer: {recycled: {default: 0, Li: 0.6}, residue: {default: 1, Li: 0.4}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: factory}
  - {id: sales, from: factory, to: in_use, value: 100, composition: {Li: 0.1}}
  - {id: end_of_life, from: in_use, to: recycler}
  - {id: recycled, from: recycler, to: factory}
  - {id: residue, from: recycler, to: landfill}
"""


def test_closed_loop_through_a_stock_by_hand():
    # Fixed lifetime 1 year: a cohort is in use at the end of its year (SF(0.5) = 1) and leaves
    # the next (SF(1.5) = 0). The end-2019 stock of 50 t (Li 10 %, the sales' composition) leaves
    # in 2020. Li: sales 10 t/a. End of life: 2020 5, 2021 10, 2022 10 t of Li; recycled 0.6 of
    # it: 3, 6, 6 t, which the factory takes instead of primary Li. Recycling meets 30 %, 60 %,
    # 60 % of the Li demand, all of it post-consumer (the stock releases end-of-life material).
    model = model_text(CLOSED_LOOP)
    ctx = Context(model, critflow.solve(model))
    for name in ("secondary_supply_share", "eol_recycling_input_rate", "recycling_input_rate"):
        np.testing.assert_allclose(
            evaluate_indicator(ctx, name, "Li")[0], [0.3, 0.6, 0.6], atol=1e-12
        )
    # the goods: 'rest' is never recovered, so 3, 6, 6 of 100 t
    np.testing.assert_allclose(
        evaluate_indicator(ctx, "secondary_supply_share")[0], [0.03, 0.06, 0.06], atol=1e-12
    )
    # EOL-RR: 0.6 of the end-of-life Li is back in the demand each year
    np.testing.assert_allclose(evaluate_indicator(ctx, "eol_recycling_rate", "Li")[0], 0.6)


def test_two_markets_need_a_named_consumption():
    text = CLOSED_LOOP.replace(
        "  - {id: landfill, kind: sink}",
        "  - {id: landfill, kind: sink}\n  - {id: scrap_market, kind: market, balancing: spare}"
        "\n  - {id: spare_source, kind: source}",
    ).replace(
        "  - {id: recycled, from: recycler, to: factory}",
        "  - {id: recycled, from: recycler, to: scrap_market}\n"
        "  - {id: spare, from: spare_source, to: scrap_market}\n"
        "  - {id: to_factory, from: scrap_market, to: factory, value: {Li: 8, rest: 0}}",
    )
    model = model_text(text)
    ctx = Context(model, critflow.solve(model))
    with pytest.raises(IndicatorNotAvailableError, match="2 markets"):
        evaluate_indicator(ctx, "secondary_supply_share", "Li")
    named = model_text(
        text.replace("    kind: stock\n", "    kind: stock\n    consumption: true\n")
    )
    ctx = Context(named, critflow.solve(named))
    # the scrap market sends 8 t of Li to the factory: the recycled 3, 6, 6 t and primary Li from
    # the spare source; the factory adds primary Li to 10 t. Recycled Li in the sales: 30, 60, 60 %
    np.testing.assert_allclose(
        evaluate_indicator(ctx, "secondary_supply_share", "Li")[0], [0.3, 0.6, 0.6], atol=1e-12
    )


@st.composite
def loop_models(draw) -> dict:
    """A market fed by primary supply, recycled end-of-life products and a stockpile of scrap;
    products in use by a Weibull lifetime, inflow- or stock-driven (a falling target retires
    surplus by the clip policy)."""
    years = draw(st.integers(2, 8))
    sales = draw(st.lists(st.floats(1.0, 1e4), min_size=years, max_size=years))
    scrap_share = draw(st.lists(st.floats(0.0, 0.3), min_size=years, max_size=years))
    scrap = [share * min(sales) for share in scrap_share]  # so that primary supply stays >= 0
    driven = draw(st.sampled_from(["inflow", "stock"]))
    fleet = {
        "id": "fleet",
        "kind": "stock",
        "lifetime": {
            "distribution": "weibull",
            "shape": draw(st.floats(0.8, 5.0)),
            "scale": draw(st.floats(0.5, 20.0)),
        },
        "initial_stock": {"total": draw(st.floats(0.0, 6.0)) * sales[0]},
        "driven_by": driven,
    }
    if driven == "stock":
        fleet["stock"] = {2000 + i: 5 * v for i, v in enumerate(sales)}  # may fall: clip
    sales_flow = {"id": "sales", "from": "market", "to": "fleet", "composition": {"Co": 0.2}}
    if driven == "inflow":
        sales_flow["value"] = {2000 + i: v for i, v in enumerate(sales)}
    collected = draw(st.floats(0.0, 1.0))
    recovered = draw(st.floats(0.0, 1.0))
    return {
        "critflow": 1,
        "name": "random loop",
        "time": {"start": 2000, "end": 2000 + years - 1},
        "elements": ["Co", "rest"],
        "processes": [
            {"id": "mine", "kind": "source"},
            {"id": "dealer", "kind": "source"},
            {"id": "market", "kind": "market", "balancing": "primary"},
            fleet,
            {
                "id": "stockpile",
                "kind": "stock",
                "lifetime": {"distribution": "fixed", "mean": draw(st.floats(0.5, 4.0))},
            },
            {
                "id": "collection",
                "kind": "transfer",
                "transfer": {
                    "to_recycler": {"default": collected},
                    "lost": {"default": 1 - collected},
                },
            },
            {
                "id": "recycler",
                "kind": "transfer",
                "transfer": {
                    "recycled": {"default": 0.0, "Co": recovered},
                    "residue": {"default": 1.0, "Co": 1 - recovered},
                },
            },
            {"id": "landfill", "kind": "sink"},
        ],
        "flows": [
            {"id": "primary", "from": "mine", "to": "market"},
            {
                "id": "scrap",
                "from": "dealer",
                "to": "stockpile",
                "value": {2000 + i: v for i, v in enumerate(scrap)},
                "composition": {"Co": 0.2},
                "origin": "pre_consumer",
            },
            {"id": "release", "from": "stockpile", "to": "market", "origin": "as_entered"},
            sales_flow,
            {"id": "end_of_life", "from": "fleet", "to": "collection"},
            {"id": "to_recycler", "from": "collection", "to": "recycler"},
            {"id": "lost", "from": "collection", "to": "landfill"},
            {"id": "recycled", "from": "recycler", "to": "market"},
            {"id": "residue", "from": "recycler", "to": "landfill"},
        ],
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loop_models())
def test_traced_origins_add_up_and_shares_stay_in_zero_one(spec):
    model = critflow.model_from_dict(spec)
    try:
        results = critflow.solve(model)
    except CritflowError:  # more recycled material than demand: the market cannot balance
        assume(False)
    scale = max(results.mass_kg.max(), 1.0)
    for traced in (origin_masses(model, results), role_masses(model, results)):
        np.testing.assert_allclose(sum(traced.values()), results.mass_kg, atol=1e-9 * scale)
        assert min(m.min() for m in traced.values()) > -1e-9 * scale
    ctx = Context(model, results)
    for name in ("secondary_supply_share", "eol_recycling_input_rate", "production_residue_share"):
        for element in (None, "Co", "SRM"):
            values = evaluate_indicator(ctx, name, element)
            defined = values[~np.isnan(values)]
            assert (defined >= -1e-9).all() and (defined <= 1 + 1e-9).all(), (name, element)


def test_origins_follow_the_surplus_a_falling_stockpile_retires():
    # A stock-driven stockpile (fixed 10-year lifetime: nothing leaves on its own) filled in 2020
    # with 60 t of pre-consumer scrap and 40 t of primary metal, held at 100 t in 2021, then cut
    # to 20 t in 2022: the clip policy retires 80 t from the cohorts in proportion, so what the
    # users get in 2022 is 60 % scrap, as what entered.
    model = model_text(
        """
        critflow: 1
        name: stockpile drawn down
        time: {start: 2020, end: 2022}
        elements: [Co]
        processes:
          - {id: mine, kind: source}
          - {id: dealer, kind: source}
          - {id: buyer, kind: market, balancing: primary}
          - id: stockpile
            kind: stock
            lifetime: {distribution: fixed, mean: 10}
            driven_by: stock
            stock: {2020: 100, 2021: 100, 2022: 20}
          - {id: users, kind: sink, consumption: true}
        flows:
          - {id: primary, from: mine, to: buyer}
          - {id: scrap, from: dealer, to: buyer, value: {2020: 60, 2021: 0, 2022: 0}, origin: pre_consumer}
          - {id: filling, from: buyer, to: stockpile}
          - {id: release, from: stockpile, to: users, origin: as_entered}
        """
    )
    results = critflow.solve(model)
    release = results.mass_kg[0, :, 0, results.inputs.topology.flow_index["release"]] / 1000
    np.testing.assert_allclose(release, [0, 0, 80], atol=1e-9)
    ctx = Context(model, results)
    assert evaluate_indicator(ctx, "secondary_supply_share")[0, 2] == pytest.approx(0.6, abs=1e-12)
    assert np.isnan(evaluate_indicator(ctx, "secondary_supply_share")[0, :2]).all()  # 0 / 0
    origins = origin_masses(model, results)
    np.testing.assert_allclose(sum(origins.values()), results.mass_kg, atol=1e-6)
