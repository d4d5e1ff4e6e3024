"""Displacement credits: one factor path (scenario override, else impact.factors, else background)
for burdens, credits and Monte Carlo; what a co-product that displaces nothing carries under the
CFF; the supply-route and GWP-basis caveats of the shipped factors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import critflow
from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.impact import assess, circular_footprint
from critflow.report.content import RunInfo
from critflow.report.html import render
from tests.conftest import critflow_cli, model_text

COPPER = """
critflow: 1
name: copper scrap refinery
time: {start: 2025, end: 2026}
unit: t/a
elements: [Cu, rest]
processes:
  - {id: scrap_yard, kind: source}
  - id: refinery
    kind: transfer
    inventory: {electricity: 1000 kWh/t}
    transfer:
      cathode: {default: 0.0, Cu: 1.0}
      slag: {default: 1.0, Cu: 0.0}
  - {id: customers, kind: sink}
  - {id: dump, kind: sink}
flows:
  - {id: scrap, from: scrap_yard, to: refinery, value: 1000, composition: {Cu: 0.95}}
  - {id: cathode, from: refinery, to: customers, product: copper cathode, DISPLACES}
  - {id: slag, from: refinery, to: dump, SLAG}
impact:
  electricity: 475 g/kWh
  allocation: RULE
  cff_A: 0.2
  FACTORS
scenarios:
  baseline: {}
  cleaner_primary: {impact: {factors: {primary_copper: 3.0 kg/kg}}}
"""

# Hand calculation. The refinery processes 1000 t/a of scrap (its inventory basis) with
# 1000 kWh/t at 0.475 kg CO2-eq/kWh: 475,000 kg CO2-eq/a. Cu 0.95 of the scrap all goes to the
# cathode: 950 t/a, the only product, so its burden per kg is E_recycled = 475,000 / 950,000 = 0.5.
# PEF Circular Footprint Formula (Commission Recommendation (EU) 2021/2279, Annex C), material part:
#   (1 − R1)·Ev + R1·(A·E_recycled + (1 − A)·Ev·Qs_in/Qp) + (1 − A)·R2·(E_recEoL − E*v·Qs_out/Qp)
# The cathode is a secondary material leaving the plant: R1 = 1, R2 = 0 (its own end of life is
# outside the gate), A = 0.2, Qs/Qp = 0.9, and the virgin copper it substitutes is the overridden
# Ev = E*v = 4.0 kg CO2-eq/kg:
#   F = 0·4.0 + 1·(0.2·0.5 + 0.8·4.0·0.9) + 0.8·0·(…) = 0.1 + 2.88 = 2.98
# With the shipped 2.8 instead (the bug: the credit ignored the override) 0.1 + 0.8·2.8·0.9 = 2.116.
G = 475_000 / 950_000
A, QS_QP, EV_OWN, EV_SHIPPED, EV_SCENARIO = 0.2, 0.9, 4.0, 2.8, 3.0
CATHODE_KG = 950_000.0


def copper(
    rule: str = "cff",
    factors: str = "factors: {primary_copper: 4.0 kg/kg}",
    displaces: str = "displaces: {material: primary_copper, ratio: 0.9}",
    slag: str = "fate: landfill",
):
    text = (
        COPPER.replace("RULE", rule)
        .replace("FACTORS", factors)
        .replace("DISPLACES", displaces)
        .replace("SLAG", slag)
    )
    model = model_text(text)
    return model, critflow.solve(model)


def footprint(impacts, product: str, scenario: str = "baseline") -> np.ndarray:
    table = impacts.product_table()
    rows = table[(table["product"] == product) & (table["scenario"] == scenario)]
    return rows["footprint_per_kg"].to_numpy()


def test_cff_credit_follows_an_overridden_factor():
    model, results = copper()
    impacts = assess(model, results)
    assert footprint(impacts, "copper cathode") == pytest.approx([2.98, 2.98], abs=1e-12)
    # the same number from the library's full formula (R1 = 1, R2 = 0)
    assert circular_footprint(A=A, R1=1, R2=0, Ev=EV_OWN, E_recycled=G, Qs_in_Qp=QS_QP)[
        "total"
    ] == pytest.approx(2.98, abs=1e-12)
    # the credit (displaced primary burden) uses the override too: 950 t × 4.0 × 0.9
    s = impacts.scenarios.index("baseline")
    assert impacts.credits[s] == pytest.approx([CATHODE_KG * EV_OWN * QS_QP] * 2, rel=1e-12)
    # a scenario's own factor wins over the model's: 0.1 + 0.8·3.0·0.9 = 2.26; 950 t × 3.0 × 0.9
    assert footprint(impacts, "copper cathode", "cleaner_primary") == pytest.approx(
        [2.26, 2.26], abs=1e-12
    )
    c = impacts.scenarios.index("cleaner_primary")
    assert impacts.credits[c] == pytest.approx([CATHODE_KG * EV_SCENARIO * QS_QP] * 2, rel=1e-12)


def test_without_an_override_the_shipped_factor_is_credited():
    model, results = copper(factors="")
    impacts = assess(model, results)
    # 0.1 + 0.8·2.8·0.9 = 2.116
    assert footprint(impacts, "copper cathode") == pytest.approx([2.116, 2.116], abs=1e-12)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("avoided-burden", G - EV_OWN * QS_QP),  # 0.5 − 3.6 = −3.1
        ("cut-off", G),  # no credit in the footprint (the credit is still reported)
        ("cff", A * G + (1 - A) * EV_OWN * QS_QP),
    ],
)
def test_every_rule_and_both_ways_of_naming_the_material_use_the_override(rule, expected):
    for displaces in (
        "displaces: {material: primary_copper, ratio: 0.9}",
        "displaces: {material: primary, ratio: 0.9}",  # Cu → primary_copper
    ):
        model, results = copper(rule, displaces=displaces)
        impacts = assess(model, results)
        assert footprint(impacts, "copper cathode") == pytest.approx([expected] * 2, abs=1e-12)
        assert impacts.credits[0] == pytest.approx([CATHODE_KG * 3.6] * 2, rel=1e-12)


def test_a_material_of_your_own_can_be_displaced():
    model, results = copper(
        factors="factors: {primary_cathode_grade_a: 4.0 kg/kg}",
        displaces="displaces: {material: primary_cathode_grade_a, ratio: 0.9}",
    )
    assert footprint(assess(model, results), "copper cathode") == pytest.approx(
        [2.98, 2.98], abs=1e-12
    )
    with pytest.raises(CritflowError) as info:
        model, results = copper(
            factors="factors: {grid_power: 0.3 kg/kWh}",
            displaces="displaces: {material: grid_power}",
        )
        assess(model, results)
    assert "flows[1].displaces" in str(info.value) and "measured in kg" in str(info.value)


def test_monte_carlo_credits_use_the_same_path():
    # With the override the only uncertain factor the model reads (primary copper) is replaced by
    # a certain one, and the grid intensity is given: every sample is 2.98 exactly.
    model, results = copper()
    impacts = assess(model, results, samples=300, seed=4)
    cathode = impacts.products.index("copper cathode")
    drawn = impacts.samples_footprint[..., cathode]  # (N, S, P)
    s, c = impacts.scenarios.index("baseline"), impacts.scenarios.index("cleaner_primary")
    assert np.abs(drawn[:, s] - 2.98).max() < 1e-12
    assert np.abs(drawn[:, c] - 2.26).max() < 1e-12
    # Without it the shipped lognormal is drawn: median 2.8, 2.5/97.5 % at 2.2/3.5, so
    # σ = ln(3.5/2.2)/(2·1.96) = 0.11844 and E[Ev] = 2.8·exp(σ²/2) = 2.81972;
    # E[F] = 0.1 + 0.8·0.9·E[Ev] = 2.13020, sd(F) = 0.72·2.8·σ ≈ 0.2388 (4000 samples: SE 0.0038).
    model, results = copper(factors="")
    impacts = assess(model, results, samples=4000, seed=4)
    drawn = impacts.samples_footprint[:, 0, 0, cathode]
    sigma = np.log(3.5 / 2.2) / (2 * 1.959963984540054)
    expected = 0.1 + 0.72 * 2.8 * np.exp(sigma**2 / 2)
    assert drawn.mean() == pytest.approx(expected, abs=4 * 0.0038)
    assert drawn.std() == pytest.approx(0.72 * 2.8 * sigma, rel=0.1)


def test_a_co_product_that_displaces_nothing_keeps_its_allocated_burden_under_the_cff():
    # Slag sold as aggregate is a product but displaces nothing. Mass partition over 950 + 50 t:
    # each carries 475,000 / 1,000,000 = 0.475 kg/kg. The cathode: 0.2·0.475 + 0.8·4.0·0.9 =
    # 2.975; the slag is not a secondary material (R1 = 0): the CFF gives Ev = its own burden,
    # 0.475 — not A·0.475 = 0.095, which would lose 80 % of its burden.
    model, results = copper(slag="product: slag aggregate")
    impacts = assess(model, results)
    assert footprint(impacts, "copper cathode") == pytest.approx([2.975] * 2, abs=1e-12)
    assert footprint(impacts, "slag aggregate") == pytest.approx([0.475] * 2, abs=1e-12)
    assert any("slag aggregate displace nothing" in n and "R1 = 0" in n for n in impacts.notes)
    # the gross burden is shared without loss: Σ mass × allocated = total
    table = impacts.product_table()
    base = table[(table.scenario == "baseline") & (table.period == 2025)]
    assert (base.mass_kg * base.allocated_per_kg).sum() == pytest.approx(475_000, rel=1e-12)


def test_caveats_of_the_shipped_factors_are_named():
    # primary_copper is a Nuss & Eckelman (2014) value: IPCC 2007 (AR4) GWP100 and a primary +
    # secondary supply mix (SI Table S38 form). Both caveats name it when it is credited.
    model, results = copper(factors="")
    notes = " ".join(assess(model, results).notes)
    assert "primary_copper: IPCC AR4 (2007) GWP100 results counted as reported" in notes
    assert (
        "credits displace supply-mix factors that include secondary metal: primary_copper" in notes
    )
    html = render(Run(model, results), RunInfo("model.yaml", ""))
    assert "IPCC AR4 (2007)" in html and "supply-mix" in html
    # your own factor carries no caveat of the shipped one
    model, results = copper()
    notes = " ".join(assess(model, results).notes)
    assert "primary_copper" not in notes


def test_every_background_row_says_its_route_and_gwp_basis():
    from critflow import data

    table = data.table("lca_background")
    assert set(table["supply_route"]) <= {
        "primary-route",
        "supply-mix",
        "unknown",
        "not-applicable",
    }
    assert set(table["gwp_basis"]) <= {"AR4", "AR5", "AR6", "by-method", "unknown"}
    # a value reported as an IPCC 2007 result is marked AR4, and only those
    ar4 = table["source"].str.contains("IPCC 2007 GWP100")
    assert (table.loc[ar4, "gwp_basis"] == "AR4").all() and ar4.sum() == (
        table["gwp_basis"] == "AR4"
    ).sum()
    # the sources that say 'primary and secondary' or 'supply mix' are marked supply-mix
    mixed = table["description"].str.contains("primary and secondary|supply mix|secondary share")
    assert (table.loc[mixed, "supply_route"] == "supply-mix").all()
    # elementary flows are characterised by the chosen method, not by a reported GWP set
    assert (table.loc[table["flow"] != "co2_eq_gwp100", "gwp_basis"] == "by-method").all()


def test_sources_command_shows_route_gwp_basis_and_your_factors(tmp_path):
    path = tmp_path / "copper.yaml"
    path.write_text(
        COPPER.replace("RULE", "cff")
        .replace("FACTORS", "factors: {sulfuric_acid: 0.12 kg/kg}")
        .replace("DISPLACES", "displaces: {material: primary_copper, ratio: 0.9}")
        .replace("SLAG", "fate: landfill")
        .replace("{electricity: 1000 kWh/t}", "{electricity: 1000 kWh/t, sulfuric_acid: 0.1 t/t}")
    )
    result = critflow_cli("impact", path, "--sources", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {r["item"]: r for r in json.loads(result.stdout)["sources"]}
    assert rows["primary_copper"]["used_as"] == "displaced"
    assert rows["primary_copper"]["supply_route"] == "supply-mix"
    assert rows["primary_copper"]["gwp_basis"] == "AR4"
    assert rows["sulfuric_acid"]["source"] == "your impact.factors"
    result = critflow_cli("impact", path, "--sources")
    assert "supply route" in result.stdout and "GWP basis" in result.stdout
    assert "supply-mix" in result.stdout and "AR4" in result.stdout
