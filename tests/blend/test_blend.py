"""Scrap blending: a problem solved by hand, shadow prices by finite differences, infeasibility
explained, and the robust blend checked by Monte Carlo."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import norm

from critflow.blend import blend, downcycling_baseline, load_problem, problem_from_text
from critflow.errors import CritflowError
from tests.conftest import ROOT
from tests.conftest import critflow_cli as critflow

EXAMPLE = ROOT / "examples" / "aluminium_scrap_blending.yaml"

HAND = """
critflow_blend: 1
name: hand
elements: [Mg, Al]
remainder: Al
materials:
  - {id: scrap_a, kind: scrap, composition: {Mg: {mean: 1.2, sd: 0.1}}, available: 400, price: PRICE_A}
  - {id: scrap_b, kind: scrap, composition: {Mg: {mean: 0.2, sd: 0.05}}, price: 800}
  - {id: primary, kind: primary, composition: {Mg: 0}, price: 2000, co2: 16}
products:
  - {id: billet, limits: {Mg: [MIN, 0.9]}, demand: 1000}
"""


def hand(price_a=1000, low=0.5):
    return problem_from_text(HAND.replace("PRICE_A", str(price_a)).replace("MIN", str(low)))


def test_small_problem_solved_by_hand():
    # b (cheapest) as far as Mg >= 0.5 % allows: 1.2 a + 0.2 b = 0.5 * 1000, a + b = 1000 → a = 300
    result = blend(hand())
    np.testing.assert_allclose(result.tonnes[:, 0], [300, 700, 0], atol=1e-6)
    assert result.objective == pytest.approx(300 * 1000 + 700 * 800)
    assert result.composition()[0, 0] == pytest.approx(0.005)


def test_shadow_prices_match_finite_differences():
    # scrap a cheaper than b: a is used up to its availability (400 t), each extra tonne saves 100
    arrays = hand(price_a=700)
    base = blend(arrays)
    assert base.tonnes[0, 0] == pytest.approx(400)
    step = 1.0
    more = replace(arrays, available=arrays.available + np.array([step, 0, 0]))
    assert base.availability_value[0] == pytest.approx(
        (base.objective - blend(more).objective) / step, rel=1e-6
    )
    assert base.availability_value[0] == pytest.approx(100.0)
    # Mg minimum (binding in the first problem): one percentage point more costs limit_value
    first = blend(hand())
    delta = 1e-4  # percentage points
    stricter = blend(hand(low=0.5 + delta))
    per_point = (stricter.objective - first.objective) / delta
    assert first.limit_value[(0, 0, "min")] == pytest.approx(
        per_point, rel=1e-6
    )  # saved by relaxing
    # one more tonne of product: its limits scale with it
    bigger = replace(hand(), demand=np.array([1001.0]))
    assert first.demand_value[0] == pytest.approx(
        blend(bigger).objective - first.objective, rel=1e-6
    )


def test_infeasible_problem_is_explained():
    text = (
        HAND.replace("PRICE_A", "1000").replace("MIN", "0.5").replace("[0.5, 0.9]", "[0.5, 0.15]")
    )
    text = text.replace("{Mg: 0}, price: 2000", "{Mg: 0}, available: 10, price: 2000")
    with pytest.raises(CritflowError) as info:
        blend(problem_from_text(text.replace("{Mg: [0.5, 0.15]}", "{Mg: [null, 0.15]}")))
    message = str(info.value)
    # the best reachable: 10 t primary (0 %) and 990 t of b (0.2 %) → 0.198 % Mg
    assert "Mg max 0.15 % cannot be met" in message
    assert "lowest Mg reachable is 0.198 %" in message
    # 250 t of primary instead of 10 would do: 0.2 % · 750 t = 1.5 t Mg = 0.15 %
    assert "material 'primary'" in message and "240 t more" in message


def test_robust_blend_meets_limits_with_the_chosen_probability():
    arrays = load_problem(EXAMPLE)
    robust = blend(arrays, confidence=0.95)
    nominal = blend(arrays)
    assert robust.objective > nominal.objective  # safety costs something
    rng = np.random.default_rng(42)
    samples = 20_000
    draws = arrays.mean[None] + arrays.sd[None] * rng.standard_normal((samples, *arrays.mean.shape))
    for result, must_hold in ((robust, True), (nominal, False)):
        mass = np.einsum("sme,mp->spe", draws, result.tonnes) / arrays.demand[None, :, None]
        shares = []
        for p, e in zip(*np.nonzero(~np.isnan(arrays.high)), strict=True):
            shares.append((mass[:, p, e] <= arrays.high[p, e] + 1e-12).mean())
        for p, e in zip(*np.nonzero(~np.isnan(arrays.low)), strict=True):
            shares.append((mass[:, p, e] >= arrays.low[p, e] - 1e-12).mean())
        worst = min(shares)
        tolerance = 3 * np.sqrt(0.95 * 0.05 / samples)
        # the closed-form probabilities agree with the sampled ones
        assert min(result.limit_confidence().values()) == pytest.approx(worst, abs=tolerance)
        if must_hold:
            assert worst >= 0.95 - tolerance
        else:
            assert (
                worst < 0.9
            )  # the nominal blend sits on limits: about half the samples break them


def test_robust_limit_just_inside_reach_is_met_not_refused():
    # at most 400 t of a: mean Mg 0.012·400 + 0.002·600 = 6.0 t, spread √(0.4² + 0.3²) = 0.5 t, so
    # the highest Mg minimum met with 95 % is (6.0 − z·0.5) / 1000 = 0.51776 %. A minimum of 0.517 %
    # is out of reach for the first cuts (made for z + 0.1) but must still be met.
    z = norm.ppf(0.95)
    reachable = (6.0 - z * 0.5) / 1000 * 100
    result = blend(hand(low=0.517), confidence=0.95)
    x, arrays = result.tonnes[:, 0], result.arrays
    mean, spread = arrays.mean[:, 0] @ x, np.sqrt(arrays.sd[:, 0] ** 2 @ x**2)
    assert norm.cdf((mean - 0.00517 * 1000) / spread) >= 0.95 - 1e-9
    assert result.limit_confidence()[(0, 0, "min")] == pytest.approx(
        norm.cdf((mean - 0.00517 * 1000) / spread), abs=1e-12
    )
    with pytest.raises(CritflowError, match="not with the asked probability"):
        blend(hand(low=reachable + 1e-3), confidence=0.95)


def test_robust_shadow_prices_match_finite_differences():
    arrays = load_problem(EXAMPLE)
    base = blend(arrays, confidence=0.95)
    step = 1e-4  # percentage points
    binding = {key: value for key, value in base.limit_value.items() if abs(value) > 1e-6}
    assert len(binding) >= 5
    for (p, e, kind), value in binding.items():
        name = "high" if kind == "max" else "low"
        bound = getattr(arrays, name).copy()
        bound[p, e] += (step / 100) * (1 if kind == "max" else -1)  # relaxed
        relaxed = blend(replace(arrays, **{name: bound}), confidence=0.95)
        # duals of the final outer approximation: within 2 % of the robust problem's own change
        assert value == pytest.approx((base.objective - relaxed.objective) / step, rel=0.02)
    for m in np.flatnonzero(base.availability_value > 1e-6):
        more = replace(arrays, available=arrays.available + np.eye(arrays.available.size)[m])
        saved = base.objective - blend(more, confidence=0.95).objective
        assert base.availability_value[m] == pytest.approx(saved, rel=0.02)


def test_blend_beats_downcycling():
    arrays = load_problem(EXAMPLE)
    totals = blend(arrays).totals()
    baseline = downcycling_baseline(arrays)
    assert baseline["scrap_t"] == 0 and totals["scrap_t"] > 0
    assert totals["primary_t"] < baseline["primary_t"] and totals["co2_kg"] < baseline["co2_kg"]
    # mass balance of the recipe: every product gets exactly its demand
    np.testing.assert_allclose(blend(arrays).tonnes.sum(axis=0), arrays.demand, rtol=1e-9)


def test_blend_cli(tmp_path):
    result = critflow("blend", str(EXAMPLE), "--format", "json", "--confidence", "0.95")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["cost_of_safety"] > 0 and document["crm_use_change"] < -0.2
    assert set(document["recipe"]) == {"billet_6063", "billet_6061", "ingot_a380"}
    assert min(document["limit_confidence"].values()) >= 0.95 - 1e-9
    table = critflow("blend", str(EXAMPLE), "--objective", "cost=1,co2=0.05")
    assert table.returncode == 0 and "least weighted" in table.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace('spec: "6063"', 'spec: "6036"'))
    result = critflow("blend", str(bad))
    assert result.returncode == 2 and "Did you mean '6063'?" in result.stderr


def test_roadmap_targets_on_crm_use_are_judged_with_each_rules_own_comparator():
    # The roadmap's 2.1 targets: CRM use down at least 10 % (2027) and 20 % (2030) against the
    # reference, i.e. change <= -0.10 / <= -0.20 (src/critflow/data/rules/roadmap.yaml).
    from critflow.blend import assess_blend
    from critflow.blend.outcome import crm_use_targets
    from critflow.rules import load_rule_sets

    shipped = load_rule_sets(["roadmap"])
    verdicts = {t.rule: t for t in crm_use_targets(-0.15, shipped)}
    assert set(verdicts) == {"roadmap-2.1-2027", "roadmap-2.1-2030"}
    assert verdicts["roadmap-2.1-2027"].status == "pass"  # -0.15 <= -0.10
    assert verdicts["roadmap-2.1-2030"].status == "fail"  # -0.15 > -0.20
    assert verdicts["roadmap-2.1-2030"].margin == pytest.approx(-0.05)  # 5 points short
    # a rule that asks for an increase (>=) is judged as such, not with a hard-coded <=
    rising = shipped[0].model_copy(
        update={
            "rules": [
                r.model_copy(update={"comparator": ">="})
                for r in shipped[0].rules
                if r.indicator == "crm_use_change"
            ]
        }
    )
    flipped = {t.rule: t.status for t in crm_use_targets(-0.15, [rising])}
    assert flipped == {"roadmap-2.1-2027": "fail", "roadmap-2.1-2030": "pass"}  # -0.15 >= -0.20
    # the blend's outcome carries them; its JSON document says comparator and verdict
    outcome = assess_blend(load_problem(EXAMPLE))
    change = outcome.crm_use_change
    assert change == pytest.approx(
        outcome.totals["crm_primary_t"] / outcome.baseline["crm_primary_t"] - 1
    )
    document = outcome.document()
    assert [t["status"] for t in document["roadmap_targets"]] == [
        "pass" if change <= t["threshold"] else "fail" for t in document["roadmap_targets"]
    ]
    assert {t["comparator"] for t in document["roadmap_targets"]} == {"<="}


@pytest.mark.parametrize(
    ("objective", "unit", "total"),
    [
        ("cost", "EUR", "cost"),
        ("co2", "kg CO2-eq", "co2_kg"),
        ("primary", "t primary", "primary_t"),
    ],
)
def test_the_objective_carries_its_unit_and_equals_the_matching_total(objective, unit, total):
    arrays = load_problem(EXAMPLE)
    result = blend(arrays, objective)
    assert result.objective_unit == unit
    assert result.objective == pytest.approx(result.totals()[total], rel=1e-9)


def test_the_command_prints_shadow_prices_with_units_and_each_target_once():
    run = critflow("blend", str(EXAMPLE))
    assert run.returncode == 0, run.stderr
    assert "EUR/t" in run.stdout and "EUR/pp" in run.stdout
    assert "roadmap roadmap" not in run.stdout
