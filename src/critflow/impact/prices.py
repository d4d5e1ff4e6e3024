"""Prices of flows (products, purchased inputs, gate fees) and of inventory items, in one currency.

A price is a quantity ('30 EUR/kg', '0.12 EUR/kWh'), a time series of them, or
``{value: '30 EUR/kg', distribution: triangular, low: '25 EUR/kg', high: '40 EUR/kg'}`` for Monte
Carlo on prices. Values are converted to the model's currency per kg (flows) or per item unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.errors import CritflowError, Problem
from critflow.impact.inventory import series_of
from critflow.impact.sampling import check_distribution, sample_rows
from critflow.model.core import Model
from critflow.model.schema import Economics, UncertainPrice
from critflow.units import convert as convert_quantity


def currency(model: Model) -> str:
    return (model.spec.economics or Economics()).currency


@dataclass
class Uncertain:
    """One uncertain price: where it goes and its distribution (in the model's currency)."""

    target: tuple  # ('flow', f) | ('gate_fee', f) | ('item', scenario index or None, k)
    distribution: str
    central: float
    low: float
    high: float
    sd: float


@dataclass
class FlowPrices:
    """Price per kg of flows (P,) and gate fees per kg (P,), by flow index."""

    per_kg: dict[int, np.ndarray] = field(default_factory=dict)
    gate_fee_per_kg: dict[int, np.ndarray] = field(default_factory=dict)
    uncertain: list[Uncertain] = field(default_factory=list)


def _price(
    value: Any, unit: str, periods: np.ndarray, where: str, what: str
) -> tuple[np.ndarray, Uncertain | None]:
    """A price series (P,) in ``unit``, and its distribution when it has one."""

    def convert(text: Any, w: str) -> float:
        return convert_quantity(text, unit, w, what, f"'1.5 {unit}'")

    if isinstance(value, UncertainPrice):
        central = convert(value.value, f"{where}.value")
        low = convert(value.low, f"{where}.low") if value.low is not None else np.nan
        high = convert(value.high, f"{where}.high") if value.high is not None else np.nan
        if value.distribution == "lognormal" and value.sd is not None:
            sd = float(value.sd)
            low, high = central / sd**1.96, central * sd**1.96
        else:
            sd = convert(value.sd, f"{where}.sd") if value.sd is not None else np.nan
        problem = check_distribution(
            value.distribution,
            central,
            None if np.isnan(low) else low,
            None if np.isnan(high) else high,
            None if np.isnan(sd) else sd,
        )
        if problem:
            raise CritflowError(where, problem, "Fix the distribution's parameters.")
        return np.full(periods.shape, central), Uncertain(
            (), value.distribution, central, low, high, sd
        )
    return series_of(value, periods, convert, where), None


def flow_prices(model: Model, periods: np.ndarray) -> FlowPrices:
    """Prices and gate fees of every flow that has one."""
    money = currency(model)
    prices = FlowPrices()
    problems: list[Problem] = []
    for f, flow in enumerate(model.spec.flows):
        for attr, target in (("price", prices.per_kg), ("gate_fee", prices.gate_fee_per_kg)):
            value = getattr(flow, attr)
            if value is None:
                continue
            try:
                series, uncertain = _price(
                    value,
                    f"{money}/kg",
                    periods,
                    model.where("flows", f, attr),
                    f"a {attr.replace('_', ' ')}",
                )
            except CritflowError as exc:
                problems.extend(exc.problems)
                continue
            target[f] = series
            if uncertain is not None:
                uncertain.target = ("flow" if attr == "price" else "gate_fee", f)
                prices.uncertain.append(uncertain)
    if problems:
        raise CritflowError(problems)
    return prices


def item_prices(
    model: Model,
    scenarios: tuple[str, ...],
    periods: np.ndarray,
    items: tuple[str, ...],
    units: tuple[str, ...],
) -> tuple[np.ndarray, list[str], list[Uncertain]]:
    """Price of each item (S, P, K) per item unit; the items without a price; uncertain prices."""
    economics = model.spec.economics or Economics()
    money = economics.currency
    out = np.zeros((len(scenarios), periods.size, len(items)))
    missing: list[str] = []
    uncertain: list[Uncertain] = []
    problems: list[Problem] = []
    for k, (item, unit) in enumerate(zip(items, units, strict=True)):
        for s, name in enumerate(scenarios):
            overrides = model.spec.scenarios[name].prices
            if item in overrides:
                value, path = overrides[item], ("scenarios", name, "prices", item)
            elif item in economics.prices:
                value, path = economics.prices[item], ("economics", "prices", item)
            else:
                if item not in missing:
                    missing.append(item)
                continue
            try:
                series, u = _price(
                    value, f"{money}/({unit})", periods, model.where(*path), f"the price of {item}"
                )
            except CritflowError as exc:
                problems.extend(exc.problems)
                continue
            out[s, :, k] = series
            if u is not None:
                u.target = ("item", s, k)
                uncertain.append(u)
    if problems:
        raise CritflowError(list(dict.fromkeys(problems)))
    return out, missing, uncertain


def draw(uncertain: list[Uncertain], n: int, rng: np.random.Generator) -> np.ndarray:
    """Samples of every uncertain price, (n, len(uncertain))."""
    if not uncertain:
        return np.zeros((n, 0))
    return sample_rows(
        np.array([u.central for u in uncertain]),
        np.array([u.distribution for u in uncertain]),
        np.array([u.low for u in uncertain]),
        np.array([u.high for u in uncertain]),
        n,
        rng,
        sd=np.array([u.sd for u in uncertain]),
    )
