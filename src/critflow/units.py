"""Units at the edges: pint converts user quantities to the model's internal units.

Inside critflow, flow arrays are mass flows in kg per year (``mass_kg`` per ``year``); the model's
declared ``unit`` is used for reporting.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from critflow.errors import CritflowError

if TYPE_CHECKING:
    import pint

INTERNAL_FLOW_UNIT = "kg/year"
_QUANTITY = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*[A-Za-z%µ].*$")
_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
LARGEST = 1e30
"""Largest mass (kg) or mass flow (kg/year) critflow accepts as given: about 170,000 times the
mass of the Earth (6e24 kg), so only a mistake (a wrong unit, 1e308) goes beyond it, and far enough
below the float limit (1.8e308) that sums and squares in a solve stay finite."""


_POWER = re.compile(r"(\*\*|\^)")
_EXPONENT = re.compile(r"\s*[-+]?\d{1,3}(\.\d{1,3})?(?!\s*(\*\*|\^|\d|\.))")
_SUPERSCRIPTS = re.compile(r"[\u00b2\u00b3\u00b9\u2070-\u209f]{2,}")
MAX_UNIT_TEXT = 200
"""Longest quantity or unit text handed to pint."""


def check_unit_text(text: object) -> None:
    """Refuse unit or quantity text that would make pint compute without end.

    pint evaluates powers exactly, so '10**10**10 t' (or a run of superscript digits) would run
    for hours; exponents are limited to plain numbers of at most three digits, unchained, and
    the text to :data:`MAX_UNIT_TEXT` characters. Raises ValueError (pint's callers turn it into
    a CritflowError)."""
    if not isinstance(text, str):
        return
    if len(text) > MAX_UNIT_TEXT:
        raise ValueError(f"the text is longer than {MAX_UNIT_TEXT} characters")
    if _SUPERSCRIPTS.search(text):
        raise ValueError("superscript digits in a row are not a unit")
    for power in _POWER.finditer(text):
        if not _EXPONENT.match(text, power.end()):
            raise ValueError(
                "an exponent must be a plain number of at most three digits (m**2, t/a), "
                "not a power of a power or an expression"
            )


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The shared pint registry (years as 'a', tonnes as 't', kilotonnes as 'kt').

    pint reads 'kt' as the knot (a speed); in material flow work it is the kilotonne, so the
    symbol is redefined here.
    """
    import pint  # on first use: pint costs 0.1-0.3 s to import (it imports dask when installed)

    class _GuardedRegistry(pint.UnitRegistry):
        """A pint registry that checks text (:func:`check_unit_text`) before parsing it."""

        def parse_expression(self, input_string, *args, **kwargs):  # type: ignore[override]
            check_unit_text(input_string)
            return super().parse_expression(input_string, *args, **kwargs)

        __call__ = parse_expression

        def _parse_units_as_container(self, input_string, *args, **kwargs):  # type: ignore[override]
            check_unit_text(input_string)
            return super()._parse_units_as_container(input_string, *args, **kwargs)

    try:  # pint's parsed-definitions cache (~/.cache/pint) makes this 4x faster after the first run
        ureg = _GuardedRegistry(on_redefinition="ignore", cache_folder=":auto:")
    except Exception:  # an unwritable or half-written cache: build the registry from its files
        ureg = _GuardedRegistry(on_redefinition="ignore")
    ureg.define("kilotonne = 1e6 kg = kt")
    ureg.define("euro = [currency] = EUR")
    ureg.define("kiloeuro = 1e3 EUR = kEUR")
    ureg.define("megaeuro = 1e6 EUR = MEUR")
    ureg.define("US_dollar = [currency_usd] = USD")
    return ureg


def shown(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def looks_like_quantity(text: str) -> bool:
    """True for strings such as '12 kt/a' or '3.5e3 kg/year' (a number followed by a unit).

    A plain number written as text ('1.5e3') is not a quantity: its 'e3' is an exponent."""
    return bool(_QUANTITY.match(text)) and not _PLAIN_NUMBER.match(text)


def check_magnitude(value: float, text: str, unit: str, where: str) -> float:
    """``value`` (already in ``unit``), or a CritflowError when it is not finite or above
    :data:`LARGEST` in magnitude — what 1e308 in t/a becomes in kg/year."""
    if not math.isfinite(value) or abs(value) > LARGEST:
        raise CritflowError(
            where,
            f"{text} is {value:.3g} {unit}, "
            + ("not a finite number" if not math.isfinite(value) else f"beyond {LARGEST:.0e}")
            + " after conversion",
            "Check the number and its unit: no real mass comes near this (the Earth is 6e24 kg). "
            f"critflow refuses masses and mass flows above {LARGEST:.0e} kg (per year), NaN and "
            "infinity, so a solve cannot overflow.",
        )
    return value


# The mass-flow units models write most, converted without pint (whose import and registry cost
# 0.2-0.4 s at start-up); the same factors as pint's (year = 365.25 days), which
# tests/test_units.py checks for every pair.
COMMON_MASSES_KG = {
    "g": 1e-3,
    "kg": 1.0,
    "t": 1e3,
    "tonne": 1e3,
    "Mg": 1e3,
    "kt": 1e6,
    "Gg": 1e6,
    "Mt": 1e9,
}
COMMON_TIMES_YEARS = {
    "a": 1.0,
    "yr": 1.0,
    "year": 1.0,
    "d": 1 / 365.25,
    "day": 1 / 365.25,
    "h": 1 / (365.25 * 24),
    "hour": 1 / (365.25 * 24),
}
_COMMON_FLOW = re.compile(
    r"^\s*(" + "|".join(COMMON_MASSES_KG) + r")\s*/\s*(" + "|".join(COMMON_TIMES_YEARS) + r")\s*$"
)
_COMMON_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*)$")


def _common_flow_factor(unit: str) -> float | None:
    """kg/year per ``unit`` for the common mass-flow units ('t/a', 'kt/a', 't/h'), else None."""
    found = _COMMON_FLOW.match(unit)
    if found is None:
        return None
    return COMMON_MASSES_KG[found.group(1)] / COMMON_TIMES_YEARS[found.group(2)]


@lru_cache(maxsize=256)
def mass_flow_factor(unit: str, where: str = "unit") -> float:
    """Factor that converts a value in ``unit`` (a mass flow such as 't/a') to kg per year."""
    common = _common_flow_factor(unit)
    if common is not None:
        return common
    ureg = registry()
    try:
        quantity = ureg.Quantity(1.0, unit)
    except Exception as exc:  # pint raises several error types for unknown or malformed units
        raise CritflowError(
            where,
            f"'{shown(unit)}' is not a unit pint knows ({type(exc).__name__}: {exc})",
            "Write a mass flow such as 't/a', 'kt/a', 'kg/a' or 'Mg/year'.",
        ) from None
    if quantity.dimensionality != ureg.Quantity(1.0, "kg/year").dimensionality:
        raise CritflowError(
            where,
            f"'{shown(unit)}' is not a mass flow (its dimension is {quantity.dimensionality})",
            "Write a mass per time such as 't/a', 'kt/a' or 'kg/a'.",
        )
    return float(quantity.to(INTERNAL_FLOW_UNIT).magnitude)


def parse_mass_flow(text: str, where: str) -> float:
    """Convert a quantity string such as '12 kt/a' to kg per year."""
    found = _COMMON_QUANTITY.match(text)
    if found is not None and (common := _common_flow_factor(found.group(2))) is not None:
        magnitude = float(found.group(1))
        return check_magnitude(magnitude * common, f"'{shown(text)}'", INTERNAL_FLOW_UNIT, where)
    ureg = registry()
    try:
        quantity = ureg.Quantity(text)
    except Exception as exc:
        raise CritflowError(
            where,
            f"'{shown(text)}' is not a quantity pint can read ({type(exc).__name__}: {exc})",
            "Write a number and a mass-flow unit, such as '1200 t/a'.",
        ) from None
    magnitude = float(quantity.magnitude)
    unit = str(quantity.units)
    if quantity.dimensionless:
        raise CritflowError(
            where,
            f"'{shown(text)}' is a plain number to pint (its unit '{shown(unit)}' has no "
            "dimension), not a mass flow",
            "Write a number and a mass-flow unit, such as '1200 t/a', or a plain number "
            "without quotes (then the flow's or the model's unit applies).",
        )
    return check_magnitude(
        magnitude * mass_flow_factor(unit, where), f"'{shown(text)}'", INTERNAL_FLOW_UNIT, where
    )


def parse_mass(text: str, where: str) -> float:
    """Convert a quantity string such as '1.2 Mt' to kg."""
    ureg = registry()
    try:
        quantity = ureg.Quantity(text)
        kg = float(quantity.to("kg").magnitude)
    except Exception as exc:  # pint raises several error types for unknown or unfit units
        raise CritflowError(
            where,
            f"'{shown(text)}' is not a mass pint can read ({type(exc).__name__}: {exc})",
            "Write a number and a mass unit, such as '1.2 Mt' or '3500 t'.",
        ) from None
    return check_magnitude(kg, f"'{shown(text)}'", "kg", where)


# ------------------------------------------------------------------ quantities written by users
def quantity(text: object, where: str, what: str) -> pint.Quantity:
    """A pint quantity from a string such as '180 kWh/t'; numbers without a unit are refused.

    ``what`` names the expected quantity for the message ('a price in EUR/t')."""
    if not isinstance(text, str) or not looks_like_quantity(text):
        raise CritflowError(
            where,
            f"{text!r} has no unit",
            f"Write {what} with its unit, for example '180 kWh/t' or '0.9 t/t'.",
        )
    try:
        return registry().Quantity(text)
    except Exception as exc:  # pint raises several error types for unknown units
        raise CritflowError(
            where, f"'{shown(text)}' is not a quantity pint can read ({exc})", f"Write {what}."
        ) from None


def convert(text: object, unit: str, where: str, what: str, example: str | None = None) -> float:
    """The magnitude of the quantity ``text`` in ``unit`` ('180 kWh/t' in 'kWh/kg' → 0.18).

    The one conversion of user quantities (inventories, prices, costs, durations): a text without
    a unit, a unit pint does not know, or a quantity of another kind ('3 kg' for a price) is a
    CritflowError at ``where`` naming ``what`` and, when given, an ``example`` that fits."""
    given = quantity(text, where, what)
    try:
        value = float(given.to(unit).magnitude)
    except Exception:
        raise CritflowError(
            where,
            f"'{shown(str(text))}' ({measures(given)}) does not fit {what}, which is measured in {unit}",
            f"Write {what} in a unit of the same kind, for example {example or repr('1 ' + unit)}.",
        ) from None
    if not math.isfinite(value):
        raise CritflowError(where, f"'{shown(str(text))}' is not a finite number", f"Write {what}.")
    return value


_KINDS = {
    "kWh": "an energy",
    "A*h": "an electric charge",
    "W": "a power",
    "V": "a voltage",
    "ohm": "a resistance",
    "kg": "a mass",
    "year": "a time",
    "kg/year": "a mass flow",
    "kg/kWh": "a mass per energy",
    "kWh/kg": "an energy per mass",
    "EUR": "an amount of money",
    "EUR/kg": "a price per mass",
    "EUR/year": "a cost per year",
    "1/h": "a rate (per hour)",
    "percent": "a dimensionless share",
}


def measures(given: pint.Quantity) -> str:
    """What a quantity measures, in words ('an energy'), for error messages."""
    ureg = registry()
    for unit, words in _KINDS.items():
        if given.dimensionality == ureg.Quantity(1.0, unit).dimensionality:
            return words
    return f"of dimension {given.dimensionality}"


@lru_cache(maxsize=512)
def unit_factor(unit: str, expected: str) -> float:
    """Factor from ``unit`` to ``expected`` ('Wh' → 'kWh': 0.001); ValueError saying what the
    unit measures when it does not fit (callers add where it was written)."""
    ureg = registry()
    try:
        given = ureg.Quantity(1.0, unit)
    except Exception as exc:
        raise ValueError(f"'{shown(unit)}' is not a unit ({type(exc).__name__})") from None
    target = ureg.Quantity(1.0, expected)
    if given.dimensionality != target.dimensionality:
        raise ValueError(
            f"'{shown(unit)}' is {measures(given)}, but {measures(target)} is required ({expected})"
        )
    return float(given.to(expected).magnitude)
