"""Rules as data: the Battery Regulation, the CRMA benchmarks, the roadmap's targets, your own."""

from critflow.rules.compliance import CheckRow, check, load_rule_sets
from critflow.rules.schema import Rule, RuleSet

__all__ = ["CheckRow", "Rule", "RuleSet", "check", "load_rule_sets"]
