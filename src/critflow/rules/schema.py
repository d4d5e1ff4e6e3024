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


class Rule(_Strict):
    """One target: an indicator compared with a threshold, for models whose scope matches."""

    id: str
    title: str
    indicator: str = Field(description="name of the indicator (critflow's or the model's own)")
    element: str | None = Field(None, description="element, for per-element indicators")
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


class RuleSet(_Strict):
    """A versioned set of rules (a law, a programme, a company's own targets)."""

    ruleset: str
    title: str
    version: str
    notes: str | None = None
    rules: list[Rule] = Field(min_length=1)
