"""Scrap blending: recycle alloys into alloys — the least-cost (or least-primary, least-CO2) blend
of sorted scrap classes, primary metals and master alloys that meets every alloy specification."""

from critflow.blend.optimise import BlendResult, blend, downcycling_baseline, explain_infeasible
from critflow.blend.outcome import BlendOutcome, TargetVerdict, assess_blend
from critflow.blend.problem import Arrays, load_problem, problem_from_text, shipped_specs

__all__ = [
    "Arrays",
    "BlendOutcome",
    "BlendResult",
    "TargetVerdict",
    "assess_blend",
    "blend",
    "downcycling_baseline",
    "explain_infeasible",
    "load_problem",
    "problem_from_text",
    "shipped_specs",
]
