"""Recovery, recycling efficiency and material recovery against hand calculations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import critflow
from critflow.errors import CritflowError
from critflow.indicators import material_recovery, recovery_by_product, recycling_efficiency
from critflow.indicators import recovery as recovery_table
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.indicators.recovery import recycling_arrays
from tests.conftest import EXAMPLE, model_text


@pytest.fixture(scope="module")
def example():
    model = critflow.load_model(EXAMPLE)
    return model, critflow.solve(model, ["baseline"])


def hand_recoveries() -> dict[str, float]:
    """Element recoveries of the example's baseline, NMC line, from its transfer coefficients.

    Loops: the Li liquor returns to the leach with the mother liquor (share 0.85 of what leaves
    the Li precipitation), so each recovery has a 1 / (1 - loop gain) factor.
    """
    c = 0.99 * 0.99  # leach Li x impurity removal
    return {
        # black mass 0.97, leach 0.98, purification 0.99, crystallisation 0.99; 1 % of Ni loops back
        "Ni": 0.97 * 0.98 * 0.99 * 0.99 / (1 - 0.98 * 0.99 * 0.01 * 0.85),
        # Co SX takes 0.98; the 2 % in the raffinate loops back
        "Co": 0.97 * 0.98 * 0.99 * 0.98 / (1 - 0.98 * 0.99 * 0.02 * 0.85),
        # Mn SX takes 0.97, Co SX 0.02 of the rest (into CoSO4, also recycled); 0.03 * 0.98 loops back
        "Mn": 0.97 * 0.97 * 0.99 * (0.97 + 0.03 * 0.02) / (1 - 0.97 * 0.99 * 0.03 * 0.98 * 0.85),
        # black mass 0.95; Li2CO3 takes 0.85 per pass; 0.15 * 0.85 of the rest returns
        "Li": 0.95 * c * 0.85 / (1 - c * 0.15 * 0.85),
        # Cu only leaves as copper scrap: coarse fraction 0.95, eddy current 0.92
        "Cu": 0.95 * 0.92,
        # Al: 0.9 x 150/200 of it leaves with the cans; the rest goes 0.96 to coarse and 0.90 to Al scrap
        "Al": 0.9 * 0.75 + (1 - 0.9 * 0.75) * 0.96 * 0.90,
    }


def test_material_recovery_matches_hand_calculation(example):
    model, results = example
    table = material_recovery(model, results).query("period == 2025").set_index("element")
    for element, expected in hand_recoveries().items():
        assert table.loc[element, "material_recovery"] == pytest.approx(expected, abs=1e-12), (
            element
        )
    assert table.loc["C", "material_recovery"] == 0.0  # graphite residue goes to energy recovery


def test_recycling_efficiency_is_the_mass_weighted_recovery(example):
    model, results = example
    # inputs in 2025: 6000 t NMC and 2000 t LFP cells; per-element input masses from compositions
    nmc = {
        "Li": 0.0222,
        "Ni": 0.1090,
        "Co": 0.0365,
        "Mn": 0.0340,
        "Cu": 0.100,
        "Al": 0.200,
        "Fe": 0.030,
    }
    lfp = {"Li": 0.0152, "Cu": 0.110, "Al": 0.200, "Fe": 0.1468}
    recovered = sum(
        6000 * share * hand_recoveries().get(e, 0.0) for e, share in nmc.items() if e != "Fe"
    )
    recovered += sum(
        2000 * share * hand_recoveries()[e] for e, share in lfp.items() if e in ("Li", "Cu", "Al")
    )
    # Fe: cans/steel parts (0.9) plus steel scrap from the coarse fraction (0.99 x 0.95); LFP Fe mostly in CAM
    recovered += 6000 * 0.030 * (0.9 + 0.1 * 0.99 * 0.95)
    lfp_steel = 0.9 * 30 / 146.8
    recovered += 2000 * 0.1468 * (lfp_steel + (1 - lfp_steel) * 0.054 * 0.95)
    table = recycling_efficiency(model, results).query("period == 2025")
    assert float(table["input"].iloc[0]) == pytest.approx(8000.0, rel=1e-12)
    assert float(table["recycled"].iloc[0]) == pytest.approx(recovered, rel=1e-12)
    assert float(table["recycling_efficiency"].iloc[0]) == pytest.approx(
        recovered / 8000, rel=1e-12
    )


def test_recovery_by_product(example):
    model, results = example
    table = recovery_by_product(model, results).query("period == 2025")
    lithium = table.query("product == 'lithium carbonate' and element == 'Li'")["recovery"].iloc[0]
    assert lithium == pytest.approx(hand_recoveries()["Li"], abs=1e-12)
    al = table.query("product == 'aluminium and steel scrap' and element == 'Al'")["recovery"].iloc[
        0
    ]
    assert al == pytest.approx(hand_recoveries()["Al"], abs=1e-12)


TWO_OUTPUTS = """
critflow: 1
name: plant
time: {start: 2025, end: 2025}
elements: [Co, rest]
processes:
  - {id: gate, kind: source}
  - {id: plant, kind: transfer, transfer: {metal: {default: 0.8}, slag: {default: 0.2}}}
  - {id: buyers, kind: sink}
  - {id: dump, kind: sink}
flows:
  - {id: feed, from: gate, to: plant, value: 100, composition: {Co: 0.5}}
  - {id: metal, from: plant, to: buyers, fate: recycled}
  - {id: slag, from: plant, to: dump}
"""


def test_recycling_efficiency_needs_a_fate_on_every_output():
    model = model_text(TWO_OUTPUTS)
    with pytest.raises(CritflowError) as info:
        recycling_efficiency(model, critflow.solve(model))
    assert "flow 'slag' into sink 'dump' has no fate" in str(info.value)
    assert "line 14" in str(info.value)  # the slag flow (the text starts with a blank line)


def test_excluded_outputs_leave_the_input():
    model = model_text(TWO_OUTPUTS.replace("to: dump}", "to: dump, fate: excluded}"))
    table = recycling_efficiency(model, critflow.solve(model))
    # 20 of 100 t excluded from the calculation: RE = 80 / 80
    assert table["input"].iloc[0] == pytest.approx(80.0)
    assert table["recycling_efficiency"].iloc[0] == pytest.approx(1.0)


def test_indicator_for_a_missing_element_is_named():
    model = model_text(TWO_OUTPUTS.replace("to: dump}", "to: dump, fate: landfill}"))
    ctx = Context(model, critflow.solve(model))
    with pytest.raises(CritflowError) as info:
        evaluate_indicator(ctx, "material_recovery", "Cr")
    assert "asks for the element 'Cr'" in str(info.value) and "Did you mean 'Co'?" in str(
        info.value
    )
    np.testing.assert_allclose(evaluate_indicator(ctx, "material_recovery", "Co"), 0.8)
    with pytest.raises(CritflowError) as info:
        evaluate_indicator(ctx, "recyling_efficiency")
    assert "Did you mean 'recycling_efficiency'?" in str(info.value)


# --- Battery Regulation counting: what the sources are, and fates per element -----------------

SMELTER = """
critflow: 1
name: pyrometallurgical battery smelter with a flux
time: {start: 2025, end: 2025}
elements: [Co, Ni, Cu, Fe, Li, rest]
scope: {battery_chemistry: lithium-based}
processes:
  - {id: battery_store, kind: source}
  - {id: flux_silo, kind: source}
  - id: smelter
    kind: transfer
    transfer:
      alloy: {default: 0.0, Co: 0.98, Ni: 0.98, Cu: 0.95, Fe: 0.98}
      slag:  {default: 1.0, Co: 0.02, Ni: 0.02, Cu: 0.05, Fe: 0.02}
  - {id: refinery, kind: sink}
  - {id: slag_yard, kind: sink}
flows:
  - {id: batteries, from: battery_store, to: smelter, value: 850,
     composition: {Co: 0.05, Ni: 0.15, Cu: 0.10, Fe: 0.07, Li: 0.03}}
  - {id: flux, from: flux_silo, to: smelter, value: 200, composition: {Fe: 0.10}, role: additive}
  - {id: alloy, from: smelter, to: refinery, fate: recycled}
  - {id: slag, from: smelter, to: slag_yard, fate: landfill}
"""


def test_a_flux_is_not_input_and_its_mass_in_the_outputs_does_not_count():
    # Batteries 850 t: Co 42.5, Ni 127.5, Cu 85, Fe 59.5, Li 25.5 t. The alloy takes 98 % of the
    # Co, Ni and Fe and 95 % of the Cu: 0.98 (42.5 + 127.5 + 59.5) + 0.95 x 85 = 305.66 t, of
    # which all comes from the batteries (the flux's 20 t of Fe mixes in the smelter, and the
    # alloy's Fe is 59.5 / 79.5 battery Fe by mass balance: 0.98 x 59.5 = 58.31 t counts, not
    # 0.98 x 79.5). RE = 305.66 / 850 = 35.96 %; counting the flux as input would give
    # 305.66 / 1050 = 29.11 % (or, with its Fe, 325.26 / 1050 = 30.98 %).
    model = model_text(SMELTER)
    results = critflow.solve(model)
    table = recycling_efficiency(model, results)
    assert table["input"].iloc[0] == pytest.approx(850.0, rel=1e-12)
    assert table["recycled"].iloc[0] == pytest.approx(305.66, rel=1e-12)
    assert table["recycling_efficiency"].iloc[0] == pytest.approx(305.66 / 850, rel=1e-12)
    recovery = material_recovery(model, results).set_index("element")["material_recovery"]
    assert recovery["Fe"] == pytest.approx(0.98, rel=1e-12)  # not (0.98 x 79.5) / 59.5
    assert recovery["Li"] == 0.0
    # the same plant without the flux: the same verdict
    bare = model_text(SMELTER.replace("value: 200, composition", "value: 0, composition"))
    assert recycling_efficiency(bare, critflow.solve(bare))["recycling_efficiency"].iloc[
        0
    ] == pytest.approx(305.66 / 850, rel=1e-12)
    # a slag sold as aggregate (fate recycled) counts only its battery-derived 850 - 305.66 t:
    # RE 100 %, not 1050 / 850
    aggregate = model_text(SMELTER.replace("fate: landfill", "fate: recycled"))
    value = recycling_efficiency(aggregate, critflow.solve(aggregate))["recycling_efficiency"]
    assert value.iloc[0] == pytest.approx(1.0, rel=1e-12)


LEACH = """
critflow: 1
name: leach with process water and acid
time: {start: 2025, end: 2025}
elements: [Li, Co, S, H2O, rest]
processes:
  - {id: cells, kind: source}
  - {id: tap, kind: source}
  - {id: acid_tank, kind: source}
  - id: leach
    kind: transfer
    transfer:
      cobalt_sulfate:    {default: 0.0, Co: 0.95, S: 0.5, H2O: 0.2}
      lithium_carbonate: {default: 0.0, Li: 0.9}
      wastewater:        {default: 0.0, Li: 0.1, Co: 0.05, S: 0.5, H2O: 0.8}
      residue:           {default: 1.0, Li: 0.0, Co: 0.0, S: 0.0, H2O: 0.0}
  - {id: customers, kind: sink}
  - {id: treatment, kind: sink}
flows:
  - {id: feed, from: cells, to: leach, value: 1000, composition: {Li: 0.02, Co: 0.05, H2O: 0.05}}
  - {id: process_water, from: tap, to: leach, value: 500, composition: {H2O: 1.0}, role: water}
  - {id: acid, from: acid_tank, to: leach, value: 300, composition: {S: 0.3}, role: additive}
  - {id: cobalt_sulfate, from: leach, to: customers, fate: recycled, product: cobalt sulfate}
  - {id: lithium_carbonate, from: leach, to: customers, fate: recycled, product: lithium carbonate}
  - {id: wastewater, from: leach, to: treatment, fate: landfill}
  - {id: residue, from: leach, to: treatment, fate: landfill}
"""


def test_water_and_reagents_are_neither_input_nor_recycled_output():
    # Input fraction: 1000 t of cells less their 50 t of moisture (H2O is never counted): 950 t.
    # Recycled, from the cells: Co 0.95 x 50 = 47.5 t, Li 0.9 x 20 = 18 t; the sulfate's S comes
    # from the acid and its water from the tap and the cells' moisture: none of it counts.
    # RE = 65.5 / 950 = 6.895 %. Counting every source and every output tonne would give
    # (47.5 + 18 + 0.5 x 90 S + 0.2 x 550 H2O) / 1800 = 220.5 / 1800 = 12.25 %.
    model = model_text(LEACH)
    results = critflow.solve(model)
    table = recycling_efficiency(model, results)
    assert table["input"].iloc[0] == pytest.approx(950.0, rel=1e-12)
    assert table["recycling_efficiency"].iloc[0] == pytest.approx(65.5 / 950, rel=1e-12)
    recovery = material_recovery(model, results).set_index("element")
    assert recovery.loc["Co", "material_recovery"] == pytest.approx(0.95, rel=1e-12)
    assert recovery.loc["Li", "material_recovery"] == pytest.approx(0.9, rel=1e-12)
    assert recovery.loc["H2O", "input"] == 0.0 and recovery.loc["S", "recovered"] == 0.0
    # product yield (production efficiency) counts what of the feed reaches the products: Co 47.5,
    # Li 18 and the cells' moisture in the sulfate (0.2 x 50 = 10 t), not the acid's S or the tap
    # water (which made it (47.5 + 45 + 110 + 18) / 1000 = 0.2205): 75.5 / 1000
    ctx = Context(model, results)
    assert evaluate_indicator(ctx, "product_yield")[0, 0] == pytest.approx(0.0755, rel=1e-12)


MAGNETS = """
critflow: 1
name: NdFeB magnet recycling
time: {start: 2025, end: 2025}
elements: [Nd, Co, Fe, B, rest]
processes:
  - {id: collection, kind: source}
  - id: separation
    kind: transfer
    transfer:
      concentrate: {default: 0.0, Nd: 0.89, Co: 0.5, B: 0.9}
      steel_scrap: {default: 0.0, Nd: 0.11, Co: 0.5, Fe: 0.97}
      residue:     {default: 1.0, Nd: 0.0, Co: 0.0, Fe: 0.03, B: 0.1}
  - id: refining
    kind: transfer
    transfer:
      nd_oxide:         {default: 0.0, Nd: 0.95}
      cobalt_hydroxide: {default: 0.0, Co: 0.9}
      refining_waste:   {default: 1.0, Nd: 0.05, Co: 0.1}
  - {id: customers, kind: sink}
  - {id: steelworks, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: magnets, from: collection, to: separation, value: 100, origin: post_consumer,
     composition: {Nd: 0.30, Co: 0.02, Fe: 0.64, B: 0.01}}
  - {id: concentrate, from: separation, to: refining}
  - {id: steel_scrap, from: separation, to: steelworks, product: steel scrap,
     fate: {default: recycled, Nd: lost, Co: lost}}
  - {id: residue, from: separation, to: landfill, fate: landfill}
  - {id: nd_oxide, from: refining, to: customers, fate: recycled, product: Nd oxide}
  - {id: cobalt_hydroxide, from: refining, to: customers, fate: recycled, product: cobalt hydroxide}
  - {id: refining_waste, from: refining, to: landfill, fate: landfill}
"""


def test_fates_per_element_nd_and_co_in_steel_scrap_are_lost():
    # Nd: 89 % to the concentrate, 95 % of that to the oxide: 0.8455; the 11 % in the steel scrap
    # is lost (fate Nd: lost). Co: 50 % to the concentrate x 90 % = 0.45; the steel's 50 % lost.
    # Fe: 97 % in the steel scrap, recycled. With one fate per flow (recycled) Nd would show
    # 0.8455 + 0.11 = 95.55 % and Co 95 %.
    # RE (goods) = (0.8455 x 30 + 0.45 x 2 + 0.97 x 64) / 100 = 88.345 %.
    model = model_text(MAGNETS)
    results = critflow.solve(model)
    recovery = material_recovery(model, results).set_index("element")["material_recovery"]
    assert recovery["Nd"] == pytest.approx(0.89 * 0.95, rel=1e-12)
    assert recovery["Co"] == pytest.approx(0.45, rel=1e-12)
    assert recovery["Fe"] == pytest.approx(0.97, rel=1e-12)
    table = recycling_efficiency(model, results)
    assert table["recycling_efficiency"].iloc[0] == pytest.approx(0.88345, rel=1e-12)
    # the per-output table names each element's own fate
    rows = recovery_table(model, results).query("flow == 'steel_scrap'").set_index("element")
    assert rows.loc["Nd", "fate"] == "lost" and rows.loc["Fe", "fate"] == "recycled"
    # one fate for the whole flow: the old, too generous, count
    coarse = model_text(
        MAGNETS.replace("fate: {default: recycled, Nd: lost, Co: lost}", "fate: recycled")
    )
    coarse_recovery = material_recovery(coarse, critflow.solve(coarse)).set_index("element")
    assert coarse_recovery.loc["Nd", "material_recovery"] == pytest.approx(0.9555, rel=1e-12)


def test_recycled_content_leaves_out_an_element_lost_in_a_product():
    # Refining also takes 10 t of primary Nd (a mine concentrate). Nd entering the refinery:
    # 26.7 t post-consumer + 10 t primary, so the oxide is 26.7 / 36.7 = 72.75 % recycled Nd. The
    # steel scrap's 3.3 t of (post-consumer) Nd is no Nd product (fate Nd: lost) and stays out;
    # counting it would give (0.95 x 26.7 + 3.3) / (0.95 x 36.7 + 3.3) = 75.11 %.
    text = MAGNETS.replace(
        "  - {id: collection, kind: source}",
        "  - {id: collection, kind: source}\n  - {id: mine, kind: source}",
    ).replace(
        "  - {id: concentrate, from: separation, to: refining}",
        "  - {id: concentrate, from: separation, to: refining}\n"
        "  - {id: ore_concentrate, from: mine, to: refining, value: {Nd: 10, Co: 0, Fe: 0, B: 0, rest: 0}}",
    )
    model = model_text(text)
    ctx = Context(model, critflow.solve(model))
    assert evaluate_indicator(ctx, "recycled_content", "Nd")[0, 0] == pytest.approx(
        26.7 / 36.7, rel=1e-12
    )
    # Fe: only in the steel scrap, all post-consumer
    assert evaluate_indicator(ctx, "recycled_content", "Fe")[0, 0] == pytest.approx(1.0)


def test_an_intermediate_fraction_sent_on_does_not_count_until_modelled():
    # black mass sold to a refiner (fate intermediate): 80 of 100 t; the plant's own recycled
    # output is the 10 t of casing scrap: RE = 10 %, the black mass stays in the input
    model = model_text(
        TWO_OUTPUTS.replace(
            "transfer: {metal: {default: 0.8}, slag: {default: 0.2}}",
            "transfer: {metal: {default: 0.1}, black_mass: {default: 0.8}, slag: {default: 0.1}}",
        )
        .replace(
            "  - {id: dump, kind: sink}",
            "  - {id: dump, kind: sink}\n  - {id: refiner, kind: sink}",
        )
        .replace(
            "  - {id: slag, from: plant, to: dump}",
            "  - {id: slag, from: plant, to: dump, fate: landfill}\n"
            "  - {id: black_mass, from: plant, to: refiner, fate: intermediate}",
        )
    )
    table = recycling_efficiency(model, critflow.solve(model))
    assert table["input"].iloc[0] == pytest.approx(100.0)
    assert table["recycling_efficiency"].iloc[0] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fate: recycled}", "fate: {default: recycled, Nd: lost}}"),
        ("fate: recycled}", "fate: {Co: lost}}"),
        ("fate: recycled}", "fate: {default: recycled, Co: gone}}"),
        ("value: 100, composition", "value: 100, role: flux, composition"),
        (
            "{id: metal, from: plant, to: buyers",
            "{id: metal, from: plant, to: buyers, role: additive",
        ),
        (
            "{id: metal, from: plant, to: buyers",
            "{id: metal, from: plant, to: buyers, origin: primary",
        ),
        ("value: 100, composition", "value: 100, origin: as_entered, composition"),
        ("{id: gate, kind: source}", "{id: gate, kind: source, consumption: true}"),
    ],
)
def test_bad_counting_keys_are_named(change, message):
    text = TWO_OUTPUTS.replace("to: dump}", "to: dump, fate: landfill}").replace(change, message)
    with pytest.raises(CritflowError) as info:
        model_text(text)
    shown = str(info.value)
    assert "model.yaml, line" in shown
    expected = {
        "fate: {default: recycled, Nd: lost}}": "'Nd', which the model does not carry",
        "fate: {Co: lost}}": "need a default",
        "fate: {default: recycled, Co: gone}}": "'gone' is not a fate",
        "value: 100, role: flux, composition": "role",
        "{id: metal, from: plant, to: buyers, role: additive": "has a role but leaves 'plant'",
        "{id: metal, from: plant, to: buyers, origin: primary": "has an origin but leaves 'plant'",
        "value: 100, origin: as_entered, composition": "as_entered",
        "{id: gate, kind: source, consumption: true}": "marked as consumption",
    }[message]
    assert expected in shown, shown


@st.composite
def plants_with_an_additive(draw) -> tuple[str, str]:
    """A two-step plant with a recycle loop and random coefficients per element; the same plant
    with an additive of random mass and composition entering one of its steps."""

    def split(n: int) -> list[float]:
        raw = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
        return [v / sum(raw) for v in raw]

    elements = ["Co", "Ni", "rest"]
    first = {e: split(3) for e in elements}  # to_second, scrap, tailings
    second = {e: split(3) for e in elements}  # product, loop, waste
    second = {e: [v[0], v[1] * 0.9, v[2] + v[1] * 0.1] for e, v in second.items()}  # loop < 1
    fates = [
        draw(st.sampled_from(["recycled", "landfill", "lost", "energy_recovery"])) for _ in range(4)
    ]
    feed = split(3)
    additive = split(3)

    def coefficients(values, index):
        return "{" + ", ".join(f"{e}: {values[e][index]:.12f}" for e in elements) + "}"

    text = f"""
critflow: 1
name: random plant
time: {{start: 2025, end: 2025}}
elements: [Co, Ni, rest]
processes:
  - {{id: gate, kind: source}}
  - {{id: bin, kind: source}}
  - id: first
    kind: transfer
    transfer:
      to_second: {coefficients(first, 0)}
      scrap: {coefficients(first, 1)}
      tailings: {coefficients(first, 2)}
  - id: second
    kind: transfer
    transfer:
      product: {coefficients(second, 0)}
      loop: {coefficients(second, 1)}
      waste: {coefficients(second, 2)}
  - {{id: out, kind: sink}}
flows:
  - {{id: feed, from: gate, to: first, value: {draw(st.floats(1.0, 1e4)):.12f},
     composition: {{Co: {feed[0]:.12f}, Ni: {feed[1]:.12f}}}}}
  - {{id: to_second, from: first, to: second}}
  - {{id: loop, from: second, to: first}}
  - {{id: scrap, from: first, to: out, fate: {fates[0]}}}
  - {{id: tailings, from: first, to: out, fate: {fates[1]}}}
  - {{id: product, from: second, to: out, fate: {{default: {fates[2]}, Ni: {fates[3]}}}}}
  - {{id: waste, from: second, to: out, fate: landfill}}
  - {{id: additive, from: bin, to: {draw(st.sampled_from(["first", "second"]))}, role: additive,
     value: ADDITIVE, composition: {{Co: {additive[0]:.12f}, Ni: {additive[1]:.12f}}}}}
"""
    return text.replace("ADDITIVE", "0"), text.replace(
        "ADDITIVE", f"{draw(st.floats(0.0, 1e5)):.6f}"
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plants_with_an_additive())
def test_adding_an_additive_never_changes_recycling_efficiency(pair):
    without, with_additive = (model_text(text) for text in pair)
    a = recycling_arrays(without, critflow.solve(without))
    b = recycling_arrays(with_additive, critflow.solve(with_additive))
    np.testing.assert_allclose(b[0], a[0], rtol=1e-9, atol=1e-9 * a[1].max())
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12)
    efficiency = a[0].sum() / a[1].sum()
    assert -1e-12 <= efficiency <= 1 + 1e-12


# A value chain (found by an outside test): mining supply balances a market, products go into use
# and 90 % of what returns is recycled back to the market. Its "feed" is mining supply, not waste:
# the recycling efficiency is not a number for it (it read 0.00 % and a Battery Regulation check
# would have failed it), while the same loop with the recycling plant on its own gives 90 %.
VALUE_CHAIN = """
critflow: 1
name: stockloop
time: {start: 2020, end: 2030}
unit: t/a
elements: [Ni, rest]
processes:
  - {id: mine, kind: source}
  - {id: market, kind: market, balancing: primary}
  - {id: fleet, kind: stock, lifetime: {distribution: fixed, mean: 2}}
  - id: recycling
    kind: transfer
    transfer: {secondary: {default: 0.9}, loss: {default: 0.1}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: market}
  - {id: sales, from: market, to: fleet, value: 100, composition: {Ni: 0.3}, product: widget}
  - {id: eol, from: fleet, to: recycling}
  - {id: secondary, from: recycling, to: market}
  - {id: loss, from: recycling, to: landfill, fate: landfill}
"""

PLANT_ALONE = """
critflow: 1
name: plant
time: {start: 2025, end: 2025}
unit: t/a
elements: [Ni, rest]
processes:
  - {id: collection, kind: source}
  - id: recycling
    kind: transfer
    transfer: {secondary: {default: 0.9}, loss: {default: 0.1}}
  - {id: buyer, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: eol, from: collection, to: recycling, value: 100, composition: {Ni: 0.3}}
  - {id: secondary, from: recycling, to: buyer, fate: recycled}
  - {id: loss, from: recycling, to: landfill, fate: landfill}
"""


@pytest.mark.parametrize("indicator", ["recycling_efficiency", "material_recovery"])
def test_a_value_chain_fed_by_mining_has_no_recycling_efficiency(indicator):
    from critflow.indicators.flows import IndicatorNotAvailableError

    model = model_text(VALUE_CHAIN)
    ctx = Context(model, critflow.solve(model))
    with pytest.raises(IndicatorNotAvailableError, match="primary supply \\('primary'"):
        evaluate_indicator(ctx, indicator, "Ni" if indicator == "material_recovery" else None)
    plant = model_text(PLANT_ALONE)
    value = evaluate_indicator(Context(plant, critflow.solve(plant)), indicator, "Ni")
    assert value[0, 0] == pytest.approx(0.9, abs=1e-12)


def test_the_value_chain_report_leaves_out_the_recycling_section(tmp_path):
    from critflow.analysis import Run
    from critflow.report.content import recycling_section
    from critflow.report.tables import indicator_tables

    run = Run.solve(model_text(VALUE_CHAIN))
    assert recycling_section(run) is None
    assert "recycling_efficiency" not in indicator_tables(run)


SMELTER_WITH_FLUX = """
critflow: 1
name: smelter
time: {start: 2025, end: 2026}
unit: t/a
elements: [Ni, Co, rest]
processes:
  - {id: batteries_in, kind: source}
  - {id: flux_silo, kind: source}
  - id: smelter
    kind: transfer
    transfer:
      alloy: {default: 0.0, Ni: 0.95, Co: 0.9}
      slag: {default: 1.0, Ni: 0.05, Co: 0.1}
  - {id: customers, kind: sink}
  - {id: road, kind: sink}
flows:
  - {id: batteries, from: batteries_in, to: smelter, value: 1000, composition: {Ni: 0.2, Co: 0.1}}
  - {id: flux, from: flux_silo, to: smelter, value: 200, composition: {Ni: 0, Co: 0}, role: additive}
  - {id: alloy, from: smelter, to: customers, fate: recycled, product: alloy}
  - {id: slag, from: smelter, to: road, fate: {default: recycled, Ni: lost, Co: lost}, product: aggregate}
scenarios:
  baseline: {}
  more_flux: {flows: {flux: {value: 400}}}
"""


def test_product_yield_counts_only_what_comes_from_the_feed():
    # 1,000 t of batteries (Ni 200, Co 100, rest 700) and 200 t (400 t) of flux, all 'rest'.
    # Alloy: Ni 190 + Co 90 = 280 t; slag: the batteries' 700 t of rest, plus the flux (its Ni 10
    # and Co 10 are lost, so no product of theirs). Feed-derived products: 280 + 700 = 980 t →
    # 0.98 kg/kg whatever the flux (it was 1,180/1,000 and 1,380/1,000, the flux in the slag
    # counted as a yield of the batteries).
    model = model_text(SMELTER_WITH_FLUX)
    ctx = Context(model, critflow.solve(model))
    assert np.allclose(evaluate_indicator(ctx, "product_yield", None), 0.98, rtol=0, atol=1e-12)
    assert np.allclose(evaluate_indicator(ctx, "product_yield", "Ni"), 0.95, atol=1e-12)
    alloy_only = model_text(SMELTER_WITH_FLUX.replace(", product: aggregate}", "}"))
    ctx = Context(alloy_only, critflow.solve(alloy_only))
    assert np.allclose(evaluate_indicator(ctx, "product_yield", None), 0.28, atol=1e-12)
