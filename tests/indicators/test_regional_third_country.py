"""Who is a third country in a regional model: a country outside the EU-27, whatever the scope.

Issue 23: with ``scope: {region: FL}`` the rest of Belgium and the rest of the Union were counted
as third countries in the largest third-country share. For the CRMA (Regulation (EU) 2024/1252,
Art. 5(1)(b)) a third country lies outside the Union: supply from BE-other or EU-other into
Flanders is intra-EU.

The system, by hand (Li, model unit t/a; no stocks, one period):

* refinery[FL] sends 20 t refined to market[FL]; refinery[BE-other] 30 t to market[FL] and 10 t to
  market[BE-other] (trade within Belgium);
* demand FL 100 t, BE-other 50 t, EU-other 200 t; each market balances with imports split by
  origin: FL 100 - 20 - 30 = 50 t as EU-other 0.2 (10 t), CN 0.4 (20 t), CL 0.4 (20 t);
  BE-other 50 - 10 = 40 t as EU-other 0.75 (30 t), CN 0.25 (10 t); EU-other 200 t as CN 0.7
  (140 t), CL 0.3 (60 t).

Scope FL: consumption 100 t; processing 20 / 100 = 20 %; third countries CN 20 / 100 and CL
20 / 100: a tie at 20 %, both named (before the fix BE-other's 30 t made it 30 %).
Scope BE (FL + BE-other): consumption 150 t; processing (20 + 30 + 10) / 150 = 40 %; CN (20 + 10)
/ 150 = 20 %, CL 20 / 150 (before the fix EU-other's 10 + 30 = 40 t made it 26.7 %).
Scope EU: consumption 350 t; processing 60 / 350; CN (20 + 10 + 140) / 350, CL (20 + 60) / 350.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.engine import solve
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.indicators.regional import regional_system, system_table, third_country_shares
from critflow.model.dimensions import eu_coordinates
from critflow.model.load import model_from_text

NAMES = {"FL": "FL", "BE-other": "BE-other", "EU-other": "EU-other", "CN": "CN", "CL": "CL"}


def _system(
    scope: str = "FL",
    names: dict[str, str] = NAMES,
    order: list[str] | None = None,
    eu_group: bool = True,
    values: tuple[float, ...] = (20, 30, 10, 100, 50, 200),
    shares: tuple[float, ...] = (0.2, 0.4, 0.75, 0.7),
) -> str:
    """The system of the module docstring; ``names`` renames its regions, ``order`` lists the
    coordinates in another order, ``values`` and ``shares`` vary its numbers (refined FL>FL,
    BE-other>FL, BE-other>BE-other; demand FL, BE-other, EU-other; FL's import share from EU-other
    and CN (CL the rest); BE-other's from EU-other (CN the rest); EU-other's from CN (CL the rest)."""
    fl, be, eu, cn, cl = (names[k] for k in ("FL", "BE-other", "EU-other", "CN", "CL"))
    coordinates = order or [fl, be, eu, cn, cl]
    groups = f"EU: [{fl}, {be}, {eu}], BE: [{fl}, {be}]" if eu_group else f"BE: [{fl}, {be}]"
    r_ff, r_bf, r_bb, d_f, d_b, d_e = values
    s_fe, s_fc, s_be, s_ec = shares
    return f"""
critflow: 1
name: Flanders in the EU
time: {{start: 2030, end: 2030}}
elements: [Li]
scope: {{region: {scope}}}
dimensions:
  region: {{coordinates: [{", ".join(coordinates)}], groups: {{{groups}}}}}
processes:
  - {{id: refinery, kind: source, over: {{region: [{fl}, {be}]}}, activity: processing}}
  - {{id: world, kind: source}}
  - {{id: market, kind: market, over: {{region: [{fl}, {be}, {eu}]}}, balancing: imports,
     consumption: true}}
  - {{id: use, kind: sink}}
flows:
  - {{id: refined, from: refinery, to: market, stage: refined,
     trade: {{region: {{{fl}: [{fl}], {be}: [{fl}, {be}]}}}},
     value: {{region: {{{fl}>{fl}: {r_ff}, {be}>{fl}: {r_bf}, {be}>{be}: {r_bb}}}}}}}
  - {{id: imports, from: world, to: market, stage: refined,
     origin_shares: {{region: {{
       {eu}: {{region: {{{fl}: {s_fe}, {be}: {s_be}, default: 0}}}},
       {cn}: {{region: {{{fl}: {s_fc}, {be}: {1 - s_be!r}, {eu}: {s_ec}}}}},
       {cl}: {{region: {{{fl}: {max(0.0, 1 - s_fe - s_fc)!r}, {be}: 0, {eu}: {1 - s_ec!r}}}}}}}}}}}
  - {{id: demand, from: market, to: use, value: {{region: {{{fl}: {d_f}, {be}: {d_b}, {eu}: {d_e}}}}}}}
"""


def _indicators(text: str) -> dict[str, float]:
    model = model_from_text(text)
    ctx = Context(model, solve(model))
    return {
        name: float(evaluate_indicator(ctx, name, "Li")[0, 0])
        for name in ("eu_processing_share", "largest_third_country_share")
    }


@pytest.mark.parametrize("eu_group", [True, False])
def test_flanders_scope_counts_no_eu_region_as_third_country(eu_group):
    """Scope FL, by hand (module docstring): CN and CL tie at 20 %; BE-other's 30 % and
    EU-other's 10 % are intra-EU. Without a group EU the ISO codes decide (BE-other is part of
    Belgium, EU-other of the Union)."""
    model = model_from_text(_system("FL", eu_group=eu_group))
    results = solve(model)
    ctx = Context(model, results)
    assert float(evaluate_indicator(ctx, "eu_processing_share", "Li")[0, 0]) == pytest.approx(0.2)
    largest = float(evaluate_indicator(ctx, "largest_third_country_share", "Li")[0, 0])
    assert largest == pytest.approx(0.2)
    shares = {k: float(v[0, 0, 0]) for k, v in third_country_shares(model, results, "Li").items()}
    assert shares == pytest.approx({("refined", "CN"): 0.2, ("refined", "CL"): 0.2})
    row = system_table(model, results).iloc[0]
    assert row["consumption"] == pytest.approx(100.0)
    assert row["country"] == "CL, CN" and row["stage"] == "refined"  # the tie, named whole


@pytest.mark.parametrize(
    ("scope", "processing", "largest", "country"),
    [
        ("BE", 60 / 150, 30 / 150, "CN"),  # EU-other's 40 t into Belgium is intra-EU
        ("EU", 60 / 350, 170 / 350, "CN"),
    ],
)
def test_belgium_and_union_scopes(scope, processing, largest, country):
    model = model_from_text(_system(scope))
    results = solve(model)
    got = _indicators(_system(scope))
    assert got["eu_processing_share"] == pytest.approx(processing)
    assert got["largest_third_country_share"] == pytest.approx(largest)
    assert system_table(model, results).iloc[0]["country"] == country


def test_eu_membership_from_group_and_iso_codes():
    coords = ["FL", "BE-other", "BE-VLG", "EU-other", "DE", "NO", "CN", "RoW", "X"]
    assert eu_coordinates(coords, {}) == {"BE-other", "BE-VLG", "EU-other", "DE"}
    # a coordinate of its own (FL) is EU when the model's EU group holds it
    assert eu_coordinates(coords, {"EU27_2020": ("FL",), "BE": ("FL", "BE-other")}) == {
        "FL",
        "BE-other",
        "BE-VLG",
        "EU-other",
        "DE",
    }


OWN_NAMES = ["Vlaanderen", "Wallo-Brux", "Rest-of-Union", "Zeta", "Omega", "R_1", "R_2"]


@settings(max_examples=20, deadline=None)
@given(
    scope=st.sampled_from(["FL", "BE", "EU"]),
    names=st.permutations(OWN_NAMES).map(lambda p: p[:5]),
    rename=st.lists(st.booleans(), min_size=5, max_size=5),
    order=st.permutations(range(5)),
    values=st.tuples(*[st.floats(0.0, 30.0)] * 3, *[st.floats(100.0, 500.0)] * 3),
    shares=st.tuples(
        st.floats(0.0, 0.5), st.floats(0.0, 0.5), st.floats(0.0, 1.0), st.floats(0.0, 1.0)
    ),
)
def test_renaming_and_reordering_regions_changes_nothing(
    scope, names, rename, order, values, shares
):
    """Renaming regions (inside the EU group or outside it) and listing them in another order
    give the same shares; and no origin inside the EU is ever a third country."""
    base = _system(scope, values=values, shares=shares)
    keys = list(NAMES)
    renamed = {k: (names[i] if rename[i] else k) for i, k in enumerate(keys)}
    coordinates = [renamed[keys[i]] for i in order]
    group = {"FL": "FL", "BE": "BE", "EU": "EU"}[scope]
    scope_name = renamed["FL"] if scope == "FL" else group
    other = _system(scope_name, names=renamed, order=coordinates, values=values, shares=shares)
    assert _indicators(other) == pytest.approx(_indicators(base), abs=1e-12)
    model = model_from_text(other)
    system = regional_system(model)
    eu = {renamed["FL"], renamed["BE-other"], renamed["EU-other"]}
    assert not {country for _, country in system.imports} & eu
    results = solve(model)
    shares_by_country = third_country_shares(model, results, "Li")
    assert {c for _, c in shares_by_country} <= {renamed["CN"], renamed["CL"]}


@pytest.mark.parametrize(
    ("scope", "processing"),
    [("FL", 20 / 100), ("BE", 60 / 150), ("EU", (60 + 10 + 30) / 350)],
)
def test_split_supply_from_a_processing_source_counts_at_its_origin(scope, processing):
    """The balancing supply's source declares activity: processing (refined material, EU refiners
    among its origins): the parts from EU-other (10 t into FL, 30 t into BE-other) are processing
    output of EU-other — in the EU's output, not in Flanders' or Belgium's — and still no third
    country's. The third countries' parts stay imports (module docstring)."""
    text = _system(scope).replace(
        "{id: world, kind: source}", "{id: world, kind: source, activity: processing}"
    )
    got = _indicators(text)
    assert got["eu_processing_share"] == pytest.approx(processing)
    assert got["largest_third_country_share"] == pytest.approx(
        _indicators(_system(scope))["largest_third_country_share"]
    )
