"""The roadmap as data: domains, KPIs and targets, instruments and their rules, the colour code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from critflow import data
from critflow.errors import CritflowError
from critflow.monitor import load_roadmap
from critflow.rules import load_rule_sets

SHIPPED = data.data_path("roadmap/materinex-2030.yaml")


@pytest.fixture(scope="module")
def roadmap():
    return load_roadmap()


def test_the_focus_domains_of_the_roadmap_are_all_there(roadmap):
    # roadmap-summary.md: 1.1-1.4, 2.1-2.3 and the three enablers
    assert roadmap.domain_ids[:7] == ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3"]
    assert [d.id for d in roadmap.domains if d.application_domain == "enablers"] == [
        "enablers.tools",
        "enablers.digitalisation",
        "enablers.regulation",
    ]
    assert all(d.title and d.source.document for d in roadmap.domains)


def test_targets_are_the_roadmaps(roadmap):
    # the Dutch original, Figure 2 "Referenties en doelstellingen"
    expected = {
        "1.1-srm-from-recycling": (0.10, 0.15, "increase", "share"),
        "1.2-srm-from-residues": (0.10, 0.15, "increase", "share"),
        "1.3-srm-from-responsible-mining": (0.07, 0.10, "increase", "share"),
        "1.4-srm-from-recycling": (0.10, 0.15, "increase", "share"),
        "2.1-crm-use-change": (-0.10, -0.20, "decrease", "relative_change"),
        "2.2-climate-intensity-change": (-0.10, -0.20, "decrease", "relative_change"),
        "2.3-waste-per-product-change": (-0.10, -0.20, "decrease", "relative_change"),
    }
    for kpi_id, (t2027, t2030, direction, kind) in expected.items():
        kpi = roadmap.kpis[kpi_id]
        assert (kpi.target_2027, kpi.target_2030, kpi.direction, kpi.kind) == (
            t2027,
            t2030,
            direction,
            kind,
        )
        assert kpi.domain == kpi_id.split("-")[0]
        assert kpi.target(2026) is None and kpi.target(2027) == t2027
        assert kpi.target(2029) == t2027 and kpi.target(2030) == t2030
        assert "state of the art" in kpi.reference.text


def test_kpi_rules_are_shipped_rules_with_the_same_thresholds(roadmap):
    rules = {r.id: r for s in load_rule_sets(["roadmap"]) for r in s.rules}
    for kpi in roadmap.kpis.values():
        for rule_id in kpi.rules:
            rule = rules[rule_id]
            year = int(str(rule.applies_from)[:4])
            target = kpi.target_2027 if year < 2030 else kpi.target_2030
            assert rule.threshold == pytest.approx(target), rule_id
            assert rule.indicator == kpi.indicator, rule_id


def test_every_entry_has_a_source():
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    entries = raw["domains"] + raw["instruments"] + raw["windows"]
    entries += [k for d in raw["domains"] for k in d["kpis"]]
    entries += [r for i in raw["instruments"] for r in i["rules"]]
    for entry in entries:
        assert {"document", "point", "year"} <= set(entry["source"]), entry.get("id")


def test_instruments_and_their_eligibility_rules(roadmap):
    # section 8: cSBO at least two research groups of at least one research centre; ICON one or
    # more research centres and at least three unrelated companies; feasibility: a company
    csbo, icon, feasibility = (
        roadmap.instruments[i] for i in ("csbo", "icon", "feasibility-study")
    )
    assert csbo.rules[0].check == {"min_research_groups": 2, "min_research_centres": 1}
    assert icon.rules[0].check == {"min_research_centres": 1, "min_unrelated_companies": 3}
    assert feasibility.rules[0].check == {"min_companies": 1}
    assert csbo.colour_column == "SBO" and icon.colour_column == "ICON"


def test_colour_cells_are_unknown_and_say_they_are_to_be_filled(roadmap):
    for domain in roadmap.domain_ids:
        for instrument in ("csbo", "icon"):
            for window in ("2024-2027", "2028-2030"):
                colour = roadmap.colour(domain, instrument, window)
                assert colour.code == "unknown" and "to be filled" in colour.note
    assert roadmap.colour("1.1", "icon", 2029).window == "2028-2030"
    assert roadmap.colour("1.1", "icon", "2024").window == "2024-2027"
    assert roadmap.colour("2.2", "feasibility-study", 2025).code == "unknown"
    meanings = {c: m.meaning for c, m in roadmap.colour_meanings.items()}
    assert meanings["red"] == "too late to start development"
    assert meanings["green"] == "relevant instrument"
    assert "too early" in meanings["blue"] and "timing becomes critical" in meanings["orange"]


def test_windows(roadmap):
    assert roadmap.window(2024) == roadmap.window(2027) == "2024-2027"
    assert roadmap.window(2028) == roadmap.window(2030) == "2028-2030"
    with pytest.raises(CritflowError, match="outside the roadmap's horizon 2024-2030"):
        roadmap.window(2031)


def test_unknown_names_get_suggestions(roadmap):
    with pytest.raises(CritflowError, match="Did you mean 'icon'"):
        roadmap.colour("1.1", "ikon", 2025)
    with pytest.raises(CritflowError, match=r"no focus domain '1\.5'"):
        roadmap.colour("1.5", "icon", 2025)
    with pytest.raises(CritflowError, match="no window"):
        roadmap.colour("1.1", "icon", "2025-2026")
    with pytest.raises(CritflowError, match="no shipped roadmap 'materinex'"):
        load_roadmap("materinex")


def _edited(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_another_roadmap_file_with_a_filled_cell(tmp_path):
    def fill(raw):
        raw["roadmap"] = "other-programme"
        raw["colours"]["cells"]["1.1"]["2028-2030"]["ICON"] = "red"

    roadmap = load_roadmap(_edited(tmp_path, fill))
    assert roadmap.id == "other-programme"
    colour = roadmap.colour("1.1", "icon", 2029)
    assert (
        colour.code == "red"
        and colour.too_late
        and colour.meaning == "too late to start development"
    )


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            lambda r: r["domains"][0]["kpis"][7].update(unit="bananas"),
            r"domains\[0\]\.kpis\[7\]\.unit",
            "not a unit",
        ),
        (
            lambda r: r["domains"][0]["kpis"][0].update(unit="t"),
            r"domains\[0\]\.kpis\[0\]\.unit",
            "has unit '1'",
        ),
        (
            lambda r: r["domains"][0]["kpis"][0].update(target_2027=10),
            r"domains\[0\]\.kpis\[0\]\.target_2027",
            "fraction",
        ),
        (
            lambda r: r["domains"][0]["kpis"][0].update(rules=["roadmap-9.9-2027"]),
            r"domains\[0\]\.kpis\[0\]\.rules\[0\]",
            "no shipped rule",
        ),
        (
            lambda r: r["domains"][0]["kpis"][0].update(direction="up"),
            r"domains\[0\]\.kpis\[0\]\.direction",
            "",
        ),
        (lambda r: r["domains"][0]["kpis"][0].pop("source"), r"domains\[0\]\.kpis\[0\]", "source"),
        (
            lambda r: r["instruments"][1]["rules"][0]["check"].update(min_partners=2),
            r"instruments\[1\]\.rules\[0\]\.check",
            "unknown check",
        ),
        (
            lambda r: r["colours"]["cells"]["1.1"]["2024-2027"].update(SBO="purple"),
            r"colours\.cells\.1\.1",
            "",
        ),
        (
            lambda r: r["colours"]["cells"].update({"9.9": {}}),
            r"colours\.cells\.9\.9",
            "no focus domain",
        ),
    ],
)
def test_mistakes_in_a_roadmap_file_name_file_and_field(tmp_path, edit, field, message):
    path = _edited(tmp_path, edit)
    with pytest.raises(CritflowError) as info:
        load_roadmap(path)
    text = str(info.value)
    assert str(path) in text and re.search(field, text), text
    assert message in text
