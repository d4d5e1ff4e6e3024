"""Evaluate the settings of a model's stock processes for every scenario, period and element.

Lifetime parameters become arrays per (scenario, element), or per (cohort year, scenario, element)
when they change over the years; stock targets and initial stocks become goods masses in kg.

With Monte Carlo draws every number carries a leading sample axis N (as the flows' numbers do in
:mod:`critflow.engine.compile`): a value with a distribution, or an expression of a parameter with
one, takes its N draws in one array operation, everything else broadcasts. The stacked scenarios
are then every scenario × every sample, scenario-major, the order of the flows' scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from critflow.engine.topology import Topology
from critflow.errors import Problem
from critflow.model.core import Model
from critflow.model.schema import StockProcess
from critflow.stocks.lifetimes import PARAMETERS, lifetime_problems
from critflow.units import looks_like_quantity, parse_mass


class Compiling(Protocol):
    """What the stock evaluator reads from the model compiler (:class:`critflow.engine.compile.Compiler`)."""

    model: Model
    topology: Topology
    periods: np.ndarray  # (P,) years
    model_kg_per_unit: float
    flow_pos: dict[str, int]
    problems: list[Problem]
    n: int  # samples (1 without Monte Carlo)

    def series(
        self, value: Any, env: dict[str, np.ndarray], kg_per_unit: float | None, where: str
    ) -> np.ndarray:
        """A value over samples and periods, (N or 1, P)."""
        ...

    def composition(self, composition: Any, env: dict[str, np.ndarray], where: str) -> np.ndarray:
        """Element shares (N or 1, P, E) of a composition mapping."""
        ...


@dataclass(frozen=True)
class StockInputs:
    """Every number of one stock process; axes S scenarios, P periods, E elements."""

    process: int
    process_id: str
    input_flow: int
    output_flow: int
    distribution: str
    parameters: dict[str, np.ndarray]  # (S, E), or (P, S, E) when cohort_varying
    cohort_varying: bool
    stock_driven: np.ndarray  # (P,) True where the target stock drives the inflow
    target_kg: np.ndarray  # (S, P) goods mass in use at the end of each year (0 if not driven)
    inflow_composition: np.ndarray  # (S, P, E) element shares of the inflow, for stock-driven years
    initial_total_kg: np.ndarray | None  # (S,) goods mass in use before the first year
    initial_cohorts_kg: np.ndarray | None  # (K, S) by cohort year, oldest first
    initial_composition: np.ndarray  # (S, E)
    negative_inflow: str


def _mass_series(
    evaluator: Compiling, value: Any, env: dict[str, np.ndarray], where: str
) -> np.ndarray:
    """A goods mass (number in the model's mass unit, quantity, expression or series) in kg,
    (N or 1, P)."""

    def convert(item: Any) -> Any:
        if isinstance(item, str) and looks_like_quantity(item):
            return parse_mass(item, where) / evaluator.model_kg_per_unit
        return item

    value = {y: convert(v) for y, v in value.items()} if isinstance(value, dict) else convert(value)
    return evaluator.series(value, env, evaluator.model_kg_per_unit, where)


class StockEvaluator:
    """Collects every stock's numbers over the scenarios, then stacks them."""

    def __init__(self, evaluator: Compiling) -> None:
        self.evaluator = evaluator
        spec = evaluator.model.spec
        self.stocks = [(u, p) for u, p in enumerate(spec.processes) if isinstance(p, StockProcess)]
        self._per_scenario: list[list[dict[str, Any]]] = [[] for _ in self.stocks]

    def add_scenario(self, env: dict[str, np.ndarray], scenario: str) -> None:
        for k, (u, process) in enumerate(self.stocks):
            self._per_scenario[k].append(self._scenario(k, u, process, env, scenario))

    def _where(self, u: int, *path: str | int) -> str:
        return self.evaluator.model.where("processes", u, *path)

    def _scenario(
        self, k: int, u: int, process: StockProcess, env: dict[str, np.ndarray], scenario: str
    ) -> dict[str, Any]:
        """The stock's numbers in one scenario, each with a leading sample axis (N or 1)."""
        ev = self.evaluator
        topo, periods, spec = ev.topology, ev.periods, ev.model.spec
        n_p, n_e = periods.size, topo.n_elements
        # lifetime parameters per sample and element, (N, P, E), or (N, E) when they do not
        # change over the years: the process's lifetime is evaluated once for all elements, an
        # element's own lifetime (lifetime_by_element) for that element
        params: dict[str, np.ndarray] = {}
        for name in PARAMETERS[process.lifetime.distribution]:
            shared = getattr(process.lifetime, name)
            columns = [
                np.full((1, n_p), np.nan)
                if shared is None
                else ev.series(shared, env, None, self._where(u, "lifetime", name))
            ] * n_e
            for element, override in process.lifetime_by_element.items():
                value = getattr(override, name)
                if value is not None and element in topo.elements:
                    where = self._where(u, "lifetime_by_element", element, name)
                    columns[topo.elements.index(element)] = ev.series(value, env, None, where)
            n = max(c.shape[0] for c in columns)
            values = np.empty((n, n_p, n_e))
            for e, column in enumerate(columns):
                values[:, :, e] = column
            params[name] = values if np.ptp(values, axis=1).max(initial=0.0) > 0 else values[:, 0]
        values = {
            name: params.get(name, getattr(process.lifetime, name))
            if getattr(process.lifetime, name) is not None
            else None
            for name in ("mean", "std", "shape", "scale")
        }
        found = lifetime_problems(process.lifetime.distribution, values, self._where(u, "lifetime"))
        for problem in found:
            what = problem.what + (f" (scenario '{scenario}')" if len(spec.scenarios) > 1 else "")
            fix = problem.fix
            if ev.n > 1 and any(
                np.ndim(v) and np.shape(v)[0] > 1 for v in values.values() if v is not None
            ):
                what += " in a Monte Carlo sample"
                fix += (
                    " Narrow the distributions it depends on so that no sample gives such a value."
                )
            ev.problems.append(Problem(problem.where, what, fix))

        driven = np.array(process.stock_driven_years([int(y) for y in periods]))
        target = np.zeros((1, n_p))
        if process.stock is not None and driven.any():
            target = _mass_series(ev, process.stock, env, self._where(u, "stock"))
            if isinstance(process.stock, dict):
                first, last = min(process.stock), max(process.stock)
                uncovered = periods[driven & ((periods < first) | (periods > last))]
                if uncovered.size:
                    ev.problems.append(
                        Problem(
                            self._where(u, "stock"),
                            f"the stock target of '{process.id}' covers {first}–{last} but the "
                            f"stock is stock-driven in {uncovered[0]}–{uncovered[-1]} too",
                            "Give target values that span every stock-driven year, or drive the "
                            f"stock by inflow there (driven_by: {{until: {first - 1}, then: stock}}).",
                        )
                    )
            if (target < 0).any():
                drawn = target.shape[0] > 1
                ev.problems.append(
                    Problem(
                        self._where(u, "stock"),
                        "the stock target is negative"
                        + (" in a Monte Carlo sample" if drawn else ""),
                        "Stocks are ≥ 0."
                        + (
                            " Narrow the target's distribution so that no draw is < 0."
                            if drawn
                            else ""
                        ),
                    )
                )

        flow = spec.flows[topo.stock_input[k]]
        override = spec.scenarios[scenario].flows.get(flow.id)
        composition = (
            override.composition if override and override.composition is not None else None
        ) or flow.composition
        needs_composition = driven.any() or process.initial_stock is not None
        if composition is None and n_e > 1 and needs_composition:
            ev.problems.append(
                Problem(
                    ev.model.where("flows", ev.flow_pos[flow.id]),
                    f"flow '{flow.id}' feeds stock '{process.id}' but has no composition, so the "
                    "elements of its stock-driven inflow or initial stock are unknown",
                    "Add composition: {Li: 0.02, Co: 0.01, …} to the flow (or to initial_stock).",
                )
            )
        inflow_shares = (  # (N, P, E)
            ev.composition(composition or {}, env, ev.model.where("flows", ev.flow_pos[flow.id]))
            if composition is not None or n_e == 1
            else np.zeros((1, n_p, n_e))
        )

        total = cohorts = None
        initial_shares = inflow_shares[:, 0]  # (N, E)
        initial = process.initial_stock
        if initial is not None:
            if initial.composition is not None:
                initial_shares = ev.composition(
                    initial.composition, env, self._where(u, "initial_stock", "composition")
                )[:, 0]
            if initial.cohorts:
                start = int(periods[0])
                years = sorted(initial.cohorts)
                masses = {
                    year: _mass_series(
                        ev,
                        initial.cohorts[year],
                        env,
                        self._where(u, "initial_stock", "cohorts", year),
                    )[:, 0]
                    for year in years
                    if year < start
                }
                n = max((m.size for m in masses.values()), default=1)
                cohorts = np.zeros((n, max(start - years[0], 0)))  # (N, K)
                for year, mass in masses.items():
                    cohorts[:, year - years[0]] = mass
            if initial.total is not None:
                total = _mass_series(
                    ev, initial.total, env, self._where(u, "initial_stock", "total")
                )[:, 0]  # (N,)
                if cohorts is not None:
                    sums = np.broadcast_to(
                        cohorts.sum(axis=1), np.broadcast_shapes(cohorts.shape[:1], total.shape)
                    )
                    off = ~np.isclose(sums, total, rtol=1e-9)
                if cohorts is not None and off.any():
                    i = int(np.argmax(off))
                    unit = ev.model.spec.unit.split("/")[0]
                    k = ev.model_kg_per_unit
                    ev.problems.append(
                        Problem(
                            self._where(u, "initial_stock"),
                            f"the cohorts of the initial stock of '{process.id}' sum to "
                            f"{sums[i] / k:.6g} {unit}, not the total "
                            f"{np.broadcast_to(total, sums.shape)[i] / k:.6g} {unit}"
                            + (" in a Monte Carlo sample" if sums.size > 1 else ""),
                            "Make the cohorts add up to the total, or give only one of them.",
                        )
                    )
        return {
            "params": params,
            "driven": driven,
            "target": target,
            "inflow_shares": inflow_shares,
            "total": total,
            "cohorts": cohorts,
            "initial_shares": initial_shares,
        }

    def stacked(self) -> tuple[StockInputs, ...]:
        """Every stock's numbers over the scenarios × samples (scenario-major), as the flows'."""
        ev = self.evaluator
        topo, n, n_p = ev.topology, ev.n, ev.periods.size

        def over_samples(rows: list[np.ndarray]) -> np.ndarray:
            """Rows (N or 1, …) of the scenarios, broadcast to N and joined: (S·N, …)."""
            return np.concatenate([np.broadcast_to(r, (n, *r.shape[1:])) for r in rows])

        result = []
        for k, (u, process) in enumerate(self.stocks):
            rows = self._per_scenario[k]
            varying = any(v.ndim == 3 for r in rows for v in r["params"].values())
            params = {}
            for name in rows[0]["params"]:
                per_row = [
                    r["params"][name][:, None].repeat(n_p, axis=1)
                    if varying and r["params"][name].ndim == 2
                    else r["params"][name]
                    for r in rows
                ]
                joined = over_samples(per_row)  # (S·N, E) or (S·N, P, E)
                params[name] = np.ascontiguousarray(joined.swapaxes(0, 1)) if varying else joined
            has_cohorts = rows[0]["cohorts"] is not None
            has_total = rows[0]["total"] is not None
            cohorts = None
            if has_cohorts:
                length = max(r["cohorts"].shape[1] for r in rows)
                cohorts = np.zeros((length, len(rows) * n))
                for s, r in enumerate(rows):
                    size = r["cohorts"].shape[1]
                    cohorts[length - size :, s * n : (s + 1) * n] = r["cohorts"].T
            result.append(
                StockInputs(
                    process=u,
                    process_id=process.id,
                    input_flow=int(topo.stock_input[k]),
                    output_flow=int(topo.stock_output[k]),
                    distribution=process.lifetime.distribution,
                    parameters=params,
                    cohort_varying=varying,
                    stock_driven=rows[0]["driven"],
                    target_kg=over_samples([r["target"] for r in rows]),
                    inflow_composition=over_samples([r["inflow_shares"] for r in rows]),
                    initial_total_kg=over_samples([np.atleast_1d(r["total"]) for r in rows])
                    if has_total
                    else None,
                    initial_cohorts_kg=cohorts,
                    initial_composition=over_samples([r["initial_shares"] for r in rows]),
                    negative_inflow=process.negative_inflow,
                )
            )
        return tuple(result)
