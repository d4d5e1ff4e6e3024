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


def _atomic_weights() -> dict[str, float]:
    """Standard atomic weights, g/mol (``critflow/data/atomic_weights.csv``: periodictable's values,
    with their source); read with the csv module, so plain formulas need neither periodictable nor
    pandas. tests/model/test_compound_plain.py holds them equal to the installed periodictable."""
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "atomic_weights.csv"
    with path.open(encoding="utf-8") as file:
        rows = csv.reader(line for line in file if not line.startswith("#"))
        next(rows)
        return {symbol: float(weight) for symbol, weight, _ in rows}


_MASS = _atomic_weights()
_PLAIN_PART = re.compile(r"^(?:[A-Z][a-z]?|[()]|[0-9.])+$")
_PLAIN_TOKEN = re.compile(r"([A-Z][a-z]?)|(\()|(\))|((?:0|[1-9][0-9]*)\.[0-9]+|[1-9][0-9]*)")


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


def _plain_formula(parts: list[str]) -> tuple | None:
    """The structure periodictable's grammar gives ``'+'.join(parts)`` — nested ``(count,
    fragment)`` pairs, a fragment an element symbol or a tuple of pairs — for a *plain* formula:
    element symbols of :data:`_MASS` with counts (``2``, ``0.8``), parentheses, and a count before a
    part (``7H2O``), nothing else. None for anything else (spaces, isotopes, counts such as ``0``,
    ``02`` or ``2.``, unbalanced parentheses, unknown symbols): periodictable reads those, and
    explains what it cannot read."""
    structure: list = []
    for part in parts:
        if not _PLAIN_PART.match(part):
            return None
        tokens = []
        position = 0
        while position < len(part):
            found = _PLAIN_TOKEN.match(part, position)
            if found is None:
                return None
            tokens.append(found)
            position = found.end()
        parsed = _plain_composite(tokens, 0)
        if parsed is None or parsed[1] != len(tokens):
            return None
        structure += parsed[0]
    return tuple(structure)


def _number(token) -> int | float | None:
    """The count a token writes (``2`` an int, ``0.8`` a float, as periodictable reads them)."""
    text = token.group(4)
    if text is None:
        return None
    return float(text) if "." in text else int(text)


def _plain_composite(tokens: list, i: int) -> tuple[list, int] | None:
    """Groups from token i on, until a ')' or the end: (pairs, index of the token after them).

    As periodictable's grammar: a count before a run of elements multiplies the run; a count after
    an element or a ')' is that element's or group's; a count of 1 leaves the run or group flat."""
    pairs: list = []
    while i < len(tokens) and tokens[i].group(3) is None:  # up to a ')'
        lead = _number(tokens[i])
        if lead is not None:  # a count before a run of elements: '7H2O'
            i += 1
            if i == len(tokens) or tokens[i].group(1) is None:
                return None
        if tokens[i].group(1) is not None:  # a run of elements with their counts
            run = []
            while i < len(tokens) and tokens[i].group(1) is not None:
                symbol = tokens[i].group(1)
                if symbol not in _MASS:
                    return None
                i += 1
                count = _number(tokens[i]) if i < len(tokens) else None
                if count is not None:
                    i += 1
                run.append((1 if count is None else count, symbol))
            lead = 1 if lead is None else lead
            pairs += run if lead == 1 else [(lead, tuple(run))]
        elif tokens[i].group(2) is not None:  # '(' composite ')' count
            inner = _plain_composite(tokens, i + 1)
            if inner is None or inner[1] == len(tokens) or not inner[0]:
                return None
            i = inner[1] + 1  # past the ')'
            count = _number(tokens[i]) if i < len(tokens) else None
            if count is not None:
                i += 1
            count = 1 if count is None else count
            pairs += inner[0] if count == 1 else [(count, tuple(inner[0]))]
        else:  # a count where none can stand
            return None
    return pairs, i


def _count_atoms(structure: tuple) -> dict[str, int | float]:
    """Atoms per formula unit, summed over the structure as periodictable sums them (a group's own
    sum first, then times its count), in the order the formula writes them."""
    total: dict[str, int | float] = {}
    for count, fragment in structure:
        partial = _count_atoms(fragment) if isinstance(fragment, tuple) else {fragment: 1}
        for atom, atom_count in partial.items():
            total[atom] = total.get(atom, 0) + atom_count * count
    return total


def _compound(formula: str, structure: tuple) -> Compound | None:
    """The :class:`Compound` of a plain formula, with periodictable's arithmetic (the same sums in
    the same order, so the same numbers); None when a count is 0 (``Ni0.0``): periodictable's
    reading then names the mistake."""
    counted = _count_atoms(structure)
    if not all(math.isfinite(count) and count > 0 for count in counted.values()):
        return None
    mass = 0.0
    for symbol, count in counted.items():
        mass += _MASS[symbol] * count
    atoms = {symbol: float(count) for symbol, count in counted.items()}
    fractions = {symbol: count * _MASS[symbol] / mass for symbol, count in counted.items()}
    return Compound(formula, atoms, mass, fractions)


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
    quick = _plain_formula(parts)
    found = _compound(formula, quick) if quick is not None else None
    if found is not None:
        return found
    # anything else (and every mistake, for its message) goes to periodictable's grammar
    import periodictable  # on use: with pyparsing ~70 ms to import and build its grammar
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
