"""A material-lot passport filled from a solved model: one year's output of a flow as a lot."""

from __future__ import annotations

from typing import Any

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, known, nearest
from critflow.indicators.tracing import input_masses, origin_masses
from critflow.model.load import Model
from critflow.model.schema import REMAINDER

PENDING_FOOTPRINT = (
    "the model declares no process inventories (or the flow is not a product), so critflow has "
    "no LCA of the route; add inventory: to the processes and product: to the flow"
)


def _carbon_footprint(
    model: Model, results: FlowResults, flow: str, s: int, p: int
) -> dict[str, Any]:
    """The lot's carbon footprint from the model's LCA: kg CO2-eq per kg of the flow's product
    under the model's allocation and end-of-life rule; pending when there is no LCA."""
    from critflow.impact.lca import assess, has_inventories

    spec_flow = next(f for f in model.spec.flows if f.id == flow)
    if not has_inventories(model) or spec_flow.product is None:
        return {"status": "pending", "note": PENDING_FOOTPRINT}
    impacts = assess(model, results)
    value = float(impacts.footprint[s, p, impacts.products.index(spec_flow.product)])
    rule = f"{impacts.method.name}; {impacts.end_of_life}, {impacts.partition} partition"
    if impacts.end_of_life == "cff":
        rule += f", A = {impacts.cff_a}"
    if not np.isfinite(value) or value < 0:
        return {
            "status": "pending",
            "note": f"the footprint under {rule} is {value:.4g} kg CO2-eq/kg (credits exceed "
            "burdens); a passport declares burdens: use end_of_life: cut-off or cff",
        }
    notes = "; ".join(impacts.notes)
    return {
        "status": "declared",
        "value": value,
        "stages": {"production": value},
        "note": f"critflow LCA of the modelled route ({rule})" + (f"; {notes}" if notes else ""),
    }


def lot_from_flow(
    model: Model,
    results: FlowResults,
    flow: str,
    scenario: str | None = None,
    period: int | None = None,
    lot_id: str | None = None,
) -> dict[str, Any]:
    """The lot passport of ``flow``'s output in one scenario and year (mass = one year's flow).

    Composition from the flow's element masses; recycled content from mass-balance tracing of
    the sources' origins (pre-/post-consumer); chain of custody from each source flow's share.
    """
    inputs = results.inputs
    topo = inputs.topology
    if flow not in topo.flow_ids:
        raise CritflowError(
            "--output-flow",
            f"the model has no flow '{flow}'",
            f"{nearest(flow, list(topo.flow_ids))} Flows: {known(list(topo.flow_ids))}.".strip(),
        )
    s = inputs.scenarios.index(scenario) if scenario else 0
    if scenario and scenario not in inputs.scenarios:
        raise CritflowError(
            "--scenario", f"no scenario '{scenario}'", f"Use {known(inputs.scenarios)}."
        )
    years = [int(y) for y in inputs.periods]
    if period is not None and period not in years:
        raise CritflowError(
            "--period", f"{period} is not a year of the model", f"Use {years[0]}–{years[-1]}."
        )
    p = years.index(period) if period is not None else len(years) - 1
    f = topo.flow_ids.index(flow)
    element_kg = results.mass_kg[s, p, :, f]  # kg in one year
    goods = float(element_kg.sum())
    if goods <= 0:
        raise CritflowError(
            "--output-flow",
            f"flow '{flow}' carries nothing in {years[p]}",
            "Choose another flow or year.",
        )
    origins = origin_masses(model, results)
    pre = float(origins["pre_consumer"][s, p, :, f].sum()) / goods
    post = float(origins["post_consumer"][s, p, :, f].sum()) / goods
    by_element = {}
    for e, element in enumerate(topo.elements):
        if element == REMAINDER or element_kg[e] <= 0:
            continue
        by_element[element] = {
            "pre_consumer": float(origins["pre_consumer"][s, p, e, f] / element_kg[e]),
            "post_consumer": float(origins["post_consumer"][s, p, e, f] / element_kg[e]),
        }
    sources = input_masses(results)
    custody = [
        {
            "lot_id": f"{source}/{years[p]}",
            "mass": {"value": float(m[s, p, :, f].sum()) / 1000.0, "unit": "t"},
        }
        for source, m in sources.items()
        if m[s, p, :, f].sum() > 1e-9 * goods
    ]
    process = topo.process_ids[topo.flow_from[f]]
    return {
        "kind": "lot",
        "lot_id": lot_id or f"{model.name}/{flow}/{inputs.scenarios[s]}/{years[p]}",
        "product": flow,
        "mass": {"value": goods / 1000.0, "unit": "t"},
        "composition": {
            element: {"mass_fraction": float(element_kg[e] / goods)}
            for e, element in enumerate(topo.elements)
            if element != REMAINDER and element_kg[e] > 0
        },
        "origin": {
            "process": process,
            "period": str(years[p]),
            "model": f"{model.name} (model file SHA-256 {model.text_sha256 or 'n/a'}; "
            f"scenario {inputs.scenarios[s]})",
        },
        "recycled_content": {
            "pre_consumer": float(np.clip(pre, 0, 1)),
            "post_consumer": float(np.clip(post, 0, 1)),
            "by_element": by_element,
        },
        "carbon_footprint": _carbon_footprint(model, results, flow, s, p),
        "chain_of_custody": custody,
    }
