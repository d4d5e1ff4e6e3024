"""The Ellen MacArthur Material Circularity Indicator: the product formula (2015 and 2019 methods),
its bounds, and the MCI of a model whose products enter a stock, against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import critflow
from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.indicators.catalogue import Context, IndicatorNotAvailableError, evaluate_indicator
from critflow.indicators.circularity import (
    MCINotApplicableError,
    material_circularity,
    model_circularity,
)
from critflow.report.content import circularity_section
from tests.conftest import EXAMPLE, ROOT, model_text
from tests.conftest import critflow_cli as run_critflow

EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"

# Copper wire: 100 t/a in 2020 rising to 200 t/a in 2030 (linear), five years in use (fixed
# lifetime), 60 % of end-of-life wire collected, 90 % of that recycled back into wire production.
WIRE = """
critflow: 1
name: copper wire
time: {start: 2020, end: 2030}
unit: t/a
elements: [Cu]
processes:
  - {id: mine, kind: source}
  - {id: production, kind: market, balancing: primary}
  - id: use
    kind: stock
    lifetime: {distribution: fixed, mean: 5}
  - id: collection
    kind: transfer
    transfer: {to_recycling: {default: 0.6}, uncollected: {default: 0.4}}
  - id: recycling
    kind: transfer
    transfer: {secondary: {default: 0.9}, recycling_losses: {default: 0.1}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: production}
  - {id: wire, from: production, to: use, value: {2020: 100, 2030: 200}, product: copper wire}
  - {id: end_of_life, from: use, to: collection}
  - {id: to_recycling, from: collection, to: recycling}
  - {id: uncollected, from: collection, to: landfill, fate: landfill}
  - {id: secondary, from: recycling, to: production}
  - {id: recycling_losses, from: recycling, to: landfill, fate: landfill}
"""


def wire_mci(**kwargs):
    model = model_text(WIRE)
    results = critflow.solve(model)
    return model, results, model_circularity(model, results, **kwargs)


def test_hand_computed_mci_of_a_product_in_use():
    # 2030: wire made M = 200 t; end of life = the 2025 cohort (fixed 5-year life) = 150 t;
    # collected 0.6 · 150 = 90 t, recycled 0.9 · 90 = 81 t, all back into wire: F_R = 81/200 = 0.405
    # EMF: V = 200 (1 − 0.405) = 119; W0 = 200 (1 − 0.6) = 80; W_C = 200 (1 − 0.9) 0.6 = 12;
    # W_F = 200 (1 − 0.9) 0.405 / 0.9 = 9; W = 80 + (9 + 12)/2 = 90.5;
    # LFI = (119 + 90.5) / (400 + (9 − 12)/2) = 209.5 / 398.5 = 0.525721; X = 1, F(X) = 0.9;
    # MCI = 1 − 0.9 · 0.525721 = 0.526851
    model, results, inputs = wire_mci()
    periods = list(results.inputs.periods)
    p = periods.index(2030)
    shares = inputs.shares()
    assert shares["F_R"][0, p] == pytest.approx(0.405, abs=1e-12)
    assert shares["C_R"][0, p] == pytest.approx(0.6, abs=1e-12)
    assert shares["E_C"][0, p] == pytest.approx(0.9, abs=1e-12)
    assert shares["E_F"][0, p] == pytest.approx(0.9, abs=1e-12)
    assert shares["C_U"][0, p] == pytest.approx(0.0, abs=1e-12)
    assert inputs.recycling_processes == ("recycling",)
    result = inputs.result()
    assert result.lfi[0, p] == pytest.approx(209.5 / 398.5, abs=1e-12)
    assert result.mci[0, p] == pytest.approx(1 - 0.9 * 209.5 / 398.5, abs=1e-12)
    assert result.mci[0, p] == pytest.approx(0.526851, abs=5e-7)
    # 2027: M = 170, end of life = 2022's 120 t → recycled 64.8, F_R = 64.8/170
    q = periods.index(2027)
    assert shares["F_R"][0, q] == pytest.approx(64.8 / 170, abs=1e-12)
    # before 2025 nothing has reached its end of life: the MCI is not defined (NaN, shown as —)
    assert np.isnan(result.mci[0, periods.index(2024)])
    # the same number through the indicator catalogue, per element and for the goods
    ctx = Context(model, results)
    for element in (None, "Cu"):
        value = evaluate_indicator(ctx, "material_circularity", element)[0, p]
        assert value == pytest.approx(1 - 0.9 * 209.5 / 398.5, abs=1e-12)


def test_2015_and_2019_methods_and_the_simplified_denominator():
    # For technical materials the two methods agree (no biological feedstock or composting) …
    _, _, emf2015 = wire_mci(method="emf-2015")
    _, _, emf2019 = wire_mci(method="emf-2019")
    np.testing.assert_array_equal(emf2015.result().mci, emf2019.result().mci)
    # … and differ where the 2019 revision added the biological cycle. A product half from
    # sustained biological feedstock (F_S = 0.5) and 30 % composted (C_C = 0.3):
    # 2015 (no F_S, C_C): V = 1, W0 = 1, LFI = 2/2 = 1, MCI = 1 − 0.9 = 0.1
    # 2019: V = 0.5, W0 = 0.7, LFI = 1.2/2 = 0.6, MCI = 1 − 0.54 = 0.46
    bio = dict(sustained_biological_feedstock=0.5, collected_for_composting=0.3)
    assert float(material_circularity(**bio, method="emf-2015").mci) == pytest.approx(0.1)
    assert float(material_circularity(**bio, method="emf-2019").mci) == pytest.approx(0.46)
    # energy recovery (C_E, biological materials) counts in 2019 only: C_E = 0.4 → W0 = 0.6
    assert float(
        material_circularity(collected_for_energy_recovery=0.4, method="emf-2019").lfi
    ) == pytest.approx(1.6 / 2)
    # In the wire model of 2030 W_F = 9 ≠ W_C = 12: the simplified 2M denominator gives
    # LFI = 209.5 / 400 and MCI = 1 − 0.9 · 0.52375 = 0.528625
    _, results, simplified = wire_mci(lfi_denominator="2M")
    p = list(results.inputs.periods).index(2030)
    assert simplified.result().mci[0, p] == pytest.approx(1 - 0.9 * 209.5 / 400, abs=1e-12)
    # The (W_F − W_C)/2 term keeps LFI within [0, 1]: wire made entirely of scrap from a process
    # that recovers 20 % (W_F = 4 M) and landfilled at end of life: EMF LFI = 3/4, MCI 0.325;
    # with 2M, LFI = 3/2 and MCI = 0 — worse than all-virgin wire (0.1), which the method excludes
    scrap = dict(recycled_feedstock=1.0, recycling_efficiency_feedstock=0.2)
    assert float(material_circularity(**scrap).lfi) == pytest.approx(0.75)
    assert float(material_circularity(**scrap).mci) == pytest.approx(1 - 0.9 * 0.75)
    assert float(material_circularity(**scrap, lfi_denominator="2M").lfi) == pytest.approx(1.5)
    assert float(material_circularity(**scrap, lfi_denominator="2M").mci) == 0.0


shares = st.floats(0, 1, allow_nan=False)
efficiency = st.floats(1e-6, 1, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    feed=st.lists(shares, min_size=3, max_size=3),
    end=st.lists(shares, min_size=4, max_size=4),
    e_c=efficiency,
    e_f=efficiency,
    lifetime=st.floats(1, 100, allow_nan=False),
    intensity=st.floats(1, 100, allow_nan=False),
    mass=st.floats(1e-300, 1e308, allow_nan=False),
    method=st.sampled_from(["emf-2015", "emf-2019"]),
)
def test_mci_bounds(feed, end, e_c, e_f, lifetime, intensity, mass, method):
    # valid inputs: feedstock shares and end-of-use shares each add up to at most 1
    f_r, f_u, f_s = np.asarray(feed) / max(1.0, sum(feed))
    c_r, c_u, c_c, c_e = np.asarray(end) / max(1.0, sum(end))
    result = material_circularity(
        mass=mass,
        recycled_feedstock=f_r,
        reused_feedstock=f_u,
        sustained_biological_feedstock=f_s,
        collected_for_recycling=c_r,
        collected_for_reuse=c_u,
        collected_for_composting=c_c,
        collected_for_energy_recovery=c_e,
        recycling_efficiency_eol=e_c,
        recycling_efficiency_feedstock=e_f,
        lifetime_ratio=lifetime,
        use_intensity_ratio=intensity,
        method=method,
    )
    assert -1e-12 <= float(result.lfi) <= 1 + 1e-12
    # utility at least the industry average (X >= 1): MCI between 0.1 and 1
    assert 0.1 - 1e-12 <= float(result.mci) <= 1 + 1e-12
    # below-average utility can only lower it, never below 0
    short = material_circularity(
        recycled_feedstock=f_r, collected_for_recycling=c_r, lifetime_ratio=1 / lifetime
    )
    assert 0.0 <= float(short.mci) <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recycled_feedstock": 1.2}, "recycled_feedstock"),
        ({"collected_for_recycling": float("nan")}, "collected_for_recycling"),
        ({"recycling_efficiency_eol": 0.0}, "recycling_efficiency_eol"),
        ({"mass": 0.0}, "mass"),
        ({"lifetime_ratio": float("inf")}, "lifetime_ratio"),
        ({"recycled_feedstock": 0.7, "reused_feedstock": 0.6}, r"F_R \+ F_U \+ F_S exceed 1"),
    ],
)
def test_invalid_inputs_are_refused(kwargs, message):
    with pytest.raises(CritflowError, match=message):
        material_circularity(**kwargs)


def test_huge_mass_gives_the_same_mci():
    kwargs = dict(recycled_feedstock=0.3, collected_for_recycling=0.6, recycling_efficiency_eol=0.8)
    assert float(material_circularity(mass=1e308, **kwargs).mci) == pytest.approx(
        float(material_circularity(mass=1.0, **kwargs).mci), abs=1e-15
    )


def test_not_applicable_without_products_in_use():
    # a plant model (no stock of products in use): not applicable, with the reason
    hydromet = critflow.load_model(EXAMPLE)
    ctx = Context(hydromet, critflow.solve(hydromet, ["baseline"]))
    with pytest.raises(
        IndicatorNotAvailableError, match="not applicable, because the model has no stock"
    ):
        evaluate_indicator(ctx, "material_circularity")
    assert circularity_section(Run(hydromet, ctx.results)) is None
    # a stock whose inflow names no product
    unnamed = model_text(WIRE.replace(", product: copper wire", ""))
    with pytest.raises(MCINotApplicableError, match="no flow into a stock names its product"):
        model_circularity(unnamed, critflow.solve(unnamed))
    # the command says so instead of printing a number
    result = run_critflow("indicators", str(EXAMPLE), "--scenario", "baseline", "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["indicator"] == "material_circularity"]
    assert row["value"] is None and row["reason"].startswith("not applicable, because")


def test_ev_example_mci_against_its_own_flows():
    # Not a model designed for the MCI: the EU EV battery fleet. Hand check for Li in 2030 from
    # the solved flows: F_R = secondary / sales (all secondary Li comes from end-of-life packs),
    # C_R = collection_to_recycling = 0.9, E_C = E_F = 0.8 (Li to secondary in recycling)
    model = critflow.load_model(EV)
    results = critflow.solve(model, ["baseline"])
    topo = results.inputs.topology
    p = list(results.inputs.periods).index(2030)
    li = topo.elements.index("Li")
    flow = {f: results.mass_kg[0, p, li, topo.flow_ids.index(f)] for f in topo.flow_ids}
    f_r = flow["secondary"] / flow["sales"]
    assert f_r == pytest.approx(0.0657, abs=5e-4)  # 6.6 % of Li demand from recycling in 2030
    c_r, e_c, e_f = 0.9, 0.8, 0.8
    assert flow["to_recycling"] / flow["end_of_life"] == pytest.approx(c_r)
    v, w0 = 1 - f_r, 1 - c_r
    w_c, w_f = (1 - e_c) * c_r, (1 - e_f) * f_r / e_f
    lfi = (v + w0 + (w_f + w_c) / 2) / (2 + (w_f - w_c) / 2)
    ctx = Context(model, results)
    mci = evaluate_indicator(ctx, "material_circularity", "Li")[0, p]
    assert mci == pytest.approx(1 - 0.9 * lfi, abs=1e-12)
    # the report shows it for this model, with the same number
    section = circularity_section(Run(model, results))
    (row,) = [r for r in section["parts"] if r["element"] == "Li"]
    assert section["period"] == 2050 and row["C_R"] == pytest.approx(0.9)
    assert section["recycling"] == ["recycling"]
    (li_row,) = [r for r in section["rows"] if r["element"] == "Li"]
    assert 2030 in section["periods"] or len(section["periods"]) == 9
    last = evaluate_indicator(ctx, "material_circularity", "Li")[0, -1]
    assert li_row["values"][-1] == pytest.approx(last, abs=1e-12)


# The wire of WIRE with 10 % tin, sold after recycling as copper scrap: the copper counts as
# recycled, the tin dissolved in it does not (fate per element).
TIN_WIRE = (
    WIRE.replace("elements: [Cu]", "elements: [Cu, Sn]")
    .replace(
        "value: {2020: 100, 2030: 200}, product: copper wire}",
        "value: {2020: 100, 2030: 200}, composition: {Cu: 0.9, Sn: 0.1}, product: copper wire}",
    )
    .replace("{secondary: {default: 0.9}", "{scrap_sold: {default: 0.9}")
    .replace(
        "  - {id: secondary, from: recycling, to: production}",
        "  - {id: scrap_sold, from: recycling, to: landfill, fate: {default: recycled, Sn: lost}}",
    )
)


def test_mci_reads_the_fate_of_each_element():
    # 2030, nothing returns to production (F_R = 0), end of life 150 t, 60 % collected, 90 % of it
    # leaves as scrap whose copper is recycled and whose tin is lost.
    # Cu: M = 180, V = 180, W0 = 180 · 0.4 = 72, W_C = 180 · (1 − 0.9) · 0.6 = 10.8, W_F = 0,
    #     W = 72 + 10.8/2 = 77.4, LFI = (180 + 77.4) / (360 − 10.8/2) = 257.4/354.6
    # Sn: M = 20, E_C = 0: W0 = 8, W_C = 20 · 1 · 0.6 = 12, W = 8 + 6 = 14,
    #     LFI = (20 + 14) / (40 − 6) = 1, MCI = 1 − 0.9 = 0.1
    model = model_text(TIN_WIRE)
    results = critflow.solve(model)
    inputs = model_circularity(model, results)
    p = list(results.inputs.periods).index(2030)
    assert inputs.shares("Cu")["E_C"][0, p] == pytest.approx(0.9, abs=1e-12)
    assert inputs.shares("Sn")["E_C"][0, p] == pytest.approx(0.0, abs=1e-12)
    assert inputs.result("Cu").mci[0, p] == pytest.approx(1 - 0.9 * 257.4 / 354.6, abs=1e-12)
    assert inputs.result("Sn").mci[0, p] == pytest.approx(0.1, abs=1e-12)
