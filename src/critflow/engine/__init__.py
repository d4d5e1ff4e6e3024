"""The balance engine: compile a model to arrays and solve it for every scenario, period, element."""

from __future__ import annotations

from critflow.engine.balance import solve_flows
from critflow.engine.compile import ModelInputs, evaluate
from critflow.engine.results import FlowResults
from critflow.model.core import Model

__all__ = ["FlowResults", "solve", "solve_flows", "solve_inputs"]


def solve_inputs(inputs: ModelInputs, timings: dict[str, float] | None = None) -> FlowResults:
    """Solve evaluated model inputs; models with stocks are solved period by period."""
    timings = timings if timings is not None else {}
    if inputs.stocks:
        from critflow.engine.stock_solve import solve_with_stocks

        mass, stocks = solve_with_stocks(inputs, timings)
        return FlowResults(inputs, mass, timings, stocks)
    return FlowResults(inputs, solve_flows(inputs, timings), timings)


def solve(model: Model, scenarios: list[str] | None = None) -> FlowResults:
    """Solve ``model`` for the chosen scenarios (all by default) and return labelled results."""
    return solve_inputs(evaluate(model, scenarios))
