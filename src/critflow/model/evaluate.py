"""Evaluate a model's numbers for every scenario and period.

Parameters and given values may be time series ``{year: value}``: they are interpolated linearly
between the given years and held constant before the first and after the last. Flow values are
converted to kg per year; transfer coefficients and compositions are dimensionless shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from critflow.errors import CritflowError, Problem, known, nearest
from critflow.model.expressions import parse_expression
from critflow.model.load import Model
from critflow.model.schema import REMAINDER, FlowSettings, TransferProcess, is_per_element
from critflow.model.stock_inputs import StockEvaluator, StockInputs
from critflow.model.topology import Topology, build_topology
from critflow.units import looks_like_quantity, mass_flow_factor, parse_mass_flow

SUM_TOLERANCE = 1e-9
"""Transfer coefficients of one element and one process must sum to 1 within this."""


@dataclass(frozen=True)
class ModelInputs:
    """Every number the engine needs, as arrays with the batch axes leading.

    Axes: S scenarios, P periods, E elements, F flows, J transfer entries (process, output).
    """

    topology: Topology
    scenarios: tuple[str, ...]
    periods: np.ndarray  # (P,) years
    transfer_coefficients: np.ndarray  # (S, P, E, J) shares
    given_mask: np.ndarray  # (S, E, F) True where a flow's element mass is given
    given_mass_kg: np.ndarray  # (S, P, E, F) given values in kg/year (0 where not given)
    unit: str  # the model's reporting unit
    kg_per_unit: float  # kg/year in one `unit`
    stocks: tuple[StockInputs, ...] = ()  # stock processes, in model order


def interpolate(series: dict[int, float], periods: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``{year: value}`` at ``periods``; constant outside the given years."""
    years = np.fromiter(series.keys(), dtype=float)
    values = np.fromiter(series.values(), dtype=float)
    return np.interp(periods.astype(float), years, values)


def _parameter_values(model: Model, scenario: str, periods: np.ndarray) -> dict[str, np.ndarray]:
    merged = {**model.spec.parameters, **model.spec.scenarios[scenario].parameters}
    return {
        name: interpolate(v, periods) if isinstance(v, dict) else np.full(periods.shape, float(v))
        for name, v in merged.items()
    }


def _at_year(env: dict[str, np.ndarray], periods: np.ndarray, year: int) -> dict[str, np.ndarray]:
    return {name: np.interp(float(year), periods.astype(float), arr) for name, arr in env.items()}


def _number(value: Any, env: dict[str, np.ndarray], kg_per_unit: float | None, where: str) -> Any:
    """A number, a quantity string (when kg_per_unit is given) or an expression, evaluated."""
    if isinstance(value, float | int):
        return float(value) * (kg_per_unit or 1.0)
    if kg_per_unit is not None and looks_like_quantity(value):
        return parse_mass_flow(value, where)
    try:
        return parse_expression(value).evaluate(env) * (kg_per_unit or 1.0)
    except (ZeroDivisionError, FloatingPointError, OverflowError) as exc:
        raise CritflowError(
            where, f"'{value}' cannot be evaluated ({exc})", "Check the parameters it uses."
        ) from None


def _series(
    value: Any,
    env: dict[str, np.ndarray],
    periods: np.ndarray,
    kg_per_unit: float | None,
    where: str,
) -> np.ndarray:
    """A value or time series evaluated over all periods, shape (P,)."""
    if isinstance(value, dict):
        points = {
            year: float(np.asarray(_number(v, _at_year(env, periods, year), kg_per_unit, where)))
            for year, v in value.items()
        }
        return interpolate(points, periods)
    return np.broadcast_to(
        np.asarray(_number(value, env, kg_per_unit, where), dtype=float), periods.shape
    ).copy()


class _Evaluator:
    def __init__(self, model: Model, topology: Topology, periods: np.ndarray) -> None:
        self.model = model
        self.topology = topology
        self.periods = periods
        self.model_kg_per_unit = mass_flow_factor(model.spec.unit, model.where("unit"))
        self.problems: list[Problem] = []
        spec = model.spec
        self.process_pos = {p.id: i for i, p in enumerate(spec.processes)}
        self.flow_pos = {f.id: i for i, f in enumerate(spec.flows)}

    def transfer(self, env: dict[str, np.ndarray]) -> np.ndarray:
        """Transfer coefficients, shape (P, E, J)."""
        topo, spec, periods = self.topology, self.model.spec, self.periods
        result = np.empty((periods.size, topo.n_elements, topo.transfer_process.size))
        for j, (u, k) in enumerate(zip(topo.transfer_process, topo.transfer_output, strict=True)):
            process = spec.processes[u]
            assert isinstance(process, TransferProcess)
            out = topo.flow_ids[k]
            shares = process.transfer[out] if process.transfer else {"default": 1.0}
            for e, element in enumerate(topo.elements):
                value = shares.get(element, shares.get("default"))
                if isinstance(value, float):
                    result[:, e, j] = value
                    continue
                where = self.model.where(
                    "processes",
                    int(u),
                    "transfer",
                    out,
                    element if element in shares else "default",
                )
                result[:, e, j] = _series(value, env, periods, None, where)
        return result

    def check_transfer(self, coefficients: np.ndarray, scenario: str) -> None:
        """Shares lie in [0, 1] and sum to 1 per process and element."""
        topo = self.topology
        n_process = len(topo.process_ids)
        sums = np.zeros((*coefficients.shape[:2], n_process))
        np.add.at(sums, (slice(None), slice(None), topo.transfer_process), coefficients)
        processes = np.unique(topo.transfer_process)
        bad = np.abs(sums[:, :, processes] - 1.0) > SUM_TOLERANCE
        for e, pos in zip(*np.nonzero(bad.any(axis=0)), strict=True):
            u = processes[pos]
            p = int(np.argmax(bad[:, e, pos]))
            total = sums[p, e, u]
            when = f" in {self.periods[p]}" if self.periods.size > 1 else ""
            scen = f" (scenario '{scenario}')" if len(self.model.spec.scenarios) > 1 else ""
            self.problems.append(
                Problem(
                    self.model.where("processes", int(u), "transfer"),
                    f"the transfer coefficients of {topo.elements[e]} in '{topo.process_ids[u]}' "
                    f"sum to {total:.12g}, not 1{when}{scen}",
                    "Make the shares of every output add up to exactly 1 for each element "
                    "(an output's 'default' applies to every element it does not list).",
                )
            )
        out_of_range = (coefficients < -SUM_TOLERANCE) | (coefficients > 1 + SUM_TOLERANCE)
        for e, j in zip(*np.nonzero(out_of_range.any(axis=0)), strict=True):
            u, k = topo.transfer_process[j], topo.transfer_output[j]
            value = coefficients[np.argmax(out_of_range[:, e, j]), e, j]
            self.problems.append(
                Problem(
                    self.model.where("processes", int(u), "transfer", topo.flow_ids[k]),
                    f"the share of {topo.elements[e]} to '{topo.flow_ids[k]}' is {value:.6g}",
                    "A transfer coefficient is a share between 0 and 1.",
                )
            )

    def given(self, env: dict[str, np.ndarray], overrides: dict[str, FlowSettings], scenario: str):
        """Given mask (E, F) and values in kg/year (P, E, F)."""
        topo, spec, periods = self.topology, self.model.spec, self.periods
        mask = np.zeros((topo.n_elements, topo.n_flows), dtype=bool)
        mass = np.zeros((periods.size, topo.n_elements, topo.n_flows))
        for f, flow in enumerate(spec.flows):
            override = overrides.get(flow.id)
            value = override.value if override and override.value is not None else flow.value
            if value is None:
                continue
            unit = (override.unit if override and override.unit else None) or flow.unit or spec.unit
            path: tuple[str | int, ...] = (
                ("scenarios", scenario, "flows", flow.id)
                if override and override.value is not None
                else ("flows", f)
            )
            kg_per_unit = mass_flow_factor(unit, self.model.where(*path, "unit"))
            where = self.model.where(*path, "value")
            per_element = is_per_element(value)
            if per_element:
                for element, item in value.items():
                    e = topo.elements.index(element)
                    mask[e, f] = True
                    mass[:, e, f] = _series(item, env, periods, kg_per_unit, where)
            else:
                goods = _series(value, env, periods, kg_per_unit, where)
                composition = (
                    override.composition
                    if override and override.composition is not None
                    else flow.composition
                ) or {}
                comp_path = path if override and override.composition is not None else ("flows", f)
                shares = self._composition(
                    composition, env, self.model.where(*comp_path, "composition")
                )
                mask[:, f] = True
                mass[:, :, f] = goods[:, None] * shares
            if (mass[:, :, f] < 0).any():
                self.problems.append(
                    Problem(
                        where,
                        f"the given value of flow '{flow.id}' is negative",
                        "Flows are masses ≥ 0.",
                    )
                )
        return mask, mass

    def _composition(
        self, composition: dict[str, Any], env: dict[str, np.ndarray], where: str
    ) -> np.ndarray:
        """Mass fractions (P, E); the remainder element takes 1 - sum of the others."""
        topo, periods = self.topology, self.periods
        shares = np.zeros((periods.size, topo.n_elements))
        if len(topo.elements) == 1 and not composition:
            shares[:] = 1.0
            return shares
        for element, value in composition.items():
            shares[:, topo.elements.index(element)] = _series(value, env, periods, None, where)
        total = shares.sum(axis=1)
        if (shares < 0).any():
            self.problems.append(
                Problem(where, "a mass fraction is negative", "Fractions lie between 0 and 1.")
            )
        if (total > 1 + SUM_TOLERANCE).any():
            self.problems.append(
                Problem(
                    where,
                    f"the composition sums to {total.max():.12g}, more than 1",
                    "Mass fractions of the listed elements add up to at most 1; 'rest' takes the remainder.",
                )
            )
        elif REMAINDER in topo.elements and REMAINDER not in composition:
            shares[:, topo.elements.index(REMAINDER)] = np.clip(1.0 - total, 0.0, None)
        elif (np.abs(total - 1.0) > SUM_TOLERANCE).any():
            self.problems.append(
                Problem(
                    where,
                    f"the composition sums to {total.min():.12g}, not 1, and no element takes the remainder",
                    f"Complete the fractions, or add '{REMAINDER}' to the model's elements to carry the remainder.",
                )
            )
        return shares


def evaluate(model: Model, scenarios: list[str] | None = None) -> ModelInputs:
    """Evaluate every number of ``model`` for the chosen scenarios (all by default)."""
    spec = model.spec
    names = list(spec.scenarios) if not scenarios else list(dict.fromkeys(scenarios))
    for name in names:
        if name not in spec.scenarios:
            raise CritflowError(
                "--scenario",
                f"the model has no scenario '{name}'",
                f"{nearest(name, list(spec.scenarios))} Scenarios: {known(list(spec.scenarios))}.".strip(),
            )
    topology = build_topology(spec)
    periods = np.arange(spec.time.start, spec.time.end + 1)
    evaluator = _Evaluator(model, topology, periods)
    stocks = StockEvaluator(evaluator)
    coefficients, masks, masses = [], [], []
    for name in names:
        env = _parameter_values(model, name, periods)
        with np.errstate(divide="raise", invalid="raise", over="raise"):
            t = evaluator.transfer(env)
            evaluator.check_transfer(t, name)
            mask, mass = evaluator.given(env, spec.scenarios[name].flows, name)
            stocks.add_scenario(env, name)
        coefficients.append(t)
        masks.append(mask)
        masses.append(mass)
    stock_inputs = stocks.stacked() if not evaluator.problems else ()
    for stock in stock_inputs:
        flow = topology.flow_ids[stock.input_flow]
        if stock.stock_driven.all() and np.stack(masks)[:, :, stock.input_flow].any():
            evaluator.problems.append(
                Problem(
                    model.where("flows", stock.input_flow, "value"),
                    f"flow '{flow}' has a value, but stock '{stock.process_id}' is stock-driven, "
                    "so its target decides the inflow",
                    "Remove the flow's value, or drive the stock by inflow "
                    "(driven_by: inflow, or {until: YEAR, then: stock}).",
                )
            )
    if evaluator.problems:
        raise CritflowError(list(dict.fromkeys(evaluator.problems)))
    return ModelInputs(
        topology=topology,
        scenarios=tuple(names),
        periods=periods,
        transfer_coefficients=np.stack(coefficients),
        given_mask=np.stack(masks),
        given_mass_kg=np.stack(masses),
        unit=spec.unit,
        kg_per_unit=evaluator.model_kg_per_unit,
        stocks=stock_inputs,
    )
