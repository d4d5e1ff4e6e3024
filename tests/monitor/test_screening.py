"""Proposal screening: eligibility, timing colour (too late), targets and claims, the sheet."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from critflow import data
from critflow.errors import CritflowError
from critflow.monitor import load_roadmap
from critflow.monitor.screening import (
    chromium_path,
    load_proposal,
    render_sheet_html,
    render_sheet_pdf,
    screen,
)
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "monitor"


@pytest.fixture(scope="module")
def roadmap():
    return load_roadmap()


def proposal(**changes):
    base = {
        "title": "T",
        "instrument": "icon",
        "domains": ["1.1"],
        "start_year": 2026,
        "partners": [
            {"organisation": "A", "kind": "company"},
            {"organisation": "B", "kind": "company"},
            {"organisation": "C", "kind": "company"},
            {"organisation": "U", "kind": "research_group", "group": "lab"},
        ],
    }
    return base | changes


def test_icon_with_three_unrelated_companies_is_eligible(roadmap):
    result = screen(proposal(), roadmap)
    assert result.eligible is True
    (rule,) = result.eligibility
    assert rule.passed and "unrelated companies: 3" in rule.reason


def test_icon_with_two_companies_is_ineligible(roadmap):
    partners = proposal()["partners"][1:]  # B, C and a research group
    result = screen(proposal(partners=partners), roadmap)
    assert result.eligible is False
    assert "unrelated companies: 2 (at least 3" in result.eligibility[0].reason
    assert "1 more needed (unrelated companies)" in result.eligibility[0].reason


def test_related_companies_count_once_even_through_a_shared_parent(roadmap):
    partners = [
        {"organisation": "A1", "kind": "company", "related_to": "Group G"},
        {"organisation": "A2", "kind": "company", "related_to": ["Group G"]},
        {"organisation": "B", "kind": "company"},
        {"organisation": "C", "kind": "company", "related_to": "b"},  # case-insensitive
        {"organisation": "Centre", "kind": "research_centre"},
    ]
    result = screen(proposal(partners=partners), roadmap)
    assert result.eligible is False and "unrelated companies: 2" in result.eligibility[0].reason


def test_icon_needs_a_research_centre(roadmap):
    partners = [p for p in proposal()["partners"] if p["kind"] == "company"]
    result = screen(proposal(partners=partners), roadmap)
    assert result.eligible is False and "research centres" in result.eligibility[0].reason


def test_csbo_needs_two_research_groups_and_a_strategic_centre_another_centre(roadmap):
    one_group = [{"organisation": "VITO", "kind": "research_group", "group": "g1"}]
    result = screen(proposal(instrument="csbo", partners=one_group), roadmap)
    checks = {r.rule: r.passed for r in result.eligibility}
    assert checks == {
        "csbo-research-groups": False,  # one group
        "csbo-strategic-centre-with-another": False,  # VITO alone
        "csbo-university-college": None,  # judged by the expert group
    }
    two = [*one_group, {"organisation": "KU Leuven", "kind": "research_group", "group": "g2"}]
    result = screen(proposal(instrument="csbo", partners=two), roadmap)
    assert [r.passed for r in result.eligibility] == [True, True, None]
    assert result.eligible is None  # nothing failed; one rule for the expert group


def test_a_start_after_the_horizon_is_too_late(roadmap):
    result = screen(proposal(start_year=2031), roadmap)
    assert result.too_late and result.window is None
    assert result.colours[0].verdict.startswith("too late: 2031 is after the roadmap's horizon")
    assert "too late to start" in render_sheet_html(result)


def test_a_red_window_is_too_late(tmp_path):
    # another programme's roadmap (a copy with one cell filled): 1.1 x ICON is red in 2028-2030
    raw = yaml.safe_load(data.data_path("roadmap/materinex-2030.yaml").read_text(encoding="utf-8"))
    raw["colours"]["cells"]["1.1"]["2028-2030"]["ICON"] = {
        "code": "red",
        "source": {"document": "test figure", "point": "Figure 2", "year": 2024},
    }
    raw["colours"]["cells"]["1.1"]["2024-2027"]["ICON"] = "green"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    other = load_roadmap(path)
    late = screen(proposal(start_year=2028), other)
    assert late.too_late and late.window == "2028-2030"
    assert late.colours[0].colour.code == "red"
    assert late.colours[0].verdict == "too late: too late to start development (2028-2030)"
    sheet = render_sheet_html(late)
    assert "too late to start" in sheet and "chip red" in sheet
    early = screen(proposal(start_year=2027), other)
    assert not early.too_late and early.colours[0].verdict == "relevant instrument (2024-2027)"


def test_unknown_colours_say_they_are_to_be_filled(roadmap):
    result = screen(proposal(), roadmap)
    assert result.colours[0].colour.code == "unknown"
    assert "to be filled" in result.colours[0].verdict and not result.too_late


def test_claims_are_checked_against_2027_and_2030_targets(roadmap):
    claims = [
        {"kpi": "1.1-srm-from-recycling", "value": 0.12, "year": 2028},  # 10 % <= 12 % < 15 %
        {"kpi": "2.2-climate-intensity-change", "value": -0.25},  # a decrease beyond -20 %
    ]
    result = screen(proposal(claims=claims, duration_years=4), roadmap)
    by_id = {t.kpi.id: t for t in result.targets}
    share = by_id["1.1-srm-from-recycling"]
    assert (share.meets_2027, share.meets_2030, share.meets_in_claimed_year) == (True, False, True)
    change = by_id["2.2-climate-intensity-change"]
    assert change.claimed_year == 2029  # the proposal's last year (2026 + 4 - 1)
    assert (change.meets_2027, change.meets_2030) == (True, True)
    assert "not one of the proposal's domains" in change.note


def test_the_model_gives_its_own_values(roadmap):
    import critflow
    from critflow.analysis import Run

    model_path = ROOT / "examples" / "battery_recycling_hydromet.yaml"
    run = Run.solve(critflow.load_model(model_path))
    result = screen(proposal(), roadmap, run, model_file=model_path)
    li = {t.kpi.id: t for t in result.targets}["1.1-battery-recovery-li"]
    rows = [m for m in li.model if m.rule == "roadmap-1.1-rm-li-2027"]
    # the same numbers as the rules check of the run (critflow check)
    expected = [r for r in run.compliance if r.rule == "roadmap-1.1-rm-li-2027"]
    assert [(m.scenario, m.value, m.status) for m in rows] == [
        (r.scenario, r.value, r.status) for r in expected
    ]
    assert result.model_hash and len(result.model_hash) == 64


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        ({"instrument": "ikon"}, r"\(instrument\)", "Did you mean 'icon'"),
        ({"domains": ["1.1", "1.9"]}, r"\(domains\[1\]\)", "no focus domain '1.9'"),
        ({"claims": [{"kpi": "1.1-srm", "value": 0.1}]}, r"claims\[0\]\.kpi", "no KPI '1.1-srm'"),
        ({"start_year": "soon"}, r"start_year", "integer"),
        ({"partners": [{"organisation": "A", "kind": "university"}]}, r"partners\[0\]\.kind", ""),
        ({"budget": 3}, r"budget", "unknown key"),
    ],
)
def test_bad_proposal_files_name_file_line_and_field(tmp_path, roadmap, edit, field, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(proposal(**edit), sort_keys=False), encoding="utf-8")
    with pytest.raises(CritflowError) as info:
        load_proposal(path, roadmap)
    text = str(info.value)
    assert str(path) in text and "line" in text
    assert __import__("re").search(field, text), text
    assert message in text


def test_bad_proposal_mappings_name_the_field(roadmap):
    with pytest.raises(CritflowError, match=r"proposal: partners"):
        screen(proposal(partners=[]), roadmap)
    with pytest.raises(CritflowError, match=r"proposal: instrument"):
        screen(proposal(instrument="sbo"), roadmap)


def test_the_sheet_is_self_contained_and_prints_on_a4(roadmap):
    result = screen(load_proposal(EXAMPLES / "proposal_icon_battery_recycling.yaml"), roadmap)
    sheet = render_sheet_html(result)
    assert sheet.startswith("<!doctype html>") and "@page { size: A4" in sheet
    assert "<script" not in sheet and "http" not in sheet.split("<body>")[0]  # no external assets
    assert "icon-consortium" in sheet and "1.1-battery-recovery-li" in sheet


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason="no headless Chromium")
def test_the_pdf_sheet_is_one_page(roadmap):
    import critflow
    from critflow.analysis import Run

    run = Run.solve(critflow.load_model(ROOT / "examples" / "battery_recycling_hydromet.yaml"))
    result = screen(load_proposal(EXAMPLES / "proposal_icon_battery_recycling.yaml"), roadmap, run)
    pdf = render_sheet_pdf(result)
    assert pdf.startswith(b"%PDF")
    import re

    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1


def test_the_examples_screen_as_their_comments_say(roadmap):
    results = {
        p.stem: screen(load_proposal(p, roadmap), roadmap)
        for p in sorted(Path(EXAMPLES).glob("proposal_*.yaml"))
    }
    assert results["proposal_icon_battery_recycling"].eligible is True
    assert results["proposal_icon_two_companies"].eligible is False
    assert results["proposal_csbo_late_start"].too_late


def test_proposal_text_round_trip(tmp_path, roadmap):
    path = tmp_path / "p.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            title: X
            instrument: feasibility-study
            domains: 2.3
            start_year: 2025
            partners: [{organisation: A, kind: company}]
            """
        ),
        encoding="utf-8",
    )
    result = screen(load_proposal(path, roadmap), roadmap)
    assert result.eligible is True and result.proposal.domains == ("2.3",)
    assert result.colours[0].colour.meaning == "not rated by the roadmap's colour code"
