"""Rule sets as data: versioned YAML files, each rule with its legal or programme source."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSource(_Strict):
    """Where a rule comes from: document, article or annex point, date."""

    document: str
    point: str = Field(description="article, annex point or section")
    date: dt.date | int = Field(description="date (or year) of the document")

    def __str__(self) -> str:
        return f"{self.document}, {self.point} ({self.date})"

    @property
    def short(self) -> str:
        """Document and point, without the date."""
        return f"{self.document}, {self.point}"


class Condition(_Strict):
    """A qualifier a target carries: an indicator that must be no worse than in the reference
    (the roadmap's "at equal production efficiency")."""

    meaning: str = Field(description="the qualifier in words, as the source states it")
    indicator: str = Field(description="the indicator compared with its reference value")
    element: str | None = Field(None, description="element (or group: SRM, CRM), if any")
    better: Literal["higher", "lower"] = Field(description="which direction is better")


class AnyCondition(_Strict):
    """Qualifiers joined by "and/or": at least one must hold."""

    meaning: str
    any_of: list[Condition] = Field(min_length=1)


class Rule(_Strict):
    """One target: an indicator compared with a threshold, for models whose scope matches.

    A relative target (a ``*_change`` indicator) compares with a reference scenario (``critflow
    check --reference NAME``) or, without one, with ``reference_year`` of the same scenario. A
    target met while one of its ``conditions`` is violated fails, with that reason.
    """

    id: str
    title: str
    indicator: str = Field(description="name of the indicator (critflow's or the model's own)")
    element: str | None = Field(
        None,
        description="element (Li), or a group summed: SRM (the strategic raw materials the model "
        "carries), CRM",
    )
    scope: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="what the rule is about; each key must match the model's scope ('any' "
        "matches every value the model declares for that key)",
    )
    comparator: Literal[">=", "<=", ">", "<"]
    threshold: float
    applies_from: dt.date = Field(description="the rule applies to years from this date's year on")
    status: Literal["in_force", "pending"] = "in_force"
    source: RuleSource
    note: str | None = None
    reference_year: int | None = Field(
        None,
        description="year a relative target compares with (the roadmap's 'Ref 2023: state of the "
        "art'), when no reference scenario is given",
    )
    conditions: list[Condition | AnyCondition] = Field(
        default_factory=list,
        description="qualifiers the target must keep, each an indicator no worse than in the "
        "reference: {meaning, indicator, better: higher|lower} or {meaning, any_of: [...]}",
    )

    def margin(self, value: float) -> float:
        """How far ``value`` is on the good side of the threshold (negative: on the bad side)."""
        return value - self.threshold if self.comparator in (">=", ">") else self.threshold - value

    def met_by(self, value: float) -> bool:
        """Whether ``value`` meets the target with the rule's own comparator (ignoring
        ``status`` and ``conditions``)."""
        better = self.margin(value)
        return better > 0 or (better == 0 and self.comparator in (">=", "<="))


class RuleSet(_Strict):
    """A versioned set of rules (a law, a programme, a company's own targets)."""

    ruleset: str
    title: str
    version: str
    notes: str | None = None
    rules: list[Rule] = Field(min_length=1)
