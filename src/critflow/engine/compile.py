"""Evaluate a model's numbers for every scenario and period.

Parameters and given values may be time series ``{year: value}``: they are interpolated linearly
between the given years and held constant before the first and after the last. Flow values are
converted to kg per year; transfer coefficients and compositions are dimensionless shares.

Every number is evaluated with a leading *sample* axis N (1 without Monte Carlo): a value with a
distribution takes its N draws, everything else broadcasts. With draws, the scenarios axis of the
result is scenarios × samples (scenario-major), so the engine solves all samples as blocks of one
system; a stock's lifetime parameters, target, inflow composition and initial stock take the same
sample axis (:mod:`critflow.engine.stock_inputs`), so the stock solver steps the samples as more
scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from critflow.engine.linear import group_sum
from critflow.engine.stock_inputs import StockEvaluator, StockInputs
from critflow.engine.topology import Topology, build_topology
from critflow.engine.values import parameter_values, series_n
from critflow.errors import CritflowError, Problem, suggest
from critflow.model.core import Model
from critflow.model.expressions import parse_expression
from critflow.model.schema import REMAINDER, FlowSettings, TransferProcess, is_per_element
from critflow.model.source import SourceMap
from critflow.model.uncertainty import Draws, Uncertain
from critflow.units import LARGEST, mass_flow_factor

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
    source: SourceMap | None = None  # where the model's fields stand in its file, for messages

    @property
    def base_scenarios(self) -> tuple[str, ...]:
        """The model scenario of each entry of ``scenarios`` ('baseline' for 'baseline[17]')."""
        return tuple(
            name.rsplit("[", 1)[0] if name.endswith("]") else name for name in self.scenarios
        )


class Compiler:
    def __init__(
        self, model: Model, topology: Topology, periods: np.ndarray, draws: Draws | None = None
    ) -> None:
        self.model = model
        self.topology = topology
        self.periods = periods
        self.draws = draws
        self.n = draws.n if draws is not None else 1
        # transfer entries (E, J) that vary with the draws (a distribution, or an expression of a
        # parameter with one): the fixed shares of their process and element absorb them
        self.uncertain_transfer = np.zeros(
            (topology.n_elements, topology.transfer_process.size), bool
        )
        # what each varying entry depends on: (e, j) -> {id: (label, Uncertain)}
        self.share_inputs: dict[tuple[int, int], dict[int, tuple[str, Uncertain]]] = {}
        self.model_kg_per_unit = mass_flow_factor(model.spec.unit, model.where("unit"))
        self.problems: list[Problem] = []
        spec = model.spec
        self.process_pos = {p.id: i for i, p in enumerate(spec.processes)}
        self.flow_pos = {f.id: i for i, f in enumerate(spec.flows)}

    def series(self, value: Any, env: dict[str, np.ndarray], kg_per_unit: float | None, where: str):
        """A value over samples and periods, (N or 1, P)."""
        return series_n(value, env, self.periods, kg_per_unit, where, self.draws)

    def transfer(
        self, env: dict[str, np.ndarray], parameters: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Transfer coefficients, shape (N, P, E, J). ``parameters`` (the scenario's parameter
        definitions) tell which expressions read a parameter with a distribution."""
        topo, spec, periods = self.topology, self.model.spec, self.periods
        drawn_parameters = {
            name: v for name, v in (parameters or {}).items() if isinstance(v, Uncertain)
        }
        result = np.empty((self.n, periods.size, topo.n_elements, topo.transfer_process.size))
        for j, (u, k) in enumerate(zip(topo.transfer_process, topo.transfer_output, strict=True)):
            process = spec.processes[u]
            assert isinstance(process, TransferProcess)
            out = topo.flow_ids[k]
            if process.transfer is None and np.count_nonzero(topo.transfer_process == u) > 1:
                result[:, :, :, j] = np.nan  # splits unknown: measured (critflow reconcile)
                continue
            shares = process.transfer[out] if process.transfer else {"default": 1.0}
            for e, element in enumerate(topo.elements):
                value = shares.get(element, shares.get("default"))
                if isinstance(value, float):
                    result[:, :, e, j] = value
                    continue
                where = self.model.where(
                    "processes",
                    int(u),
                    "transfer",
                    out,
                    element if element in shares else "default",
                )
                label = f"processes.{process.id}.transfer.{out}." + (
                    element if element in shares else "default"
                )
                inputs = _drawn_inputs(value, drawn_parameters, label)
                if inputs:
                    self.uncertain_transfer[e, j] = True
                    self.share_inputs.setdefault((e, j), {}).update(inputs)
                result[:, :, e, j] = self.series(value, env, None, where)
        return result

    def balance_uncertain(self, coefficients: np.ndarray) -> np.ndarray:
        """The rule for drawn shares (Monte Carlo only): within a process and element, the shares
        that vary with the draws keep their drawn values and the fixed shares (numbers, or
        expressions of fixed parameters) absorb the difference in proportion to their values.
        Nothing else is rescaled: a process and element without a drawn share is left as given,
        and a sample in which nothing fixed can absorb the difference (no fixed share, or the drawn
        shares above 1) is left unbalanced for :meth:`check_transfer` to refuse. (N, P, E, J)."""
        if self.draws is None or not self.uncertain_transfer.any():
            return coefficients
        topo = self.topology
        touched = np.unique(topo.transfer_process[self.uncertain_transfer.any(axis=0)])
        columns = np.flatnonzero(np.isin(topo.transfer_process, touched))
        process = np.searchsorted(touched, topo.transfer_process[columns])  # 0..len(touched)-1
        part = coefficients[..., columns]
        shape = part.shape
        varying = self.uncertain_transfer[:, columns]  # (E, J')
        drawn = np.where(varying, part, 0.0)
        fixed = part - drawn

        def process_sum(x: np.ndarray) -> np.ndarray:  # per entry: the sum over its process
            flat = np.broadcast_to(x, shape).reshape(-1, shape[-1])
            return group_sum(flat, process, touched.size)[:, process].reshape(shape)

        drawn_sum, fixed_sum = process_sum(drawn), process_sum(fixed)
        group_varies = process_sum(varying.astype(float)) > 0  # this process and element draws
        absorb = group_varies & (fixed_sum > 0) & (drawn_sum <= 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = drawn + fixed * (1.0 - drawn_sum) / fixed_sum
        result = coefficients.copy()
        result[..., columns] = np.where(absorb, scaled, part)
        return result

    def check_transfer(self, coefficients: np.ndarray, scenario: str) -> None:
        """Shares lie in [0, 1] and sum to 1 per process and element; ``coefficients`` is
        (N, P, E, J) (samples and periods are checked alike). A failure in a Monte Carlo sample is
        named as such: the sample, the drawn values it depends on, and the fix."""
        topo = self.topology
        n_periods = self.periods.size
        coefficients = coefficients.reshape(
            coefficients.shape[0] * coefficients.shape[1], *coefficients.shape[-2:]
        )
        n_process = len(topo.process_ids)
        flat = coefficients.reshape(
            coefficients.shape[0] * coefficients.shape[1], coefficients.shape[2]
        )
        sums = group_sum(flat, topo.transfer_process, n_process).reshape(
            *coefficients.shape[:2], n_process
        )
        processes = np.unique(topo.transfer_process)
        scen = f" (scenario '{scenario}')" if len(self.model.spec.scenarios) > 1 else ""
        bad = np.abs(sums[:, :, processes] - 1.0) > SUM_TOLERANCE
        named: set[tuple[int, int]] = set()  # (element, process) named for a sample already
        for e, pos in zip(*np.nonzero(bad.any(axis=0)), strict=True):
            u = processes[pos]
            row = int(np.argmax(bad[:, e, pos]))
            total = sums[row, e, u]
            when = f" in {self.periods[row % n_periods]}" if n_periods > 1 else ""
            entries = np.flatnonzero(topo.transfer_process == u)
            inputs = self._inputs_of(e, entries)
            where = self.model.where("processes", int(u), "transfer")
            shares = (
                f"the transfer coefficients of {topo.elements[e]} in {topo.process_name(int(u))}"
            )
            if self.draws is not None and inputs:
                named.add((int(e), int(u)))
                self.problems.append(
                    Problem(
                        where,
                        f"{self._sample(row // n_periods, inputs)} makes {shares} sum to "
                        f"{total:.6g}, not 1{when}{scen}",
                        self._fix(e, entries, inputs),
                    )
                )
                continue
            self.problems.append(
                Problem(
                    where,
                    f"{shares} sum to {total:.12g}, not 1{when}{scen}",
                    "Make the shares of every output add up to exactly 1 for each element "
                    "(an output's 'default' applies to every element it does not list).",
                )
            )
        out_of_range = (coefficients < -SUM_TOLERANCE) | (coefficients > 1 + SUM_TOLERANCE)
        for e, j in zip(*np.nonzero(out_of_range.any(axis=0)), strict=True):
            u, k = topo.transfer_process[j], topo.transfer_output[j]
            row = int(np.argmax(out_of_range[:, e, j]))
            value = coefficients[row, e, j]
            entries = np.flatnonzero(topo.transfer_process == u)
            inputs = self._inputs_of(e, entries)
            what = f"the share of {topo.elements[e]} to {topo.flow_name(int(k))}"
            where = self.model.where("processes", int(u), "transfer", topo.flow_ids[k])
            if self.draws is not None and inputs:
                if (int(e), int(u)) in named:
                    continue  # the sum's message names this sample and the fix already
                self.problems.append(
                    Problem(
                        where,
                        f"{self._sample(row // n_periods, inputs)} makes {what} in "
                        f"'{topo.process_ids[u]}' {value:.6g}{scen}",
                        self._fix(e, entries, inputs),
                    )
                )
                continue
            self.problems.append(
                Problem(
                    where,
                    f"{what} is {value:.6g}",
                    "A transfer coefficient is a share between 0 and 1.",
                )
            )

    def _inputs_of(self, e: int, entries: np.ndarray) -> dict[int, tuple[str, Uncertain]]:
        """The drawn inputs the shares of element ``e`` over ``entries`` depend on."""
        found: dict[int, tuple[str, Uncertain]] = {}
        for j in entries:
            found.update(self.share_inputs.get((e, int(j)), {}))
        return found

    def _sample(self, n: int, inputs: dict[int, tuple[str, Uncertain]]) -> str:
        """ "sample 17 of parameter 'ni_yield' (1.02)" — or, in the check of the distributions'
        support, "parameter 'ni_yield' at 1.02 (an end of its distribution's range)"."""
        draws = self.draws
        assert draws is not None
        values = [(label, float(draws.of(u)[n])) for label, u in inputs.values() if draws.has(u)]
        if draws.support:
            ends = (
                "an end of its distribution's range"
                if len(values) == 1
                else "ends of their distributions' ranges"
            )
            return " and ".join(f"{label} at {value:.6g}" for label, value in values) + f" ({ends})"
        return f"sample {draws.first + n} of " + " and ".join(
            f"{label} ({value:.6g})" for label, value in values
        )

    def _fix(
        self,
        e: int,
        entries: np.ndarray,
        inputs: dict[int, tuple[str, Uncertain]],
    ) -> str:
        """How to satisfy the rule for drawn shares in this process and element."""
        topo = self.topology
        fixed = [
            topo.flow_ids[topo.transfer_output[j]]
            for j in entries
            if not self.uncertain_transfer[e, j]
        ]
        names = ", ".join(label for label, _ in inputs.values())
        drawn_out = [
            topo.flow_ids[topo.transfer_output[j]] for j in entries if self.uncertain_transfer[e, j]
        ]
        if not fixed:
            example = drawn_out[-1] if drawn_out else "one output"
            return (
                f"Every share of {topo.elements[e]} here is drawn ({names}) and nothing fixed can "
                f"absorb the difference: write one output's share as the complement, e.g. "
                f"{example}: '1 - …' of the others, so that every sample sums to 1."
            )
        return (
            f"Drawn shares keep their draws and the fixed shares ({', '.join(fixed)}) absorb the "
            f"difference, so the drawn shares may not exceed 1 together: narrow the distribution "
            f"of {names} (its low and high), or write a fixed share as the complement of the "
            "drawn ones ('1 - …')."
        )

    def given(self, env: dict[str, np.ndarray], overrides: dict[str, FlowSettings], scenario: str):
        """Given mask (E, F) and values in kg/year (N, P, E, F)."""
        topo, spec, periods = self.topology, self.model.spec, self.periods
        mask = np.zeros((topo.n_elements, topo.n_flows), dtype=bool)
        mass = np.zeros((self.n, periods.size, topo.n_elements, topo.n_flows))
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
                    mass[:, :, e, f] = self.series(item, env, kg_per_unit, where)
            else:
                goods = self.series(value, env, kg_per_unit, where)
                composition = (
                    override.composition
                    if override and override.composition is not None
                    else flow.composition
                ) or {}
                comp_path = path if override and override.composition is not None else ("flows", f)
                shares = self.composition(
                    composition, env, self.model.where(*comp_path, "composition")
                )
                mask[:, f] = True
                mass[:, :, :, f] = goods[:, :, None] * shares
            if (mass[..., f] < 0).any():
                self.problems.append(
                    Problem(
                        where,
                        f"the given value of flow '{flow.id}' is negative",
                        "Flows are masses ≥ 0.",
                    )
                )
            largest = float(np.abs(mass[..., f]).max(initial=0.0))
            if largest > LARGEST:  # an expression of parameters can reach what no literal may
                self.problems.append(
                    Problem(
                        where,
                        f"the given value of flow '{flow.id}' reaches {largest:.3g} kg/year",
                        f"No real mass flow comes near this (the Earth is 6e24 kg); critflow "
                        f"refuses more than {LARGEST:.0e} kg/year. Check the parameters it uses.",
                    )
                )
        return mask, mass

    def composition(
        self, composition: dict[str, Any], env: dict[str, np.ndarray], where: str
    ) -> np.ndarray:
        """Mass fractions (N, P, E); the remainder element takes 1 - sum of the others."""
        topo, periods = self.topology, self.periods
        shares = np.zeros((self.n, periods.size, topo.n_elements))
        if len(topo.elements) == 1 and not composition:
            shares[:] = 1.0
            return shares
        for element, value in composition.items():
            shares[:, :, topo.elements.index(element)] = self.series(value, env, None, where)
        total = shares.sum(axis=-1)
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
            shares[:, :, topo.elements.index(REMAINDER)] = np.clip(1.0 - total, 0.0, None)
        elif (np.abs(total - 1.0) > SUM_TOLERANCE).any():
            self.problems.append(
                Problem(
                    where,
                    f"the composition sums to {total.min():.12g}, not 1, and no element takes the remainder",
                    f"Complete the fractions, or add '{REMAINDER}' to the model's elements to carry the remainder.",
                )
            )
        return shares


def _drawn_inputs(
    value: Any, drawn_parameters: dict[str, Uncertain], label: str
) -> dict[int, tuple[str, Uncertain]]:
    """The inputs with a distribution a share depends on: itself, or the parameters with a
    distribution its expression reads (for each year of a series)."""
    if isinstance(value, Uncertain):
        return {id(value): (f"the share drawn at {label}", value)}
    if isinstance(value, dict):
        found: dict[int, tuple[str, Uncertain]] = {}
        for year, item in value.items():
            found.update(_drawn_inputs(item, drawn_parameters, f"{label}.{year}"))
        return found
    if isinstance(value, str) and drawn_parameters:
        try:
            names = parse_expression(value).names
        except ValueError:  # reported by the model checks
            return {}
        return {
            id(drawn_parameters[n]): (f"parameter '{n}'", drawn_parameters[n])
            for n in sorted(names)
            if n in drawn_parameters
        }
    return {}


SUPPORT_CORNERS = 10
"""A process whose shares read up to this many distributions is checked at every combination of
their ends (2**10 = 1024 points); beyond, at each one's ends alone and at all-low and all-high."""


def check_drawn_shares(model: Model, scenarios: list[str] | None = None) -> None:
    """Check the rule for drawn shares over the distributions' whole support, as `critflow
    validate` and Monte Carlo do before sampling.

    The rule: within a process and element, shares that vary with the draws (a distribution, or an
    expression of a parameter with one) keep their drawn values, and the fixed shares absorb the
    difference in proportion. So the central values must sum to 1 (the deterministic check), and
    at every end of the distributions' ranges — the lowest and highest value the sampler can
    draw, ``ppf(0)`` and ``ppf(1 − 2⁻⁵³)`` — every share must stay in [0, 1] and the shares must
    sum to 1: the drawn shares may not exceed 1 together, and a process with no fixed share needs
    its drawn shares to sum to 1 by themselves (a complement written as '1 - …'). Every
    combination of the ends of the distributions a process reads is tried (beyond
    ``SUPPORT_CORNERS`` of them: each end alone, all low and all high). Raises a
    :class:`CritflowError` naming the share, the values and the fix."""
    import itertools

    from critflow.model.uncertainty import collect, support_bounds

    spec = model.spec
    inputs = collect(spec)
    if not inputs:
        return
    names = list(spec.scenarios) if not scenarios else list(dict.fromkeys(scenarios))
    if any(name not in spec.scenarios for name in names):
        return  # evaluate() names the scenario
    base = model.path.parent if model.path else None
    for item in inputs:
        item.value.load(base, model.where(*item.path))
    topology = build_topology(spec)
    periods = np.arange(spec.time.start, spec.time.end + 1)
    central = Compiler(model, topology, periods)
    try:
        with np.errstate(divide="raise", invalid="raise", over="raise"):
            for name in names:
                parameters = {**spec.parameters, **spec.scenarios[name].parameters}
                env = parameter_values(model, name, periods)
                central.check_transfer(central.transfer(env, parameters), name)
    except (CritflowError, FloatingPointError):
        return  # the deterministic evaluation reports it
    if central.problems or not central.share_inputs:
        return  # a deterministic problem is reported by evaluate(); or no share is drawn
    topo = topology
    column = {id(x.value): i for i, x in enumerate(inputs)}
    centre = np.array([x.value.central for x in inputs], dtype=float)
    bounds = {id(x.value): support_bounds(x.value) for x in inputs}
    points: list[tuple[tuple[int, int], ...]] = []  # (column, 0 low | 1 high) per point
    for u in np.unique(topo.transfer_process):
        entries = np.flatnonzero(topo.transfer_process == u)
        used = sorted(
            {
                column[key]
                for (e, j), found in central.share_inputs.items()
                if j in entries
                for key in found
            }
        )
        if not used:
            continue
        if len(used) <= SUPPORT_CORNERS:
            combos = itertools.product((0, 1), repeat=len(used))
        else:
            alone = [
                tuple(int(k == i) if end else 1 - int(k == i) for k in range(len(used)))
                for i in range(len(used))
                for end in (0, 1)
            ]
            combos = iter([(0,) * len(used), (1,) * len(used), *alone])
        points += [tuple(zip(used, combo, strict=True)) for combo in combos]
    points = list(dict.fromkeys(points))
    lows = np.array([bounds[id(x.value)][0] for x in inputs])
    highs = np.array([bounds[id(x.value)][1] for x in inputs])
    per_point = max(1, periods.size * topo.n_elements * max(topo.transfer_process.size, 1))
    batch = max(1, 20_000_000 // per_point)
    for start in range(0, len(points), batch):
        chunk = points[start : start + batch]
        values = np.tile(centre, (len(chunk), 1))
        for row, point in enumerate(chunk):
            for col, end in point:
                values[row, col] = highs[col] if end else lows[col]
        draws = Draws(values, column, support=True)
        evaluator = Compiler(model, topology, periods, draws)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for name in names:
                parameters = {**spec.parameters, **spec.scenarios[name].parameters}
                env = parameter_values(model, name, periods, draws)
                t = evaluator.balance_uncertain(evaluator.transfer(env, parameters))
                evaluator.check_transfer(t, name)
        if evaluator.problems:
            raise CritflowError(list(dict.fromkeys(evaluator.problems)))


def evaluate(
    model: Model, scenarios: list[str] | None = None, draws: Draws | None = None
) -> ModelInputs:
    """Evaluate every number of ``model`` for the chosen scenarios (all by default).

    With ``draws`` (Monte Carlo), the result's scenarios are every scenario × every sample,
    scenario-major, named ``scenario[i]``."""
    spec = model.spec
    names = list(spec.scenarios) if not scenarios else list(dict.fromkeys(scenarios))
    for name in names:
        if name not in spec.scenarios:
            raise CritflowError(
                "scenarios=",
                f"the model has no scenario '{name}'",
                suggest(name, list(spec.scenarios), "Scenarios"),
            )
    topology = build_topology(spec)
    periods = np.arange(spec.time.start, spec.time.end + 1)
    evaluator = Compiler(model, topology, periods, draws)
    stocks = StockEvaluator(evaluator)
    coefficients, masks, masses = [], [], []
    for name in names:
        env = parameter_values(model, name, periods, draws)
        try:
            with np.errstate(divide="raise", invalid="raise", over="raise"):
                parameters = {**spec.parameters, **spec.scenarios[name].parameters}
                t = evaluator.balance_uncertain(evaluator.transfer(env, parameters))
                evaluator.check_transfer(t, name)
                mask, mass = evaluator.given(env, spec.scenarios[name].flows, name)
                stocks.add_scenario(env, name)
        except FloatingPointError as exc:  # a product of valid numbers overflows
            raise CritflowError(
                evaluator.problems
                or [
                    Problem(
                        f"{model.source.file} (scenario '{name}')",
                        f"evaluating the model's numbers gives {exc}",
                        "Check for values near the float limit (1e308) and for parameters "
                        "that make a product or a power explode.",
                    )
                ]
            ) from None
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
    n = evaluator.n
    coefficients_all = np.stack(coefficients)  # (S, N, P, E, J)
    masses_all = np.stack(masses)  # (S, N, P, E, F)
    labels = tuple(names) if draws is None else tuple(f"{s}[{i}]" for s in names for i in range(n))
    return ModelInputs(
        topology=topology,
        scenarios=labels,
        periods=periods,
        transfer_coefficients=coefficients_all.reshape(len(names) * n, *coefficients_all.shape[2:]),
        given_mask=np.repeat(np.stack(masks), n, axis=0),
        given_mass_kg=masses_all.reshape(len(names) * n, *masses_all.shape[2:]),
        unit=spec.unit,
        kg_per_unit=evaluator.model_kg_per_unit,
        stocks=stock_inputs,
        source=model.source,
    )
