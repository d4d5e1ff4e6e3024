"""Life-cycle costing: annualised CAPEX, OPEX from inventories × prices, revenues, NPV, IRR, levelised cost.

Conventions (Towler & Sinnott; SETAC LCC code of practice, Swarr et al. 2011):
- capital recovery factor CRF = r (1+r)^n / ((1+r)^n − 1) (1/n when r = 0);
- cash flow of year t = revenues + gate fees − purchases − variable OPEX − fixed OPEX, with the model's
  periods as years 1, 2, … of the project and the last period's flows held to the end of its life;
- investment at year 0, reinvested every process lifetime that ends inside the project;
- NPV = Σ_t cash_t / (1+r)^t; IRR: the r where NPV = 0;
- levelised cost = Σ_t cost_t/(1+r)^t ÷ Σ_t tonnes_t/(1+r)^t, per tonne of input and per kg of product;
  break-even gate fee = levelised cost − levelised revenue per tonne of input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, Problem
from critflow.impact.lca import ImpactResults
from critflow.impact.prices import currency, draw, flow_prices, item_prices
from critflow.model.core import Model
from critflow.model.schema import Economics
from critflow.units import convert

DEFAULT_LIFETIME_A = 20.0


def capital_recovery_factor(rate: float, years: float) -> float:
    """CRF = r(1+r)^n / ((1+r)^n − 1); 1/n when r = 0."""
    if rate == 0:
        return 1.0 / years
    growth = (1 + rate) ** years
    return rate * growth / (growth - 1)


def npv(rate: float | np.ndarray, cash: np.ndarray) -> np.ndarray:
    """Net present value of yearly cash flows (..., T), the first at year 0."""
    t = np.arange(cash.shape[-1])
    return (cash / (1 + np.asarray(rate)[..., None]) ** t).sum(axis=-1)


def irr(cash: np.ndarray) -> float:
    """Internal rate of return of one cash-flow series (NaN when NPV has no root in (-99 %, 1000 %))."""
    f = lambda r: float(npv(r, cash))  # noqa: E731
    low, high = -0.99, 10.0
    if np.sign(f(low)) == np.sign(f(high)):
        return float("nan")
    from scipy.optimize import brentq  # on use: scipy.optimize costs ~0.5 s to import

    return float(brentq(f, low, high, xtol=1e-10))


@dataclass
class CostResults:
    """LCC of a solved model, in ``currency``. Axes: S scenarios, P periods, T project years."""

    currency: str
    scenarios: tuple[str, ...]
    periods: np.ndarray
    discount_rate: float
    lifetime_a: int
    annual: dict[str, np.ndarray]  # name → (S, P) currency/a
    input_t: np.ndarray  # (S, P) t/a fed from sources (role feed: not fluxes, fuels, water)
    product_kg: np.ndarray  # (S, P) kg/a of products
    cash: np.ndarray  # (S, T + 1) project cash flows, year 0 first
    npv: np.ndarray  # (S,)
    irr: np.ndarray  # (S,)
    levelised_cost_per_t: np.ndarray  # (S,)
    levelised_cost_per_kg_product: np.ndarray  # (S,)
    break_even_gate_fee_per_t: np.ndarray  # (S,)
    npv_samples: np.ndarray | None = None  # (N, S)

    def annual_table(self) -> pd.DataFrame:
        """Per scenario and period: revenues, costs, margin, cost per tonne and per kg product."""
        n_s, n_p = self.input_t.shape
        g = np.indices((n_s, n_p)).reshape(2, -1)
        frame = pd.DataFrame(
            {
                "scenario": np.array(self.scenarios, dtype=object)[g[0]],
                "period": self.periods[g[1]],
            }
        )
        for name, values in self.annual.items():
            frame[name] = values.reshape(-1)
        cost = self.annual["annual_cost"]
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["cost_per_t_input"] = np.where(
                self.input_t > 0, cost / self.input_t, np.nan
            ).reshape(-1)
            frame["cost_per_kg_product"] = np.where(
                self.product_kg > 0, cost / self.product_kg, np.nan
            ).reshape(-1)
        frame["unit"] = f"{self.currency}/a; per t input; per kg product"
        return frame

    def project_table(self) -> pd.DataFrame:
        """Per scenario: NPV, IRR, levelised cost, break-even gate fee (with P5/P95 of NPV when
        prices were sampled)."""
        frame = pd.DataFrame(
            {
                "scenario": list(self.scenarios),
                "npv": self.npv,
                "irr": self.irr,
                "levelised_cost_per_t_input": self.levelised_cost_per_t,
                "levelised_cost_per_kg_product": self.levelised_cost_per_kg_product,
                "break_even_gate_fee_per_t": self.break_even_gate_fee_per_t,
                "discount_rate": self.discount_rate,
                "lifetime_a": self.lifetime_a,
                "currency": self.currency,
            }
        )
        if self.npv_samples is not None:
            frame["npv_mean"] = self.npv_samples.mean(axis=0)
            frame["npv_p5"], frame["npv_p95"] = np.percentile(self.npv_samples, [5, 95], axis=0)
            frame["probability_npv_positive"] = (self.npv_samples > 0).mean(axis=0)
        return frame


def _years(model: Model, value, where: str) -> float:
    return convert(value, "year", where, "a duration", "'20 a'")


def assess_cost(
    model: Model,
    results: FlowResults,
    impacts: ImpactResults,
    samples: int = 0,
    seed: int | None = None,
) -> CostResults:
    """Life-cycle cost of a solved model (see the module docstring)."""
    spec = model.spec
    economics = spec.economics or Economics()
    money = currency(model)
    r = economics.discount_rate
    scen, periods = results.inputs.scenarios, results.inputs.periods
    problems: list[Problem] = []

    capex = np.zeros(len(spec.processes))
    life = np.full(len(spec.processes), np.nan)
    fixed = np.zeros(len(spec.processes))
    for u, process in enumerate(spec.processes):
        if process.cost is None:
            continue
        try:
            c = process.cost
            if c.capex is not None:
                capex[u] = convert(
                    c.capex,
                    money,
                    model.where("processes", u, "cost", "capex"),
                    "an investment",
                    "'45 MEUR'",
                )
            if c.lifetime is not None:
                life[u] = _years(model, c.lifetime, model.where("processes", u, "cost", "lifetime"))
            if c.opex_fixed is not None:
                fixed[u] = convert(
                    c.opex_fixed,
                    f"{money}/year",
                    model.where("processes", u, "cost", "opex_fixed"),
                    "a cost per year",
                    "'3 MEUR/a'",
                )
        except CritflowError as exc:
            problems.extend(exc.problems)
        except Exception:
            problems.append(
                Problem(
                    model.where("processes", u, "cost"),
                    f"a cost of '{process.id}' is not in {money} (or per year for opex_fixed)",
                    f"Write capex: '45 M{money}' and opex_fixed: '3 M{money}/a'.",
                )
            )
        if capex[u] > 0 and np.isnan(life[u]):
            problems.append(
                Problem(
                    model.where("processes", u, "cost"),
                    f"process '{process.id}' has a capex but no lifetime",
                    "Add lifetime: '20 a'.",
                )
            )
    if problems:
        raise CritflowError(problems)
    if economics.lifetime is not None:
        project = _years(model, economics.lifetime, model.where("economics", "lifetime"))
    else:
        project = float(np.nanmax(life)) if np.isfinite(life).any() else DEFAULT_LIFETIME_A
    years = round(project)

    prices = flow_prices(model, periods)
    unit_prices, missing, uncertain_items = item_prices(
        model, scen, periods, impacts.items, impacts.item_units
    )
    if missing:
        raise CritflowError(
            model.where("economics", "prices") if spec.economics else "economics",
            f"life-cycle costing needs a price for every inventory item; missing: {', '.join(missing)}",
            "Add them under economics.prices, e.g. {"
            + f"{missing[0]}: '0.1 {money}/{impacts.item_units[impacts.items.index(missing[0])]}'"
            + "} (write 0 for free items).",
        )
    kinds = {p.id: p.kind for p in spec.processes}
    mass_f = results.mass_kg.sum(axis=2)  # (S, P, F) kg/a
    to_sink = [f for f, fl in enumerate(spec.flows) if kinds[fl.to] == "sink"]
    from_source = [f for f, fl in enumerate(spec.flows) if kinds[fl.from_] == "source"]

    def worth(flows: list[int], price: dict[int, np.ndarray]) -> np.ndarray:
        """Σ mass × price over ``flows`` that have a price: (S, P), or (N, S, P) for prices
        sampled as (N, P)."""
        total = np.zeros(mass_f.shape[:2])
        for f in flows:
            if f in price:
                total = total + mass_f[..., f] * np.asarray(price[f])[..., None, :]
        return total

    def money_flows(per_kg: dict, gate: dict) -> dict[str, np.ndarray]:
        return {
            "revenue": worth(to_sink, per_kg),
            "gate_fees": worth(list(gate), gate),
            "purchases": worth(from_source, per_kg),
        }

    annual = money_flows(prices.per_kg, prices.gate_fee_per_kg)
    annual["opex_variable"] = np.einsum("spk,spk->sp", impacts.inventory_totals, unit_prices)
    annual["opex_fixed"] = np.full(mass_f.shape[:2], fixed.sum())
    crf = np.array(
        [
            capital_recovery_factor(r, n) if c > 0 else 0.0
            for c, n in zip(capex, np.nan_to_num(life, nan=1.0), strict=True)
        ]
    )
    annual["capex_annualised"] = np.full(mass_f.shape[:2], float((capex * crf).sum()))
    annual["annual_cost"] = (
        annual["capex_annualised"]
        + annual["opex_fixed"]
        + annual["opex_variable"]
        + annual["purchases"]
    )
    annual["margin"] = annual["revenue"] + annual["gate_fees"] - annual["annual_cost"]

    # per tonne of what is processed: the feed, not the fluxes, reductants or water added to it
    # (role additive, fuel, ...), as the recycling efficiency's input fraction
    fed = [f for f in from_source if (spec.flows[f].role or "feed") == "feed"] or from_source
    input_t = mass_f[..., fed].sum(axis=-1) / 1000.0
    product_kg = impacts.product_mass_kg.sum(axis=-1)
    investment = np.zeros(years + 1)
    for c, n in zip(capex, life, strict=True):
        if c > 0:
            investment[np.arange(0, years, max(round(n), 1))] += c
    operating = (
        annual["revenue"]
        + annual["gate_fees"]
        - annual["purchases"]
        - annual["opex_variable"]
        - annual["opex_fixed"]
    )

    def project_axis(values: np.ndarray) -> np.ndarray:
        """(..., S, P) per period → (..., S, years + 1) per project year (year 0 empty)."""
        index = np.minimum(np.arange(years), values.shape[-1] - 1)
        per_year = values[..., index]
        return np.concatenate([np.zeros((*per_year.shape[:-1], 1)), per_year], axis=-1)

    cash = project_axis(operating) - investment
    value = npv(r, cash)
    rates = np.array([irr(c) for c in cash])
    discount = (1 + r) ** -np.arange(years + 1)
    cost_years = (
        project_axis(annual["opex_fixed"] + annual["opex_variable"] + annual["purchases"])
        + investment
    )
    tonnes = project_axis(input_t)
    kg_product = project_axis(product_kg)
    revenue_years = project_axis(annual["revenue"])
    with np.errstate(divide="ignore", invalid="ignore"):
        per_t = (cost_years * discount).sum(-1) / (tonnes * discount).sum(-1)
        per_kg = (cost_years * discount).sum(-1) / (kg_product * discount).sum(-1)
        revenue_per_t = (revenue_years * discount).sum(-1) / (tonnes * discount).sum(-1)
    result = CostResults(
        currency=money,
        scenarios=scen,
        periods=periods,
        discount_rate=r,
        lifetime_a=years,
        annual=annual,
        input_t=input_t,
        product_kg=product_kg,
        cash=cash,
        npv=value,
        irr=rates,
        levelised_cost_per_t=per_t,
        levelised_cost_per_kg_product=per_kg,
        break_even_gate_fee_per_t=per_t - revenue_per_t,
    )
    uncertain = prices.uncertain + uncertain_items
    if samples > 0 and uncertain:
        rng = np.random.default_rng(seed)
        drawn = draw(uncertain, samples, rng)  # (N, U)
        per_kg_s = {
            f: np.broadcast_to(v, (samples, v.size)).copy() for f, v in prices.per_kg.items()
        }
        gate_s = {
            f: np.broadcast_to(v, (samples, v.size)).copy()
            for f, v in prices.gate_fee_per_kg.items()
        }
        item_s = np.broadcast_to(unit_prices, (samples, *unit_prices.shape)).copy()
        for j, u in enumerate(uncertain):
            if u.target[0] == "flow":
                per_kg_s[u.target[1]][:] = drawn[:, j, None]
            elif u.target[0] == "gate_fee":
                gate_s[u.target[1]][:] = drawn[:, j, None]
            else:
                item_s[:, u.target[1], :, u.target[2]] = drawn[:, j, None]
        m = money_flows(per_kg_s, gate_s)
        variable = np.einsum("spk,nspk->nsp", impacts.inventory_totals, item_s)
        op = m["revenue"] + m["gate_fees"] - m["purchases"] - variable - annual["opex_fixed"]
        result.npv_samples = npv(r, project_axis(op) - investment)
    return result
