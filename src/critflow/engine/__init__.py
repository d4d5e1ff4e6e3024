"""The balance engine: compile a model to arrays and solve it for every scenario, period, element."""

from __future__ import annotations

from critflow.engine.results import FlowResults
from critflow.engine.solve import solve_flows
from critflow.model.evaluate import evaluate
from critflow.model.load import Model

__all__ = ["FlowResults", "solve", "solve_flows"]


def solve(model: Model, scenarios: list[str] | None = None) -> FlowResults:
    """Solve ``model`` for the chosen scenarios (all by default) and return labelled results."""
    inputs = evaluate(model, scenarios)
    timings: dict[str, float] = {}
    mass = solve_flows(inputs, timings)
    return FlowResults(inputs, mass, timings)
