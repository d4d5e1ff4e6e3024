"""Plain formulas are read without periodictable, to the same numbers (issue 19: start-up).

``critflow.model.compound`` reads plain formulas (element symbols, counts, parentheses, hydrates)
itself, with a copy of periodictable's standard atomic weights, and hands everything else to
periodictable's grammar (which also words every error). Here each formula is read both ways: the
atoms (in order), the molar mass and the mass fractions must be exactly equal, or both ways must
refuse it with the same message.
"""

from __future__ import annotations

import math
from unittest import mock

import periodictable
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.model import compound
from critflow.model.compound import parse_compound


def by_periodictable(formula: str):
    """What ``parse_compound`` gives when every formula goes to periodictable."""
    with mock.patch.object(compound, "_plain_formula", return_value=None):
        return compound._parse.__wrapped__(formula.strip())


def by_plain_reader(formula: str):
    return compound._parse.__wrapped__(formula.strip())


def outcome(read, formula: str):
    try:
        found = read(formula)
    except ValueError as exc:
        return ("refused", str(exc))
    return ("read", found.formula, list(found.atoms.items()), found.molar_mass,
            list(found.mass_fractions.items()))  # fmt: skip


def test_the_atomic_weights_are_periodictables():
    table = {el.symbol: el.mass for el in periodictable.elements if el.number}
    assert table == compound._MASS
    assert len(table) == 118


@pytest.mark.parametrize(
    "formula",
    ["CoSO4·7H2O", "MnSO4*H2O", "NiSO4·6H2O", "Li2CO3", "LiNi0.8Mn0.1Co0.1O2", "Ca3(PO4)2",
     "(NH4)2SO4·6H2O", "Fe2(SO4)3·9H2O", "((OH)2)3", "LiFePO4", "Al(OH)3", "C", "CoO(OH)"],
)  # fmt: skip
def test_plain_formulas_are_read_without_periodictable_to_the_same_numbers(formula):
    parts = [p.strip() for p in compound._HYDRATE.split(formula)]
    assert compound._plain_formula(parts) is not None  # the plain reader takes it
    assert outcome(by_plain_reader, formula) == outcome(by_periodictable, formula)


def test_known_molar_mass_by_hand():
    """CoSO4·7H2O from the weights (Co 58.933194, S 32.06, O 15.999, H 1.008): 281.094194."""
    found = parse_compound("CoSO4·7H2O")
    assert found.molar_mass == pytest.approx(
        58.933194 + 32.06 + 11 * 15.999 + 14 * 1.008, rel=1e-15
    )
    assert math.fsum(found.mass_fractions.values()) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    "formula",
    ["Ni0.0O", "D2O", "H2 O", "Xx2", "(H2O", "H2O)", "()", "2(OH)", "O02", "Co0", "Na.5Cl",
     "7·H2O", "CO3 2H2O", "n", "H2O·"],
)  # fmt: skip
def test_other_formulas_go_to_periodictable_with_its_message(formula):
    parts = [p.strip() for p in compound._HYDRATE.split(formula.strip())]
    quick = compound._plain_formula(parts)
    assert quick is None or compound._compound(formula, quick) is None
    assert outcome(by_plain_reader, formula) == outcome(by_periodictable, formula)


SYMBOLS = ["H", "C", "O", "N", "S", "P", "Li", "Ni", "Co", "Mn", "Fe", "Cu", "Al", "Na", "Cl",
           "D", "T", "Xx", "Zz", "n"]  # fmt: skip
COUNTS = ["", "", "2", "3", "10", "0.5", "0.25", "1.0", "1", "0", "02", "0.0", "12"]


@st.composite
def formulas(draw) -> str:
    def group(depth: int) -> str:
        pieces = []
        for _ in range(draw(st.integers(1, 3))):
            if depth < 2 and draw(st.booleans()) and draw(st.booleans()):
                pieces.append("(" + group(depth + 1) + ")" + draw(st.sampled_from(COUNTS)))
            else:
                pieces.append(draw(st.sampled_from(SYMBOLS)) + draw(st.sampled_from(COUNTS)))
        return "".join(pieces)

    parts = [draw(st.sampled_from(["", "", "2", "7", "0.5"])) + group(0)]
    parts += [
        draw(st.sampled_from(["", "6", "7", "1.5"])) + group(0)
        for _ in range(draw(st.integers(0, 2)))
    ]
    return draw(st.sampled_from(["·", "*"])).join(parts)


@settings(max_examples=300, deadline=None)
@given(formula=formulas() | st.text(alphabet="HCONaSiLiD()0123456789.·* ", max_size=14))
def test_every_formula_reads_the_same_as_by_periodictable(formula):
    assert outcome(by_plain_reader, formula) == outcome(by_periodictable, formula)
