"""Check a solved model against rule sets: pass, fail or not applicable, with margin and source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from critflow import data
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, Problem, nearest, suggest
from critflow.indicators.catalogue import (
    Context,
    IndicatorNotAvailableError,
    evaluate_indicator,
    lookup,
    reference_values,
)
from critflow.indicators.flows import ELEMENT_GROUPS
from critflow.model.core import Model
from critflow.model.load import validate_as
from critflow.model.source import parse_text, read_file
from critflow.rules.schema import AnyCondition, Condition, Rule, RuleSet

ROW_KEYS = ["rule", "indicator", "scope", "value", "threshold", "status", "margin", "source"]


@dataclass
class CheckRow:
    """One rule's verdict for one scenario."""

    rule: str
    title: str
    indicator: str
    element: str | None
    scope: dict
    scenario: str
    period: int | None
    value: float | None
    comparator: str
    threshold: float
    status: str  # pass | fail | not applicable | pending
    margin: float | None
    source: str
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "title": self.title,
            "indicator": self.indicator + (f"[{self.element}]" if self.element else ""),
            "scope": self.scope,
            "scenario": self.scenario,
            "period": self.period,
            "value": self.value,
            "comparator": self.comparator,
            "threshold": self.threshold,
            "status": self.status,
            "margin": self.margin,
            "source": self.source,
            "reason": self.reason,
        }


def _parse_rule_set(text: str, file: str) -> RuleSet:
    raw, source = parse_text(text, file)
    return validate_as(RuleSet, raw, source)


def load_rule_sets(names: list[str], files: list[Path] | None = None) -> list[RuleSet]:
    """Shipped rule sets by name (battery-regulation, crma, roadmap) and rule files of one's own."""
    shipped = data.rule_set_names()
    sets = []
    for name in names:
        if name not in shipped:
            raise CritflowError(
                "names=",
                f"there is no shipped rule set '{name}'",
                f"{nearest(name, shipped)} Shipped: {', '.join(shipped)}; "
                "add your own rule file (files=).".strip(),
            )
        sets.append(
            _parse_rule_set(data.rule_set_text(name), str(data.data_path(f"rules/{name}.yaml")))
        )
    for path in files or []:
        _, _, text = read_file(path)
        sets.append(_parse_rule_set(text, str(path)))
    return sets


def scope_matches(rule_scope: dict, model_scope: dict) -> bool:
    """Every key of the rule's scope is declared by the model with a matching value."""
    for key, wanted in rule_scope.items():
        if key not in model_scope:
            return False
        values = wanted if isinstance(wanted, list) else [wanted]
        if "any" not in values and model_scope[key] not in values:
            return False
    return True


def _check_scope_vocabulary(model: Model, rules: list[Rule]) -> None:
    """A model scope value that the selected rules never name is almost always a typo: say so.

    For each scope key the rules use with specific values (not only 'any'), the model's value must
    be one of them; otherwise rules meant for the model would silently not apply.
    """
    model_scope = model.spec.scope
    vocabulary: dict[str, set[str]] = {}
    for rule in rules:
        for key, value in rule.scope.items():
            vocabulary.setdefault(key, set()).update(value if isinstance(value, list) else [value])
    problems = []
    for key, value in model_scope.items():
        valid = sorted(vocabulary.get(key, set()) - {"any"})
        if valid and value not in valid:
            problems.append(
                Problem(
                    model.where("scope", key),
                    f"scope {key}: '{value}' matches no rule of the selected rule sets",
                    suggest(value, valid, "Values the rules know"),
                )
            )
    if problems:
        raise CritflowError(problems)


def _period_index(results: FlowResults, year: int) -> int:
    periods = results.inputs.periods
    if year in periods:
        return int(np.flatnonzero(periods == year)[0])
    if len(periods) > 1:  # judging another year's targets on the last year's values misleads
        raise CritflowError(
            "year=",
            f"the model has no period {year}, so the rules that apply in {year} cannot be "
            "judged on it",
            f"Periods: {int(periods[0])}–{int(periods[-1])}. Choose one of them, or extend the "
            "model's time: (a model of one period, a steady-state plant, is checked as it is "
            "for any year).",
        )
    return 0  # a steady-state plant model: its one period


def _conditions_known(rule_set: RuleSet, i: int, rule: Rule, model: Model) -> None:
    for c, condition in enumerate(rule.conditions):
        members = condition.any_of if isinstance(condition, AnyCondition) else [condition]
        for member in members:
            lookup(
                member.indicator,
                model,
                f"rule set '{rule_set.ruleset}', rules[{i}] ({rule.id}).conditions[{c}]",
            )


def _reference_text(ctx: Context) -> str:
    if ctx.reference is not None:
        return f"scenario '{ctx.reference}'"
    return f"{ctx.reference_year}"


class _Conditions:
    """Evaluates a rule's conditions once (all scenarios), then answers per scenario."""

    def __init__(self, ctx: Context, rule: Rule, p: int) -> None:
        self.ctx, self.rule, self.p = ctx, rule, p
        self._values: dict[int, tuple[np.ndarray, np.ndarray] | str] = {}

    def _of(self, condition: Condition) -> tuple[np.ndarray, np.ndarray] | str:
        key = id(condition)
        if key not in self._values:
            try:
                values = evaluate_indicator(
                    self.ctx, condition.indicator, condition.element, f"rule {self.rule.id}"
                )
                self._values[key] = (
                    values,
                    reference_values(self.ctx, values, condition.indicator),
                )
            except IndicatorNotAvailableError as exc:
                self._values[key] = str(exc)
        return self._values[key]

    def _one(self, condition: Condition, s: int) -> tuple[bool | None, str]:
        """(holds: True, False or None when it cannot be told, detail)."""
        name = condition.indicator + (f"[{condition.element}]" if condition.element else "")
        found = self._of(condition)
        if isinstance(found, str):
            return None, f"{name}: {found}"
        value, reference = float(found[0][s, self.p]), float(found[1][s, self.p])
        if np.isnan(value) or np.isnan(reference):
            return None, f"{name} is undefined here"
        slack = 1e-9 * max(abs(value), abs(reference))
        holds = (
            value >= reference - slack
            if condition.better == "higher"
            else value <= reference + slack
        )
        return holds, f"{name} {value:.4g} against {reference:.4g} in {_reference_text(self.ctx)}"

    def verdict(self, s: int) -> tuple[str | None, str]:
        """('fail' with the violated qualifier, None with the reason it cannot be checked, or
        'pass')."""
        unknown = []
        for condition in self.rule.conditions:
            members = condition.any_of if isinstance(condition, AnyCondition) else [condition]
            results = [self._one(member, s) for member in members]
            if any(holds for holds, _ in results):
                continue
            details = "; ".join(detail for _, detail in results)
            if all(holds is False for holds, _ in results):
                return "fail", f"target met, but not {condition.meaning}: {details}"
            unknown.append(f"target met, but '{condition.meaning}' cannot be checked ({details})")
        if unknown:
            return None, "; ".join(unknown)
        return "pass", ""


def check(
    model: Model,
    results: FlowResults,
    rule_sets: list[RuleSet],
    year: int | None = None,
    reference: str | None = None,
    cache: dict | None = None,
) -> list[CheckRow]:
    """Evaluate every rule of ``rule_sets`` for every scenario of ``results`` in ``year``.

    ``year`` defaults to the model's last period; a model without that year is evaluated in its
    nearest period (a single-period plant model is checked as it is). Rules that apply later than
    ``year``, whose scope does not match, or whose indicator the model cannot provide are 'not
    applicable' with the reason; rules with status pending are reported as 'pending'.

    ``reference`` is a scenario (or a year, '2023') that relative targets compare with; without
    it a rule's own ``reference_year`` is used. A target met while one of the rule's conditions
    is violated fails; one whose conditions cannot be checked is not applicable, with the reason.
    ``cache`` is shared with the indicators' :class:`~critflow.indicators.catalogue.Context`
    (a :class:`critflow.analysis.Run` passes its own, so the LCA and the origins are computed once).
    """
    year = int(results.inputs.periods[-1]) if year is None else year
    rules = [rule for rule_set in rule_sets for rule in rule_set.rules]
    for rule_set in rule_sets:
        for i, rule in enumerate(rule_set.rules):
            lookup(
                rule.indicator,
                model,
                f"rule set '{rule_set.ruleset}', rules[{i}] ({rule.id}).indicator",
            )
            _conditions_known(rule_set, i, rule, model)
    _check_scope_vocabulary(model, rules)
    ctx = Context(model, results, reference, cache=cache if cache is not None else {})
    p = _period_index(results, year)
    period = int(results.inputs.periods[p])
    rows: list[CheckRow] = []
    for rule in rules:
        base = dict(
            rule=rule.id,
            title=rule.title,
            indicator=rule.indicator,
            element=rule.element,
            scope=rule.scope,
            comparator=rule.comparator,
            threshold=rule.threshold,
            source=str(rule.source),
        )
        rule_ctx = ctx
        if rule.reference_year is not None and ctx.reference is None and ctx.reference_year is None:
            rule_ctx = Context(model, results, reference_year=rule.reference_year, cache=ctx.cache)
        relative = rule.indicator.endswith("_change") or bool(rule.conditions)
        reason = ""
        if rule.applies_from.year > year:
            reason = f"applies from {rule.applies_from.isoformat()}"
        elif not scope_matches(rule.scope, model.spec.scope):
            reason = f"scope {rule.scope} does not match the model's {model.spec.scope or '{}'}"
        elif (
            rule.element is not None
            and rule.element not in model.spec.elements
            and rule.element not in ELEMENT_GROUPS
        ):
            reason = f"the model carries no {rule.element}"
        elif relative and rule_ctx.reference_year == period:
            reason = f"the year checked is the reference year {period}"
        values = None
        if not reason:
            try:
                values = evaluate_indicator(
                    rule_ctx, rule.indicator, rule.element, f"rule {rule.id}"
                )
            except IndicatorNotAvailableError as exc:
                reason = str(exc)
        conditions = _Conditions(rule_ctx, rule, p)
        for s, scenario in enumerate(results.inputs.scenarios):
            row = dict(base, scenario=scenario, period=period, value=None, margin=None)
            note = reason
            if not note and scenario == rule_ctx.reference and relative:
                note = "this scenario is the reference"
            value = None if note else float(values[s, p])
            if value is not None and np.isnan(value):
                value, note = None, "the indicator is undefined here (its denominator is zero)"
            if value is None:
                rows.append(CheckRow(**row, status="not applicable", reason=note))
                continue
            better, passed = rule.margin(value), rule.met_by(value)
            if rule.status == "pending":
                status, note = "pending", "rule pending: not yet in force"
            elif not passed:
                status = "fail"
            else:
                status, note = conditions.verdict(s)
                status = status or "not applicable"
            rows.append(
                CheckRow(**(row | {"value": value, "margin": better}), status=status, reason=note)
            )
    return rows
