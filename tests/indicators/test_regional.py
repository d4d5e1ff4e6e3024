"""CRMA benchmarks of a regional model, against a small system computed by hand.

The system (Li and Co, kg = model unit t/a; Union EU = FL + EU-other; third countries CN, CL):

* mine[EU-other] extracts 10 t Li / 30 t Co as concentrate → refinery[EU-other] (refined 0.9,
  tailings 0.1): 9 t Li / 27 t Co refined to market[EU-other];
* mine[CL] extracts 100 t of each as concentrate → refinery[CN] (outside the Union), which sends
  0.2 of it refined to market[FL] (20 t) and 0.5 to market[EU-other] (50 t), tailings 0.3;
* collection[FL] gives 20 t of each as scrap → recycler[FL] (0.8 refined = 16 t to market[FL]);
* demand: FL 60 t, EU-other 140 t of each element → Union consumption 200 t;
* the balancing import of each market is split 50 % CN, 50 % CL: FL 60 - 20 - 16 = 24 (12 + 12),
  EU-other Li 140 - 9 - 50 = 81 (40.5 + 40.5), Co 140 - 27 - 50 = 63 (31.5 + 31.5).

Shares of Union consumption: extraction Li 10/200 = 5 %, Co 30/200 = 15 %; processing Li
9/200 = 4.5 %, Co 27/200 = 13.5 %; recycling 16/200 = 8 % for both; refined from CN Li
(20 + 50 + 12 + 40.5)/200 = 61.25 %, Co (20 + 50 + 12 + 31.5)/200 = 56.75 %; from CL Li
(12 + 40.5)/200 = 26.25 % (CL's concentrate goes to CN, not into the Union).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.engine import solve
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.indicators.regional import system_table
from critflow.model.load import model_from_text
from critflow.rules import check, load_rule_sets

SYSTEM = """
critflow: 1
name: small EU system
time: {start: 2030, end: 2030}
elements: [Li, Co]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, EU-other, CN, CL], groups: {EU: [FL, EU-other]}}
processes:
  - {id: mine, kind: source, over: {region: [EU-other, CL]}, activity: extraction}
  - {id: refinery, kind: transfer, over: {region: [EU-other, CN]}, activity: processing,
     transfer: {refined: {default: 0.9}, refined_cn: {default: {region: {CN>FL: 0.2, CN>EU-other: 0.5}}},
                tailings: {default: {region: {EU-other: 0.1, CN: 0.3}}}}}
  - {id: collection, kind: source, over: {region: [FL]}}
  - {id: recycler, kind: transfer, over: {region: [FL]}, activity: recycling,
     transfer: {recycled: {default: 0.8}, loss: {default: 0.2}}}
  - {id: world, kind: source}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
  - {id: waste, kind: sink}
flows:
  - {id: ore, from: mine, to: refinery, stage: concentrate,
     value: {region: {EU-other>EU-other: {Li: 10, Co: 30}, CL>CN: {Li: 100, Co: 100}}},
     trade: {region: {EU-other: [EU-other], CL: [CN]}}}
  - {id: refined, from: refinery, to: market, stage: refined}
  - {id: refined_cn, from: refinery, to: market, stage: refined, trade: {region: {CN: [FL, EU-other]}}}
  - {id: tailings, from: refinery, to: waste}
  - {id: scrap, from: collection, to: recycler, stage: scrap, value: {Li: 20, Co: 20}}
  - {id: recycled, from: recycler, to: market, stage: refined}
  - {id: loss, from: recycler, to: waste}
  - {id: imports, from: world, to: market, stage: refined, origin_shares: {region: {CN: 0.5, CL: 0.5}}}
  - {id: demand, from: market, to: use, value: {region: {FL: {Li: 60, Co: 60}, EU-other: {Li: 140, Co: 140}}}}
"""


@pytest.fixture(scope="module")
def solved():
    model = model_from_text(SYSTEM)
    return model, solve(model)


def _value(model, results, name, element=None):
    return float(evaluate_indicator(Context(model, results), name, element)[0, 0])


def test_hand_computed_shares(solved):
    model, results = solved
    expected = {
        ("eu_extraction_share", "Li"): 0.05,
        ("eu_extraction_share", "Co"): 0.15,
        ("eu_processing_share", "Li"): 0.045,
        ("eu_processing_share", "Co"): 0.135,
        ("eu_recycling_share", "Li"): 0.08,
        ("eu_recycling_share", "Co"): 0.08,
        ("largest_third_country_share", "Li"): 0.6125,
        ("largest_third_country_share", "Co"): 0.5675,
        # no element: the worst strategic raw material
        ("eu_extraction_share", None): 0.05,
        ("eu_processing_share", None): 0.045,
        ("largest_third_country_share", None): 0.6125,
    }
    for (name, element), value in expected.items():
        assert _value(model, results, name, element) == pytest.approx(value), (name, element)
    table = system_table(model, results).set_index("element")
    assert table.loc["Li", "consumption"] == pytest.approx(200.0)
    assert table.loc["Li", "country"] == "CN" and table.loc["Li", "stage"] == "refined"


def test_crma_rules_apply_without_hand_made_indicators(solved):
    model, results = solved
    rows = {r.rule: r for r in check(model, results, load_rule_sets(["crma"]))}
    assert rows["crma-extraction-2030"].status == "fail"
    assert rows["crma-extraction-2030"].value == pytest.approx(0.05)
    assert rows["crma-processing-2030"].status == "fail"
    assert rows["crma-recycling-2030"].value == pytest.approx(0.08)
    assert rows["crma-diversification-2030"].status == "pass"  # 61.25 % <= 65 %


def test_plant_model_stays_not_applicable():
    plant = model_from_text(
        """
critflow: 1
name: plant
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
processes:
  - {id: feed, kind: source}
  - {id: plant, kind: transfer, transfer: {product: {Li: 0.9}, loss: {Li: 0.1}}}
  - {id: out, kind: sink}
  - {id: lost, kind: sink}
flows:
  - {id: in, from: feed, to: plant, value: 10}
  - {id: product, from: plant, to: out}
  - {id: loss, from: plant, to: lost}
"""
    )
    rows = check(plant, solve(plant), load_rule_sets(["crma"]))
    assert {r.status for r in rows} == {"not applicable"}
    assert all("region dimension" in r.reason for r in rows)


REGIONS = ["A", "B", "C", "X", "Y"]


def _random_system(demand, domestic, recycled, imports_x):
    """Three Union regions (A, B, C) and two third countries (X, Y): each Union region consumes
    ``demand``, of which ``domestic`` is refined at home, ``recycled`` recycled at home and the
    rest imported, ``imports_x`` of it from X and the remainder from Y."""
    values = "{" + ", ".join(f"{r}: {v}" for r, v in zip("ABC", demand, strict=True)) + "}"
    dom = "{" + ", ".join(f"{r}: {v}" for r, v in zip("ABC", domestic, strict=True)) + "}"
    rec = "{" + ", ".join(f"{r}: {v}" for r, v in zip("ABC", recycled, strict=True)) + "}"
    shares = "{" + ", ".join(f"{r}: {v}" for r, v in zip("ABC", imports_x, strict=True)) + "}"
    return f"""
critflow: 1
name: random
time: {{start: 2030, end: 2030}}
elements: [Li]
dimensions:
  region: {{coordinates: {REGIONS}, groups: {{EU: [A, B, C], AB: [A, B]}}}}
processes:
  - {{id: refinery, kind: source, over: {{region: [A, B, C]}}, activity: processing}}
  - {{id: recycler, kind: source, over: {{region: [A, B, C]}}, activity: recycling}}
  - {{id: world, kind: source}}
  - {{id: market, kind: market, over: {{region: [A, B, C]}}, balancing: imports, consumption: true}}
  - {{id: use, kind: sink}}
flows:
  - {{id: refined, from: refinery, to: market, stage: refined, value: {{region: {dom}}}}}
  - {{id: recycled, from: recycler, to: market, stage: refined, value: {{region: {rec}}}}}
  - {{id: imports, from: world, to: market, stage: refined,
     origin_shares: {{region: {{X: {{region: {shares}}}, Y: "1 - x_{{0}}"}}}}}}
  - {{id: demand, from: market, to: use, value: {{region: {values}}}}}
"""


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(1.0, 1000.0), min_size=3, max_size=3),
)
def test_shares_bounded_and_additive_over_regions(dom_frac, rec_frac, x_share, demand):
    """Shares lie in [0, 1]; domestic + recycled + imports by country sum to 1; and a group's
    share is the consumption-weighted mean of its regions' (split or merge regions alike)."""
    domestic = [d * f * 0.5 for d, f in zip(demand, dom_frac, strict=True)]
    recycled = [d * f * 0.5 for d, f in zip(demand, rec_frac, strict=True)]
    text = _random_system(demand, domestic, recycled, x_share)
    # Y's share is the complement of X's in each region: write it per region, not as an expression
    text = text.replace(
        'Y: "1 - x_{0}"',
        "Y: {region: {"
        + ", ".join(f"{r}: {1 - v!r}" for r, v in zip("ABC", x_share, strict=True))
        + "}}",
    )
    model = model_from_text(text)
    results = solve(model)
    ctx = Context(model, results)
    processing = float(evaluate_indicator(ctx, "eu_processing_share", "Li")[0, 0])
    recycling = float(evaluate_indicator(ctx, "eu_recycling_share", "Li")[0, 0])
    largest = float(evaluate_indicator(ctx, "largest_third_country_share", "Li")[0, 0])
    from critflow.indicators.regional import third_country_shares

    by_country = {
        k: float(v[0, 0, 0]) for k, v in third_country_shares(model, results, "Li").items()
    }
    for value in (processing, recycling, largest, *by_country.values()):
        assert -1e-12 <= value <= 1 + 1e-12
    assert processing + recycling + sum(by_country.values()) == pytest.approx(1.0)
    assert largest == pytest.approx(max(by_country.values()))
    total = sum(demand)
    assert processing == pytest.approx(sum(domestic) / total)
    # merging: the group AB's share is the AB-weighted mean of A's and B's own shares
    shares = []
    for union in ("A", "B", "AB"):
        model.spec.scope["region"] = union
        shares.append(
            float(evaluate_indicator(Context(model, results), "eu_processing_share", "Li")[0, 0])
        )
    model.spec.scope.pop("region")
    a, b = demand[0], demand[1]
    assert shares[2] == pytest.approx((shares[0] * a + shares[1] * b) / (a + b))
    assert np.isfinite(shares).all()


EXAMPLE_REGIONS = Path(__file__).parents[2] / "examples" / "eu_battery_materials_regions.yaml"


@pytest.fixture(scope="module")
def battery_regions():
    from critflow.model.load import load_model

    model = load_model(EXAMPLE_REGIONS)
    return model, solve(model)


def _weibull_outflow(inflow: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """End-of-life outflow by year of an inflow series, computed here without critflow: a cohort
    enters mid-year and leaves by a Weibull survival SF(a) = exp(-(a / scale) ** shape), so in its
    first year 1 - SF(0.5) of it leaves, in year k after SF(k - 0.5) - SF(k + 0.5)."""
    n = inflow.size
    age = np.arange(n)
    sf_end = np.exp(-(((age + 0.5) / scale) ** shape))
    sf_start = np.concatenate([[1.0], sf_end[:-1]])
    leave = sf_start - sf_end  # share of a cohort leaving in its k-th year (k = 0, 1, ...)
    return np.array([inflow[: t + 1][::-1] @ leave[: t + 1] for t in range(n)])


def _with_history(inflow: np.ndarray, initial: float, shape: float, scale: float) -> np.ndarray:
    """The outflow of ``inflow`` and of an initial stock ``initial`` (end of the year before the
    first) held by a constant inflow over the 400 years before: a cohort that entered j years
    before the first has SF(j - 0.5) of itself in use then."""
    history = 400
    survival = np.exp(-(((np.arange(1, history + 1) - 0.5) / scale) ** shape))
    level = initial / survival.sum()
    series = np.concatenate([np.full(history, level), inflow])
    return _weibull_outflow(series, shape, scale)[history:]


def test_example_eu_battery_materials_regions(battery_regions):
    """The example's shares from its cited inputs (examples/data/regions/sources.csv), computed
    independently of the engine for the Union (all three regions share lifetimes, collection and
    recovery, so the Union's end of life is the Weibull outflow of the EU's sales):

    * Co consumed in 2015: portable 214 000 t x 0.19 Li-ion x 0.8 cells x 0.181 (LCO) + EV
      49 000 cars x 25 kWh x 5.51 kg/kWh x 0.7 x 0.061 = 5887.6 + 288.2 t;
    * recycled Co = end of life x collection x recovery, summed over EV, portable and stationary;
    * the balancing supply is consumption - recycled, split by origin: EU processing of Co is
      (0.62 Finland + 0.29 Belgium) of it, of Ni 0.17, of Mn 0.14, of Li and graphite 0; the
      largest single third country Li Chile 0.79, Co China 0.02 (RoW is no single country),
      Ni Russia 0.29, Mn Norway 0.21, graphite China 0.40 of the supply."""
    import pandas as pd

    model, results = battery_regions
    ctx = Context(model, results)
    periods = list(results.inputs.periods)
    years = np.arange(2015, 2051)
    assert periods == list(years)
    table = system_table(model, results).set_index(["period", "element"])
    co_2015 = 214000 * 0.19 * 0.8 * 0.181 + 49000 * 25 * 5.51 / 1000 * 0.7 * 0.061
    assert table.loc[(2015, "Co"), "consumption"] == pytest.approx(co_2015, rel=1e-12)

    # the Union's recycled Co, by an independent cohort calculation
    bev = pd.read_csv(EXAMPLE_REGIONS.parent / "data" / "eu_bev_registrations.csv", comment="#")
    bev = bev.set_index("year").bev_registrations.reindex(years).to_numpy(float)

    def series(points):
        keys = sorted(points)
        return np.interp(years, keys, [points[k] for k in keys])

    lfp = series({2015: 0.0, 2020: 0.03, 2024: 0.10, 2030: 0.35, 2050: 0.40})
    kwh = series({2015: 25, 2020: 50, 2024: 60, 2030: 65, 2050: 70})
    nmc_kg = series({2015: 5.51, 2020: 5.23, 2030: 4.99})
    ev_packs = bev * kwh * ((1 - lfp) * nmc_kg + lfp * 6.66) / 1000
    ev_co = ev_packs * 0.7 * (1 - lfp) * series({2015: 0.061, 2020: 0.036, 2030: 0.018})
    portable = series({2016: 214000, 2022: 244000}) * series({2015: 0.19, 2017: 0.21})
    portable_co = portable * 0.8 * 0.181
    # the initial stock (end of 2014: 14 000 t of EV packs, 215 500 t of portable Li-ion) has the
    # 2015 sales' composition and the ages a steady inflow would leave: a constant inflow before
    # 2015 that leaves that total in use
    ev_eol = _with_history(ev_co, 14000 * ev_co[0] / ev_packs[0], 2.3, 15.5)
    portable_eol = _with_history(portable_co, 215500 * 0.8 * 0.181, 2.0, 6.0)
    collected = ev_eol * 0.9 + portable_eol * series({2018: 0.145, 2027: 0.63, 2030: 0.73})
    recycled_co = collected * series({2027: 0.90, 2031: 0.95})
    consumption_co = ev_co + portable_co  # stationary storage is LFP: no Co
    for year in (2020, 2030, 2040, 2050):
        i = year - 2015
        assert table.loc[(year, "Co"), "consumption"] == pytest.approx(consumption_co[i])
        assert table.loc[(year, "Co"), "recycling_share"] == pytest.approx(
            recycled_co[i] / consumption_co[i], rel=1e-9
        ), year

    for year in (2030, 2050):
        p = periods.index(year)
        primary = {e: 1 - table.loc[(year, e), "recycling_share"] for e in ("Li", "Co", "Ni", "Mn")}
        primary["C"] = 1.0  # no graphite recovered
        expected = {
            ("eu_processing_share", "Co"): 0.91 * primary["Co"],
            ("eu_processing_share", "Ni"): 0.17 * primary["Ni"],
            ("eu_processing_share", "Mn"): 0.14 * primary["Mn"],
            ("eu_processing_share", "Li"): 0.0,
            ("eu_processing_share", "C"): 0.0,
            ("eu_recycling_share", "C"): 0.0,
            ("largest_third_country_share", "Li"): 0.79 * primary["Li"],
            ("largest_third_country_share", "Co"): 0.02 * primary["Co"],
            ("largest_third_country_share", "Ni"): 0.29 * primary["Ni"],
            ("largest_third_country_share", "Mn"): 0.21 * primary["Mn"],
            ("largest_third_country_share", "C"): 0.40,
        }
        for (name, element), value in expected.items():
            got = float(evaluate_indicator(ctx, name, element)[0, p])
            assert got == pytest.approx(value, abs=1e-9), (year, name, element)
        countries = {e: table.loc[(year, e), "country"] for e in ("Li", "Co", "Ni", "Mn", "C")}
        assert countries == {"Li": "CL", "Co": "CN", "Ni": "RU", "Mn": "NO", "C": "CN"}

    # Flanders' EV sales in 2030: the EU's x 6774807 / 448387872 (population share)
    flows = results.flows()
    fl = flows[
        (flows.flow == "sales")
        & (flows.region == "FL")
        & (flows["product"] == "EV")
        & (flows.period == 2030)
    ]
    p30 = 2030 - 2015
    assert fl.value.sum() == pytest.approx(ev_packs[p30] * 6774807 / 448387872)
    rows = {r.rule: r for r in check(model, results, load_rule_sets(["crma"]), year=2030)}
    assert rows["crma-diversification-2030"].status == "fail"  # Li from Chile, 73.7 % > 65 %
    assert rows["crma-extraction-2030"].status == "not applicable"  # no EU extraction modelled


def test_readme_quotes_the_example_as_it_runs(battery_regions):
    """The figures the README's 'Regions and trade' section quotes for the example are the ones
    it gives (rounded as written there)."""
    model, results = battery_regions
    t = system_table(model, results).set_index(["period", "element"])
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    text = " ".join(
        readme[readme.index("`examples/eu_battery_materials_regions.yaml` covers") :][:3000].split()
    )

    def pct(year, element, column, digits=0):
        return f"{100 * t.loc[(year, element), column]:.{digits}f} %"

    def kt(element, digits=1):
        return f"{t.loc[(2030, element), 'consumption'] / 1000:.{digits}f} kt"

    quoted = [
        f"Li {kt('Li')}, Co {kt('Co')}, Ni {kt('Ni', 0)}, Mn {kt('Mn')}, graphite {kt('C', 0)}",
        f"processing Co {pct(2030, 'Co', 'processing_share')}, Ni "
        f"{pct(2030, 'Ni', 'processing_share')}, Mn {pct(2030, 'Mn', 'processing_share')}",
        f"recycling Co {pct(2030, 'Co', 'recycling_share')}, Mn "
        f"{pct(2030, 'Mn', 'recycling_share')}, Ni {pct(2030, 'Ni', 'recycling_share', 1)}, Li "
        f"{pct(2030, 'Li', 'recycling_share', 1)}",
        f"Li Chile {pct(2030, 'Li', 'largest_third_country_share')}",
        f"graphite China {pct(2030, 'C', 'largest_third_country_share')}",
        f"Ni Russia {pct(2030, 'Ni', 'largest_third_country_share')}, Mn Norway "
        f"{pct(2030, 'Mn', 'largest_third_country_share')}, Co China "
        f"{pct(2030, 'Co', 'largest_third_country_share', 1)}",
        f"Co {pct(2050, 'Co', 'recycling_share')}, Ni {pct(2050, 'Ni', 'recycling_share')}, Mn "
        f"{pct(2050, 'Mn', 'recycling_share')} and Li {pct(2050, 'Li', 'recycling_share')}",
        f"Li falls to {pct(2050, 'Li', 'largest_third_country_share')}",
    ]
    for phrase in quoted:
        assert phrase in text, phrase


def test_example_for_flanders_counts_the_union_as_intra_eu(battery_regions):
    """With scope FL the example's third countries are the EU's (supply from BE-other or
    EU-other is never a third country's) and Flanders' Co processing is Belgium's 0.29 of the
    Union's primary Co over Flanders' population share of consumption."""
    from critflow.model.load import model_from_text

    text = EXAMPLE_REGIONS.read_text(encoding="utf-8").replace(
        "scope: {region: EU}", "scope: {region: FL}"
    )
    text = text.replace("file: data/", f"file: {EXAMPLE_REGIONS.parent.as_posix()}/data/")
    model, results = battery_regions
    eu = system_table(model, results).set_index(["period", "element"])
    flanders = model_from_text(text, allow_outside_files=True)
    fl = system_table(flanders, solve(flanders)).set_index(["period", "element"])
    for element in ("Li", "Co", "Ni", "Mn", "C"):
        row = fl.loc[(2030, element)]
        assert row["country"] == eu.loc[(2030, element), "country"]
        assert row["largest_third_country_share"] == pytest.approx(
            eu.loc[(2030, element), "largest_third_country_share"]
        )
    expected = 0.29 * (1 - eu.loc[(2030, "Co"), "recycling_share"]) * 448387872 / 6774807
    assert fl.loc[(2030, "Co"), "processing_share"] == pytest.approx(expected)


def test_readme_regions_example():
    """The model in the README's 'Regions and trade' section, by hand: Union Li consumption
    0.05 x (500 + 4000 + 4000) = 425 t; EU processing is FL's 0.9 x 2 = 1.8 t; from CN: refined
    0.3 x 20 + 0.5 x 20 = 16 t plus 0.6 of the imports (425 - 1.8 - 16 = 407.2 t) = 244.32 t."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Regions and trade") :]
    text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    model = model_from_text(text)
    results = solve(model)
    assert _value(model, results, "eu_processing_share", "Li") == pytest.approx(1.8 / 425)
    assert _value(model, results, "largest_third_country_share", "Li") == pytest.approx(
        (16 + 0.6 * 407.2) / 425
    )


def test_traced_demand_shares_are_the_unions():
    """Roadmap 1.1 (eol_recycling_input_rate) on the small system, with the scrap post-consumer:
    EU: 16 t recycled / 200 t consumed = 8 %; with scope region FL: 16 / 60 (FL's demand); the
    whole system without a Union would give the same 16 / 200 here, so FL shows the restriction."""
    text = SYSTEM.replace("stage: scrap, value:", "stage: scrap, origin: post_consumer, value:")
    model = model_from_text(text)
    results = solve(model)
    assert _value(model, results, "eol_recycling_input_rate", "Li") == pytest.approx(0.08)
    flanders = model_from_text(text.replace("scope: {region: EU}", "scope: {region: FL}"))
    assert _value(flanders, solve(flanders), "eol_recycling_input_rate", "Li") == pytest.approx(
        16 / 60
    )
