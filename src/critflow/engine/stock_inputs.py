"""Evaluate the settings of a model's stock processes for every scenario, period and element.

Lifetime parameters become arrays per (scenario, element), or per (cohort year, scenario, element)
when they change over the years; stock targets and initial stocks become goods masses in kg.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from critflow.engine.topology import Topology
from critflow.engine.values import series
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
    """A goods mass (number in the model's mass unit, quantity, expression or series) in kg, (P,)."""

    def convert(item: Any) -> Any:
        if isinstance(item, str) and looks_like_quantity(item):
            return parse_mass(item, where) / evaluator.model_kg_per_unit
        return item

    value = {y: convert(v) for y, v in value.items()} if isinstance(value, dict) else convert(value)
    return series(value, env, evaluator.periods, evaluator.model_kg_per_unit, where)


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
        ev = self.evaluator
        topo, periods, spec = ev.topology, ev.periods, ev.model.spec
        n_p, n_e = periods.size, topo.n_elements
        # lifetime parameters per element, (P, E): the process's lifetime is evaluated once for
        # all elements, an element's own lifetime (lifetime_by_element) for that element
        params: dict[str, np.ndarray] = {}
        for name in PARAMETERS[process.lifetime.distribution]:
            values = np.empty((n_p, n_e))
            shared = getattr(process.lifetime, name)
            values[:] = (
                np.nan
                if shared is None
                else series(shared, env, periods, None, self._where(u, "lifetime", name))[:, None]
            )
            for element, override in process.lifetime_by_element.items():
                value = getattr(override, name)
                if value is not None and element in topo.elements:
                    where = self._where(u, "lifetime_by_element", element, name)
                    values[:, topo.elements.index(element)] = series(
                        value, env, periods, None, where
                    )
            params[name] = values
        values = {
            name: params.get(name, getattr(process.lifetime, name))
            if getattr(process.lifetime, name) is not None
            else None
            for name in ("mean", "std", "shape", "scale")
        }
        found = lifetime_problems(process.lifetime.distribution, values, self._where(u, "lifetime"))
        for problem in found:
            what = problem.what + (f" (scenario '{scenario}')" if len(spec.scenarios) > 1 else "")
            ev.problems.append(Problem(problem.where, what, problem.fix))

        driven = np.array(process.stock_driven_years([int(y) for y in periods]))
        target = np.zeros(n_p)
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
                ev.problems.append(
                    Problem(
                        self._where(u, "stock"), "the stock target is negative", "Stocks are ≥ 0."
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
        inflow_shares = (
            ev.composition(composition or {}, env, ev.model.where("flows", ev.flow_pos[flow.id]))[0]
            if composition is not None or n_e == 1
            else np.zeros((n_p, n_e))
        )

        total = cohorts = None
        initial_shares = inflow_shares[0]
        initial = process.initial_stock
        if initial is not None:
            if initial.composition is not None:
                initial_shares = ev.composition(
                    initial.composition, env, self._where(u, "initial_stock", "composition")
                )[0, 0]
            if initial.cohorts:
                start = int(periods[0])
                years = sorted(initial.cohorts)
                cohorts = np.zeros(max(start - years[0], 0))
                for year in years:
                    if year < start:
                        mass = _mass_series(
                            ev,
                            initial.cohorts[year],
                            env,
                            self._where(u, "initial_stock", "cohorts", year),
                        )[0]
                        cohorts[year - years[0]] = mass
            if initial.total is not None:
                total = _mass_series(
                    ev, initial.total, env, self._where(u, "initial_stock", "total")
                )[0]
                if cohorts is not None and not np.isclose(cohorts.sum(), total, rtol=1e-9):
                    unit = ev.model.spec.unit.split("/")[0]
                    k = ev.model_kg_per_unit
                    ev.problems.append(
                        Problem(
                            self._where(u, "initial_stock"),
                            f"the cohorts of the initial stock of '{process.id}' sum to "
                            f"{cohorts.sum() / k:.6g} {unit}, not the total {total / k:.6g} {unit}",
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
        topo = self.evaluator.topology
        result = []
        for k, (u, process) in enumerate(self.stocks):
            rows = self._per_scenario[k]
            params = {
                n: np.stack([r["params"][n] for r in rows], axis=1) for n in rows[0]["params"]
            }
            varying = any(np.ptp(v, axis=0).max(initial=0.0) > 0 for v in params.values())
            if not varying:
                params = {n: v[0] for n, v in params.items()}
            has_cohorts = rows[0]["cohorts"] is not None
            has_total = rows[0]["total"] is not None
            cohorts = None
            if has_cohorts:
                length = max(r["cohorts"].size for r in rows)
                cohorts = np.zeros((length, len(rows)))
                for s, r in enumerate(rows):
                    cohorts[length - r["cohorts"].size :, s] = r["cohorts"]
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
                    target_kg=np.stack([r["target"] for r in rows]),
                    inflow_composition=np.stack([r["inflow_shares"] for r in rows]),
                    initial_total_kg=np.array([r["total"] for r in rows]) if has_total else None,
                    initial_cohorts_kg=cohorts,
                    initial_composition=np.stack([r["initial_shares"] for r in rows]),
                    negative_inflow=process.negative_inflow,
                )
            )
        return tuple(result)
