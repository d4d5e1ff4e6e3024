"""``critflow check`` as a user runs it: table, JSON, exit codes, rule files of one's own."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLE
from tests.conftest import critflow_cli as critflow

JSON_KEYS = {"rule", "indicator", "scope", "value", "threshold", "status", "margin", "source"}


def test_check_example_fails_recycling_efficiency_and_exits_1():
    result = critflow(
        "check", str(EXAMPLE), "--rules", "battery-regulation", "--year", "2027", "-s", "baseline"
    )
    assert result.returncode == 1, result.stderr
    assert "bat-re-lithium-2025" in result.stdout and "fail" in result.stdout
    assert "Annex XII, Part B, point 1(b)" in result.stdout


def test_check_json_rows():
    result = critflow(
        "check",
        str(EXAMPLE),
        "--rules",
        "battery-regulation",
        "--year",
        "2027",
        "-s",
        "baseline",
        "--format",
        "json",
    )
    rows = json.loads(result.stdout)
    assert all(set(row) >= JSON_KEYS for row in rows)
    by_id = {row["rule"]: row for row in rows}
    assert by_id["bat-rm-co-2027"]["status"] == "pass"
    assert by_id["bat-rm-cu-2027"]["status"] == "fail"
    assert by_id["bat-rm-pb-2027"]["status"] == "not applicable"
    assert abs(by_id["bat-rm-cu-2027"]["margin"] - (0.95 * 0.92 - 0.90)) < 1e-12


def test_own_rule_file_passes_and_exits_0(tmp_path):
    rules = tmp_path / "company.yaml"
    rules.write_text(
        """
ruleset: company
title: Our plant targets
version: "2026"
rules:
  - id: ni-recovery
    title: Nickel recovery at least 93 %
    indicator: material_recovery
    element: Ni
    comparator: ">="
    threshold: 0.93
    applies_from: 2025-01-01
    source: {document: Plant business plan, point: section 4, date: 2026}
"""
    )
    result = critflow("check", str(EXAMPLE), "--rule-file", str(rules), "-s", "baseline")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 pass" in result.stdout


def test_rule_naming_an_unknown_indicator_exits_2(tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "ruleset: x\ntitle: x\nversion: '1'\nrules:\n"
        "  - {id: r1, title: t, indicator: recycling_eficiency, comparator: '>=', threshold: 0.5,\n"
        "     applies_from: 2025-01-01, source: {document: d, point: p, date: 2025}}\n"
    )
    result = critflow("check", str(EXAMPLE), "--rule-file", str(rules))
    assert result.returncode == 2
    assert "'recycling_eficiency' is not an indicator" in result.stderr
    assert "Did you mean 'recycling_efficiency'?" in result.stderr


def test_rule_file_with_unknown_key_exits_2(tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "ruleset: x\ntitle: x\nversion: '1'\nrules:\n"
        "  - {id: r1, title: t, indicator: recycling_efficiency, comparator: '>=', treshold: 0.5,\n"
        "     applies_from: 2025-01-01, source: {document: d, point: p, date: 2025}}\n"
    )
    result = critflow("check", str(EXAMPLE), "--rule-file", str(rules))
    assert result.returncode == 2
    assert (
        "unknown key 'treshold'" in result.stderr and "Did you mean 'threshold'?" in result.stderr
    )
    assert "line 5" in result.stderr


def test_scope_matching_no_rule_exits_2(tmp_path):
    model = tmp_path / "model.yaml"
    model.write_text(
        EXAMPLE.read_text().replace(
            "battery_chemistry: lithium-based", "battery_chemistry: lithium-ion"
        )
    )
    result = critflow("check", str(model), "--rules", "battery-regulation")
    assert result.returncode == 2
    assert "'lithium-ion' matches no rule" in result.stderr and "lithium-based" in result.stderr


def test_unknown_rule_set_exits_2():
    result = critflow("check", str(EXAMPLE), "--rules", "battery-regulaton")
    assert result.returncode == 2 and "Did you mean 'battery-regulation'?" in result.stderr


def test_compare_ranks_scenarios(tmp_path):
    criteria = EXAMPLE.parent / "route_criteria.yaml"
    result = critflow("compare", str(EXAMPLE), "--criteria", str(criteria), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    scores = {s: v["scores"]["topsis"] for s, v in document["scenarios"].items()}
    # hot_li_precipitation is at least as good as the baseline on every criterion and better on Li
    assert max(scores, key=scores.get) == "hot_li_precipitation"
    assert min(scores, key=scores.get) == "no_decasing"
    bad = tmp_path / "criteria.yaml"
    bad.write_text("criteria:\n  - {indicator: recycling_efficiency, weight: 1, direction: up}\n")
    result = critflow("compare", str(EXAMPLE), "--criteria", str(bad))
    assert result.returncode == 2 and "criteria[0].direction" in result.stderr


PLANT = """
critflow: 1
name: smelter
time: {start: 2025, end: 2026}
elements: [Ni, Co, rest]
scope: {battery_chemistry: lithium-based}
processes:
  - {id: batteries_in, kind: source}
  - id: smelter
    kind: transfer
    transfer:
      alloy: {default: 0.0, Ni: 0.95, Co: 0.9}
      slag: {default: 1.0, Ni: 0.05, Co: 0.1}
  - {id: customers, kind: sink}
  - {id: road, kind: sink}
flows:
  - {id: batteries, from: batteries_in, to: smelter, value: 1000, composition: {Ni: 0.2, Co: 0.1}}
  - {id: alloy, from: smelter, to: customers, fate: recycled}
  - {id: slag, from: smelter, to: road, fate: landfill}
"""


def test_a_year_beyond_a_multi_year_model_is_refused_not_judged_on_its_last_year(tmp_path):
    # the model ends in 2026; --year 2031 judged the 2031 targets (Co recovery 95 %) on the 2026
    # values and printed "rules checked for 2026", where those targets do not apply yet
    model = tmp_path / "plant.yaml"
    model.write_text(PLANT)
    result = critflow("check", str(model), "--rules", "battery-regulation", "--year", "2031")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2031" in result.stderr and "2025–2026" in result.stderr
    assert "Traceback" not in result.stderr and "bat-rm-co-2031" not in result.stdout
    # a steady-state model (one period) is still checked as it is for any year
    model.write_text(PLANT.replace("end: 2026", "end: 2025"))
    result = critflow("check", str(model), "--rules", "battery-regulation", "--year", "2031")
    assert result.returncode == 1 and "bat-rm-co-2031" in result.stdout, result.stderr
