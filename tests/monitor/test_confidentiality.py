"""The public-aggregate rule: three organisations, and no recovery by subtraction."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.monitor.confidentiality import Contribution, public_aggregates

KPI = "1.1-srm-from-recycling"


def by_key(aggregates):
    return {a.key: a for a in aggregates}


def test_fewer_than_three_organisations_is_suppressed_and_three_is_published():
    contributions = [
        (("1.1", KPI, 2027), "a", 0.10),
        (("1.1", KPI, 2027), "b", 0.20),
        (("1.2", KPI, 2027), "a", 0.10),
        (("1.2", KPI, 2027), "b", 0.30),
        (("1.2", KPI, 2027), "c", 0.50),
    ]
    result = by_key(public_aggregates(contributions, measure=lambda key: key))
    small = result[("1.1", KPI, 2027)]
    assert not small.published and small.sum is None and small.count == 2
    assert "fewer than 3 organisations" in small.reason
    big = result[("1.2", KPI, 2027)]
    # 0.1 + 0.3 + 0.5 = 0.9; mean over three organisations 0.3
    assert big.published and big.sum == pytest.approx(0.9) and big.mean == pytest.approx(0.3)
    assert big.count == 3 and "organisations" not in big.public()


def test_subtraction_attack_between_a_domain_and_its_part_is_refused():
    # the brief's case: A over {a, b, c, d}, B over {a, b, c} -> A - B = d
    contributions = [
        (("1", KPI, 2027), o, v) for o, v in zip("abcd", (1.0, 2.0, 3.0, 4.0), strict=True)
    ]
    contributions += [
        (("1.1", KPI, 2027), o, v) for o, v in zip("abc", (1.0, 2.0, 3.0), strict=True)
    ]
    result = by_key(public_aggregates(contributions))
    assert result[("1", KPI, 2027)].published  # the larger aggregate is kept
    part = result[("1.1", KPI, 2027)]
    assert not part.published and part.sum is None
    assert "subtraction" in part.reason and "('1', " in part.reason


def test_a_part_differing_by_two_organisations_is_refused_and_by_three_is_published():
    five = [(("1", KPI, 2027), o, 1.0) for o in "abcde"]
    six = [(("1", KPI, 2027), o, 1.0) for o in "abcdef"]
    part = [(("1.1", KPI, 2027), o, 1.0) for o in "abc"]
    # {a..e} - {a,b,c} = d + e: d learns e's value
    assert not by_key(public_aggregates(five + part))[("1.1", KPI, 2027)].published
    # {a..f} - {a,b,c} = d + e + f: no one learns another's value
    assert by_key(public_aggregates(six + part))[("1.1", KPI, 2027)].published


def test_other_measures_do_not_combine():
    # the same organisations on another KPI or year are other unknowns
    contributions = [(("1", KPI, 2027), o, 1.0) for o in "abcd"]
    contributions += [(("1.1", KPI, 2028), o, 1.0) for o in "abc"]
    contributions += [(("1.1", "2.2-co2eq-avoided", 2027), o, 1.0) for o in "abc"]
    assert all(a.published for a in public_aggregates(contributions))


def test_three_aggregates_combined_are_caught():
    # no two nest, but A + B - C = a's value: A {a,b,c}, B {a,d,e}, C {b,c,d,e}
    groups = {"A": "abc", "B": "ade", "C": "bcde"}
    contributions = [((g, KPI, 2027), o, 1.0) for g, orgs in groups.items() for o in orgs]
    result = public_aggregates(contributions)
    published = [a for a in result if a.published]
    assert len(published) == 2
    (refused,) = [a for a in result if not a.published]
    assert "subtraction" in refused.reason


def test_items_make_an_organisations_projects_distinct_unknowns():
    # org a has two projects, one in 1.1 and one in 1.2; the domain total of 1 counts both.
    # Per project, 1 = 1.1 + 1.2 exactly and no value is revealed.
    rows = {
        "1.1": [("a", "p1"), ("b", "p2"), ("c", "p3")],
        "1.2": [("a", "p4"), ("d", "p5"), ("e", "p6")],
    }
    contributions = [
        Contribution((group, KPI, 2027), org, 1.0, "1", item)
        for group, items in rows.items()
        for org, item in items
    ]
    contributions += [
        Contribution(("1", KPI, 2027), org, 1.0, "1", item)
        for items in rows.values()
        for org, item in items
    ]
    result = by_key(public_aggregates(contributions))
    assert result[("1", KPI, 2027)].count == 5  # a counted once
    assert result[("1", KPI, 2027)].sum == pytest.approx(6.0)
    assert all(a.published for a in result.values())


def test_the_result_does_not_depend_on_the_input_order():
    contributions = [(("1", KPI, 2027), o, float(i)) for i, o in enumerate("abcdefg")]
    contributions += [(("1.1", KPI, 2027), o, float(i)) for i, o in enumerate("abcd")]
    contributions += [(("1.2", KPI, 2027), o, float(i)) for i, o in enumerate("efg")]
    expected = public_aggregates(contributions)
    shuffled = list(contributions)
    random.Random(1).shuffle(shuffled)
    assert public_aggregates(shuffled) == expected


def test_bad_contributions_name_the_field():
    with pytest.raises(CritflowError, match=r"contributions\[1\]\.value"):
        public_aggregates([(("1", KPI, 2027), "a", 1.0), (("1", KPI, 2027), "b", float("nan"))])
    with pytest.raises(CritflowError, match="mix units"):
        public_aggregates([(("1", "m", 2027), "a", 1.0, "t"), (("1", "m", 2027), "b", 1.0, "kg")])
    with pytest.raises(CritflowError, match=r"contributions\[0\]"):
        public_aggregates(["not a contribution"])


def _reveals(rows: np.ndarray, orgs: set[str], columns: list[str], limit: int) -> bool:
    """Independent check by ranks: a set S of fewer than ``limit`` organisations is revealed
    when adding S's unit vectors to the rows raises the rank by less than |S|."""
    if rows.size == 0:
        return False
    base = np.linalg.matrix_rank(rows)
    for size in range(1, limit):
        for group in itertools.combinations(sorted(orgs), size):
            units = np.zeros((size, len(columns)))
            for i, org in enumerate(group):
                units[i, columns.index(org)] = 1.0
            if np.linalg.matrix_rank(np.vstack([rows, units])) < base + size:
                return True
    return False


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.frozensets(st.sampled_from("abcdefg"), min_size=1, max_size=7), min_size=1, max_size=6
    )
)
def test_published_aggregates_never_reveal_fewer_than_three_organisations(groups):
    contributions = [
        ((f"g{i}", KPI, 2027), org, float(ord(org)))
        for i, orgs in enumerate(groups)
        for org in orgs
    ]
    result = public_aggregates(contributions)
    published = [a for a in result if a.published]
    columns = sorted({c[1] for c in contributions})
    rows = np.array(
        [[1.0 if o in a.organisations else 0.0 for o in columns] for a in published]
    ).reshape(len(published), len(columns))
    assert all(a.count >= 3 for a in published)
    assert not _reveals(rows, set(columns), columns, 3)
    for a in published:  # sums are the organisations' values added up
        assert a.sum == pytest.approx(sum(ord(o) for o in a.organisations))
    # greedy, largest first: a suppressed aggregate of >= 3 organisations would reveal a value
    for a in result:
        if not a.published and a.count >= 3:
            earlier = [p for p in published if (-p.count, repr(p.key)) < (-a.count, repr(a.key))]
            stack = np.array(
                [[1.0 if o in p.organisations else 0.0 for o in columns] for p in [*earlier, a]]
            )
            assert _reveals(stack, set(columns), columns, 3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 2)), min_size=1, max_size=8),
        min_size=1,
        max_size=5,
    )
)
def test_with_items_no_published_combination_isolates_fewer_than_three_organisations(groups):
    # unknowns are (organisation, item); a group may hold several items of one organisation
    contributions = [
        Contribution((f"g{i}", KPI, 2027), org, 1.0, "1", item)
        for i, members in enumerate(groups)
        for org, item in set(members)
    ]
    published = [a for a in public_aggregates(contributions) if a.published]
    unknowns = sorted({(c.organisation, c.item) for c in contributions})
    groups_by_key = {}
    for c in contributions:
        groups_by_key.setdefault(c.key, set()).add((c.organisation, c.item))
    rows = np.array(
        [[1.0 if u in groups_by_key[a.key] else 0.0 for u in unknowns] for a in published]
    ).reshape(len(published), len(unknowns))
    if not len(published):
        return
    base = np.linalg.matrix_rank(rows)
    orgs = sorted({o for o, _ in unknowns})
    for size in (1, 2):
        for group in itertools.combinations(orgs, size):
            columns = [j for j, (o, _) in enumerate(unknowns) if o in group]
            units = np.zeros((len(columns), len(unknowns)))
            units[range(len(columns)), columns] = 1.0
            # S's unit vectors add their full count to the rank: nothing on S alone is in the span
            assert np.linalg.matrix_rank(np.vstack([rows, units])) == base + len(columns), group
