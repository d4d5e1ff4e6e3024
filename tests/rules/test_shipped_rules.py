"""Every shipped rule fires: a model built to just pass it passes, one built to just fail it fails.

For each rule a small model is generated whose indicator equals the threshold plus or minus a
small step, by construction (the closed form of each indicator is in the generator's comments).
"""

from __future__ import annotations

import pytest

import critflow
from critflow import data
from critflow.rules import check, load_rule_sets
from critflow.rules.schema import Rule

STEP = 1e-4
SHARES = {
    "recycled_content": "post_consumer",
    "secondary_supply_share": "residue",
    "eol_recycling_input_rate": "post_consumer",
    "production_residue_share": "residue",
}
"""Indicators that are a share of secondary material, and the origin of the secondary input."""
ALL_SETS = load_rule_sets(data.rule_set_names())
RULES = [(rule_set, rule) for rule_set in ALL_SETS for rule in rule_set.rules]


def _scope(rule: Rule) -> dict:
    scope = {}
    for key, value in rule.scope.items():
        first = value[0] if isinstance(value, list) else value
        scope[key] = "lithium-based" if first == "any" else first
    return scope


def _base(rule: Rule, element: str) -> dict:
    year = rule.applies_from.year
    return {
        "critflow": 1,
        "name": f"just around {rule.id}",
        "time": {"start": year, "end": year},
        "elements": [element, "rest"],
        "scope": _scope(rule),
    }


def build(rule: Rule, value: float) -> tuple[dict, str | None]:
    """A model whose indicator for ``rule`` equals ``value``; returns (model, reference scenario)."""
    element = "Li" if rule.element in (None, "SRM", "CRM") else rule.element  # Li is an SRM
    model = _base(rule, element)
    comp = {element: 0.5}
    if rule.indicator in ("recycling_efficiency", "material_recovery"):
        # plant sends share r of everything to a recycled output, the rest to landfill: RE = RM = r
        model |= {
            "processes": [
                {"id": "gate", "kind": "source"},
                {
                    "id": "plant",
                    "kind": "transfer",
                    "transfer": {"recovered": {"default": value}, "waste": {"default": 1 - value}},
                },
                {"id": "buyers", "kind": "sink"},
                {"id": "landfill", "kind": "sink"},
            ],
            "flows": [
                {"id": "feed", "from": "gate", "to": "plant", "value": 1000, "composition": comp},
                {"id": "recovered", "from": "plant", "to": "buyers", "fate": "recycled"},
                {"id": "waste", "from": "plant", "to": "landfill", "fate": "landfill"},
            ],
        }
        return model, None
    if rule.indicator in SHARES:
        # primary 1000 (1 - c) and secondary 1000 c into one plant making the product, which the
        # customers consume: the product's (and the demand's) share of secondary material is c
        model |= {
            "processes": [
                {"id": "mine", "kind": "source"},
                {"id": "collection", "kind": "source"},
                {"id": "plant", "kind": "transfer"},
                {"id": "customers", "kind": "sink", "consumption": True},
            ],
            "flows": [
                {
                    "id": "primary",
                    "from": "mine",
                    "to": "plant",
                    "value": 1000 * (1 - value),
                    "composition": comp,
                },
                {
                    "id": "scrap",
                    "from": "collection",
                    "to": "plant",
                    "value": 1000 * value,
                    "composition": comp,
                    "origin": SHARES[rule.indicator],
                },
                {
                    "id": "product",
                    "from": "plant",
                    "to": "customers",
                    "product": "battery",
                    "fate": "recycled",
                },
            ],
        }
        return model, None
    if rule.indicator == "crm_use_change":
        # crm_use = primary Li / product Li; reference 1 (all primary), candidate 1 + c
        model |= {
            "parameters": {"primary_share": 1.0},
            "processes": [
                {"id": "mine", "kind": "source"},
                {"id": "collection", "kind": "source"},
                {"id": "plant", "kind": "transfer"},
                {"id": "customers", "kind": "sink"},
            ],
            "flows": [
                {
                    "id": "primary",
                    "from": "mine",
                    "to": "plant",
                    "value": {element: "100 * primary_share"},
                },
                {
                    "id": "scrap",
                    "from": "collection",
                    "to": "plant",
                    "value": {element: "100 * (1 - primary_share)"},
                    "origin": "post_consumer",
                },
                {
                    "id": "product",
                    "from": "plant",
                    "to": "customers",
                    "product": "battery",
                    "fate": "recycled",
                },
            ],
            "elements": [element],
            "scenarios": {
                "reference": {},
                "candidate": {"parameters": {"primary_share": 1 + value}},
            },
        }
        return model, "reference"
    if rule.indicator == "climate_intensity_change":
        # the plant emits 1 kg CO2 per t processed; the candidate (1 + c): intensity changes by c
        model |= {
            "processes": [
                {"id": "gate", "kind": "source"},
                {
                    "id": "plant",
                    "kind": "transfer",
                    "inventory": {"direct_emissions": {"CO2": "1 kg/t"}},
                    "transfer": {"product": {"default": 0.5}, "waste": {"default": 0.5}},
                },
                {"id": "customers", "kind": "sink"},
                {"id": "landfill", "kind": "sink"},
            ],
            "flows": [
                {"id": "feed", "from": "gate", "to": "plant", "value": 1000, "composition": comp},
                {"id": "product", "from": "plant", "to": "customers", "product": "metal"},
                {"id": "waste", "from": "plant", "to": "landfill", "fate": "landfill"},
            ],
            "scenarios": {
                "reference": {},
                "candidate": {
                    "inventories": {"plant": {"direct_emissions": {"CO2": f"{1 + value!r} kg/t"}}}
                },
            },
        }
        return model, "reference"
    if rule.indicator == "waste_per_product_change":
        # waste/product = (1 - y) / y: reference y = 0.5 gives 1; candidate y = 1 / (2 + c) gives 1 + c
        model |= {
            "parameters": {"product_yield": 0.5},
            "processes": [
                {"id": "gate", "kind": "source"},
                {
                    "id": "plant",
                    "kind": "transfer",
                    "transfer": {
                        "product": {"default": "product_yield"},
                        "waste": {"default": "1 - product_yield"},
                    },
                },
                {"id": "customers", "kind": "sink"},
                {"id": "landfill", "kind": "sink"},
            ],
            "flows": [
                {"id": "feed", "from": "gate", "to": "plant", "value": 1000, "composition": comp},
                {
                    "id": "product",
                    "from": "plant",
                    "to": "customers",
                    "product": "metal",
                    "fate": "recycled",
                },
                {"id": "waste", "from": "plant", "to": "landfill", "fate": "landfill"},
            ],
            "scenarios": {
                "reference": {},
                "candidate": {"parameters": {"product_yield": 1 / (2 + value)}},
            },
        }
        return model, "reference"
    # indicators the model defines: a ratio of flow a to the total a + b + c, or the largest of three
    largest = rule.indicator == "largest_third_country_share"
    rest = (1 - value) / 2
    model |= {
        "processes": [{"id": "world", "kind": "source"}, {"id": "eu_market", "kind": "sink"}],
        "flows": [
            {
                "id": "a",
                "from": "world",
                "to": "eu_market",
                "value": 1000 * value,
                "composition": comp,
            },
            {
                "id": "b",
                "from": "world",
                "to": "eu_market",
                "value": 1000 * rest,
                "composition": comp,
            },
            {
                "id": "c",
                "from": "world",
                "to": "eu_market",
                "value": 1000 * rest,
                "composition": comp,
            },
        ],
        "indicators": {
            rule.indicator: {
                ("largest_of" if largest else "numerator"): ["a", "b", "c"] if largest else ["a"],
                "denominator": ["a", "b", "c"],
            }
        },
    }
    return model, None


@pytest.mark.parametrize(("rule_set", "rule"), RULES, ids=[r.id for _, r in RULES])
def test_rule_passes_just_above_and_fails_just_below(rule_set, rule):
    better = STEP if rule.comparator in (">=", ">") else -STEP
    for offset, expected in ((better, "pass"), (-better, "fail")):
        spec, reference = build(rule, rule.threshold + offset)
        model = critflow.model_from_dict(spec)
        results = critflow.solve(model)
        rows = [
            r
            for r in check(model, results, [rule_set], rule.applies_from.year, reference)
            if r.rule == rule.id
        ]
        judged = [r for r in rows if r.scenario != reference]
        assert judged and all(r.status == expected for r in judged), (rule.id, offset, judged)
        assert all(
            abs(r.margin - abs(offset) * (1 if expected == "pass" else -1)) < 1e-9 for r in judged
        )


def test_rules_do_not_apply_before_their_date():
    rule_set = load_rule_sets(["battery-regulation"])[0]
    rule = next(r for r in rule_set.rules if r.id == "bat-rm-li-2031")
    spec, _ = build(rule, 0.1)
    model = critflow.model_from_dict(spec)
    rows = check(model, critflow.solve(model), [rule_set], 2030)
    row = next(r for r in rows if r.rule == "bat-rm-li-2031")
    assert row.status == "not applicable" and "applies from 2031-12-31" in row.reason


def test_undefined_indicator_is_not_applicable_not_nan():
    rule_set = load_rule_sets(["battery-regulation"])[0]
    rule = next(r for r in rule_set.rules if r.id == "bat-rm-li-2027")
    spec, _ = build(rule, 0.95)
    spec["flows"][0]["composition"] = {"Li": 0.0}  # no lithium enters: recovery is 0 / 0
    model = critflow.model_from_dict(spec)
    row = next(
        r for r in check(model, critflow.solve(model), [rule_set], 2027) if r.rule == rule.id
    )
    assert (
        row.status == "not applicable" and row.value is None and "denominator is zero" in row.reason
    )
