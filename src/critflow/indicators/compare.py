"""Compare scenarios on several indicators: a criteria file, a decision matrix, scores, ranking,
and the weight sensitivity of the winner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.indicators.catalogue import Context, IndicatorNotAvailableError, evaluate_indicator
from critflow.indicators.mcda import (
    METHODS,
    AhpWeights,
    WeightRange,
    ahp,
    ahp_problem,
    score,
    weight_sensitivity,
)
from critflow.model.core import Model
from critflow.model.load import validate_as
from critflow.model.source import read_file


class Criterion(BaseModel):
    """One criterion: an indicator, its weight and whether more is better."""

    model_config = ConfigDict(extra="forbid")
    indicator: str
    element: str | None = None
    weight: float | None = Field(
        None, gt=0, description="relative weight (normalised to sum 1); or give `pairwise:`"
    )
    direction: Literal["max", "min"] = Field(description="max: more is better; min: less is better")
    preference: float | None = Field(
        None,
        gt=0,
        description="PROMETHEE II: difference from which one alternative is fully preferred",
    )
    indifference: float | None = Field(
        None, ge=0, description="PROMETHEE II: difference below which alternatives are equal"
    )

    @property
    def label(self) -> str:
        return self.indicator + (f"[{self.element}]" if self.element else "")


class Criteria(BaseModel):
    """A criteria file: the criteria and, optionally, the year and methods."""

    model_config = ConfigDict(extra="forbid")
    criteria: list[Criterion] = Field(min_length=1)
    year: int | None = None
    methods: list[Literal["weighted_sum", "topsis", "promethee_ii"]] = Field(
        default_factory=lambda: list(METHODS)
    )
    pairwise: list[list[float]] | None = Field(
        None,
        description="AHP: row i, column j = how much more important criterion i is than j "
        "(Saaty's 1-9 scale, reciprocal); the weights are its principal eigenvector",
    )

    @model_validator(mode="after")
    def _weights(self) -> Criteria:
        given = [c.weight is not None for c in self.criteria]
        if self.pairwise is None and not all(given):
            raise ValueError("give every criterion a weight, or give the pairwise (AHP) matrix")
        if self.pairwise is not None:
            if any(given):
                raise ValueError("give either weights or the pairwise (AHP) matrix, not both")
            problem = ahp_problem(np.array(self.pairwise, dtype=float))
            if problem is None and len(self.pairwise) != len(self.criteria):
                problem = f"the pairwise matrix has {len(self.pairwise)} rows for {len(self.criteria)} criteria"
            if problem:
                raise ValueError(problem)
        return self

    def weights(self) -> tuple[np.ndarray, AhpWeights | None]:
        """The criteria's weights, and the AHP result when they come from the pairwise matrix."""
        if self.pairwise is None:
            return np.array([c.weight for c in self.criteria]), None
        found = ahp(np.array(self.pairwise, dtype=float))
        return found.weights, found


def load_criteria(path: str | Path) -> Criteria:
    """Read and validate a criteria file (YAML or JSON)."""
    raw, source, _ = read_file(path)
    return validate_as(Criteria, raw, source)


@dataclass
class Comparison:
    scenarios: list[str]
    period: int
    criteria: list[Criterion]
    matrix: np.ndarray  # (scenarios, criteria)
    scores: dict[str, np.ndarray]  # method → (scenarios,)
    sensitivity: dict[str, list[WeightRange]]
    weights: np.ndarray  # (criteria,) as used, summing to 1
    ahp: AhpWeights | None = None


def compare(
    model: Model, results: FlowResults, criteria: Criteria, reference: str | None = None
) -> Comparison:
    """Score every scenario of ``results`` on ``criteria`` with each method of the criteria file."""
    periods = list(results.inputs.periods)
    year = criteria.year if criteria.year is not None else periods[-1]
    if year not in periods:
        raise CritflowError(
            "criteria year",
            f"the model has no period {year}",
            f"Periods: {periods[0]}–{periods[-1]}.",
        )
    p = periods.index(year)
    scenarios = list(results.inputs.scenarios)
    if len(scenarios) < 2:
        raise CritflowError(
            "scenarios=", "a comparison needs at least two scenarios", "Name two or more."
        )
    ctx = Context(model, results, reference)
    columns = []
    for i, criterion in enumerate(criteria.criteria):
        where = f"criteria[{i}] ({criterion.label})"
        try:
            values = evaluate_indicator(ctx, criterion.indicator, criterion.element, where)[:, p]
        except IndicatorNotAvailableError as exc:
            raise CritflowError(
                where, str(exc), "Choose an indicator the model can provide."
            ) from None
        if np.isnan(values).any():
            bad = [s for s, v in zip(scenarios, values, strict=True) if np.isnan(v)]
            raise CritflowError(
                where,
                f"is undefined for {', '.join(bad)} (a denominator is zero)",
                "Choose another indicator.",
            )
        columns.append(values)
    matrix = np.column_stack(columns)
    weights, ahp_result = criteria.weights()
    benefit = np.array([c.direction == "max" for c in criteria.criteria])
    options = {
        "preference": np.array(
            [np.nan if c.preference is None else c.preference for c in criteria.criteria]
        ),
        "indifference": np.array([c.indifference or 0.0 for c in criteria.criteria]),
    }
    scores = {m: score(m, matrix, weights, benefit, **options) for m in criteria.methods}
    sensitivity = {
        m: weight_sensitivity(
            m,
            matrix,
            weights,
            benefit,
            resolution=2001 if m == "promethee_ii" else 10001,
            **options,
        )
        for m in criteria.methods
    }
    return Comparison(
        scenarios, int(year), criteria.criteria, matrix, scores, sensitivity, weights, ahp_result
    )
