"""Element recovery per output and per product, and the Battery Regulation's recycling efficiency
and material recovery (Art. 3(60) of Regulation (EU) 2023/1542; Delegated Regulation (EU) 2025/606).

Which fates count as recycling, and which leave the calculation altogether, is data
(``critflow/data/recycling_fates.csv``), not code; so is what the sources are (the waste being
recycled, or additives, fuels and water that are no part of the input fraction:
``critflow/data/recycling_counting.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from critflow import data
from critflow.engine.results import FlowResults, text_column
from critflow.errors import CritflowError, Problem, suggest
from critflow.indicators.flows import (
    IndicatorNotAvailableError,
    flow_mask,
    ratio,
    system_inputs,
    system_outputs,
    total,
)
from critflow.indicators.tracing import counting_rules, role_masses
from critflow.model.core import Model
from critflow.model.schema import fate_of


def _basis(model: Model, results: FlowResults, basis: str) -> np.ndarray:
    """Element mass entering the system ('system') or a named process, (S, P, E) in kg/year."""
    if basis == "system":
        return total(results, system_inputs(model))
    topo = results.inputs.topology
    if basis not in topo.process_index:
        raise CritflowError(
            "recovery basis",
            f"'{basis}' is neither 'system' nor a process of the model",
            suggest(basis, topo.process_ids, "Processes"),
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
    n_e = len(spec.elements)
    return pd.DataFrame(
        {
            "scenario": text_column(results.inputs.scenarios, grid[0]),
            "period": results.inputs.periods[grid[1]],
            "flow": text_column([f.id for f in flows], grid[3]),
            "product": text_column([f.product for f in flows], grid[3]),
            "fate": text_column(fate_table(model)[outputs].reshape(-1), grid[3] * n_e + grid[2]),
            "element": text_column(spec.elements, grid[2]),
            "recovery": shares.reshape(-1),
        }
    )


def recovery_by_product(model: Model, results: FlowResults, basis: str = "system") -> pd.DataFrame:
    """Recovery summed over the output flows of each named product (flows with ``product:``)."""
    return by_product(recovery(model, results, basis))


def by_product(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`recovery` table summed over the output flows of each named product."""
    table = table[table["product"].notna()]
    return table.groupby(["scenario", "period", "product", "element"], as_index=False, sort=False)[
        "recovery"
    ].sum()


def _fate_rules() -> pd.DataFrame:
    return data.table("recycling_fates").set_index("fate")


def fate_table(model: Model) -> np.ndarray:
    """Fate of each element in each flow, (F, E) of str (None where a flow has no fate)."""
    elements = model.spec.elements
    return np.array(
        [[fate_of(flow.fate, e) for e in elements] for flow in model.spec.flows], dtype=object
    ).reshape(len(model.spec.flows), len(elements))


def fate_mask(model: Model, column: str, outputs_only: bool = True) -> np.ndarray:
    """(F, E) True where the element's fate in the flow has ``column`` true in
    ``recycling_fates.csv`` (counts_as_recycling, in_input, waste)."""
    rules = _fate_rules()
    fates = fate_table(model)
    lookup = {fate: bool(rules.loc[fate, column]) for fate in rules.index}
    mask = np.vectorize(lambda f: lookup.get(f, False), otypes=[bool])(fates)
    if outputs_only:
        mask &= system_outputs(model)[:, None]
    return mask


def _fate_masks(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """(counted, removed) masks (F, E): element masses in outputs that count as recycling, and
    element masses that leave the calculation (input reduced by them). Raises when an output has
    no fate."""
    rules = _fate_rules()
    outputs = system_outputs(model)
    missing = [
        Problem(
            model.where("flows", i),
            f"flow '{flow.id}' into sink '{flow.to}' has no fate, so the recycling efficiency "
            "cannot tell whether it counts",
            f"Add fate: one of {', '.join(rules.index)} to the flow (or fates per element: "
            "{default: recycled, Nd: lost}).",
        )
        for i, flow in enumerate(model.spec.flows)
        if outputs[i] and flow.fate is None
    ]
    if missing:
        raise CritflowError(missing)
    counted = fate_mask(model, "counts_as_recycling")
    removed = outputs[:, None] & ~fate_mask(model, "in_input")
    return counted, removed


def primary_feed(model: Model) -> str | None:
    """Why the recycling efficiency does not apply to the model, or None when it does.

    Its input fraction is the waste being recycled (Art. 3(60) of Regulation (EU) 2023/1542): a
    source of role feed that is primary supply — marked ``origin: primary``, or feeding a market,
    as a value chain's mining supply does — is not waste, and dividing by it would give a
    meaningless (often 0 %) efficiency.
    """
    primary = flow_mask(
        model,
        lambda f, a, b: (
            a == "source"
            and (f.role or "feed") == "feed"
            and (f.origin == "primary" or b == "market")
        ),
    )
    if not primary.any():
        return None
    names = ", ".join(f"'{f.id}'" for f, p in zip(model.spec.flows, primary, strict=True) if p)
    return (
        f"its feed includes primary supply ({names}: origin primary or into a market), and the "
        "Battery Regulation's recycling efficiency divides by the waste being recycled; model "
        "the recycling plant with its waste input as a source (origin: post_consumer), or give "
        "the primary supply another role"
    )


def recycling_arrays(model: Model, results: FlowResults) -> tuple[np.ndarray, np.ndarray]:
    """(recycled output, input fraction) element masses in kg/year, each (S, P, E).

    The input fraction is what the feed sources send in (flows out of sources whose ``role`` is
    feed, the default), less the feed-derived mass of outputs whose fate is 'excluded'. Only the
    feed-derived mass of an output counts as recycled (additives, fuels and water that end up in
    an output are traced out by mass balance), each element by its own fate. Elements that are
    never counted (water, H2O) are left out of both. The rules are ``recycling_counting.csv``.

    Raises IndicatorNotAvailableError when the feed includes primary supply (``primary_feed``).
    """
    reason = primary_feed(model)
    if reason is not None:
        raise IndicatorNotAvailableError(reason)
    counted, removed = _fate_masks(model)
    roles, components = counting_rules()
    flow_roles = np.array([flow.role or "feed" for flow in model.spec.flows], dtype=object)
    inputs = system_inputs(model)
    in_fraction = inputs & np.isin(flow_roles, [r for r, (i, _) in roles.items() if i])
    entering = total(results, in_fraction)  # (S, P, E)
    counting_roles = [r for r, (_, c) in roles.items() if c]
    if np.isin(flow_roles[inputs], counting_roles).all():  # nothing added: every output counts
        counting = results.mass_kg
    else:
        traced = role_masses(model, results)
        counting = sum(traced[r] for r in counting_roles)
    recycled = (counting * counted.T[None, None]).sum(axis=-1)
    entering = entering - (counting * removed.T[None, None]).sum(axis=-1)
    never = [i for i, e in enumerate(model.spec.elements) if e in components]
    if never:
        recycled[..., never] = 0.0
        entering[..., never] = 0.0
    return recycled, entering


def recycling_efficiency(model: Model, results: FlowResults) -> pd.DataFrame:
    """Recycling efficiency RE = mass of outputs counted as recycling / input fraction (goods).

    Columns: scenario, period, input, recycled (in the model's unit), recycling_efficiency (0-1).
    """
    recycled, entering = recycling_arrays(model, results)
    k = results.inputs.kg_per_unit
    mass_in, mass_out = entering.sum(axis=-1), recycled.sum(axis=-1)  # (S, P)
    grid = np.indices(mass_in.shape).reshape(2, -1)
    return pd.DataFrame(
        {
            "scenario": np.array(results.inputs.scenarios, dtype=object)[grid[0]],
            "period": results.inputs.periods[grid[1]],
            "input": mass_in.reshape(-1) / k,
            "recycled": mass_out.reshape(-1) / k,
            "recycling_efficiency": ratio(mass_out, mass_in).reshape(-1),
        }
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
