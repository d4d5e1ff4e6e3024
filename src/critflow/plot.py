"""Draw a solved model in Python: the Sankey and the stock chart as plotly figures.

>>> import critflow
>>> from critflow import plot
>>> model = critflow.load_model("examples/battery_recycling_hydromet.yaml")  # doctest: +SKIP
>>> figure = plot.sankey(model, scenario="baseline", period=2030, element="Li")  # doctest: +SKIP
>>> figure.show()                      # or figure.write_html("li.html"), write_image("li.svg")
>>> plot.stocks(critflow.load_model("examples/eu_ev_battery_stock.yaml"), element="Li")  # doctest: +SKIP

Each function takes a :class:`~critflow.analysis.Run`, a :class:`~critflow.model.Model` (solved
here) or :class:`~critflow.engine.FlowResults` with ``model=`` (for display names and fates; without
it links cannot be coloured by fate and ids are shown as words).
"""

from __future__ import annotations

from typing import Any

from critflow.errors import CritflowError, suggest


def _run_parts(what: Any, model: Any = None):
    """(results, spec) from a Run, a Model or FlowResults (+ model)."""
    from critflow.analysis import Run
    from critflow.engine.results import FlowResults
    from critflow.model.core import Model

    if isinstance(what, Run):
        return what.results, what.model.spec
    if isinstance(what, Model):
        from critflow.engine import solve

        return solve(what), what.spec
    if isinstance(what, FlowResults):
        return what, (model.spec if model is not None else None)
    raise CritflowError(
        "run=",
        f"a {type(what).__name__} cannot be drawn",
        "Give a Run, a Model (from critflow.load_model) or FlowResults (from critflow.solve).",
    )


def _pick(value: Any, choices: list[str], what: str, default: str) -> str:
    if value is None:
        return default
    text = str(value)
    if text not in choices:
        raise CritflowError(
            f"{what}=",
            f"'{text}' is not one of the run's {what}s",
            suggest(text, choices, what.capitalize() + "s"),
        )
    return text


def sankey(
    run: Any,
    scenario: str | None = None,
    period: int | str | None = None,
    element: str = "goods",
    colour: str = "fate",
    model: Any = None,
    values_in_labels: bool = False,
):
    """A plotly Figure of the Sankey of one scenario (the first by default), period (the last) and
    element ('goods' for the goods mass), its links coloured by ``colour``: 'fate' (where the
    mass ends: recycled, product, lost, in use), 'element' or 'kind' (grey). Link values are the
    flows of ``results.flows()`` in the model's unit."""
    from critflow.report.sankey import sankey_data, sankey_figure

    if colour not in ("fate", "element", "kind"):
        raise CritflowError(
            "colour=", f"'{colour}' is not a colouring", "Use fate, element or kind."
        )
    results, spec = _run_parts(run, model)
    data = sankey_data(results, spec)
    chosen_scenario = _pick(scenario, data["scenarios"], "scenario", data["scenarios"][0])
    chosen_period = _pick(period, data["periods"], "period", data["periods"][-1])
    chosen_element = _pick(element, data["elements"], "element", "goods")
    return sankey_figure(
        data,
        chosen_scenario,
        chosen_period,
        chosen_element,
        colour,
        values_in_labels=values_in_labels,
    )


def stocks(
    run: Any,
    stock: str | None = None,
    scenario: str | None = None,
    element: str = "goods",
    model: Any = None,
):
    """A plotly Figure of one stock (the first by default): in use at the end of each year on the
    left axis, inflow and outflow per year on the right; both axes start at zero."""
    import plotly.graph_objects as go

    from critflow.report.content import stock_section

    results, spec = _run_parts(run, model)
    data = stock_section(results, spec)
    if data is None:
        raise CritflowError("run=", "the model has no stock process", "Draw a model with stocks.")
    names = list(data["stocks"])
    chosen = _pick(stock, names, "stock", names[0])
    chosen_scenario = _pick(
        scenario, list(results.inputs.scenarios), "scenario", results.inputs.scenarios[0]
    )
    chosen_element = _pick(element, data["elements"], "element", "goods")
    series = data["stocks"][chosen][chosen_scenario]
    x = data["periods"]
    in_use = series["in_use"][chosen_element]
    inflow, outflow = series["inflow"][chosen_element], series["outflow"][chosen_element]
    figure = go.Figure(
        [
            go.Scatter(
                x=x,
                y=in_use,
                name=f"in use ({data['stock_unit']})",
                fill="tozeroy",
                line_color="#0072B2",
            ),
            go.Scatter(
                x=x,
                y=inflow,
                name=f"inflow ({data['flow_unit']})",
                yaxis="y2",
                line_color="#009E73",
            ),
            go.Scatter(
                x=x,
                y=outflow,
                name=f"outflow ({data['flow_unit']})",
                yaxis="y2",
                line_color="#D55E00",
            ),
        ]
    )
    top1 = max([0.0, *in_use]) * 1.05 or 1.0
    top2 = max([0.0, *inflow, *outflow]) * 1.05 or 1.0
    axis = {"rangemode": "tozero", "separatethousands": True, "exponentformat": "none"}
    figure.update_layout(
        title=f"{data['labels'][chosen]} — {chosen_element}, {chosen_scenario}",
        yaxis={**axis, "title": data["stock_unit"], "range": [0, top1]},
        yaxis2={
            **axis,
            "title": data["flow_unit"],
            "range": [0, top2],
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
        },
        legend={"orientation": "h"},
    )
    return figure


__all__ = ["sankey", "stocks"]
