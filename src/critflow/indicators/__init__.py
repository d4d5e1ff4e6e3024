"""Indicators read solved flows: recovery, recycling efficiency, circularity, relative change."""

from critflow.indicators.catalogue import INDICATORS, Context, evaluate_indicator
from critflow.indicators.recovery import (
    material_recovery,
    recovery,
    recovery_by_product,
    recycling_efficiency,
)
from critflow.indicators.tracing import origin_masses

__all__ = [
    "INDICATORS",
    "Context",
    "evaluate_indicator",
    "material_recovery",
    "origin_masses",
    "recovery",
    "recovery_by_product",
    "recycling_efficiency",
]
