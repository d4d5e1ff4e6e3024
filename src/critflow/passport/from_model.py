"""A material-lot passport filled from a solved model: one year's output of a flow as a lot.

The model counts elements: a nickel-sulfate flow carries kg of Ni. When the flow names its
``compound`` (NiSO4·6H2O), the lot is the salt: its mass is the basis element's mass divided by that
element's mass fraction in the formula (IUPAC atomic weights), its composition is the formula's,
plus any other tracked element the flow carries (impurities, counted as the element), and its carbon
footprint is the route's burden per kg of that lot."""

from __future__ import annotations

from typing import Any

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, known, suggest
from critflow.indicators.tracing import input_masses, origin_masses
from critflow.model.compound import parse_compound
from critflow.model.core import Model
from critflow.model.schema import REMAINDER

PENDING_FOOTPRINT = (
    "the model declares no process inventories (or the flow is not a product), so critflow has "
    "no LCA of the route; add inventory: to the processes and product: to the flow"
)


def _carbon_footprint(
    model: Model,
    results: FlowResults,
    flow: str,
    s: int,
    p: int,
    per_lot: float = 1.0,
    lot_label: str | None = None,
) -> dict[str, Any]:
    """The lot's carbon footprint from the model's LCA: kg CO2-eq per kg of the flow's product
    under the model's allocation and end-of-life rule, times ``per_lot`` (kg of modelled flow per kg
    of lot, below 1 for a compound whose counter-ions the model does not count); pending when
    there is no LCA."""
    from critflow.impact.lca import assess, has_inventories

    spec_flow = next(x for x in model.spec.flows if x.id == flow)
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
    per_kg = value * per_lot
    conversion = (
        f"; {value:.4g} kg CO2-eq per kg of the modelled flow (elements) × {per_lot:.6g} kg of "
        f"flow per kg of {lot_label}"
        if lot_label
        else ""
    )
    return {
        "status": "declared",
        "value": per_kg,
        "stages": {"production": per_kg},
        "note": f"critflow LCA of the modelled route ({rule}){conversion}"
        + (f"; {notes}" if notes else ""),
    }


def _compound_lot(
    model: Model, flow: str, formula: str, element_kg: np.ndarray, elements: list[str], year: int
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """Lot mass (kg), composition (element → mass fraction) and compound record of a flow that is
    sold as ``formula``. The first element of the formula that the flow carries sets the compound
    mass; other tracked elements the flow carries beyond the formula's share are impurities."""
    compound = parse_compound(formula)
    where = f"flow '{flow}' (compound {formula})"
    tracked = [e for e in compound.elements if e in elements]
    if not tracked:
        raise CritflowError(
            where,
            f"none of the elements of {formula} ({', '.join(compound.elements)}) is an element "
            f"the model '{model.name}' tracks, so the lot's mass cannot follow from the flow",
            f"Track the compound's metal in elements: (the model has {known(elements)}), or "
            "correct the compound.",
        )
    mass = dict(zip(elements, (float(m) for m in element_kg), strict=True))
    carried = [e for e in tracked if mass[e] > 0]
    if not carried:
        raise CritflowError(
            where,
            f"carries no {' or '.join(tracked)} in {year}, so the mass of {formula} cannot follow",
            "Choose another year, or check the flow's transfer coefficients.",
        )
    basis = carried[0]
    w = compound.mass_fractions
    compound_kg = mass[basis] / w[basis]
    extra: dict[str, float] = {}  # tracked element mass beyond the formula's share (impurities)
    for e, m in mass.items():
        stoichiometric = compound_kg * w.get(e, 0.0)
        if m > stoichiometric * (1 + 1e-12):
            extra[e] = m - stoichiometric
    lot_kg = compound_kg + sum(extra.values())
    composition = {e: compound_kg * w[e] / lot_kg for e in compound.elements}
    for e, m in extra.items():
        if e != REMAINDER:
            composition[e] = composition.get(e, 0.0) + m / lot_kg
    record = {
        "formula": formula,
        "molar_mass": compound.molar_mass,
        "basis": basis,
        "mass_fraction_of_lot": compound_kg / lot_kg,
    }
    return lot_kg, composition, record


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
            "flow=",
            f"the model has no flow '{flow}'",
            suggest(flow, list(topo.flow_ids), "Flows"),
        )
    s = inputs.scenarios.index(scenario) if scenario else 0
    if scenario and scenario not in inputs.scenarios:
        raise CritflowError(
            "scenario=", f"no scenario '{scenario}'", f"Use {known(inputs.scenarios)}."
        )
    years = [int(y) for y in inputs.periods]
    if period is not None and period not in years:
        raise CritflowError(
            "period=", f"{period} is not a year of the model", f"Use {years[0]}–{years[-1]}."
        )
    p = years.index(period) if period is not None else len(years) - 1
    f = topo.flow_ids.index(flow)
    element_kg = results.mass_kg[s, p, :, f]  # kg in one year
    goods = float(element_kg.sum())
    if goods <= 0:
        raise CritflowError(
            "flow=",
            f"flow '{flow}' carries nothing in {years[p]}",
            "Choose another flow or year.",
        )
    spec_flow = next(x for x in model.spec.flows if x.id == flow)
    elements = list(topo.elements)
    if spec_flow.compound is not None:
        lot_kg, composition, compound = _compound_lot(
            model, flow, spec_flow.compound, element_kg, elements, years[p]
        )
    else:
        lot_kg, compound = goods, None
        composition = {
            element: float(element_kg[e] / goods)
            for e, element in enumerate(elements)
            if element != REMAINDER and element_kg[e] > 0
        }
    origins = origin_masses(model, results)
    # shares of the lot's mass: a compound's counter-ions and water come from reagents the model
    # does not trace, so they count as not recycled
    pre = float(origins["pre_consumer"][s, p, :, f].sum()) / lot_kg
    post = float(origins["post_consumer"][s, p, :, f].sum()) / lot_kg
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
    document: dict[str, Any] = {
        "kind": "lot",
        "lot_id": lot_id or f"{model.name}/{flow}/{inputs.scenarios[s]}/{years[p]}",
        "product": spec_flow.product or flow,
    }
    if compound is not None:
        document["compound"] = compound
    return document | {
        "mass": {"value": lot_kg / 1000.0, "unit": "t"},
        "composition": {e: {"mass_fraction": float(x)} for e, x in composition.items()},
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
        "carbon_footprint": _carbon_footprint(
            model,
            results,
            flow,
            s,
            p,
            goods / lot_kg,
            spec_flow.compound and f"{spec_flow.compound} (the lot)",
        ),
        "chain_of_custody": custody,
    }
