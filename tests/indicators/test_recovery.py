"""Recovery, recycling efficiency and material recovery against hand calculations."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.errors import CritflowError
from critflow.indicators import material_recovery, recovery_by_product, recycling_efficiency
from critflow.indicators.registry import Context, evaluate_indicator
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
