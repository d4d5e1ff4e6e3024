"""Global sensitivity: Sobol indices of an output with respect to every uncertain input (SALib).

Saltelli's scheme (SALib ``sample.sobol``, first and total order) draws N·(D + 2) points on the unit
hypercube; each point is mapped through the inverse CDF of every input's distribution, the model is
solved for all points as blocks of one system (in chunks), the output is computed for every point,
and ``SALib.analyze.sobol`` gives S1 (the share of the output's variance each input explains alone)
and ST (alone and in interaction), with bootstrap confidence intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from critflow.engine.balance import solve_flows
from critflow.engine.compile import evaluate
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, suggest
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.model.core import Model
from critflow.model.uncertainty import Draws, collect

CHUNK = 2_000


@dataclass
class SobolIndices:
    """First- and total-order indices per input, with 95 % confidence half-widths."""

    output: str
    samples: int
    table: pd.DataFrame  # input, S1, S1_conf, ST, ST_conf
    output_mean: float
    output_sd: float


def _output(model: Model, results: FlowResults, output: str, element: str | None) -> np.ndarray:
    """The output for every (scenario × sample) and period: a flow (``flow:ID``) or an indicator."""
    if output.startswith("flow:"):
        flow = output.removeprefix("flow:")
        topo = results.inputs.topology
        if flow not in topo.flow_ids:
            raise CritflowError(
                "output=",
                f"the model has no flow '{flow}'",
                suggest(flow, list(topo.flow_ids), "Flows"),
            )
        mass = results.values[..., topo.flow_ids.index(flow)]  # (S, P, E)
        return mass.sum(axis=-1) if element is None else mass[..., topo.elements.index(element)]
    return evaluate_indicator(Context(model, results), output, element, "output=")


def sobol_indices(
    model: Model,
    output: str,
    element: str | None = None,
    scenario: str | None = None,
    year: int | None = None,
    samples: int = 1024,
    seed: int = 1,
    progress=None,
) -> SobolIndices:
    """Sobol S1 and ST of ``output`` (an indicator name or ``flow:ID``) in one scenario and year."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    inputs = collect(model.spec)
    if len(inputs) < 2:
        raise CritflowError(
            model.where(),
            f"Sobol indices need at least 2 values with distributions; the model has {len(inputs)}",
            "Give more parameters, shares or flow values a distribution.",
        )
    if samples < 16 or samples & (samples - 1):
        raise CritflowError(
            "samples=", f"{samples}", "Give a power of 2 of at least 16 (Saltelli's scheme)."
        )
    base = model.path.parent if model.path else None
    for item in inputs:
        item.value.load(base, model.where(*item.path))
    scenario = scenario or next(iter(model.spec.scenarios))
    problem = {
        "num_vars": len(inputs),
        "names": [i.label for i in inputs],
        "bounds": [[0.0, 1.0]] * len(inputs),
    }
    u = sample.sample(problem, samples, calc_second_order=False, seed=seed)
    u = np.clip(u, 1e-12, 1 - 1e-12)  # the inverse CDF is finite inside (0, 1)
    values = np.column_stack([x.value.ppf(u[:, i]) for i, x in enumerate(inputs)])
    column_of = {id(x.value): i for i, x in enumerate(inputs)}
    y = np.empty(u.shape[0])
    periods = np.arange(model.spec.time.start, model.spec.time.end + 1)
    p = (
        len(periods) - 1
        if year is None
        else int(np.flatnonzero(periods == year)[0])
        if year in periods
        else None
    )
    if p is None:
        raise CritflowError(
            "year=", f"the model has no period {year}", f"Periods: {periods[0]}–{periods[-1]}."
        )
    for start in range(0, u.shape[0], CHUNK):
        draws = Draws(values[start : start + CHUNK], column_of)
        evaluated = evaluate(model, [scenario], draws)
        results = FlowResults(evaluated, solve_flows(evaluated))
        y[start : start + draws.n] = np.asarray(_output(model, results, output, element))[:, p]
        if progress is not None:
            progress(min(start + CHUNK, u.shape[0]), u.shape[0])
    if not np.isfinite(y).all():
        raise CritflowError(
            "output=", f"'{output}' is undefined (0/0) for some samples", "Choose another output."
        )
    found = analyze.analyze(problem, y, calc_second_order=False, seed=seed)
    table = pd.DataFrame(
        {
            "input": problem["names"],
            "S1": found["S1"],
            "S1_conf": found["S1_conf"],
            "ST": found["ST"],
            "ST_conf": found["ST_conf"],
        }
    ).sort_values("ST", ascending=False, ignore_index=True)
    label = output + (f" ({element})" if element else "")
    return SobolIndices(label, u.shape[0], table, float(y.mean()), float(y.std(ddof=1)))
