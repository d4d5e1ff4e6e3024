"""UNFC-2019: class names for every combination, the questionnaire, classified quantities."""

from __future__ import annotations

import itertools
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow import data
from critflow.errors import CritflowError
from critflow.monitor.unfc import (
    ClassifiedQuantity,
    categories,
    categorise,
    classify,
    load_classifications,
    quantities_by_class,
    questionnaire,
)

CODES = {axis: [c for c, cat in categories().items() if cat.axis == axis] for axis in "EFG"}
CLASSES = data.unfc_data("classes")


def test_the_axes_have_the_2019_categories_and_sub_categories():
    # UNFC Update 2019, Annexes I and II
    assert CODES["E"] == ["E1", "E1.1", "E1.2", "E2", "E3", "E3.1", "E3.2", "E3.3"]
    assert CODES["F"] == [
        "F1", "F1.1", "F1.2", "F1.3", "F2", "F2.1", "F2.2", "F2.3",
        "F3", "F3.1", "F3.2", "F3.3", "F4", "F4.1", "F4.2", "F4.3",
    ]  # fmt: skip
    assert CODES["G"] == ["G1", "G2", "G3", "G4", "G4.1", "G4.2", "G4.3"]
    for category in categories().values():
        assert category.definition and "Update 2019" in category.source


def _expected(e: str, f: str, g: str) -> tuple[str, str | None] | None:
    """The class by reading the table directly (independent of classify's code): None when a
    constraint is broken; prefix matching written out here as category-of-code."""

    def covers(pattern: str, code: str) -> bool:
        return code == pattern or code.split(".")[0] == pattern

    codes = {"e": e, "f": f, "g": g}
    for rule in CLASSES["constraints"]:
        if all(any(covers(p, codes[a]) for p in ps) for a, ps in rule["if"].items()) and not all(
            any(covers(p, codes[a]) for p in ps) for a, ps in rule["then"].items()
        ):
            return None
    for entry in CLASSES["classes"]:
        if all(any(covers(p, codes[a]) for p in entry[a]) for a in "efg"):
            subs = [
                s["name"]
                for s in entry["sub_classes"]
                if all(any(covers(p, codes[a]) for p in s[a]) for a in "ef")
            ]
            return entry["name"], (subs[0] if subs else None)
    return CLASSES["other_combinations"]["name"], None


@pytest.mark.parametrize("e", CODES["E"])
def test_every_combination_has_a_class_or_a_reasoned_refusal(e):
    for f, g in itertools.product(CODES["F"], CODES["G"]):
        expected = _expected(e, f, g)
        if expected is None:
            with pytest.raises(CritflowError) as info:
                classify(e, f, g)
            assert "not a valid UNFC combination" in str(info.value)
            assert " is one of " in str(info.value)  # says what would be valid
            continue
        result = classify(e, f, g)
        assert (result.name, result.sub_class) == expected, (e, f, g)
        assert result.code == f"{e} {f} {g}"


def test_the_named_classes_and_sub_classes():
    # UNFC Update 2019, Figures 2 and 3
    assert classify("E1", "F1.1", "G1").label == "Viable projects — On production"
    assert classify("E1.2", "F1.2", "G2").label == "Viable projects — Approved for development"
    assert classify("E1", "F1.3", "G3").label == "Viable projects — Justified for development"
    assert classify("E2", "F2.1", "G2").label == "Potentially viable projects — Development pending"
    assert classify("E2", "F2.2", "G3").label == "Potentially viable projects — Development on hold"
    assert classify("E3.2", "F2.2", "G1").label == "Non-viable projects — Development unclarified"
    assert classify("E3.3", "F2.3", "G1").label == "Non-viable projects — Development not viable"
    assert (
        classify("E3", "F4", "G2").name
        == "Remaining products not developed from identified projects"
    )
    assert classify("E3.2", "F3.1", "G4.1").name == "Prospective projects"
    assert (
        classify("E3", "F4.3", "G4").name
        == "Remaining products not developed from prospective projects"
    )
    other = classify("E2", "F2.3", "G1")
    assert other.name == "Other combinations" and not other.named


def test_contradictions_say_what_would_be_valid():
    with pytest.raises(CritflowError, match=r"With F4 and G1, E is one of E3"):
        classify("E1", "F4", "G1")
    with pytest.raises(CritflowError, match=r"With E3 and G4, F is one of F3, F4"):
        classify("E3", "F2.1", "G4")
    with pytest.raises(CritflowError, match=r"'E4' is not a UNFC-2019 E category"):
        classify("E4", "F1", "G1")
    with pytest.raises(CritflowError, match="Did you mean 'G1'"):
        classify("E1", "F1", "G11")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CODES["E"]),
    st.sampled_from(CODES["F"]),
    st.sampled_from(CODES["G"]),
    st.sampled_from(["", " ", "lower"]),
)
def test_random_codes_classify_or_refuse_and_spelling_does_not_matter(e, f, g, style):
    def spell(code):
        return code.lower() if style == "lower" else f"{style}{code}{style}"

    try:
        result = classify(e, f, g)
    except CritflowError:
        with pytest.raises(CritflowError):
            classify(spell(e), spell(f), spell(g))
        return
    assert classify(spell(e), spell(f), spell(g)) == result
    # a sub-category never changes the primary class of its category (Figure 2 names classes
    # by category) unless the class table names the sub-category itself
    assert result.name
    if result.named:
        assert result.e.startswith("E") and result.g[:2] in {"G1", "G2", "G3", "G4"}


ANSWERS = {
    "e-confirmed": {"answer": "yes", "justification": "permit 2025-11, offtake contract"},
    "e-subsidy": "yes",
    "f-project": "yes",
    "f-data": "yes",
    "f-confirmed": "yes",
    "f-stage": "producing",
    "g-known": True,  # YAML's bare yes
    "g-confidence": "high",
}


def test_the_questionnaire_leads_to_categories_and_records_the_path():
    e, f, g, steps = categorise(ANSWERS)
    assert (e, f, g) == ("E1.1", "F1.1", "G1")
    assert [s.question for s in steps] == list(ANSWERS)
    assert steps[0].justification == "permit 2025-11, offtake contract"
    assert steps[-1].leads_to == "G1"


def test_every_questionnaire_outcome_is_a_known_category_and_every_category_is_reachable():
    reached = set()
    for q in questionnaire().values():
        for outcome in q.get("answers", {}).values():
            if "category" in outcome:
                assert outcome["category"] in categories()
                reached.add(outcome["category"])
            else:
                assert outcome["next"] in questionnaire()
    assert reached == set(categories())


def test_questionnaire_mistakes_name_the_question():
    with pytest.raises(CritflowError, match=r"answers\.f-stage: the question 'At what stage"):
        categorise({k: v for k, v in ANSWERS.items() if k != "f-stage"})
    with pytest.raises(CritflowError, match=r"'maybe' is not an answer"):
        categorise({**ANSWERS, "g-confidence": "maybe"})
    with pytest.raises(
        CritflowError, match=r"no question 'g-confidense'.*Did you mean 'g-confidence'"
    ):
        categorise({**ANSWERS, "g-confidense": "high"})


def _quantity(**changes):
    base = dict(
        project="P1",
        source_type="tailings",
        element="Zn",
        tonnes=1000.0,
        reference_point="zinc metal in concentrate",
        e="E2",
        f="F2.1",
        g="G2",
        justification="pilot done",
        date="2026-01-01",
        evaluator="me",
        domain="1.2",
    )
    return ClassifiedQuantity.model_validate(base | changes)


def test_quantities_by_class_adds_tonnes_per_class_and_element():
    quantities = [
        _quantity(tonnes=1000.0),
        _quantity(tonnes=500.0, f="F2.2"),  # same class, another sub-class
        _quantity(tonnes=7.0, element="Ge"),
        _quantity(tonnes=300.0, e="E1", f="F1.1", domain="1.3", source_type="ore"),
    ]
    totals = quantities_by_class(quantities)
    assert [(t.class_name, t.element, t.tonnes, t.count) for t in totals] == [
        ("Viable projects", "Zn", 300.0, 1),
        ("Potentially viable projects", "Ge", 7.0, 1),
        ("Potentially viable projects", "Zn", 1500.0, 2),  # 1000 + 500
    ]
    by_domain = quantities_by_class(quantities, by_domain=True)
    assert {(t.class_name, t.domain) for t in by_domain} >= {("Viable projects", "1.3")}
    assert sum(t.tonnes for t in by_domain) == sum(q.tonnes for q in quantities)


def test_a_quantity_refuses_a_contradiction_and_an_unknown_source_type():
    with pytest.raises(Exception, match="not a valid UNFC combination"):
        _quantity(e="E1", f="F4")
    with pytest.raises(Exception, match="not a source type"):
        _quantity(source_type="moon rock")
    with pytest.raises(Exception, match="greater than or equal to 0"):
        _quantity(tonnes=-1)


def test_a_classification_file_with_answers_and_codes(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            project: P
            domain: "1.2"
            evaluator: me
            date: 2026-01-01
            quantities:
              - {source_type: slag, element: Zn, tonnes: 10, reference_point: Zn in oxide,
                 e: E1.1, f: F1.1, g: G1, justification: on production}
              - source_type: slag
                element: In
                tonnes: 2
                reference_point: In in residue
                e: E2
                answers: {e-confirmed: "no", e-expected: "no", e-information: "no",
                          f-project: "no", f-technology: "not known", g-known: "no", g-estimate: low estimate}
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(CritflowError) as info:
        load_classifications(path)
    text = str(info.value)
    # the second quantity says E2 but its answers lead to E3.2
    assert "line 12" in text and "quantities[1].e" in text and "lead to E3.2" in text
    path.write_text(path.read_text(encoding="utf-8").replace("    e: E2\n", ""), encoding="utf-8")
    first, second = load_classifications(path)
    assert first.unfc_class.label == "Viable projects — On production"
    assert (second.e, second.f, second.g) == ("E3.2", "F4", "G4.1")
    assert second.unfc_class.name == "Remaining products not developed from prospective projects"
    assert "e-information: no" in second.justification and len(second.steps) == 7


def test_the_zinc_residue_example():
    from tests.conftest import ROOT

    quantities = load_classifications(ROOT / "examples" / "monitor" / "unfc_zinc_residue.yaml")
    assert len(quantities) == 4
    assert {q.unfc_class.name for q in quantities} == {
        "Viable projects",
        "Potentially viable projects",
        "Non-viable projects",
        "Remaining products not developed from identified projects",
    }
