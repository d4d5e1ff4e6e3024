"""Indicators for every Monte Carlo sample: the built-in indicators that need no reference
scenario, on a chunk's results (whose scenarios are scenario × sample).

The indicators that trace origins through the whole system (``catalogue.TRACED``: recycled
content, EOL-RR and the shares of demand from recycling) are left out: they cost a second solve
of every sample, more than the balance itself; run them on the deterministic model
(``critflow indicators``)."""

from __future__ import annotations

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.indicators.catalogue import (
    INDICATORS,
    TRACED,
    Context,
    IndicatorNotAvailableError,
    evaluate_indicator,
)
from critflow.model.core import Model

PREFIX = "indicator:"


def indicator_samples(model: Model, results: FlowResults) -> dict[str, np.ndarray]:
    """``indicator:NAME`` (goods) and ``indicator:NAME:ELEMENT`` (per-element indicators) →
    values (S·N, P); indicators the model cannot give are left out. ``flows:goods``: the goods
    mass of every flow (S·N, P, F)."""
    ctx = Context(model, results)
    # the goods mass of every flow, for the report's bands of the main flows (quantiles of a sum
    # are not sums of quantiles, so the element flows' statistics cannot give them)
    out: dict[str, np.ndarray] = {"flows:goods": results.values.sum(axis=2)}
    for name, indicator in INDICATORS.items():
        if name.endswith("_change") or name in TRACED:
            continue
        elements = (
            [e for e in model.spec.elements if e != "rest"]
            if indicator.element == "required"
            else [None]
        )
        for element in elements:
            try:
                values = evaluate_indicator(ctx, name, element)
            except (IndicatorNotAvailableError, CritflowError):
                continue
            key = PREFIX + name + (f":{element}" if element else "")
            out[key] = np.asarray(values, dtype=float)
    return out
