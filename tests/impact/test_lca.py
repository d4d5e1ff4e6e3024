"""Matrix LCA on a two-process example computed by hand, allocation variants, end-of-life rules,
decarbonisation levers and Monte Carlo invariants."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.errors import CritflowError
from critflow.impact import assess, circular_footprint
from critflow.impact.sampling import sample_rows
from tests.conftest import model_text

# Factors used below, from their primary sources (not read from critflow's data files):
BE_2023 = 0.1655  # kg CO2-eq/kWh, Belgian consumption mix 2023 (lowcarbonpower.org, Ember)
H2SO4 = 0.13  # kg CO2-eq/kg, critflow's indicative sulfuric-acid factor
GWP_CH4 = 29.8  # IPCC AR6 GWP100, fossil methane
GWP_N2O = 273.0  # IPCC AR6 GWP100
# IPCC 2006 GL Vol. 2 Table 2.2: natural gas 56 100 kg CO2, 1 kg CH4, 0.1 kg N2O per TJ
NATURAL_GAS = 56.1 + 0.001 * GWP_CH4 + 0.0001 * GWP_N2O  # kg CO2-eq/GJ
NI_PRIMARY = 6.5  # kg CO2-eq/kg Ni, Nuss & Eckelman 2014, Table S38

TWO_PROCESS = """
critflow: 1
name: two-process plant
time: {start: 2025, end: 2025}
unit: t/a
elements: [Ni, rest]
processes:
  - {id: feed, kind: source}
  - id: leach
    kind: transfer
    inventory:
      electricity: 100 kWh/t
      sulfuric_acid: 0.5 t/t
      direct_emissions: {CO2: 0.01 t/t, CH4: 1 kg/t}
    transfer:
      solution: {default: 0.25, Ni: 0.9}
      residue: {default: 0.75, Ni: 0.1}
  - id: refine
    kind: transfer
    inventory: {natural_gas: 2 GJ/t}
    transfer:
      nickel: {default: 0.0, Ni: 1.0}
      salt: {default: 1.0, Ni: 0.0}
  - {id: market, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: ore, from: feed, to: leach, value: 1000, composition: {Ni: 0.2}}
  - {id: solution, from: leach, to: refine}
  - {id: residue, from: leach, to: landfill, fate: landfill}
  - {id: nickel, from: refine, to: market, product: nickel, price: 15 EUR/kg, DISPLACES}
  - {id: salt, from: refine, to: market, product: salt, price: 0.1 EUR/kg}
IMPACT
scenarios:
  baseline: {}
  green_grid: {impact: {electricity: 50 g/kWh}}
  electric_refining:
    inventories: {refine: {natural_gas: 0 GJ/t, electricity: 250 kWh/t}}
"""

# Hand calculation: the leach processes 1000 t; the refinery 1000·0.2·0.9 = 180 t Ni plus
# 800·0.25 = 200 t rest = 380 t.
LEACH = 100 * 1000 * BE_2023 + 0.5 * 1e6 * H2SO4 + 0.01 * 1e6 + 1.0 * 1000 * GWP_CH4
REFINE = 2 * 380 * NATURAL_GAS
TOTAL = LEACH + REFINE
NICKEL_KG, SALT_KG = 180e3, 200e3


def two_process(impact: str = "", displaces: str = "displaces: primary"):
    text = TWO_PROCESS.replace("IMPACT", impact).replace("DISPLACES", displaces)
    model = model_text(text)
    return model, critflow.solve(model)


def test_total_and_contributions_match_the_hand_calculation():
    model, results = two_process()
    impacts = assess(model, results)
    s = impacts.scenarios.index("baseline")
    assert impacts.total[s, 0] == pytest.approx(TOTAL, rel=1e-12)
    by_process = impacts.process_table().query("scenario == 'baseline'").set_index("process")
    assert by_process.loc["leach", "impact"] == pytest.approx(LEACH, rel=1e-12)
    assert by_process.loc["refine", "impact"] == pytest.approx(REFINE, rel=1e-12)
    items = impacts.item_table().query("scenario == 'baseline'").set_index("item")
    assert items.loc["natural_gas", "factor"] == pytest.approx(NATURAL_GAS, rel=1e-12)
    assert items.loc["electricity", "amount"] == pytest.approx(100e3)
    assert items.loc["direct: CH4", "impact"] == pytest.approx(1000 * GWP_CH4)
    assert impacts.intensity[s, 0] == pytest.approx(TOTAL / (NICKEL_KG + SALT_KG), rel=1e-12)


def test_mass_and_economic_allocation():
    model, results = two_process("impact: {allocation: mass}")
    mass = (
        assess(model, results).product_table().query("scenario == 'baseline'").set_index("product")
    )
    per_kg = TOTAL / (NICKEL_KG + SALT_KG)
    assert mass.loc["nickel", "footprint_per_kg"] == pytest.approx(per_kg, rel=1e-12)
    assert mass.loc["salt", "footprint_per_kg"] == pytest.approx(per_kg, rel=1e-12)

    model, results = two_process("impact: {allocation: economic}")
    econ = (
        assess(model, results).product_table().query("scenario == 'baseline'").set_index("product")
    )
    value_ni, value_salt = NICKEL_KG * 15, SALT_KG * 0.1
    share = value_ni / (value_ni + value_salt)
    assert econ.loc["nickel", "allocation_share"] == pytest.approx(share, rel=1e-12)
    assert econ.loc["nickel", "footprint_per_kg"] == pytest.approx(
        TOTAL * share / NICKEL_KG, rel=1e-12
    )
    assert econ.loc["salt", "footprint_per_kg"] == pytest.approx(
        TOTAL * (1 - share) / SALT_KG, rel=1e-12
    )
    # allocation shares the burden, it does not create or lose any
    assert (econ["mass_kg"] * econ["footprint_per_kg"]).sum() == pytest.approx(TOTAL, rel=1e-12)


def test_end_of_life_rules():
    per_kg = TOTAL / (NICKEL_KG + SALT_KG)
    model, results = two_process("impact: {allocation: avoided-burden}")
    impacts = assess(model, results)
    table = impacts.product_table().query("scenario == 'baseline'").set_index("product")
    assert table.loc["nickel", "footprint_per_kg"] == pytest.approx(per_kg - NI_PRIMARY, rel=1e-12)
    assert table.loc["salt", "footprint_per_kg"] == pytest.approx(per_kg, rel=1e-12)  # no credit
    assert impacts.credits[0, 0] == pytest.approx(NICKEL_KG * NI_PRIMARY, rel=1e-12)
    assert impacts.net[0, 0] == pytest.approx(TOTAL - NICKEL_KG * NI_PRIMARY, rel=1e-12)
    assert any("salt" in note for note in impacts.notes)

    model, results = two_process("impact: {allocation: cff, cff_A: 0.2}")
    table = (
        assess(model, results).product_table().query("scenario == 'baseline'").set_index("product")
    )
    assert table.loc["nickel", "footprint_per_kg"] == pytest.approx(
        0.2 * per_kg + 0.8 * NI_PRIMARY, rel=1e-12
    )

    # a quality ratio Qs/Qp scales the displaced burden
    model, results = two_process(
        "impact: {allocation: avoided-burden}", "displaces: {material: primary, ratio: 0.8}"
    )
    table = (
        assess(model, results).product_table().query("scenario == 'baseline'").set_index("product")
    )
    assert table.loc["nickel", "displaced_per_kg"] == pytest.approx(0.8 * NI_PRIMARY, rel=1e-12)


def test_circular_footprint_formula_against_a_hand_worked_case():
    # Material part for a product with 30 % recycled content (R1) and 60 % recycled at end of life
    # (R2), A = 0.2 (metals in the PEF), Ev = 10, E_recycled = 2, E_recycling_EoL = 3, Qs/Qp = 0.9;
    # energy recovery R3 = 0.1 with E_ER = 1, LHV 20 MJ/kg, X_heat 0.5, E_SE_heat 0.07; E_D = 0.05:
    #  material = 0.7·10 + 0.3·(0.2·2 + 0.8·10·0.9) + 0.8·0.6·(3 − 10·0.9) = 7 + 2.28 − 2.88 = 6.40
    #  energy   = 1·0.1·(1 − 20·0.5·0.07) = 0.1·0.3 = 0.03
    #  disposal = (1 − 0.6 − 0.1)·0.05 = 0.015
    parts = circular_footprint(
        A=0.2,
        R1=0.3,
        R2=0.6,
        Ev=10,
        E_recycled=2,
        E_recycling_eol=3,
        Qs_in_Qp=0.9,
        Qs_out_Qp=0.9,
        R3=0.1,
        E_ER=1,
        LHV=20,
        X_ER_heat=0.5,
        E_SE_heat=0.07,
        E_D=0.05,
    )
    assert parts["material"] == pytest.approx(6.40, abs=1e-12)
    assert parts["energy"] == pytest.approx(0.03, abs=1e-12)
    assert parts["disposal"] == pytest.approx(0.015, abs=1e-12)
    assert parts["total"] == pytest.approx(6.445, abs=1e-12)
    # A = 1 is the cut-off: a fully recycled material carries only its recycling burden
    assert circular_footprint(A=1, R1=1, R2=0, Ev=10, E_recycled=2)["total"] == pytest.approx(2)


def test_levers_lower_the_score_by_exactly_what_they_change():
    model, results = two_process()
    impacts = assess(model, results)
    base = impacts.total[impacts.scenarios.index("baseline"), 0]
    green = impacts.total[impacts.scenarios.index("green_grid"), 0]
    assert base - green == pytest.approx(100e3 * (BE_2023 - 0.050), rel=1e-12)
    electric = impacts.total[impacts.scenarios.index("electric_refining"), 0]
    assert electric - base == pytest.approx(380 * (250 * BE_2023 - 2 * NATURAL_GAS), rel=1e-12)


def test_grid_path_is_interpolated_by_year():
    text = TWO_PROCESS.replace("time: {start: 2025, end: 2025}", "time: {start: 2025, end: 2030}")
    text = text.replace("IMPACT", "impact: {electricity: {2025: 160 g/kWh, 2030: 60 g/kWh}}")
    text = text.replace("DISPLACES", "displaces: primary")
    model = model_text(text)
    impacts = assess(model, critflow.solve(model, ["baseline"]))
    electricity = impacts.item_table().query("item == 'electricity'")
    assert electricity["factor"].to_numpy() == pytest.approx(
        np.linspace(0.160, 0.060, 6), rel=1e-12
    )


def test_monte_carlo_is_reproducible_and_has_the_analytical_mean():
    model, results = two_process()
    a = assess(model, results, samples=20_000, seed=7)
    b = assess(model, results, samples=20_000, seed=7)
    c = assess(model, results, samples=20_000, seed=8)
    assert np.array_equal(a.samples_total, b.samples_total)
    assert not np.array_equal(a.samples_total, c.samples_total)
    # triangular factors: mean (low + mode + high) / 3 (electricity BE-2023, sulfuric acid)
    expected = (
        100e3 * (0.116 + 0.1655 + 0.215) / 3
        + 0.5e6 * (0.05 + 0.13 + 0.25) / 3
        + 0.01e6
        + 1000 * GWP_CH4
        + REFINE
    )
    s = a.scenarios.index("baseline")
    values = a.samples_total[:, s, 0]
    assert abs(values.mean() - expected) < 4 * values.std() / np.sqrt(values.size)
    summary = a.summary_table().set_index("scenario")
    assert summary.loc["baseline", "impact_p5"] < TOTAL < summary.loc["baseline", "impact_p95"]


def test_lognormal_draws_hit_the_published_percentiles():
    rng = np.random.default_rng(3)
    draws = sample_rows(
        np.array([6.5]), np.array(["lognormal"]), np.array([5.9]), np.array([7.3]), 200_000, rng
    )[:, 0]
    assert np.percentile(draws, 2.5) == pytest.approx(5.9, rel=0.01)
    assert np.percentile(draws, 97.5) == pytest.approx(7.3, rel=0.01)
    assert np.median(draws) == pytest.approx(6.5, rel=0.005)


def test_example_decarbonisation_passes_the_2027_target():
    model = critflow.load_model("examples/battery_recycling_hydromet.yaml")
    impacts = assess(model, critflow.solve(model, ["baseline", "decarbonised"]))
    change = impacts.intensity[1] / impacts.intensity[0] - 1
    assert change[list(impacts.periods).index(2030)] < -0.10
    # the grid path reaches 80 g/kWh in 2030: the electricity factor says so
    items = impacts.item_table().query("scenario == 'decarbonised' and item == 'electricity'")
    assert items.set_index("period").loc[2030, "factor"] == pytest.approx(0.080)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("electricity: 100 kWh/t", "electricity: 0.5 t/t"),
            "does not fit 'electricity', which is measured in kWh",
        ),
        (("sulfuric_acid: 0.5 t/t", "sulfuric_acid: 100 kWh/t"), "which is measured in kg"),
        (("sulfuric_acid: 0.5 t/t", "sulphuric_acid: 0.5 t/t"), "Did you mean 'sulfuric_acid'"),
        (("electricity: 100 kWh/t", "electricity: 100"), "has no unit"),
        (("CH4: 1 kg/t", "CH5: 1 kg/t"), "'CH5' is not a gas"),
        (("IMPACT", "impact: {electricity: BE-2019}"), "no grid mix 'BE-2019'"),
        (("IMPACT", "impact: {method: gwp100}"), "not an impact method"),
        (("price: 0.1 EUR/kg}", "}"), "economic allocation needs the price of product flow 'salt'"),
    ],
)
def test_bad_input_names_the_place_and_the_fix(change, expected):
    text = TWO_PROCESS.replace("DISPLACES", "displaces: primary")
    text = text.replace(*change)
    if "economic" in expected:
        text = text.replace("IMPACT", "impact: {allocation: economic}")
    text = text.replace("IMPACT", "")
    model = model_text(text)
    with pytest.raises(CritflowError) as info:
        assess(model, critflow.solve(model))
    message = str(info.value)
    assert expected in message, message
    assert "model.yaml" in message  # names the file (and line)
