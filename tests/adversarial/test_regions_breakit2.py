"""Breaking the CRMA regional indicators from outside, second round (issue 23). Each test once
gave a wrong number or a wrong verdict; the expected numbers are worked out by hand beside them."""

from __future__ import annotations

import pytest

from critflow.engine import solve
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.indicators.regional import system_table, third_country_shares
from critflow.model.load import model_from_text
from critflow.rules import check, load_rule_sets


def _value(model, results, name, element=None):
    return float(evaluate_indicator(Context(model, results), name, element)[0, 0])


# The Union's mines and refineries are all abroad: mine[CL] → refinery[CN] → market[FL]; the rest
# of the Union's need comes from CN by a balancing import. Union extraction and processing are
# 0 t of a consumption of 300 t: 0 %, a fail of the 10 % and 40 % benchmarks — not "not
# applicable" (it was: no process with that activity lies in the Union). Recycling is modelled
# nowhere, so it stays not available.
ABROAD = """
critflow: 1
name: all abroad
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, EU-other, CN, CL], groups: {EU: [FL, EU-other]}}
processes:
  - {id: mine, kind: source, over: {region: [CL]}, activity: extraction}
  - {id: refinery, kind: transfer, over: {region: [CN]}, activity: processing,
     transfer: {refined: {default: 1.0}}}
  - {id: world, kind: source}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
flows:
  - {id: ore, from: mine, to: refinery, stage: concentrate, value: 100, trade: {region: {CL: [CN]}}}
  - {id: refined, from: refinery, to: market, stage: refined, trade: {region: {CN: [FL]}}}
  - {id: imports, from: world, to: market, stage: refined, origin_shares: {region: {CN: 1.0}}}
  - {id: demand, from: market, to: use, value: {region: {FL: 100, EU-other: 200}}}
"""


def test_activity_only_outside_the_union_is_a_zero_share_not_unavailable():
    model = model_from_text(ABROAD)
    results = solve(model)
    assert _value(model, results, "eu_extraction_share", "Li") == 0.0
    assert _value(model, results, "eu_processing_share", "Li") == 0.0
    rows = {r.rule: r for r in check(model, results, load_rule_sets(["crma"]))}
    assert rows["crma-extraction-2030"].status == "fail"
    assert rows["crma-processing-2030"].status == "fail"
    assert rows["crma-processing-2030"].value == 0.0
    assert rows["crma-recycling-2030"].status == "not applicable"
    assert "recycling" in rows["crma-recycling-2030"].reason
    assert rows["crma-diversification-2030"].value == pytest.approx(1.0)  # CN 300 / 300


SPLIT_ABROAD = """
critflow: 1
name: refined supply by origin, none from the Union
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, EU-other, CN, CL], groups: {EU: [FL, EU-other]}}
processes:
  - {id: world, kind: source, activity: processing}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
flows:
  - {id: imports, from: world, to: market, stage: refined, origin_shares: {region: {CN: 0.5, CL: 0.5}}}
  - {id: demand, from: market, to: use, value: {region: {FL: 100, EU-other: 200}}}
"""


def test_split_supply_source_with_an_activity_but_no_union_origin_is_zero():
    """The refined supply's source declares activity: processing, its origins are all third
    countries (CN 0.5, CL 0.5): the Union refines 0 t of its 300 t, 0 %."""
    model = model_from_text(SPLIT_ABROAD)
    results = solve(model)
    assert _value(model, results, "eu_processing_share", "Li") == 0.0
    # scope FL (no refining in Flanders at all) is 0 % too
    fl = model_from_text(SPLIT_ABROAD.replace("{region: EU}", "{region: FL}"))
    assert _value(fl, solve(fl), "eu_processing_share", "Li") == 0.0
