"""Matrix LCA on top of solved flows: throughput × inventory × background × characterisation.

For every scenario and period, with processes u, inventory items k and directly emitted gases g:

    scaling   s_u       = goods mass process u processes (kg/a; its inventory basis)
    inventory x_k       = Σ_u s_u · I_uk                  (item units per year)
    impact    h         = Σ_k x_k · (c · B)_k + Σ_u s_u · Σ_g D_ug · c_g     (kg CO2-eq/a)

kept per process and item for contribution analysis. Products (flows with ``product:``) share the
burden by mass or economic value; the end-of-life rule decides what a recovered product carries:

    cut-off         F_p = g_p                        (g_p: allocated burden per kg of product)
    avoided burden  F_p = g_p − d_p                  (d_p: primary burden displaced per kg, × Qs/Qp)
    cff             F_p = A · g_p + (1 − A) · d_p     (PEF Circular Footprint Formula, material part
                                                      for a secondary material, R1 = 1)

A product that displaces nothing (no ``displaces:`` on its flows) is not a secondary material: under
cff it is the CFF with R1 = 0, so it carries its whole allocated burden g_p (as under the other
rules); nothing of it moves to a displaced primary burden.

Every factor — of an inventory item, a grid mix, or a displaced material — comes from one place,
:meth:`InventoryEvaluator.item_factors`: a scenario's ``impact.factors``, else the model's
``impact.factors``, else the background. So an override changes burdens, credits and Monte Carlo
draws alike (an overridden factor is certain: it has no distribution).

Monte Carlo draws the background factors that carry a distribution; the sample axis leads every
array and nothing loops over samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, Problem, suggest
from critflow.impact.background import (
    DEFAULT_BACKGROUND,
    SOURCE_COLUMNS,
    Background,
    Method,
    background,
    method,
)
from critflow.impact.circular_footprint import secondary_material
from critflow.impact.inventory import CO2_EQ, Inventories, InventoryEvaluator, settings
from critflow.impact.prices import FlowPrices, flow_prices
from critflow.model.core import Model
from critflow.model.schema import Displacement

SAMPLE_CHUNK = 2_000
"""Monte Carlo samples evaluated at once (bounded memory)."""


@dataclass
class ImpactResults:
    """Impacts of a solved model. Axes: S scenarios, P periods, U processes, K items + gases,
    R products, N samples. Masses in kg/a, impacts in kg CO2-eq/a unless named per kg."""

    model_name: str
    method: Method
    scenarios: tuple[str, ...]
    periods: np.ndarray
    processes: tuple[str, ...]
    columns: tuple[str, ...]  # inventory items, then 'direct: GAS'
    contributions: np.ndarray  # (S, P, U, K) kg CO2-eq/a
    inventory_totals: np.ndarray  # (S, P, K_items) item units/a
    items: tuple[str, ...]
    item_units: tuple[str, ...]
    item_factors: np.ndarray  # (S, P, K_items) kg CO2-eq per item unit
    products: tuple[str, ...]
    product_mass_kg: np.ndarray  # (S, P, R)
    allocation_share: np.ndarray  # (S, P, R)
    displaced_per_kg: np.ndarray  # (S, P, R) kg CO2-eq of primary displaced per kg
    footprint: np.ndarray  # (S, P, R) kg CO2-eq per kg under the end-of-life rule
    credits: np.ndarray  # (S, P) kg CO2-eq/a of primary production displaced
    partition: str
    end_of_life: str
    cff_a: float
    scaling_kg: np.ndarray | None = None  # (S, P, U) kg/a each process processes (its basis)
    amounts: np.ndarray | None = None  # (S, P, U, K_items) item units per kg of basis
    direct_amounts: np.ndarray | None = None  # (S, P, U, G) kg of gas per kg of basis
    gases: tuple[str, ...] = ()
    gas_factors: np.ndarray | None = None  # (G,) kg CO2-eq per kg of gas
    displaced_items: tuple[str, ...] = ()  # materials credited as displaced (background or own)
    displacing: np.ndarray | None = None  # (R,) True where a product's flows displace something
    samples_total: np.ndarray | None = None  # (N, S, P)
    samples_footprint: np.ndarray | None = None  # (N, S, P, R)
    samples_intensity: np.ndarray | None = None  # (N, S, P)
    notes: list[str] = field(default_factory=list)

    unit = CO2_EQ

    @property
    def total(self) -> np.ndarray:
        """Gross impact (S, P), kg CO2-eq/a."""
        return self.contributions.sum(axis=(-1, -2))

    @property
    def net(self) -> np.ndarray:
        """Impact minus credits for displaced primary production (S, P), kg CO2-eq/a."""
        return self.total - self.credits

    @property
    def intensity(self) -> np.ndarray:
        """Gross impact per kg of all products (S, P), kg CO2-eq/kg — the roadmap's indicator."""
        mass = self.product_mass_kg.sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mass > 0, self.total / mass, np.nan)

    def _grid(self, *sizes: int) -> np.ndarray:
        return np.indices(sizes).reshape(len(sizes), -1)

    def process_table(self) -> pd.DataFrame:
        """Impact per process (kg CO2-eq/a and share of the total) per scenario and period."""
        by_process = self.contributions.sum(axis=-1)
        n_s, n_p, n_u = by_process.shape
        g = self._grid(n_s, n_p, n_u)
        total = self.total[g[0], g[1]]
        value = by_process.reshape(-1)
        return pd.DataFrame(
            {
                "scenario": np.array(self.scenarios, dtype=object)[g[0]],
                "period": self.periods[g[1]],
                "process": np.array(self.processes, dtype=object)[g[2]],
                "impact": value,
                "share": np.where(total != 0, value / np.where(total != 0, total, 1), 0.0),
                "unit": f"{CO2_EQ}/a",
            }
        )

    def item_table(self) -> pd.DataFrame:
        """Impact per inventory item and direct emission, with amounts and factors."""
        by_item = self.contributions.sum(axis=-2)
        n_s, n_p, n_k = by_item.shape
        g = self._grid(n_s, n_p, n_k)
        n_i = len(self.items)
        amount = np.full((n_s, n_p, n_k), np.nan)
        factor = np.full((n_s, n_p, n_k), np.nan)
        amount[..., :n_i] = self.inventory_totals
        factor[..., :n_i] = self.item_factors
        units = [*self.item_units, *["kg"] * (n_k - n_i)]
        return pd.DataFrame(
            {
                "scenario": np.array(self.scenarios, dtype=object)[g[0]],
                "period": self.periods[g[1]],
                "item": np.array(self.columns, dtype=object)[g[2]],
                "amount": amount.reshape(-1),
                "amount_unit": np.array([f"{u}/a" for u in units], dtype=object)[g[2]],
                "factor": factor.reshape(-1),
                "factor_unit": np.array([f"{CO2_EQ}/{u}" for u in units], dtype=object)[g[2]],
                "impact": by_item.reshape(-1),
                "unit": f"{CO2_EQ}/a",
            }
        )

    def product_table(self) -> pd.DataFrame:
        """Per product: mass, allocation share, burden per kg, displaced burden, footprint."""
        n_s, n_p, n_r = self.footprint.shape
        g = self._grid(n_s, n_p, n_r)
        mass = self.product_mass_kg.reshape(-1)
        gross = self.allocation_share * self.total[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_kg = np.where(self.product_mass_kg > 0, gross / self.product_mass_kg, np.nan)
        frame = pd.DataFrame(
            {
                "scenario": np.array(self.scenarios, dtype=object)[g[0]],
                "period": self.periods[g[1]],
                "product": np.array(self.products, dtype=object)[g[2]],
                "mass_kg": mass,
                "allocation_share": self.allocation_share.reshape(-1),
                "allocated_per_kg": per_kg.reshape(-1),
                "displaced_per_kg": self.displaced_per_kg.reshape(-1),
                "footprint_per_kg": self.footprint.reshape(-1),
                "rule": f"{self.end_of_life} ({self.partition} partition)",
                "unit": f"{CO2_EQ}/kg",
            }
        )
        if self.samples_footprint is not None:
            q = np.nanpercentile(self.samples_footprint, [5, 50, 95], axis=0)
            frame["p5"], frame["p50"], frame["p95"] = (x.reshape(-1) for x in q)
        return frame

    def summary_table(self) -> pd.DataFrame:
        """Per scenario and period: gross impact, credits, net, intensity per kg of products."""
        n_s, n_p = self.total.shape
        g = self._grid(n_s, n_p)
        frame = pd.DataFrame(
            {
                "scenario": np.array(self.scenarios, dtype=object)[g[0]],
                "period": self.periods[g[1]],
                "impact": self.total.reshape(-1),
                "credits": self.credits.reshape(-1),
                "net": self.net.reshape(-1),
                "product_mass_kg": self.product_mass_kg.sum(axis=-1).reshape(-1),
                "intensity": self.intensity.reshape(-1),
                "unit": f"{CO2_EQ}/a; intensity {CO2_EQ}/kg",
            }
        )
        if self.samples_total is not None:
            for name, values in (
                ("impact", self.samples_total),
                ("intensity", self.samples_intensity),
            ):
                frame[f"{name}_mean"] = values.mean(axis=0).reshape(-1)
                frame[f"{name}_sd"] = values.std(axis=0, ddof=1).reshape(-1)
                for q, arr in zip(
                    (5, 50, 95), np.nanpercentile(values, [5, 50, 95], axis=0), strict=True
                ):
                    frame[f"{name}_p{q}"] = arr.reshape(-1)
        return frame


def has_inventories(model: Model) -> bool:
    """True when a process or a scenario declares an inventory (so there is something to assess)."""
    return any(p.inventory for p in model.spec.processes) or any(
        s.inventories for s in model.spec.scenarios.values()
    )


def _rule(model: Model) -> tuple[str, str, float]:
    """(partition, end-of-life rule, A) from the model's impact settings."""
    chosen = settings(model)
    if chosen.allocation in ("mass", "economic"):
        return chosen.allocation, chosen.end_of_life or "cut-off", chosen.cff_a
    return "mass", chosen.allocation, chosen.cff_a


def scaling(model: Model, results: FlowResults, inventories: Inventories) -> np.ndarray:
    """Goods mass each process processes, on its inventory basis, (S, P, U) kg/a."""
    into, out, _ = results.balance_arrays()
    into, out = into.sum(axis=2), out.sum(axis=2)
    goods = results.mass_kg.sum(axis=2)  # (S, P, F)
    s = np.zeros_like(into)
    for u, basis in enumerate(inventories.basis):
        s[..., u] = (
            into[..., u]
            if basis == "input"
            else out[..., u]
            if basis == "output"
            else goods[..., basis]
        )
    return s


def _displacement(value: str | Displacement) -> Displacement:
    return value if isinstance(value, Displacement) else Displacement(material=value)


class _Credits:
    """Primary burden displaced by each output flow with ``displaces:``."""

    def __init__(self, model: Model, evaluator: InventoryEvaluator) -> None:
        spec = model.spec
        bg = evaluator.background
        self.flows: list[tuple[int, Displacement]] = []
        # flows displacing 'primary': (element index, primary-metal item) for each element
        self.rows_per_element: dict[int, list[tuple[int, str]]] = {}
        masses = sorted(
            {i for i, it in bg.items.items() if it.unit == "kg"}
            | {i for i, unit in evaluator.user_units.items() if unit == "kg"}
        )
        problems: list[Problem] = []
        for f, flow in enumerate(spec.flows):
            if flow.displaces is None:
                continue
            d = _displacement(flow.displaces)
            where = model.where("flows", f, "displaces")
            if d.material == "primary":
                pairs = [(e, bg.primary_item(el)) for e, el in enumerate(spec.elements)]
                self.rows_per_element[f] = [(e, item) for e, item in pairs if item is not None]
                if not self.rows_per_element[f]:
                    problems.append(
                        Problem(where, "none of the model's elements has a primary-metal factor")
                    )
            elif d.material not in masses:
                problems.append(
                    Problem(
                        where,
                        f"'{d.material}' is not 'primary' or a material measured in kg (a "
                        "background item or one of your impact.factors)",
                        suggest(d.material, masses, "Materials", 40),
                    )
                )
            self.flows.append((f, d))
        if problems:
            raise CritflowError(problems)

    def per_flow(self, results: FlowResults, factor: dict[str, np.ndarray]) -> np.ndarray:
        """Displaced burden of each flow, (..., S, P, F) kg CO2-eq/a; ``factor[item]`` is the
        resolved factor of a displaced material (kg CO2-eq/kg), shape (..., S, P)."""
        mass = results.mass_kg  # (S, P, E, F)
        lead = np.shape(next(iter(factor.values())))[:-2] if factor else ()
        out = np.zeros((*lead, *mass.shape[:2], mass.shape[3]))
        for f, d in self.flows:
            if d.material == "primary":
                credit = sum(
                    (mass[:, :, e, f] * factor[item] for e, item in self.rows_per_element[f]),
                    np.zeros(mass.shape[:2]),
                )
            else:
                credit = mass[:, :, :, f].sum(axis=2) * factor[d.material]
            out[..., f] = d.ratio * credit
        return out

    def items(self) -> tuple[str, ...]:
        """Every material some flow displaces, sorted."""
        names: set[str] = set()
        for f, d in self.flows:
            names |= (
                {i for _, i in self.rows_per_element.get(f, [])}
                if d.material == "primary"
                else {d.material}
            )
        return tuple(sorted(names))

    def factors(
        self,
        evaluator: InventoryEvaluator,
        unique: tuple[str, ...],
        index: np.ndarray,
        periods: np.ndarray,
        row_values: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Factor of each displaced material per scenario and period, (S, P), or (n, S, P) with
        Monte Carlo ``row_values`` — resolved by the same path as the inventory items'
        (scenario override, else impact.factors, else background)."""
        names = self.items()
        if not names:
            return {}
        probe = Inventories(
            names, ("kg",) * len(names), np.zeros((0, 0, 0, 0)), (), np.zeros((0, 0, 0, 0)), ()
        )
        resolved = evaluator.item_factors(probe, unique, periods, row_values)
        resolved = resolved[index] if row_values is None else resolved[:, index]
        return {name: resolved[..., k] for k, name in enumerate(names)}


def assess(
    model: Model,
    results: FlowResults,
    samples: int = 0,
    seed: int | None = None,
    progress=None,
) -> ImpactResults:
    """Impacts of solved ``results`` for ``model``'s inventories (see the module docstring).

    ``samples`` > 0 adds Monte Carlo draws of the uncertain background factors (same ``seed``,
    same numbers); ``progress(done, total)`` is called after each chunk. Every call computes
    anew: :class:`critflow.analysis.Run` keeps one LCA per run for the report, the tables and
    the indicators.
    """
    chosen_settings = settings(model)
    bg = (
        background(chosen_settings.background)
        if chosen_settings.background == DEFAULT_BACKGROUND
        else Background(chosen_settings.background, model.where("impact", "background"))
    )
    chosen = method(chosen_settings.method, model.where("impact", "method"))
    evaluator = InventoryEvaluator(model, bg, chosen)
    scen, periods = results.inputs.scenarios, results.inputs.periods
    # Monte Carlo results have a scenario per sample: evaluate each model scenario once
    base = results.inputs.base_scenarios
    unique = tuple(dict.fromkeys(base))
    index = np.array([unique.index(b) for b in base])
    inv = evaluator.evaluate(unique, periods)
    factors = evaluator.item_factors(inv, unique, periods)[index]  # (S, P, K)
    inv = replace(inv, amounts=inv.amounts[index], direct=inv.direct[index])
    gas_factors = evaluator.gas_factors(inv)
    s = scaling(model, results, inv)  # (S, P, U)
    item_part = s[..., None] * inv.amounts * factors[:, :, None, :]
    gas_part = s[..., None] * inv.direct * gas_factors
    contributions = np.concatenate([item_part, gas_part], axis=-1)
    inventory_totals = np.einsum("spu,spuk->spk", s, inv.amounts)

    partition, rule, cff_a = _rule(model)
    credits = _Credits(model, evaluator)
    displaced_items = credits.items()
    credit_factors = credits.factors(evaluator, unique, index, periods)  # item -> (S, P)
    credit_flows = credits.per_flow(results, credit_factors)

    notes: list[str] = []
    own = set(chosen_settings.factors)
    missing = [i for i in bg.uncharacterised(chosen) if i in {*inv.items, *displaced_items} - own]
    if missing:
        notes.append(
            f"{chosen.name} does not characterise the aggregated GWP100 data of: "
            f"{', '.join(missing)} (counted as 0)"
        )
    flagged = evaluator.unverified(inv)
    if flagged:
        notes.append(
            "background factors not yet checked against their primary source: "
            + ", ".join(flagged)
            + " (see `critflow impact --sources`; override with impact.factors)"
        )
    shipped = [i for i in (*inv.items, *displaced_items) if i in bg.items and i not in own]
    notes += bg.caveats(sorted(set(shipped)), [i for i in displaced_items if i in shipped], chosen)

    prices = flow_prices(model, periods)
    products, product_flows = _products(model)
    mass_f = results.mass_kg.sum(axis=2)  # (S, P, F)
    product_mass = (
        np.stack([mass_f[..., fl].sum(axis=-1) for fl in product_flows], axis=-1)
        if products
        else np.zeros((*mass_f.shape[:2], 0))
    )
    share = _shares(model, partition, product_mass, mass_f, product_flows, prices)
    displaced = (
        np.stack([credit_flows[..., fl].sum(axis=-1) for fl in product_flows], axis=-1)
        if products
        else product_mass * 0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        displaced_per_kg = np.where(product_mass > 0, displaced / product_mass, 0.0)
    credited = {f for f, _ in credits.flows}
    displacing = np.array([any(f in credited for f in fl) for fl in product_flows], dtype=bool)
    footprint = _footprint(
        contributions.sum(axis=(-1, -2)),
        share,
        product_mass,
        displaced_per_kg,
        rule,
        cff_a,
        displacing,
    )
    bare = [p for p, d in zip(products, displacing, strict=True) if not d]
    if bare and rule == "cff":
        notes.append(
            f"{', '.join(bare)} displace nothing (no `displaces:` on their flows): under cff "
            "they carry their whole allocated burden, the CFF with R1 = 0 for a product that is "
            "not a secondary material"
        )
    elif bare and rule == "avoided-burden":
        notes.append(f"no `displaces:` on the flows of {', '.join(bare)}: no credit under {rule}")

    result = ImpactResults(
        model_name=model.name,
        method=chosen,
        scenarios=scen,
        periods=periods,
        processes=tuple(p.id for p in model.spec.processes),
        columns=(*inv.items, *(f"direct: {g}" for g in inv.gases)),
        contributions=contributions,
        inventory_totals=inventory_totals,
        items=inv.items,
        item_units=inv.units,
        item_factors=factors,
        products=products,
        product_mass_kg=product_mass,
        allocation_share=share,
        displaced_per_kg=displaced_per_kg,
        footprint=footprint,
        credits=credit_flows.sum(axis=-1),
        partition=partition,
        end_of_life=rule,
        cff_a=cff_a,
        scaling_kg=s,
        amounts=inv.amounts,
        direct_amounts=inv.direct,
        gases=inv.gases,
        gas_factors=gas_factors,
        displaced_items=displaced_items,
        displacing=displacing,
        notes=notes,
    )
    if samples > 0:
        setup = _Setup(evaluator, inv, credits, bg, product_flows)
        _monte_carlo(result, results, setup, samples, seed, progress)
    return result


@dataclass(frozen=True)
class _Setup:
    """What a Monte Carlo run reuses from the deterministic assessment."""

    evaluator: InventoryEvaluator
    inventories: Inventories
    credits: _Credits
    background: Background
    product_flows: list[list[int]]


def _monte_carlo(
    result: ImpactResults, results: FlowResults, setup: _Setup, n: int, seed, progress
) -> None:
    """Draw the uncertain background rows ``n`` times (in chunks) and store the sampled totals,
    intensities and product footprints on ``result``."""
    evaluator, inv, credits, bg = (
        setup.evaluator,
        setup.inventories,
        setup.credits,
        setup.background,
    )
    product_flows, share, s = setup.product_flows, result.allocation_share, result.scaling_kg
    rng = np.random.default_rng(seed)
    periods = result.periods
    totals, footprints, intensities = [], [], []
    direct = result.contributions[..., len(inv.items) :].sum(axis=(-1, -2))  # (S, P)
    product_mass = result.product_mass_kg
    base = results.inputs.base_scenarios
    unique = tuple(dict.fromkeys(base))
    index = np.array([unique.index(b) for b in base])
    done = 0
    while done < n:
        m = min(SAMPLE_CHUNK, n - done)
        rows = bg.sample_row_amounts(m, rng)
        factors = evaluator.item_factors(inv, unique, periods, rows)[:, index]  # (m, S, P, K)
        total = np.einsum("spu,spuk,nspk->nsp", s, inv.amounts, factors) + direct
        displaced_factors = credits.factors(evaluator, unique, index, periods, rows)
        credit_flows = credits.per_flow(results, displaced_factors)  # (m, S, P, F)
        if result.products:
            displaced = np.stack(
                [credit_flows[..., fl].sum(axis=-1) for fl in product_flows], axis=-1
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(product_mass > 0, displaced / product_mass, 0.0)
            footprints.append(
                _footprint(
                    total,
                    share,
                    product_mass,
                    d,
                    result.end_of_life,
                    result.cff_a,
                    result.displacing,
                )
            )
        totals.append(total)
        mass = product_mass.sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            intensities.append(np.where(mass > 0, total / mass, np.nan))
        done += m
        if progress is not None:
            progress(done, n)
    result.samples_total = np.concatenate(totals)
    result.samples_intensity = np.concatenate(intensities)
    if footprints:
        result.samples_footprint = np.concatenate(footprints)


def _footprint(
    total,
    share,
    product_mass,
    displaced_per_kg,
    rule: str,
    cff_a: float,
    displacing: np.ndarray | None = None,
) -> np.ndarray:
    """Footprint per kg of each product under the end-of-life rule; ``total`` (..., S, P).
    Under cff a product that displaces nothing (``displacing`` False) keeps its allocated burden:
    the CFF with R1 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        allocated = np.where(product_mass > 0, share * total[..., None] / product_mass, np.nan)
    if rule == "avoided-burden":
        return allocated - displaced_per_kg
    if rule == "cff":
        secondary = secondary_material(cff_a, allocated, displaced_per_kg)
        return secondary if displacing is None else np.where(displacing, secondary, allocated)
    return allocated


def _products(model: Model) -> tuple[tuple[str, ...], list[list[int]]]:
    """Product names and the flows of each (flows tagged ``product:``)."""
    groups: dict[str, list[int]] = {}
    for f, flow in enumerate(model.spec.flows):
        if flow.product is not None:
            groups.setdefault(flow.product, []).append(f)
    return tuple(groups), list(groups.values())


def _shares(
    model: Model,
    partition: str,
    product_mass: np.ndarray,
    mass_f: np.ndarray,
    product_flows: list[list[int]],
    prices: FlowPrices,
) -> np.ndarray:
    """Share of the burden each product carries, (S, P, R)."""
    if partition == "mass":
        weight = product_mass
    else:
        unpriced = [
            (f, model.spec.flows[f].id)
            for fl in product_flows
            for f in fl
            if f not in prices.per_kg
        ]
        if unpriced:
            raise CritflowError(
                [
                    Problem(
                        model.where("flows", f),
                        f"economic allocation needs the price of product flow '{fid}'",
                        "Add price: '30 EUR/kg' to the flow, or use allocation: mass.",
                    )
                    for f, fid in unpriced
                ]
            )
        weight = np.stack(
            [sum(mass_f[..., f] * prices.per_kg[f][None, :] for f in fl) for fl in product_flows],
            axis=-1,
        )
    total = weight.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, weight / total, 0.0)


def source_table(model: Model, impacts: ImpactResults) -> pd.DataFrame:
    """The background rows behind the factors a model uses — inventory items and displaced
    materials — with source, verification flag, supply route and GWP basis; factors the model
    gives itself (impact.factors) are listed with 'your impact.factors' as their source."""
    own = settings(model).factors
    names = list(dict.fromkeys([*impacts.items, *impacts.displaced_items]))
    shipped = background().sources([n for n in names if n not in own])
    given = pd.DataFrame(
        [
            {"item": n, "amount": str(own[n]), "source": "your impact.factors"}
            for n in names
            if n in own
        ],
        columns=list(SOURCE_COLUMNS),
    )
    frame = pd.concat([shipped, given], ignore_index=True) if len(given) else shipped.copy()
    frame.insert(
        1,
        "used_as",
        [
            ", ".join(
                (["inventory"] if n in impacts.items else [])
                + (["displaced"] if n in impacts.displaced_items else [])
            )
            for n in frame["item"]
        ],
    )
    return frame
