"""Element recovery per output and per product, and the Battery Regulation's recycling efficiency
and material recovery (Art. 3(60) of Regulation (EU) 2023/1542; Delegated Regulation (EU) 2025/606).

Which fates count as recycling, and which leave the calculation altogether, is data
(``critflow/data/recycling_fates.csv``), not code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from critflow import data
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, Problem, known, nearest
from critflow.indicators.flows import ratio, system_inputs, system_outputs, total
from critflow.model.load import Model


def _basis(model: Model, results: FlowResults, basis: str) -> np.ndarray:
    """Element mass entering the system ('system') or a named process, (S, P, E) in kg/year."""
    if basis == "system":
        return total(results, system_inputs(model))
    topo = results.inputs.topology
    if basis not in topo.process_index:
        raise CritflowError(
            "recovery basis",
            f"'{basis}' is neither 'system' nor a process of the model",
            f"{nearest(basis, topo.process_ids)} Processes: {known(topo.process_ids)}.".strip(),
        )
    return total(results, topo.flow_to == topo.process_index[basis])


def recovery(model: Model, results: FlowResults, basis: str = "system") -> pd.DataFrame:
    """Share of each element entering the system (or process ``basis``) that reaches each output.

    One row per scenario, period, output flow (flows into sinks) and element; ``recovery`` is a
    fraction (0-1). Columns: scenario, period, flow, product, fate, element, recovery.
    """
    outputs = np.flatnonzero(system_outputs(model))
    entering = _basis(model, results, basis)  # (S, P, E)
    shares = ratio(results.mass_kg[..., outputs], entering[..., None])  # (S, P, E, O)
    spec = model.spec
    grid = np.indices(shares.shape).reshape(4, -1)
    flows = [spec.flows[f] for f in outputs]
    return pd.DataFrame(
        {
            "scenario": np.array(results.inputs.scenarios, dtype=object)[grid[0]],
            "period": results.inputs.periods[grid[1]],
            "flow": np.array([f.id for f in flows], dtype=object)[grid[3]],
            "product": np.array([f.product for f in flows], dtype=object)[grid[3]],
            "fate": np.array([f.fate for f in flows], dtype=object)[grid[3]],
            "element": np.array(spec.elements, dtype=object)[grid[2]],
            "recovery": shares.reshape(-1),
        }
    )


def recovery_by_product(model: Model, results: FlowResults, basis: str = "system") -> pd.DataFrame:
    """Recovery summed over the output flows of each named product (flows with ``product:``)."""
    table = recovery(model, results, basis)
    table = table[table["product"].notna()]
    return table.groupby(["scenario", "period", "product", "element"], as_index=False, sort=False)[
        "recovery"
    ].sum()


def _fate_rules() -> pd.DataFrame:
    return data.table("recycling_fates").set_index("fate")


def _fate_masks(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """(counted, removed) masks over flows: outputs that count as recycling, and outputs whose
    mass leaves the calculation (input reduced by it). Raises when an output has no fate."""
    rules = _fate_rules()
    outputs = system_outputs(model)
    missing = [
        Problem(
            model.where("flows", i),
            f"flow '{flow.id}' into sink '{flow.to}' has no fate, so the recycling efficiency "
            "cannot tell whether it counts",
            f"Add fate: one of {', '.join(rules.index)} to the flow.",
        )
        for i, flow in enumerate(model.spec.flows)
        if outputs[i] and flow.fate is None
    ]
    if missing:
        raise CritflowError(missing)
    fates = [flow.fate for flow in model.spec.flows]
    counted = np.array(
        [
            o and bool(rules.loc[f, "counts_as_recycling"])
            for o, f in zip(outputs, fates, strict=True)
        ]
    )
    removed = np.array(
        [o and not bool(rules.loc[f, "in_input"]) for o, f in zip(outputs, fates, strict=True)]
    )
    return counted, removed


def recycling_arrays(model: Model, results: FlowResults) -> tuple[np.ndarray, np.ndarray]:
    """(recycled output, input fraction) element masses in kg/year, each (S, P, E).

    The input fraction is what the sources send in, less outputs whose fate is 'excluded'.
    """
    counted, removed = _fate_masks(model)
    entering = total(results, system_inputs(model)) - total(results, removed)
    return total(results, counted), entering


def recycling_efficiency(model: Model, results: FlowResults) -> pd.DataFrame:
    """Recycling efficiency RE = mass of outputs counted as recycling / input mass (goods).

    Columns: scenario, period, input, recycled (in the model's unit), recycling_efficiency (0-1).
    """
    recycled, entering = recycling_arrays(model, results)
    k = results.inputs.kg_per_unit
    rows = []
    for s, scenario in enumerate(results.inputs.scenarios):
        for p, period in enumerate(results.inputs.periods):
            mass_in, mass_out = entering[s, p].sum(), recycled[s, p].sum()
            rows.append(
                (
                    scenario,
                    period,
                    mass_in / k,
                    mass_out / k,
                    mass_out / mass_in if mass_in else np.nan,
                )
            )
    return pd.DataFrame(
        rows, columns=["scenario", "period", "input", "recycled", "recycling_efficiency"]
    )


def material_recovery(model: Model, results: FlowResults) -> pd.DataFrame:
    """Material recovery per element: element mass in outputs counted as recycling / in the input.

    Columns: scenario, period, element, input, recovered (model unit), material_recovery (0-1).
    """
    recycled, entering = recycling_arrays(model, results)
    shares = ratio(recycled, entering)
    grid = np.indices(shares.shape).reshape(3, -1)
    k = results.inputs.kg_per_unit
    return pd.DataFrame(
        {
            "scenario": np.array(results.inputs.scenarios, dtype=object)[grid[0]],
            "period": results.inputs.periods[grid[1]],
            "element": np.array(model.spec.elements, dtype=object)[grid[2]],
            "input": entering.reshape(-1) / k,
            "recovered": recycled.reshape(-1) / k,
            "material_recovery": shares.reshape(-1),
        }
    )
