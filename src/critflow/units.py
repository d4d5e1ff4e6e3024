"""Units at the edges: pint converts user quantities to the model's internal units.

Inside critflow, flow arrays are mass flows in kg per year (``mass_kg`` per ``year``); the model's
declared ``unit`` is used for reporting.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pint

from critflow.errors import CritflowError

INTERNAL_FLOW_UNIT = "kg/year"
_QUANTITY = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*[A-Za-z%µ].*$")


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The shared pint registry (years as 'a', tonnes as 't', kilotonnes as 'kt').

    pint reads 'kt' as the knot (a speed); in material flow work it is the kilotonne, so the
    symbol is redefined here.
    """
    ureg = pint.UnitRegistry(on_redefinition="ignore")
    ureg.define("kilotonne = 1e6 kg = kt")
    ureg.define("euro = [currency] = EUR")
    ureg.define("kiloeuro = 1e3 EUR = kEUR")
    ureg.define("megaeuro = 1e6 EUR = MEUR")
    ureg.define("US_dollar = [currency_usd] = USD")
    return ureg


def looks_like_quantity(text: str) -> bool:
    """True for strings such as '12 kt/a' or '3.5e3 kg/year' (a number followed by a unit)."""
    return bool(_QUANTITY.match(text))


@lru_cache(maxsize=256)
def mass_flow_factor(unit: str, where: str = "unit") -> float:
    """Factor that converts a value in ``unit`` (a mass flow such as 't/a') to kg per year."""
    ureg = registry()
    try:
        quantity = ureg.Quantity(1.0, unit)
    except Exception as exc:  # pint raises several error types for unknown or malformed units
        raise CritflowError(
            where,
            f"'{unit}' is not a unit pint knows ({type(exc).__name__}: {exc})",
            "Write a mass flow such as 't/a', 'kt/a', 'kg/a' or 'Mg/year'.",
        ) from None
    if quantity.dimensionality != ureg.Quantity(1.0, "kg/year").dimensionality:
        raise CritflowError(
            where,
            f"'{unit}' is not a mass flow (its dimension is {quantity.dimensionality})",
            "Write a mass per time such as 't/a', 'kt/a' or 'kg/a'.",
        )
    return float(quantity.to(INTERNAL_FLOW_UNIT).magnitude)


def parse_mass_flow(text: str, where: str) -> float:
    """Convert a quantity string such as '12 kt/a' to kg per year."""
    ureg = registry()
    try:
        quantity = ureg.Quantity(text)
    except Exception as exc:
        raise CritflowError(
            where,
            f"'{text}' is not a quantity pint can read ({type(exc).__name__}: {exc})",
            "Write a number and a mass-flow unit, such as '1200 t/a'.",
        ) from None
    magnitude = float(quantity.magnitude)
    unit = str(quantity.units)
    return magnitude * mass_flow_factor(unit, where)


def parse_mass(text: str, where: str) -> float:
    """Convert a quantity string such as '1.2 Mt' to kg."""
    ureg = registry()
    try:
        quantity = ureg.Quantity(text)
        return float(quantity.to("kg").magnitude)
    except Exception as exc:  # pint raises several error types for unknown or unfit units
        raise CritflowError(
            where,
            f"'{text}' is not a mass pint can read ({type(exc).__name__}: {exc})",
            "Write a number and a mass unit, such as '1.2 Mt' or '3500 t'.",
        ) from None
