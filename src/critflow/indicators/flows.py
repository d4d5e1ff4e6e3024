"""Masks and sums over a solved model's flows, shared by the indicators."""

from __future__ import annotations

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, suggest
from critflow.model.core import Model


def element_index(model: Model, element: str, what: str) -> int:
    """Index of ``element`` in the model, or a clear error naming the indicator that asked."""
    elements = model.spec.elements
    if element not in elements:
        raise CritflowError(
            what,
            f"asks for the element '{element}', which the model '{model.name}' does not carry",
            suggest(element, elements, "Elements of the model"),
        )
    return elements.index(element)


def flow_mask(model: Model, predicate) -> np.ndarray:
    """Boolean (F,) mask of the flows for which ``predicate(flow, from_kind, to_kind)`` holds."""
    kinds = {p.id: p.kind for p in model.spec.processes}
    return np.array([bool(predicate(f, kinds[f.from_], kinds[f.to])) for f in model.spec.flows])


def system_inputs(model: Model) -> np.ndarray:
    """Flows out of sources: what enters the system."""
    return flow_mask(model, lambda f, a, b: a == "source")


def system_outputs(model: Model) -> np.ndarray:
    """Flows into sinks: what leaves the system."""
    return flow_mask(model, lambda f, a, b: b == "sink")


def total(results: FlowResults, mask: np.ndarray) -> np.ndarray:
    """Element mass (kg/year) summed over the masked flows, (S, P, E)."""
    return results.mass_kg[..., mask].sum(axis=-1)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan
        )


class IndicatorNotAvailableError(Exception):
    """An indicator that cannot be computed for this model; the message says why."""


ELEMENT_GROUPS: dict[str, tuple[str, str]] = {
    "SRM": ("strategic", "strategic raw materials (CRMA Annex I)"),
    "CRM": ("critical", "critical raw materials (CRMA Annex II)"),
}
"""Names that stand for a group of elements: the sum over those the model carries."""


def group_elements(model: Model, group: str) -> list[int]:
    """Indices of the model's elements in an element group ('SRM' or 'CRM'), from
    ``crma_materials.csv``."""
    from critflow import data

    column, _ = ELEMENT_GROUPS[group]
    materials = data.table("crma_materials")
    chosen = materials[materials[column].astype(bool)]
    symbols = {s.strip() for row in chosen["elements"].dropna() for s in str(row).split(";")}
    return [i for i, e in enumerate(model.spec.elements) if e in symbols]


def element_indices(model: Model, element: str, what: str) -> list[int]:
    """Indices an element name stands for: one element, or a group ('SRM', 'CRM')."""
    if element in ELEMENT_GROUPS and element not in model.spec.elements:
        indices = group_elements(model, element)
        if not indices:
            raise IndicatorNotAvailableError(
                f"the model carries none of the {ELEMENT_GROUPS[element][1]}"
            )
        return indices
    return [element_index(model, element, what)]


def demand_flows(model: Model) -> np.ndarray:
    """(F,) mask of the flows that are the system's demand (consumption).

    The inputs of the processes marked ``consumption: true`` (in a regional model, those in the
    Union that ``scope.region`` names, when it names one); without one, the outputs of the
    model's single market. A model with neither does not represent demand: the shares of supply
    from recycling are not defined for it (a plant's inputs are not a consumption).
    """
    processes = model.spec.processes
    marked = {p.id for p in processes if p.consumption}
    if marked:
        mask = np.array([f.to in marked for f in model.spec.flows])
        if model.spec._expansion is not None:  # a regional model: the demand of its Union
            try:
                dim, _, union = union_coordinates(model)
            except IndicatorNotAvailableError:
                return mask
            index = {p.id: u for u, p in enumerate(processes)}
            labels = model.spec._expansion.processes
            mask &= np.array(
                [labels[index[f.to]].coords.get(dim) in union for f in model.spec.flows]
            )
        return mask
    markets = [p.id for p in processes if p.kind == "market"]
    if len(markets) == 1:
        return np.array([f.from_ == markets[0] for f in model.spec.flows])
    if markets:
        raise IndicatorNotAvailableError(
            f"the model has {len(markets)} markets ({', '.join(markets)}), so its demand is not "
            "one of them: mark the process whose inputs are the consumption with "
            "consumption: true"
        )
    raise IndicatorNotAvailableError(
        "the model does not represent demand (no market, no process marked consumption: true): "
        "a share of supply from recycling of a plant's own inputs would say nothing (a "
        "recycling plant would show 100 %); mark the process whose inputs are the consumption"
    )


DEFAULT_UNION = "EU"
"""The Union of a regional model when its scope names no region."""


def union_coordinates(model: Model) -> tuple[str, str, tuple[str, ...]]:
    """The dimension, name and coordinates of a regional model's Union: the group of the region
    dimension named by ``scope.region`` (EU by default), or that one coordinate (FL). Raises
    :class:`IndicatorNotAvailableError` for a model without such a dimension."""
    labels = model.spec._expansion
    if labels is None or not labels.dimensions:
        raise IndicatorNotAvailableError(
            "the model has no region dimension: the CRMA benchmarks compare a region's capacity "
            "with its consumption (declare dimensions: {region: …} with a group EU, or define "
            "the indicator in the model's indicators: block)"
        )
    name = model.spec.scope.get("region", DEFAULT_UNION)
    dims = list(labels.dimensions)
    if "region" in dims:
        dims.remove("region")
        dims.insert(0, "region")
    for dim in dims:
        if name in labels.groups.get(dim, {}):
            return dim, name, tuple(labels.groups[dim][name])
        if name in labels.dimensions[dim]:
            return dim, name, (name,)
    raise IndicatorNotAvailableError(
        f"no dimension has a group or coordinate '{name}' (scope.region) to take as the Union: "
        f"add groups: {{{name}: [...]}} to the region dimension"
    )


def at_top(values: dict) -> tuple[list, float]:
    """The keys whose value is the largest (to 1e-12, relative), and that value: a tie is named
    whole, never broken by the order of a table."""
    top = float(max(values.values(), default=0.0))
    return [key for key, v in values.items() if v >= top * (1 - 1e-12)], top
