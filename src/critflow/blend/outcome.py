"""A blend and what it means: the optimal (or robust) blend, the cost of safety, the comparison
with down-cycling, and the roadmap's CRM-use targets judged with each rule's own comparator.

>>> outcome = assess_blend(load_problem("examples/blend/aluminium.yaml"), "cost")  # doctest: +SKIP
>>> outcome.document()["crm_use_change"]                                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.blend.optimise import BlendResult, blend, downcycling_baseline
from critflow.blend.problem import Arrays
from critflow.errors import CritflowError


@dataclass(frozen=True)
class TargetVerdict:
    """One roadmap target on the change of CRM use against down-cycling."""

    rule: str
    comparator: str
    threshold: float
    status: str  # pass | fail
    margin: float
    source: str


@dataclass
class BlendOutcome:
    arrays: Arrays
    result: BlendResult
    nominal: BlendResult | None  # the blend on mean compositions, when ``result`` is robust
    baseline: dict[str, float] | None  # totals from primary metal and master alloys only
    targets: list[TargetVerdict] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, float]:
        return self.result.totals()

    @property
    def cost_of_safety(self) -> float | None:
        """Extra cost of meeting every limit with the asked probability, against the blend on
        mean compositions."""
        if self.nominal is None:
            return None
        return self.totals["cost"] - self.nominal.totals()["cost"]

    @property
    def crm_use_change(self) -> float | None:
        """Relative change of the critical raw materials in the primary input against
        down-cycling (negative: fewer), or None without a baseline using any."""
        if not self.baseline or self.baseline["crm_primary_t"] <= 0:
            return None
        return self.totals["crm_primary_t"] / self.baseline["crm_primary_t"] - 1

    def document(self) -> dict[str, Any]:
        """The outcome as a JSON document (``critflow blend --format json``)."""
        arrays, result = self.arrays, self.result
        composition = result.composition()
        return {
            "problem": arrays.problem.name,
            "objective": result.objective_name,
            "objective_value": result.objective,
            "objective_unit": result.objective_unit,
            "confidence": result.confidence,
            "cost_of_safety": self.cost_of_safety,
            "totals": self.totals,
            "downcycling_baseline": self.baseline,
            "crm_use_change": self.crm_use_change,
            "roadmap_targets": [
                {
                    "rule": t.rule,
                    "comparator": t.comparator,
                    "threshold": t.threshold,
                    "status": t.status,
                    "margin": t.margin,
                    "source": t.source,
                }
                for t in self.targets
            ],
            "recipe": {
                p: {
                    m: float(result.tonnes[i, j])
                    for i, m in enumerate(arrays.materials)
                    if result.tonnes[i, j] > 1e-9
                }
                for j, p in enumerate(arrays.products)
            },
            "composition_percent": {
                p: {e: 100 * float(composition[j, k]) for k, e in enumerate(arrays.elements)}
                for j, p in enumerate(arrays.products)
            },
            "value_of_one_more_tonne": {
                m: float(v)
                for m, v in zip(arrays.materials, result.availability_value, strict=True)
                if np.isfinite(arrays.available[arrays.materials.index(m)])
            },
            "value_of_relaxing_limit_per_percentage_point": {
                f"{arrays.products[p]}:{arrays.elements[e]}:{kind}": v
                for (p, e, kind), v in result.limit_value.items()
                if abs(v) > 1e-9
            },
            "marginal_cost_of_product": dict(
                zip(arrays.products, map(float, result.demand_value), strict=True)
            ),
            "limit_confidence": {
                f"{arrays.products[p]}:{arrays.elements[e]}:{kind}": v
                for (p, e, kind), v in result.limit_confidence().items()
            },
        }


def crm_use_targets(change: float, rule_sets=None) -> list[TargetVerdict]:
    """The roadmap's targets on ``crm_use_change`` judged on ``change``, each with its own
    comparator and threshold (the shipped roadmap rule set unless ``rule_sets`` are given)."""
    if rule_sets is None:
        from critflow.rules import load_rule_sets

        rule_sets = load_rule_sets(["roadmap"])
    return [
        TargetVerdict(
            rule.id,
            rule.comparator,
            rule.threshold,
            "pass" if rule.met_by(change) else "fail",
            rule.margin(change),
            str(rule.source),
        )
        for rule_set in rule_sets
        for rule in rule_set.rules
        if rule.indicator == "crm_use_change"
    ]


def assess_blend(
    arrays: Arrays, objective=None, confidence: float | None = None, rule_sets=None
) -> BlendOutcome:
    """Solve the blend (robust with ``confidence``), its nominal twin when robust, the
    down-cycling baseline, and the roadmap's CRM-use targets on the change against it."""
    if confidence is not None and not 0.5 < confidence < 1:
        raise CritflowError(
            "confidence=", f"{confidence} is not a probability between 0.5 and 1", "Use e.g. 0.95."
        )
    result = blend(arrays, objective, confidence)
    nominal = blend(arrays, objective, None) if result.confidence is not None else None
    outcome = BlendOutcome(arrays, result, nominal, downcycling_baseline(arrays, objective))
    change = outcome.crm_use_change
    if change is not None:
        outcome.targets = crm_use_targets(change, rule_sets)
    return outcome
