"""The roadmap's rules as the texts state them: shares of demand, reference years, qualifiers, and
where the roadmap and the law disagree."""

from __future__ import annotations

import json

import pytest

import critflow
from critflow import data
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.rules import check, load_rule_sets
from critflow.rules.compliance import _parse_rule_set
from tests.conftest import EXAMPLE, ROOT, model_text
from tests.conftest import critflow_cli as run_cli
from tests.indicators.test_tracing import ev_hand_shares

ROADMAP = load_rule_sets(["roadmap"])[0]
EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"

PLANT = """
critflow: 1
name: plant that cuts its waste
time: {start: 2023, end: 2027}
elements: [Co, rest]
parameters:
  product_share: {2023: 0.5, 2027: 0.55}
  side_share: 0.0
processes:
  - {id: gate, kind: source}
  - id: plant
    kind: transfer
    transfer:
      product: {default: product_share}
      side_stream: {default: side_share}
      waste: {default: 1 - product_share - side_share}
  - {id: customers, kind: sink}
  - {id: dump, kind: sink}
  - {id: refiner, kind: sink}
flows:
  - {id: feed, from: gate, to: plant, value: 1000, composition: {Co: 0.1}}
  - {id: product, from: plant, to: customers, fate: recycled, product: cobalt}
  - {id: side_stream, from: plant, to: refiner, fate: intermediate}
  - {id: waste, from: plant, to: dump, fate: landfill}
"""


def _row(model, rule_id: str, year: int, reference: str | None = None, rule_sets=None):
    results = critflow.solve(model)
    rows = check(model, results, rule_sets or [ROADMAP], year, reference)
    return next(r for r in rows if r.rule == rule_id)


def test_relative_target_against_the_reference_year():
    # waste per product = (1 - y) / y: 2023 y = 0.5 → 1.0; 2027 y = 0.55 → 0.45 / 0.55 = 0.8182,
    # a change of -18.18 % against 2023: the 2027 target (<= -10 %) is met, and the product yield
    # (the qualifier "at equal overall process performance") rose from 0.5 to 0.55: pass
    row = _row(model_text(PLANT), "roadmap-2.3-2027", 2027)
    assert row.status == "pass", row.reason
    assert row.value == pytest.approx(0.45 / 0.55 - 1, rel=1e-12)
    assert row.margin == pytest.approx(-0.10 - (0.45 / 0.55 - 1), rel=1e-12)
    # checked in the reference year itself: nothing to compare
    row = _row(model_text(PLANT), "roadmap-2.3-2027", 2023)
    assert row.status == "not applicable"


def test_target_met_while_the_qualifier_is_violated_fails_with_that_reason():
    # 2027: product 0.45, side stream (sold on, not waste) 0.20, waste 0.35: waste per product
    # 0.35 / 0.45 = 0.778, -22.2 % against 2023 — the target is met only by making less product:
    # product yield 0.45 < 0.5 in 2023, so not "at equal overall process performance": fail
    text = PLANT.replace("{2023: 0.5, 2027: 0.55}", "{2023: 0.5, 2027: 0.45}").replace(
        "side_share: 0.0", "side_share: {2023: 0.0, 2027: 0.2}"
    )
    row = _row(model_text(text), "roadmap-2.3-2027", 2027)
    assert row.value == pytest.approx(0.35 / 0.45 - 1, rel=1e-12) and row.margin > 0
    assert row.status == "fail"
    assert "not at equal overall process performance" in row.reason
    assert "product_yield 0.45 against 0.5 in 2023" in row.reason


def test_reference_scenario_takes_precedence_over_the_reference_year():
    # a scenario 'state_of_the_art' with y = 0.55 in 2027 too: the change against it is 0 → fail
    text = PLANT + "scenarios:\n  baseline: {}\n  state_of_the_art: {}\n"
    model = model_text(text)
    row = next(
        r
        for r in check(model, critflow.solve(model), [ROADMAP], 2027, "state_of_the_art")
        if r.rule == "roadmap-2.3-2027" and r.scenario == "baseline"
    )
    assert row.status == "fail" and row.value == pytest.approx(0.0, abs=1e-12)


def test_reference_year_outside_the_model_is_not_applicable_with_the_reason():
    model = model_text(
        PLANT.replace("start: 2023", "start: 2025").replace("2023: 0.5", "2025: 0.5")
    )
    row = _row(model, "roadmap-2.3-2027", 2027)
    assert row.status == "not applicable"
    assert "reference year 2023, which is not a period of the model" in row.reason


def test_a_year_given_as_reference_is_a_reference_year():
    model = model_text(PLANT)
    ctx = Context(model, critflow.solve(model), "2023")
    assert ctx.reference is None and ctx.reference_year == 2023
    change = evaluate_indicator(ctx, "waste_per_product_change")[0, -1]
    assert change == pytest.approx(0.45 / 0.55 - 1, rel=1e-12)


RULES_WITH_CONDITIONS = """
ruleset: company
title: Own targets with qualifiers
version: "1"
rules:
  - id: waste-down
    title: Waste per product down 10 %, with more of the demand from recycling
    indicator: waste_per_product_change
    comparator: "<="
    threshold: -0.10
    applies_from: 2025-01-01
    reference_year: 2023
    conditions:
      - {meaning: with more recycled supply, indicator: secondary_supply_share, better: higher}
    source: {document: Plan, point: "1", date: 2026}
  - id: waste-down-either
    title: Waste per product down 10 %, with a better yield or more recycled supply
    indicator: waste_per_product_change
    comparator: "<="
    threshold: -0.10
    applies_from: 2025-01-01
    reference_year: 2023
    conditions:
      - meaning: with a better yield or more recycled supply
        any_of:
          - {meaning: yield, indicator: product_yield, better: higher}
          - {meaning: recycled supply, indicator: secondary_supply_share, better: higher}
    source: {document: Plan, point: "2", date: 2026}
"""


def test_a_qualifier_that_cannot_be_checked_is_not_applicable_and_any_of_needs_one():
    rules = _parse_rule_set(RULES_WITH_CONDITIONS, "company.yaml")
    model = model_text(PLANT)
    results = critflow.solve(model)
    rows = {r.rule: r for r in check(model, results, [rules], 2027)}
    # the plant represents no demand: its qualifier cannot be told, so no pass
    assert rows["waste-down"].status == "not applicable"
    assert "cannot be checked" in rows["waste-down"].reason
    assert "does not represent demand" in rows["waste-down"].reason
    # any_of: the yield rose (0.5 → 0.55), that is enough
    assert rows["waste-down-either"].status == "pass", rows["waste-down-either"].reason


def test_roadmap_and_law_disagreements_are_both_data():
    law = {r.id: r for r in load_rule_sets(["battery-regulation"])[0].rules}
    crma = {r.id: r for r in load_rule_sets(["crma"])[0].rules}
    roadmap = {r.id: r for r in ROADMAP.rules}
    # recycling share for 2030: 15 % (2023 CRMA proposal, in the roadmap) vs 25 % (the Regulation)
    assert roadmap["roadmap-1.1-2030"].threshold == 0.15
    assert crma["crma-recycling-2030"].threshold == 0.25
    assert "25 %" in roadmap["roadmap-1.1-2030"].note and "15 %" in crma_notes()
    # recycling efficiency: the roadmap's dates 2027 / 2031, the law's end-2025 / end-2030
    for chemistry in ("lead-acid", "lithium"):
        assert law[f"bat-re-{chemistry}-2025"].applies_from.isoformat() == "2025-12-31"
        assert roadmap[f"roadmap-1.1-re-{chemistry}-2027"].applies_from.isoformat() == "2027-12-31"
        assert (
            law[f"bat-re-{chemistry}-2025"].threshold
            == roadmap[f"roadmap-1.1-re-{chemistry}-2027"].threshold
        )
        assert law[f"bat-re-{chemistry}-2030"].applies_from.isoformat() == "2030-12-31"
        assert roadmap[f"roadmap-1.1-re-{chemistry}-2031"].applies_from.isoformat() == "2031-12-31"
    # the roadmap's own domains 1.2 and 1.4 exist, and 2.x carry their qualifiers and Ref 2023
    assert {"roadmap-1.2-2027", "roadmap-1.2-2030", "roadmap-1.4-2027", "roadmap-1.4-2030"} <= set(
        roadmap
    )
    for rule_id in ("roadmap-2.1-2027", "roadmap-2.2-2030", "roadmap-2.3-2027"):
        assert roadmap[rule_id].reference_year == 2023 and roadmap[rule_id].conditions


def crma_notes() -> str:
    return data.rule_set_text("crma")


def test_check_on_the_ev_example_gives_a_meaningful_1_1_verdict():
    result = run_cli(
        "check",
        str(EV),
        "--rules",
        "roadmap",
        "--year",
        "2030",
        "-s",
        "baseline",
        "--format",
        "json",
    )
    assert result.returncode == 1, result.stderr  # 1.1 fails: recycling meets too little demand
    rows = {r["rule"]: r for r in json.loads(result.stdout)}
    hand = ev_hand_shares(2030)["SRM"]  # Li + Ni + Co recycled / in new packs, by hand
    for rule_id in ("roadmap-1.1-2027", "roadmap-1.1-2030", "roadmap-1.4-2030"):
        assert rows[rule_id]["value"] == pytest.approx(hand, rel=1e-9)
    assert rows["roadmap-1.1-2030"]["status"] == "fail"
    assert rows["roadmap-1.1-2030"]["margin"] == pytest.approx(hand - 0.15, rel=1e-9)
    assert rows["roadmap-1.2-2030"]["status"] == "not applicable"
    assert "no production residues" in rows["roadmap-1.2-2030"]["reason"]


def test_a_recycling_plant_is_not_applicable_for_shares_of_supply_not_100_percent():
    result = run_cli(
        "check",
        str(EXAMPLE),
        "--rules",
        "roadmap",
        "--year",
        "2030",
        "-s",
        "baseline",
        "--format",
        "json",
    )
    rows = {r["rule"]: r for r in json.loads(result.stdout)}
    for rule_id in ("roadmap-1.1-2030", "roadmap-1.2-2030", "roadmap-1.4-2030"):
        assert rows[rule_id]["status"] == "not applicable" and rows[rule_id]["value"] is None
        assert "does not represent demand" in rows[rule_id]["reason"]


def test_cli_reference_year_runs_the_relative_indicators():
    # the hydrometallurgical example against its own 2025: waste per product in 2027 vs 2025
    model = critflow.load_model(EXAMPLE)
    ctx = Context(model, critflow.solve(model, ["baseline"]))
    waste = evaluate_indicator(ctx, "waste_per_product")[0]
    result = run_cli(
        "indicators",
        str(EXAMPLE),
        "-s",
        "baseline",
        "--year",
        "2027",
        "--reference",
        "2025",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    rows = {r["indicator"]: r for r in json.loads(result.stdout) if r["element"] is None}
    assert rows["waste_per_product_change"]["value"] == pytest.approx(
        waste[2] / waste[0] - 1, rel=1e-9
    )
