"""An outside tester's attacks on the roadmap monitor's core (issue 22): recovering one
organisation's value from the public aggregates, wrong screening numbers, UNFC spellings and
sums, hostile files. Each attack computes what an attacker could infer independently of the
rule's own algebra (ranks of the published 0/1 rows, not the rule's projector)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.monitor import load_roadmap
from critflow.monitor.confidentiality import (
    Contribution,
    organisation_key,
    public_aggregates,
)
from critflow.monitor.screening import load_proposal, render_sheet_html, screen
from critflow.monitor.unfc import (
    ClassifiedQuantity,
    categories,
    classify,
    load_classifications,
    normalise,
    quantities_by_class,
)
from tests.conftest import critflow_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "monitor"
KPI = "1.1-srm-from-recycling"


# ------------------------------------------------------------------- the attacker's algebra


def _rank(matrix: np.ndarray) -> int:
    return int(np.linalg.matrix_rank(matrix)) if matrix.size else 0


def recoverable(published_rows, unknowns, owner, insiders=()):
    """The organisations (other than ``insiders``) whose value — one unknown, or any non-zero
    combination of their own unknowns — an attacker who knows the published sums and the
    insiders' own values can compute. By ranks: the attacker knows the span of the published
    rows plus the insiders' unit vectors; a set S is exposed when that span meets the
    coordinate space of S non-trivially (dim(A) + dim(E_S) > dim(A + E_S))."""
    n = len(unknowns)
    rows = [np.asarray(r, float) for r in published_rows]
    for j, u in enumerate(unknowns):
        if owner(u) in insiders:
            e = np.zeros(n)
            e[j] = 1.0
            rows.append(e)
    known = np.vstack(rows) if rows else np.zeros((0, n))
    base = _rank(known)
    exposed = set()
    for org in {owner(u) for u in unknowns} - set(insiders):
        cols = [j for j, u in enumerate(unknowns) if owner(u) == org]
        coordinate = np.zeros((len(cols), n))
        for i, j in enumerate(cols):
            coordinate[i, j] = 1.0
        if base + len(cols) > _rank(np.vstack([known, coordinate])):
            exposed.add(org)
    return exposed


def attack(aggregates, contributions, insiders=(), earlier=()):
    """What the strongest outsider (who even knows who contributes to each group) or a single
    insider recovers from the published aggregates (plus ``earlier`` ones)."""
    unknowns = sorted(
        {(organisation_key(c.organisation), c.item) for c in contributions}
        | {m for a in earlier for m in a.members},
        key=repr,
    )
    index = {u: j for j, u in enumerate(unknowns)}
    rows = []
    for a in [*earlier, *aggregates]:
        if a.published:
            row = np.zeros(len(unknowns))
            for m in a.members:
                row[index[m]] = 1.0
            rows.append(row)
    return recoverable(rows, unknowns, lambda u: u[0], insiders)


def single_insider_safe(aggregates, contributions, earlier=()):
    orgs = {organisation_key(c.organisation) for c in contributions}
    assert not attack(aggregates, contributions, earlier=earlier)
    for insider in orgs:
        assert not attack(aggregates, contributions, (insider,), earlier), insider


def key(domain, year=2027, kpi=KPI):
    return (domain, kpi, year)


# ------------------------------------------------------------------- confidentiality attacks


@pytest.mark.parametrize(
    "twin",
    ["org a", "  ORG   A ", "Ｏｒｇ Ａ", "Org \u200bA\ufeff", "Org\u00a0A", "ORG\tA"],
)
def test_one_organisation_under_two_spellings_counts_once(twin):
    """'Org A' and a variant of it plus one other organisation are two organisations: a sum of
    the three spellings would let Org A recover B's value by subtracting its own."""
    contributions = [
        Contribution(key("1.1"), "Org A", 5.0),
        Contribution(key("1.1"), twin, 0.0),
        Contribution(key("1.1"), "B", 1.0),
    ]
    (aggregate,) = public_aggregates(contributions)
    assert not aggregate.published and aggregate.count == 2
    single_insider_safe([aggregate], contributions)


def test_a_measure_in_two_units_is_still_one_measure():
    """t and kt of the same KPI-year: 10 t over {a, b, c, d} minus 1000 × 0.006 kt over
    {a, b, c} is d's 4 t. The rule must combine them."""
    values = dict(zip("abcd", [1.0, 2.0, 3.0, 4.0], strict=True))
    contributions = [Contribution(key("1"), o, v, "t") for o, v in values.items()] + [
        Contribution(key("1.1"), o, values[o] / 1000, "kt") for o in "abc"
    ]
    result = public_aggregates(contributions)
    assert sum(a.published for a in result) == 1
    single_insider_safe(result, contributions)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(value):
    with pytest.raises(CritflowError, match="finite"):
        public_aggregates([(key("1.1"), o, value if o == "a" else 1.0) for o in "abc"])


@pytest.mark.parametrize(
    "bad",
    [
        (("1", KPI, 2027), "a", 1.0, "1", [1]),
        (["1", KPI], "a", 1.0),
        (("1", KPI, 2027), "a", "1.5"),
        (("1", KPI, 2027), "a", True),
        (("1", KPI, 2027), " \u200b ", 1.0),
        (("1", KPI, 2027), "a", 1.0, None),
    ],
)
def test_malformed_contributions_are_critflow_errors(bad):
    with pytest.raises(CritflowError, match=r"contributions\[0\]"):
        public_aggregates([bad, (("1", KPI, 2027), "b", 1.0), (("1", KPI, 2027), "c", 1.0)])


def test_an_overflowing_sum_is_a_critflow_error_not_inf():
    with pytest.raises(CritflowError, match="overflow"):
        public_aggregates([(key("1.1"), o, 1e308) for o in "abc"])


def test_a_fourth_organisation_joining_later_is_not_revealed():
    """Monday: {a, b, c} published. Tuesday d submits: the new sum minus Monday's is d's value
    — unless Monday's publication is taken into account."""
    monday = [Contribution(key("1.1"), o, v) for o, v in zip("abc", [1.0, 2.0, 3.0], strict=True)]
    first = public_aggregates(monday)
    assert first[0].published
    tuesday = [*monday, Contribution(key("1.1"), "d", 7.0)]
    naive = public_aggregates(tuesday)
    assert naive[0].published and naive[0].sum - first[0].sum == 7.0  # the attack, without history
    assert attack(naive, tuesday, earlier=first) == {"d"}  # the attacker's algebra sees it
    second = public_aggregates(tuesday, published_before=first)
    assert not second[0].published
    single_insider_safe(second, tuesday, earlier=first)
    # a fifth and sixth later make the group safe again (d+e+f is three organisations)
    thursday = [*tuesday, Contribution(key("1.1"), "e", 1.0), Contribution(key("1.1"), "f", 2.0)]
    third = public_aggregates(thursday, published_before=first)
    assert third[0].published
    single_insider_safe(third, thursday, earlier=first)


def test_a_revised_value_is_not_revealed_by_the_difference():
    before = public_aggregates([(key("1.1"), o, 1.0) for o in "abc"])
    revised = [(key("1.1"), "a", 4.0), (key("1.1"), "b", 1.0), (key("1.1"), "c", 1.0)]
    after = public_aggregates(revised, published_before=before)
    assert not after[0].published and "revised" in after[0].reason
    unchanged = public_aggregates([(key("1.1"), o, 1.0) for o in "abc"], published_before=before)
    assert unchanged[0].published


def test_the_same_organisation_under_two_projects_in_domain_and_sub_domain():
    """Org a has project p1 in 1.1 and p2 in 1.2; the domain total '1' counts both. Sums over
    {1: a(p1,p2), b, c, d}, {1.1: a(p1), b, c} and {1.2: a(p2), d, e} must not expose p2."""
    contributions = [
        Contribution(key("1"), "a", 3.0, item="p1"),
        Contribution(key("1"), "a", 5.0, item="p2"),
        Contribution(key("1.1"), "a", 3.0, item="p1"),
        Contribution(key("1.2"), "a", 5.0, item="p2"),
    ]
    for o, dom in [("b", "1"), ("b", "1.1"), ("c", "1"), ("c", "1.1"), ("d", "1"), ("d", "1.2")]:
        contributions.append(Contribution(key(dom), o, 1.0, item=o))
    contributions.append(Contribution(key("1.2"), "e", 2.0, item="e"))
    contributions.append(Contribution(key("1"), "e", 2.0, item="e"))
    result = public_aggregates(contributions)
    single_insider_safe(result, contributions)


def test_a_second_project_is_not_revealed_when_no_items_are_given():
    """Without items: a's domain-1 value (8 = p1 3 + p2 5) and its 1.1 value (3); b and c have
    one project in both. 10 - 5 = 5 would be a's second project. The truth has items; the
    attacker's algebra runs on it."""
    truth = [
        Contribution(key("1"), "a", 3.0, item="p1"),
        Contribution(key("1"), "a", 5.0, item="p2"),
        Contribution(key("1.1"), "a", 3.0, item="p1"),
    ] + [Contribution(key(d), o, 1.0, item=o) for o in "bc" for d in ("1", "1.1")]
    without_items = [Contribution(c.key, c.organisation, c.value) for c in truth]
    result = public_aggregates(without_items)
    assert sum(a.published for a in result) == 1
    by_key_ = {a.key: a for a in result}
    true_members = {
        k: frozenset((c.organisation, c.item) for c in truth if c.key == k) for k in by_key_
    }
    rebuilt = [
        a.__class__(
            a.key,
            a.unit,
            a.count,
            a.sum,
            a.mean,
            a.published,
            "",
            a.organisations,
            true_members[a.key],
        )
        for a in result
    ]
    single_insider_safe(rebuilt, truth)


def test_two_colluders_recover_the_third_of_a_three_organisation_sum_documented_limit():
    """The rule protects against one insider; two pooling their values split a 3-sum. The
    module says so, and min_organisations=4 closes it."""
    contributions = [Contribution(key("1.1"), o, 1.0) for o in "abc"]
    result = public_aggregates(contributions)
    assert result[0].published
    assert attack(result, contributions, insiders=("a", "b")) == {"c"}
    import critflow.monitor.confidentiality as module

    assert "coalitions" in module.__doc__
    safer = public_aggregates(contributions, min_organisations=4)
    assert not attack(safer, contributions, insiders=("a", "b"))


def test_a_large_min_organisations_is_refused_quickly_not_a_hang():
    import time

    start = time.perf_counter()
    with pytest.raises(CritflowError, match="min_organisations=12"):
        public_aggregates([(key("1"), f"o{i}", 1.0) for i in range(60)], min_organisations=12)
    assert time.perf_counter() - start < 5


def test_mean_and_count_leak_nothing_beyond_the_sum():
    result = public_aggregates(
        [(key("1.1"), o, v) for o, v in zip("abcd", [0, -2, 5, 1e6], strict=True)]
    )
    (a,) = result
    assert a.published and a.mean * a.count == pytest.approx(a.sum)
    assert a.public()["sum"] == a.sum and "organisations" not in a.public()


ORGS = ["a", "b", "c", "d", "e", "f", "A", " b "]
DOMAINS = ["1", "1.1", "1.2", "2"]


@st.composite
def contribution_sets(draw):
    n = draw(st.integers(3, 24))
    out = []
    for _ in range(n):
        org = draw(st.sampled_from(ORGS))
        out.append(
            Contribution(
                (draw(st.sampled_from(DOMAINS)), KPI, draw(st.sampled_from([2027, 2028]))),
                org,
                draw(st.floats(-1e6, 1e6, allow_nan=False)),
                draw(st.sampled_from(["t", "kt"])),
                draw(st.sampled_from([None, "p1", "p2"])),
            )
        )
    # the same (organisation, item) has one value in every group (it is one unknown)
    first: dict = {}
    return [
        Contribution(
            c.key,
            c.organisation,
            first.setdefault((organisation_key(c.organisation), c.item, c.key[2]), c.value),
            c.unit,
            c.item,
        )
        for c in out
    ]


def _one_unit_per_group(contributions):
    units: dict = {}
    return [
        Contribution(c.key, c.organisation, c.value, units.setdefault(c.key, c.unit), c.item)
        for c in contributions
    ]


@settings(max_examples=int(os.environ.get("CRITFLOW_FUZZ_EXAMPLES", 60)), deadline=None)
@given(contribution_sets(), contribution_sets())
def test_no_one_is_recoverable_by_any_combination_now_or_later(now, later):
    """For any contributions (name variants, units, items, years, domains), neither an outsider
    nor one insider can compute a single organisation's value from the published sums — also
    after a second round that adds contributions, given the first round as published_before."""
    now = _one_unit_per_group(now)
    first = public_aggregates(now)
    for year in (2027, 2028):
        part = [c for c in now if c.key[2] == year]
        single_insider_safe([a for a in first if a.key[2] == year], part)
    both = _one_unit_per_group(now + later)
    second = public_aggregates(both, published_before=[a for a in first if a.published])
    for year in (2027, 2028):
        part = [c for c in both if c.key[2] == year]
        earlier = [a for a in first if a.key[2] == year and a.published]
        kept = [a for a in second if a.key[2] == year]
        # a revised group (same members, new value) is suppressed; only same-valued ones count
        single_insider_safe(kept, part, earlier=earlier)


@settings(max_examples=40, deadline=None)
@given(contribution_sets(), st.data())
def test_which_aggregates_are_published_does_not_depend_on_values_or_order(items, data):
    items = _one_unit_per_group(items)
    pattern = {a.key: a.published for a in public_aggregates(items)}
    shuffled = data.draw(st.permutations(items))
    scaled = [Contribution(c.key, c.organisation, 0.0, c.unit, c.item) for c in shuffled]
    assert {a.key: a.published for a in public_aggregates(scaled)} == pattern


# ------------------------------------------------------------------- screening numbers

ROADMAP = load_roadmap()
BASE = {
    "title": "T",
    "instrument": "icon",
    "domains": ["1.1"],
    "start_year": 2026,
    "partners": [{"organisation": o, "kind": "company"} for o in ("A", "B", "C")]
    + [{"organisation": "U", "kind": "research_centre"}],
}


@pytest.mark.parametrize(
    ("kpi", "value", "meets"),
    [
        ("1.1-srm-from-recycling", 0.10, (True, False)),  # share, increase: 10 % / 15 %
        ("1.1-srm-from-recycling", 0.0999, (False, False)),
        ("1.1-srm-from-recycling", 0.15, (True, True)),
        ("2.2-climate-intensity-change", -0.15, (True, False)),  # decrease: -10 % / -20 %
        ("2.2-climate-intensity-change", -0.20, (True, True)),
        ("2.2-climate-intensity-change", -0.05, (False, False)),
        ("2.2-climate-intensity-change", 0.30, (False, False)),  # an increase fails a decrease
    ],
)
def test_claim_verdicts_follow_direction_and_kind(kpi, value, meets):
    kpi_obj = ROADMAP.kpis[kpi]
    expected = tuple(
        (value >= t if kpi_obj.direction == "increase" else value <= t)
        for t in (kpi_obj.target_2027, kpi_obj.target_2030)
    )
    assert expected == meets  # the table above agrees with the roadmap's targets
    s = screen(
        {**BASE, "domains": [kpi_obj.domain], "claims": [{"kpi": kpi, "value": value}]}, ROADMAP
    )
    (t,) = [t for t in s.targets if t.claimed is not None]
    assert (t.meets_2027, t.meets_2030) == meets


@pytest.mark.parametrize(
    ("claim", "match"),
    [
        ({"kpi": "1.1-srm-from-recycling", "value": 72}, "share"),
        ({"kpi": "1.1-srm-from-recycling", "value": -0.1}, "share"),
        ({"kpi": "2.2-climate-intensity-change", "value": -1.5}, "100 %"),
        ({"kpi": "1.1-srm-recycled-mass", "value": -5}, "0 or more"),
    ],
)
def test_impossible_claims_are_mistakes(claim, match):
    with pytest.raises(CritflowError, match=match):
        screen({**BASE, "claims": [claim]}, ROADMAP)


def test_a_kpi_claimed_twice_is_a_mistake_not_the_last_one_silently():
    claims = [
        {"kpi": "1.1-srm-from-recycling", "value": 0.01},
        {"kpi": "1.1-srm-from-recycling", "value": 0.9},
    ]
    with pytest.raises(CritflowError, match="claimed twice"):
        screen({**BASE, "claims": claims}, ROADMAP)


@pytest.mark.parametrize(
    ("year", "target"),
    [(2026, None), (2027, "2027"), (2029, "2027"), (2030, "2030"), (2035, "2030")],
)
def test_target_in_force_at_the_boundary_years(year, target):
    kpi = ROADMAP.kpis[KPI]
    assert kpi.target(year) == (None if target is None else getattr(kpi, f"target_{target}"))


@pytest.mark.parametrize(
    ("start", "window", "too_late"),
    [
        (2023, None, False),
        (2024, "2024-2027", False),
        (2027, "2024-2027", False),
        (2028, "2028-2030", False),
        (2030, "2028-2030", False),
        (2031, None, True),
    ],
)
def test_window_edges(start, window, too_late):
    s = screen({**BASE, "start_year": start}, ROADMAP)
    assert (s.window, s.too_late) == (window, too_late)


@pytest.mark.parametrize(
    "names",
    [
        ["Acme NV", "ACME  nv", "Ｂeta"],
        ["Acme NV", "Acme\u00a0NV", "Beta"],
        ["Acme NV", "acme nv ", "Beta"],
    ],
)
def test_one_company_spelt_twice_counts_once(names):
    partners = [{"organisation": n, "kind": "company"} for n in names]
    s = screen({**BASE, "partners": [*partners, BASE["partners"][-1]]}, ROADMAP)
    assert s.eligible is False


def test_related_companies_count_once_through_a_chain():
    partners = [
        {"organisation": "P", "kind": "company"},
        {"organisation": "Q", "kind": "company", "related_to": "p"},
        {"organisation": "R", "kind": "company", "related_to": ["Parent X"]},
        {"organisation": "S", "kind": "company", "related_to": ["parent x"]},
        {"organisation": "U", "kind": "research_centre"},
    ]
    assert screen({**BASE, "partners": partners}, ROADMAP).eligible is False
    partners.append({"organisation": "T", "kind": "company"})
    assert screen({**BASE, "partners": partners}, ROADMAP).eligible is True


@pytest.mark.parametrize(
    ("groups", "counted"),
    [
        ([("U", "G1"), ("U", "g1 ")], 1),  # one group listed twice
        ([("U", None), ("U", None)], 1),  # unnamed groups of one centre: cannot be told apart
        ([("U", "G1"), ("U", "G2")], 2),  # two groups of one centre: two (the cSBO rule allows)
        ([("U", "G1"), ("V", "G1")], 2),
    ],
)
def test_research_groups_counted_as_distinct_groups(groups, counted):
    partners = [{"organisation": o, "kind": "research_group", "group": g} for o, g in groups]
    s = screen({**BASE, "instrument": "csbo", "partners": partners}, ROADMAP)
    (rule,) = [r for r in s.eligibility if r.rule == "csbo-research-groups"]
    assert rule.reason.startswith(f"research groups: {counted} ")
    assert rule.passed is (counted >= 2)


@pytest.mark.parametrize(
    "name", ["VITO", "VITO NV", "vito  nv", "imec vzw", "Flanders Make, Lommel"]
)
def test_a_strategic_centre_with_a_legal_form_still_needs_another_centre(name):
    partners = [
        {"organisation": name, "kind": "research_group", "group": "G1"},
        {"organisation": name, "kind": "research_group", "group": "G2"},
    ]
    s = screen({**BASE, "instrument": "csbo", "partners": partners}, ROADMAP)
    (rule,) = [r for r in s.eligibility if r.rule == "csbo-strategic-centre-with-another"]
    assert rule.passed is False
    partners.append({"organisation": "VITOLAB", "kind": "research_centre"})  # not VITO
    s = screen({**BASE, "instrument": "csbo", "partners": partners[2:]}, ROADMAP)
    (rule,) = [r for r in s.eligibility if r.rule == "csbo-strategic-centre-with-another"]
    assert rule.passed is True and "does not apply" in rule.reason


def test_a_claim_before_the_start_is_a_mistake():
    claim = {"kpi": KPI, "value": 0.2, "year": 2026}
    with pytest.raises(CritflowError, match="before the project starts"):
        screen({**BASE, "start_year": 2028, "claims": [claim]}, ROADMAP)


TEXT = (
    st.lists(
        st.sampled_from([*"<>&\"'/=ab ", "<script>", "</td>", "\u202e", "é"]),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(lambda s: s.strip())
)


@settings(max_examples=60, deadline=None)
@given(TEXT, TEXT, TEXT, TEXT)
def test_the_sheet_escapes_every_text_from_the_proposal(title, organisation, group, note):
    marker = "<evil-tag"
    proposal = {
        **BASE,
        "instrument": "csbo",
        "title": marker + title,
        "acronym": marker,
        "partners": [
            {
                "organisation": marker + organisation,
                "kind": "research_group",
                "group": marker + group,
            },
            {"organisation": "C " + organisation, "kind": "company", "related_to": [marker]},
        ],
        "claims": [{"kpi": KPI, "value": 0.2, "note": marker + note}],
    }
    page = render_sheet_html(screen(proposal, ROADMAP))
    assert marker not in page and "<script" not in page


# ------------------------------------------------------------------- UNFC


@pytest.mark.parametrize(
    ("raw", "axis", "code"),
    [
        ("E1.1", "E", "E1.1"),
        ("e1", "E", "E1"),
        ("E 1", "E", "E1"),
        ("F1.3 ", "F", "F1.3"),
        (" g 4 . 2", "G", "G4.2"),
        ("2.1", "F", "F2.1"),
        (1, "G", "G1"),
    ],
)
def test_odd_spellings_normalise(raw, axis, code):
    assert normalise(raw, axis) == code


@pytest.mark.parametrize(
    "raw", ["E1.9", "E11", "F1.", "Ｅ1", "E1,1", "G", "", "E-1", "F1.1.1", "١"]
)
def test_bad_codes_are_critflow_errors(raw):
    with pytest.raises(CritflowError):
        normalise(raw, "E" if raw[:1] != "G" else "G")


def test_every_combination_classifies_or_is_refused_with_a_reason():
    codes = {a: [c for c, cat in categories().items() if cat.axis == a] for a in "EFG"}
    named = 0
    for e, f, g in itertools.product(codes["E"], codes["F"], codes["G"]):
        try:
            result = classify(e, f, g)
        except CritflowError as exc:
            assert "not a valid UNFC combination" in str(exc)
            continue
        assert result.code == f"{e} {f} {g}"
        named += result.named
        # a sub-category never lands in a class its category could not
        assert classify(e.split(".")[0], f, g).name == result.name or "." in f
    assert named > 0


@st.composite
def quantity_lists(draw):
    combos = [
        ("E1.1", "F1.1", "G1"),
        ("E2", "F2.1", "G2"),
        ("E3.2", "F2.2", "G3"),
        ("E3", "F4", "G4"),
        ("E3", "F3", "G4"),
    ]
    out = []
    for _ in range(draw(st.integers(0, 15))):
        e, f, g = draw(st.sampled_from(combos))
        out.append(
            ClassifiedQuantity(
                project="P",
                source_type="tailings",
                element=draw(st.sampled_from(["Zn", "zn", " ZN ", "Ge", "ge"])),
                tonnes=draw(st.floats(0, 1e9, allow_nan=False)),
                reference_point="metal",
                e=e,
                f=f,
                g=g,
                justification="j",
                date="2026-01-01",
                evaluator="x",
                domain=draw(st.sampled_from(["1.2", "1.3", None])),
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(quantity_lists(), st.booleans())
def test_tonnes_per_class_are_conserved_per_element(quantities, by_domain):
    rows = quantities_by_class(quantities, by_domain=by_domain)
    for element in ("Zn", "Ge"):
        given_total = math.fsum(
            q.tonnes for q in quantities if q.element.strip().lower() == element.lower()
        )
        assert math.fsum(r.tonnes for r in rows if r.element == element) == pytest.approx(
            given_total
        )
    assert {r.element for r in rows} <= {"Zn", "Ge"}
    assert sum(r.count for r in rows) == len(quantities)
    keys = [(r.class_name, r.element, r.domain) for r in rows]
    assert len(keys) == len(set(keys))


def test_a_code_given_with_the_answers_compares_normalised(tmp_path):
    text = (EXAMPLES / "unfc_zinc_residue.yaml").read_text()
    path = tmp_path / "u.yaml"
    marker = "    answers:\n      e-confirmed"
    assert marker in text
    path.write_text(text.replace(marker, "    e: 'e 3.2'\n" + marker, 1))
    assert len(load_classifications(path)) == 4


def test_an_unknown_domain_in_a_classification_is_named(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(
        (EXAMPLES / "unfc_zinc_residue.yaml").read_text().replace('domain: "1.2"', 'domain: "7.7"')
    )
    with pytest.raises(CritflowError, match=r"no focus domain .7\.7."):
        load_classifications(path, ROADMAP)


# ------------------------------------------------------------------- hostile files (CLI)


def _proposal_text():
    return (EXAMPLES / "proposal_icon_two_companies.yaml").read_text()


HOSTILE = {
    "alias-bomb": "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    ),
    "deep": "title: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "nan": _proposal_text().replace("value: 0.08", "value: .nan"),
    "wrong-type": _proposal_text().replace("start_year: 2025", "start_year: [2025]"),
    "unknown-domain": _proposal_text().replace('["1.2"]', '["9.9"]'),
    "unknown-instrument": _proposal_text().replace("instrument: icon", "instrument: ICON"),
    "unknown-kpi": _proposal_text().replace("1.2-srm-from-residues", "1.2-srm-from-residue"),
    "long-title": _proposal_text().replace("title: Selective", "title: " + "A" * 2_000_000),
    "long-partner": _proposal_text().replace("Solvent Supplier S", "S" * 100_000),
    "share-as-percent": _proposal_text().replace("value: 0.08", "value: 8"),
    "terminal-escape": _proposal_text()
    .replace("title: Selective", 'title: "\\e]0;pwned\\a\\e[2J Selective', 1)
    .replace("residues\n", 'residues"\n', 1),
    "empty": "",
    "list": "- 1\n",
    "python-tag": "!!python/object/apply:os.system ['echo pwned']\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_proposals_exit_2_with_a_short_message(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(HOSTILE[name])
    result = critflow_cli("monitor", "screen", path)
    assert result.returncode == 2, (result.stdout + result.stderr)[-500:]
    assert (
        str(path) in (result.stdout + result.stderr) and len(result.stdout + result.stderr) < 5_000
    )


@pytest.mark.parametrize("model", ["../../etc/passwd", "/nonexistent/model.yaml"])
def test_a_model_outside_or_missing_exits_2(model):
    result = critflow_cli(
        "monitor", "screen", EXAMPLES / "proposal_icon_battery_recycling.yaml", "--model", model
    )
    assert result.returncode == 2 and "root:" not in (result.stdout + result.stderr)


def test_an_out_path_that_is_a_folder_exits_2(tmp_path):
    folder = tmp_path / "sheet.html"
    folder.mkdir()
    result = critflow_cli(
        "monitor", "screen", EXAMPLES / "proposal_icon_battery_recycling.yaml", "--out", folder
    )
    assert result.returncode == 2 and "cannot be written" in (result.stdout + result.stderr)


def test_a_second_programme_roadmap_by_path(tmp_path):
    text = (ROOT / "src/critflow/data/roadmap/materinex-2030.yaml").read_text()
    assert "\nroadmap: materinex-2030" in text
    path = tmp_path / "other.yaml"
    path.write_text(text.replace("\nroadmap: materinex-2030", "\nroadmap: other-2035"))
    other = load_roadmap(path)
    assert other.id == "other-2035" and load_roadmap().id == "materinex-2030"
    proposal = load_proposal(EXAMPLES / "proposal_icon_battery_recycling.yaml", other)
    assert screen(proposal, other).roadmap.id == "other-2035"
    result = critflow_cli(
        "monitor", "screen", EXAMPLES / "proposal_icon_battery_recycling.yaml", "--roadmap", path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("unit: t\n", "unit: tonnesss\n", 1))
    result = critflow_cli("monitor", "roadmap", "--roadmap", broken)
    assert result.returncode == 2 and "tonnesss" in (result.stdout + result.stderr)


def _roadmap_variant(tmp_path, old, new, name="variant.yaml"):
    text = (ROOT / "src/critflow/data/roadmap/materinex-2030.yaml").read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_filled_red_cell_makes_a_proposal_too_late_only_in_its_window(tmp_path):
    path = _roadmap_variant(
        tmp_path,
        '"1.1":                     {"2024-2027": {SBO: unknown, ICON: unknown}, '
        '"2028-2030": {SBO: unknown, ICON: unknown}}',
        '"1.1":                     {"2024-2027": {SBO: unknown, ICON: green}, '
        '"2028-2030": {SBO: unknown, ICON: red}}',
    )
    other = load_roadmap(path)
    assert screen({**BASE, "start_year": 2027}, other).too_late is False
    late = screen({**BASE, "start_year": 2028}, other)
    assert late.too_late is True and late.colours[0].colour.code == "red"
    assert "too late" in render_sheet_html(late)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("start: 2028, end: 2030", "start: 2029, end: 2030", "gap between windows"),
        ("start: 2028, end: 2030", "start: 2027, end: 2030", "overlap"),
        ("start: 2024, end: 2027", "start: 2024, end: 2020", "overlap|before it starts"),
    ],
)
def test_roadmap_windows_with_a_gap_or_overlap_are_mistakes(tmp_path, old, new, match):
    with pytest.raises(CritflowError, match=match):
        load_roadmap(_roadmap_variant(tmp_path, old, new))


JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["icon", "csbo", "1.1", "company", "research_group", KPI, "E1.1", "F2"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": JUNK,
            "instrument": JUNK,
            "domains": JUNK,
            "start_year": JUNK,
            "duration_years": JUNK,
            "partners": JUNK
            | st.lists(
                st.fixed_dictionaries(
                    {"organisation": JUNK, "kind": JUNK},
                    optional={"related_to": JUNK, "group": JUNK},
                ),
                max_size=4,
            ),
            "claims": JUNK
            | st.lists(
                st.fixed_dictionaries({"kpi": JUNK, "value": JUNK}, optional={"year": JUNK})
            ),
        },
    )
)
def test_any_proposal_mapping_screens_or_is_a_critflow_error(fields):
    proposal = {**BASE, **fields}
    try:
        result = screen(proposal, ROADMAP)
    except CritflowError:
        return
    render_sheet_html(result)
    result.as_dict()


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: JUNK
            for k in (
                "source_type",
                "element",
                "tonnes",
                "e",
                "f",
                "g",
                "answers",
                "domain",
                "date",
            )
        },
    )
)
def test_any_classification_entry_loads_or_is_a_critflow_error(fields):
    import tempfile

    import yaml

    entry = {
        "source": "pond",
        "source_type": "tailings",
        "element": "Zn",
        "tonnes": 10,
        "reference_point": "metal",
        "e": "E1",
        "f": "F1.1",
        "g": "G1",
        "justification": "j",
        **fields,
    }
    document = {"project": "P", "evaluator": "x", "date": "2026-01-01", "quantities": [entry]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        try:
            path.write_text(yaml.safe_dump(document, allow_unicode=True))
        except yaml.YAMLError:
            return
        try:
            quantities = load_classifications(path, ROADMAP)
        except CritflowError:
            return
        quantities_by_class(quantities, by_domain=True)
