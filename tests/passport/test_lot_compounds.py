"""Lots as compounds: a product flow that names its compound (NiSO4·6H2O, Li2CO3) is declared as
the salt — mass and composition from molar masses — while the model's balances stay on elements."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import critflow
from critflow.errors import CritflowError
from critflow.model.compound import parse_compound
from critflow.passport.from_model import lot_from_flow
from critflow.passport.lot import validate_lot
from tests.conftest import EXAMPLE, model_text
from tests.conftest import critflow_cli as run_critflow

# IUPAC standard atomic weights (CIAAW 2021, conventional / abridged values), g/mol
NI, S, OXY, H, LI, C, CO, MN = 58.6934, 32.06, 15.999, 1.008, 6.94, 12.011, 58.933194, 54.938043

PLANT = """
critflow: 1
name: black-mass refinery
time: {{start: 2030, end: 2030}}
elements: [Ni, Li, C, Co, rest]
processes:
  - {{id: collection, kind: source}}
  - id: refinery
    kind: transfer
    transfer:
      nickel_salt: {{default: 0.0, Ni: 1.0, Co: {co_to_ni}}}
      lithium_salt: {{default: 0.0, Li: 1.0}}
      residue: {{default: 1.0, Ni: 0.0, Li: 0.0, Co: {co_rest}}}
  - {{id: customers, kind: sink}}
  - {{id: landfill, kind: sink}}
flows:
  - id: black_mass
    from: collection
    to: refinery
    value: 1000
    origin: post_consumer
    composition: {{Ni: 0.1, Li: 0.01, C: 0.3, Co: 0.02}}
  - {{id: nickel_salt, from: refinery, to: customers, fate: recycled, product: nickel sulfate{ni_compound}}}
  - {{id: lithium_salt, from: refinery, to: customers, fate: recycled, product: lithium carbonate{li_compound}}}
  - {{id: residue, from: refinery, to: landfill, fate: landfill}}
"""


def plant(
    ni: str | None = "NiSO4·6H2O", li: str | None = "Li2CO3", co_to_ni: float = 0.0
) -> critflow.Model:
    return model_text(
        PLANT.format(
            ni_compound=f", compound: '{ni}'" if ni else "",
            li_compound=f", compound: '{li}'" if li else "",
            co_to_ni=co_to_ni,
            co_rest=1.0 - co_to_ni,
        )
    )


def lot(model: critflow.Model, flow: str) -> dict:
    document = lot_from_flow(model, critflow.solve(model), flow)
    validate_lot(document)
    return document


def fraction(document: dict, element: str) -> float:
    return document["composition"][element]["mass_fraction"]


def test_nickel_sulfate_hexahydrate_lot_from_atomic_weights():
    # 1000 t of black mass with 10 % Ni: the flow carries 100 t of Ni.
    # M(NiSO4·6H2O) = 58.6934 + 32.06 + 10·15.999 + 12·1.008 = 262.8394 g/mol
    # w(Ni) = 58.6934 / 262.8394 = 0.2233052; lot = 100 t / 0.2233052 = 447.8176 t
    molar = NI + S + 10 * OXY + 12 * H
    assert molar == pytest.approx(262.8394, abs=1e-9)
    document = lot(plant(), "nickel_salt")
    assert document["mass"]["value"] == pytest.approx(100 / (NI / molar), rel=1e-12)
    assert document["mass"]["value"] == pytest.approx(447.8176, abs=5e-4)
    expected = {"Ni": NI / molar, "S": S / molar, "O": 10 * OXY / molar, "H": 12 * H / molar}
    assert set(document["composition"]) == set(expected)
    for element, w in expected.items():
        assert fraction(document, element) == pytest.approx(w, rel=1e-12), element
    assert fraction(document, "Ni") == pytest.approx(0.2233052, abs=5e-8)
    assert document["compound"] == {
        "formula": "NiSO4·6H2O",
        "molar_mass": pytest.approx(molar, rel=1e-12),
        "basis": "Ni",
        "mass_fraction_of_lot": 1.0,
    }
    assert document["product"] == "nickel sulfate"
    # the nickel is all post-consumer; the sulfate and water come from reagents the model does
    # not trace, so the lot's mass is 22.3 % recycled (per element: Ni 100 %)
    assert document["recycled_content"]["post_consumer"] == pytest.approx(NI / molar, rel=1e-12)
    assert document["recycled_content"]["by_element"]["Ni"]["post_consumer"] == pytest.approx(1.0)


def test_lithium_carbonate_lot_with_an_element_the_flow_does_not_carry():
    # 10 t of Li; M(Li2CO3) = 2·6.94 + 12.011 + 3·15.999 = 73.888 g/mol; w(Li) = 13.88 / 73.888
    # = 0.187852; lot = 10 / 0.187852 = 53.2334 t. The model tracks C (the black mass's graphite)
    # but the carbonate flow carries none of it: the carbonate's C comes from the soda ash, so it
    # is declared from the formula; O is not an element of the model at all.
    molar = 2 * LI + C + 3 * OXY
    assert molar == pytest.approx(73.888, abs=1e-9)
    document = lot(plant(), "lithium_salt")
    assert document["mass"]["value"] == pytest.approx(10 / (2 * LI / molar), rel=1e-12)
    assert document["mass"]["value"] == pytest.approx(53.2334, abs=5e-4)
    assert fraction(document, "Li") == pytest.approx(2 * LI / molar, rel=1e-12)
    assert fraction(document, "C") == pytest.approx(C / molar, rel=1e-12)  # 0.162557
    assert fraction(document, "O") == pytest.approx(3 * OXY / molar, rel=1e-12)  # 0.649591
    assert sum(c["mass_fraction"] for c in document["composition"].values()) == pytest.approx(1)


def test_balances_stay_on_elements():
    # naming compounds changes what a lot declares, never the solved element flows
    with_compounds = critflow.solve(plant())
    without = critflow.solve(plant(None, None))
    np.testing.assert_array_equal(with_compounds.mass_kg, without.mass_kg)
    assert lot(plant(None, None), "nickel_salt")["composition"] == {"Ni": {"mass_fraction": 1.0}}


def test_hydrate_with_a_dot_or_a_star():
    dot = lot(plant("NiSO4·6H2O"), "nickel_salt")
    star = lot(plant("NiSO4*6H2O"), "nickel_salt")
    assert dot["mass"] == star["mass"] and dot["composition"] == star["composition"]
    # CoSO4·7H2O and MnSO4·H2O (a count of one) read as their formulas
    assert parse_compound("CoSO4·7H2O").atoms == {"Co": 1, "S": 1, "O": 11, "H": 14}
    assert parse_compound("MnSO4*H2O").molar_mass == pytest.approx(MN + S + 5 * OXY + 2 * H)
    assert parse_compound("CoSO4·7H2O").molar_mass == pytest.approx(CO + S + 11 * OXY + 14 * H)
    # '.' is a decimal point (LiNi0.8Mn0.1Co0.1O2), so 'NiSO4.6H2O' is refused, not read as O4.6
    with pytest.raises(CritflowError, match="write the hydrate with '·' or '\\*'"):
        plant("NiSO4.6H2O")
    assert parse_compound("LiNi0.8Mn0.1Co0.1O2").atoms["Ni"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("NiSO4Xx", "unknown element Xx"),
        ("NiSO4··6H2O", "empty part around"),
        ("NiSO4..6H2O", "decimal point between digits"),
        ("Fe3O4@C", "characters a formula does not use"),
        ("nickel sulfate", "not a chemical formula"),
        ("NiSO4*0H2O", "gives H a count of 0"),
        ("Ni" * 70, "at most 120"),
    ],
)
def test_a_bad_formula_names_the_flow(formula, message):
    with pytest.raises(CritflowError) as info:
        plant(formula)
    text = str(info.value)
    assert "flow 'nickel_salt'" in text and message in text, text
    assert re.search(r"line \d+", text), text  # and where it is in the file


def test_a_compound_the_model_does_not_track():
    # cobalt sulfate on a flow of a model that tracks Ni, Li, C and Co — but here the flow's
    # formula has no element of the model at all, and then one the flow does not carry
    with pytest.raises(CritflowError, match=r"none of the elements of K2SO4 \(K, S, O\)"):
        lot(plant("K2SO4"), "nickel_salt")
    with pytest.raises(CritflowError, match=r"carries no Co in 2030") as info:
        lot(plant("CoSO4·7H2O"), "nickel_salt")
    assert "flow 'nickel_salt' (compound CoSO4·7H2O)" in str(info.value)


def test_a_tracked_impurity_adds_to_the_lot():
    # half of the 20 t of Co reports to the nickel salt as an impurity: 100 t Ni as NiSO4·6H2O
    # (447.82 t) plus 10 t of Co (as the element, its counter-ion unknown) = 457.82 t
    molar = NI + S + 10 * OXY + 12 * H
    salt_t = 100 / (NI / molar)
    document = lot(plant(co_to_ni=0.5), "nickel_salt")
    assert document["mass"]["value"] == pytest.approx(salt_t + 10, rel=1e-12)
    assert fraction(document, "Co") == pytest.approx(10 / (salt_t + 10), rel=1e-12)
    assert fraction(document, "Ni") == pytest.approx(100 / (salt_t + 10), rel=1e-12)
    assert document["compound"]["mass_fraction_of_lot"] == pytest.approx(salt_t / (salt_t + 10))
    assert sum(c["mass_fraction"] for c in document["composition"].values()) == pytest.approx(1)


ELEMENTS = ["Li", "Ni", "Co", "Mn", "C", "O", "S", "H", "Fe", "P", "Al", "Cu"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(ELEMENTS), st.integers(1, 40)), min_size=1, max_size=5),
    st.integers(0, 12),
)
def test_mass_fractions_sum_to_one_for_any_formula(parts, water):
    formula = "".join(f"{e}{n}" for e, n in parts) + (f"·{water}H2O" if water else "")
    compound = parse_compound(formula)
    assert sum(compound.mass_fractions.values()) == pytest.approx(1.0, abs=1e-12)
    counts: dict[str, int] = {}
    for e, n in parts:
        counts[e] = counts.get(e, 0) + n
    if water:
        counts["H"] = counts.get("H", 0) + 2 * water
        counts["O"] = counts.get("O", 0) + water
    assert compound.atoms == pytest.approx(counts)


def test_console_and_file_agree_on_the_carbon_footprint(tmp_path):
    out = tmp_path / "nickel_sulfate.json"
    result = run_critflow(
        "passport", "issue", str(EXAMPLE), "--output-flow", "nickel_sulfate", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    footprint = document["carbon_footprint"]
    assert footprint["status"] == "declared"
    said = re.search(
        r"carbon footprint ([\d.]+) kg CO2-eq per kg of lot \(declared\)", result.stdout
    )
    assert said and float(said.group(1)) == pytest.approx(footprint["value"], rel=1e-3)
    assert "pending" not in result.stdout
    assert "NiSO4·6H2O" in result.stdout and f"{document['mass']['value']:,.1f} t" in result.stdout
    # a model without inventories: both say pending
    bare = tmp_path / "bare.yaml"
    bare.write_text(PLANT.format(ni_compound="", li_compound="", co_to_ni=0.0, co_rest=1.0))
    out2 = tmp_path / "bare.json"
    result = run_critflow(
        "passport", "issue", str(bare), "--output-flow", "nickel_salt", "--out", str(out2)
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out2.read_text())["carbon_footprint"]["status"] == "pending"
    assert "carbon footprint pending" in result.stdout
