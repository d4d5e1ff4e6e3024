"""Chemical compounds of product flows: formula → molar mass and element mass fractions.

A product flow may name the compound it is sold as (``compound: NiSO4·6H2O``). The model's balances
stay on the elements it tracks (the flow carries kg of Ni); the compound only says what a lot of the
product weighs and contains. Formula masses come from ``periodictable`` (IUPAC standard atomic
weights, conventional values: H 1.008, C 12.011, O 15.999, S 32.06, Li 6.94, Ni 58.6934 …).

Syntax: element symbols with counts (decimals allowed, ``LiNi0.8Mn0.1Co0.1O2``), parentheses, and a
hydrate or adduct part after ``·`` or ``*`` (``CoSO4·7H2O``, ``MnSO4*H2O``). A ``.`` is a decimal
point, never a hydrate dot.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

_ALLOWED = re.compile(r"^[A-Za-z0-9().·•⋅* ]+$")
_HYDRATE = re.compile(r"[·•⋅*]")
_DOT_HYDRATE = re.compile(r"[A-Za-z)]\d+\.\d*H2O")
_LOOSE_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)|\.\d+\.")
MAX_LENGTH = 120


@dataclass(frozen=True)
class Compound:
    """A parsed formula: atoms per formula unit, molar mass (g/mol) and element mass fractions."""

    formula: str
    atoms: dict[str, float]
    molar_mass: float
    mass_fractions: dict[str, float]

    @property
    def elements(self) -> list[str]:
        """Element symbols in the order the formula writes them."""
        return list(self.atoms)


def parse_compound(text: str) -> Compound:
    """Parse a chemical formula; raise ValueError saying what is wrong and how to write it."""
    return _parse(str(text).strip())


@lru_cache(maxsize=256)
def _parse(formula: str) -> Compound:
    example = "write it as NiSO4·6H2O, CoSO4*7H2O or Li2CO3"
    if not formula:
        raise ValueError(f"the compound is empty; {example}")
    if len(formula) > MAX_LENGTH:
        raise ValueError(f"the compound has {len(formula)} characters (at most {MAX_LENGTH})")
    if not _ALLOWED.match(formula):
        bad = sorted({c for c in formula if not _ALLOWED.match(c)})
        raise ValueError(
            f"'{formula}' has characters a formula does not use ({' '.join(map(repr, bad))}); "
            f"{example}"
        )
    if _DOT_HYDRATE.search(formula):
        raise ValueError(
            f"'{formula}': '.' is a decimal point in a formula (LiNi0.8Mn0.1Co0.1O2), so the "
            "water would be read as part of a count; write the hydrate with '·' or '*' "
            "(NiSO4·6H2O or NiSO4*6H2O)"
        )
    if _LOOSE_DOT.search(formula):
        raise ValueError(
            f"'{formula}': a '.' must be a decimal point between digits (Ni0.8); {example}"
        )
    parts = [p.strip() for p in _HYDRATE.split(formula)]
    if any(not p for p in parts):
        raise ValueError(f"'{formula}' has an empty part around a '·' or '*'; {example}")
    import periodictable
    from pyparsing import ParseException

    try:
        parsed = periodictable.formula("+".join(parts))
    except ParseException as exc:
        raise ValueError(
            f"'{formula}' is not a chemical formula critflow can read ({exc.msg} near "
            f"character {exc.loc + 1}); {example}"
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            f"'{formula}' is not a chemical formula critflow can read ({exc}); {example}"
        ) from None
    atoms: dict[str, float] = {}
    for atom, count in parsed.atoms.items():
        symbol = getattr(atom, "element", atom).symbol  # an isotope (D) counts as its element
        atoms[symbol] = atoms.get(symbol, 0.0) + float(count)
    if not atoms:
        raise ValueError(f"'{formula}' names no element; {example}")
    for symbol, count in atoms.items():
        if not (math.isfinite(count) and count > 0):
            raise ValueError(
                f"'{formula}' gives {symbol} a count of {count:g}; counts are positive"
            )
    mass = float(parsed.mass)
    if not (math.isfinite(mass) and mass > 0):
        raise ValueError(f"'{formula}' has no molar mass; {example}")
    fractions: dict[str, float] = {}
    for atom, fraction in parsed.mass_fraction.items():
        symbol = getattr(atom, "element", atom).symbol
        fractions[symbol] = fractions.get(symbol, 0.0) + float(fraction)
    return Compound(formula, atoms, mass, fractions)
