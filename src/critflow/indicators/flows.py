"""Masks and sums over a solved model's flows, shared by the indicators."""

from __future__ import annotations

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, known, nearest
from critflow.model.load import Model


def element_index(model: Model, element: str, what: str) -> int:
    """Index of ``element`` in the model, or a clear error naming the indicator that asked."""
    elements = model.spec.elements
    if element not in elements:
        raise CritflowError(
            what,
            f"asks for the element '{element}', which the model '{model.name}' does not carry",
            f"{nearest(element, elements)} Elements of the model: {known(elements)}.".strip(),
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
