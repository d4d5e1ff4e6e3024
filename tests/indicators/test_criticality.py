"""The EU criticality method: formulas, anchors from the studies, the published 2023 list, the
canonical material table every data file joins on, and the CRMA 65 % limit read from the rule file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from critflow import data
from critflow.errors import CritflowError
from critflow.indicators.criticality import (
    concentration,
    criticality_rows,
    crma_entries,
    economic_importance,
    hhi,
    hhi_wgi,
    import_reliance,
    is_critical,
    materials,
    members,
    published_results,
    resolve,
    single_country_limit,
    supply_risk,
    supply_shares,
    wgi_scaled,
)
from tests.conftest import critflow_cli


def test_tantalum_anchor_of_the_2017_study():
    # 2017 study: Nigeria 81 % of EU tantalum supply, scaled WGI 6.92 (WGI -0.96) → HHI_WGI,EU ≈ 4.6,
    # of which Nigeria alone contributes 0.81² · 6.92 = 4.54
    assert float(wgi_scaled(-0.96)) == pytest.approx(6.92)
    nigeria = float(hhi_wgi(np.array([0.81]), np.array([6.92])))
    assert nigeria == pytest.approx(4.54, abs=0.005)
    assert nigeria <= 4.6


def test_supply_risk_and_economic_importance_formulas():
    # IR = (80 - 10) / (30 + 80 - 10) = 0.7; SR = (3 · 0.35 + 2 · 0.65) · (1 - 0.2) · 0.9
    ir = import_reliance(production=30, imports=80, exports=10)
    assert ir == pytest.approx(0.7)
    assert float(supply_risk(3.0, 2.0, ir, eol_rir=0.2, substitution_index=0.9)) == pytest.approx(
        2.35 * 0.8 * 0.9
    )
    assert import_reliance(production=100, imports=10, exports=50) == 0.0  # net exporter: floored
    # EI: 60 % in a sector of 100 000 M€, 40 % in one of 50 000 M€; largest sector 204 200 M€ (C28)
    ei = float(
        economic_importance(np.array([0.6, 0.4]), np.array([100_000, 50_000]), 204_200, 0.95)
    )
    assert ei == pytest.approx(10 * 80_000 / 204_200 * 0.95)
    assert float(hhi(np.array([0.5, 0.3, 0.2]))) == pytest.approx(0.38)


def test_published_2023_values_give_the_crma_list():
    # applying SR >= 1 and EI >= 2.8 to the 70 candidates of 2023 gives 32 critical materials; the
    # CRMA's 34 adds copper and nickel as strategic although below the SR threshold
    table = published_results()
    assert len(table) == 70
    critical = set(table.loc[table["critical"], "material"])
    assert len(critical) == 32
    assert {"Lithium", "Cobalt", "Gallium", "Natural graphite", "Manganese"} <= critical
    assert not {"Copper", "Nickel", "Indium", "Natural rubber"} & critical
    assert (
        bool(is_critical(1.0, 2.8))
        and not bool(is_critical(0.99, 5))
        and not bool(is_critical(3, 2.79))
    )


critflow = critflow_cli


def stage_rows(stdout: str) -> dict[str, str]:
    """Table rows of `critflow criticality` by their stage cell, e.g. 'processing (EU)'."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        for cell in cells:
            if cell.endswith(("(EU)", "(global)")):
                rows[cell] = line
    return rows


def test_every_material_in_every_data_file_joins_the_canonical_table():
    canonical = materials()
    checked = set()
    for name in data.table_names():
        table = data.table(name)
        if "material" not in table.columns:
            continue
        unknown = sorted(set(table["material"]) - set(canonical))
        assert not unknown, f"{name}.csv names materials outside materials.csv: {unknown}"
        checked.add(name)
    # the test looked at the files that carry materials (it cannot pass by finding none)
    assert {"criticality_2023", "supply_shares_2023", "crma_materials", "materials"} <= checked
    # the CRMA table repeats the canonical element symbols; they must agree row by row
    for row in crma_entries().itertuples():
        symbols = tuple(str(row.elements).split(";")) if isinstance(row.elements, str) else ()
        assert symbols == canonical[row.material].elements, row.material
    # parents, groups and element symbols point at things that exist
    import periodictable

    symbols = {e.symbol for e in periodictable.elements}
    for m in canonical.values():
        assert m.parent is None or canonical[m.parent].kind == "material", m.name
        assert all(canonical[g].kind == "group" for g in m.groups), m.name
        assert set(m.elements) <= symbols, m.name
    # no alias (in any case) names two materials
    seen: dict[str, str] = {}
    for m in canonical.values():
        for alias in (m.name, *m.aliases):
            assert seen.setdefault(alias.lower(), m.name) == m.name, alias


def test_boron_joins_the_assessment_and_the_supply_shares():
    # the 2023 results called it "Boron/borates", the supply shares "Boron": both are Boron now
    assert resolve("Boron/borates") == resolve("boron") == ["Boron"]
    assert resolve("B") == ["Boron", "Boron, metallurgy grade"]
    result = critflow("criticality", "Boron")
    assert result.returncode == 0, result.stderr
    rows = stage_rows(result.stdout)
    # published 2023 values: SR 3.6, EI 3.9, EoL-RIR 1 %; EU sourcing: Türkiye 99 % of extraction
    head = rows["extraction (global)"]
    assert "3.6" in head and "3.9" in head and "1%" in head and "yes" in head
    assert "Turkey 99%" in rows["extraction (EU)"] and "breach" in rows["extraction (EU)"]
    # boron is strategic only in metallurgy grade (Annex I(c)); Annex II(g) lists all boron
    assert "SRM I(c) only as boron — metallurgy grade" in result.stdout


def test_element_symbol_lithium_shows_the_material_and_its_battery_grade():
    assert resolve("Li") == ["Lithium", "Lithium, battery grade"]
    result = critflow("criticality", "Li")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    lithium = next(line for line in lines if "│ Lithium " in line)
    assert "1.9" in lithium and "3.9" in lithium  # SR, EI 2023
    grade = next(line for line in lines if "Lithium, battery grade" in line)
    assert "1.9 (Lithium)" in grade  # the grade was not assessed on its own: the study's lithium
    # EU processing: Chile 79 % > 65 %, and lithium is strategic as battery grade → breach
    assert "Chile 79%" in stage_rows(result.stdout)["processing (EU)"]
    assert "breach" in stage_rows(result.stdout)["processing (EU)"]


def test_tungsten_is_judged_on_eu_sourcing_not_on_global_supply():
    # China mines 82.6 % and processes 85.6 % of the world's tungsten but supplies 31 % of EU
    # sourcing (2023 study); the CRMA limit is on Union consumption: 0.31 <= 0.65 → met
    limit = single_country_limit()
    assert (limit.threshold, limit.comparator, limit.rule_id) == (
        0.65,
        "<=",
        "crma-diversification-2030",
    )
    stages = {(s.stage, s.scope): s for s in concentration("W")}
    eu = stages[("processing", "EU")]
    assert eu.largest_country == "China" and eu.largest_share == pytest.approx(0.31)
    assert 0.31 <= 0.65 and eu.verdict == "met" and eu.breaches_limit is False
    for key in (("extraction", "global"), ("processing", "global")):
        assert stages[key].largest_share > 0.65 and stages[key].verdict == "not assessed"
        assert stages[key].breaches_limit is None
    result = critflow("criticality", "W")
    assert result.returncode == 0, result.stderr
    assert "breach" not in result.stdout
    rows = stage_rows(result.stdout)
    assert "China 31%" in rows["processing (EU)"] and "met" in rows["processing (EU)"]
    assert "China 86%" in rows["processing (global)"] and "— global" in rows["processing (global)"]


def test_pgm_group_is_the_five_assessed_metals():
    # the 2023 study assessed PGMs as a group of five: iridium, palladium, platinum, rhodium,
    # ruthenium (osmium was not assessed)
    assert members("PGMs") == ["Iridium", "Palladium", "Platinum", "Rhodium", "Ruthenium"]
    pgm = crma_entries().set_index(["material", "annex"])
    for annex in ("Annex I", "Annex II"):
        assert pgm.loc[("PGMs", annex), "elements"] == "Ir;Pd;Pt;Rh;Ru"
    assert resolve("platinum group metals") == resolve("PGM") == ["PGMs"]
    with pytest.raises(CritflowError, match="osmium is not one of the five PGMs"):
        resolve("Os")
    (platinum,) = criticality_rows(["Pt"])
    # a member carries its group's 2023 result (SR 2.7, EI 7.1) and its own supply shares
    assert (platinum.assessed_as, platinum.supply_risk, platinum.economic_importance) == (
        "PGMs",
        2.7,
        7.1,
    )
    assert platinum.stages[0].largest_country == "South Africa"
    (group,) = criticality_rows(["PGMs"])
    assert {s.material for s in group.stages} == {"Platinum", "Palladium"}
    result = critflow("criticality", "PGMs")
    assert result.returncode == 0, result.stderr
    assert "Platinum: processing (global)" in result.stdout and "2.7" in result.stdout


def test_crma_grades_are_not_the_whole_element():
    entries = crma_entries()
    strategic = entries[entries["strategic"]].set_index("material")
    critical = entries[entries["critical"]].set_index("material")
    assert len(strategic) == 17 and len(critical) == 34  # Annex I §1 and Annex II §1
    # Annex I names battery grades: the strategic rows are the grades, not lithium, manganese …
    for grade, whole in (
        ("Lithium, battery grade", "Lithium"),
        ("Manganese, battery grade", "Manganese"),
        ("Nickel, battery grade", "Nickel"),
        ("Graphite, battery grade", "Graphite"),
        ("Boron, metallurgy grade", "Boron"),
        ("Magnesium metal", "Magnesium"),
    ):
        assert grade in strategic.index and whole not in strategic.index
        assert materials()[grade].parent == whole
    # Annex II lists lithium, manganese and graphite in all grades but nickel only as battery grade
    assert {"Lithium", "Manganese", "Graphite", "Nickel, battery grade"} <= set(critical.index)
    assert "Nickel" not in critical.index
    assert critical.loc["Graphite", "legal_name"] == "graphite"  # not 'natural graphite'
    # the 2023 study assessed natural graphite, a grade of the CRMA's graphite
    assert materials()["Natural graphite"].parent == "Graphite"
    assert resolve("C") == ["Natural graphite", "Graphite", "Graphite, battery grade"]


def test_limit_is_read_from_the_rule_file(tmp_path):
    # a copy of the shipped CRMA rule file with the single-country limit at 30 % instead of 65 %:
    # tungsten's EU processing (China 31 %) now breaches it; nothing else in the code changed
    rules = yaml.safe_load(data.rule_set_text("crma"))
    for rule in rules["rules"]:
        if rule["id"] == "crma-diversification-2030":
            rule["threshold"] = 0.30
    copy = tmp_path / "crma-stricter.yaml"
    copy.write_text(yaml.safe_dump(rules, allow_unicode=True))
    shipped = critflow("criticality", "W")
    stricter = critflow("criticality", "W", "--rule-file", str(copy))
    assert shipped.returncode == stricter.returncode == 0, stricter.stderr
    assert "met" in stage_rows(shipped.stdout)["processing (EU)"]
    assert "breach" in stage_rows(stricter.stdout)["processing (EU)"]
    assert "<= 30%" in stricter.stdout and "<= 65%" in shipped.stdout

    from critflow.rules import load_rule_sets

    limit = single_country_limit(load_rule_sets([], [copy])[0])
    eu = {(s.stage, s.scope): s for s in concentration("Tungsten", limit=limit)}
    assert limit.threshold == 0.30 and eu[("processing", "EU")].verdict == "breach"


def test_a_rule_file_without_the_limit_is_refused(tmp_path):
    rules = yaml.safe_load(data.rule_set_text("crma"))
    rules["rules"] = [r for r in rules["rules"] if r["id"] != "crma-diversification-2030"]
    copy = tmp_path / "crma-no-limit.yaml"
    copy.write_text(yaml.safe_dump(rules, allow_unicode=True))
    result = critflow("criticality", "W", "--rule-file", str(copy))
    assert result.returncode == 2
    assert (
        "no rule on 'largest_third_country_share'" in result.stderr and str(copy) in result.stderr
    )
    bad = yaml.safe_load(data.rule_set_text("crma"))
    for rule in bad["rules"]:
        if rule["id"] == "crma-diversification-2030":
            rule["comparator"] = ">="
    with pytest.raises(CritflowError, match="does not make a ceiling"):
        single_country_limit(bad)


def test_concentration_judges_eu_sourcing_of_strategic_materials_only():
    stages = {(s.stage, s.scope): s for s in concentration("Lithium")}
    eu = stages[("processing", "EU")]
    assert eu.largest_country == "Chile" and eu.largest_share == pytest.approx(0.79)
    assert eu.verdict == "breach" and "lithium — battery grade" in eu.reason
    cobalt = {(s.stage, s.scope): s for s in concentration("Cobalt")}
    # EU cobalt processing: Finland 62 %, Belgium 29 % are Member States; the largest third country
    # is China at 2 %
    assert cobalt[("processing", "EU")].largest_country == "China"
    assert cobalt[("processing", "EU")].verdict == "met"
    # niobium: Brazil supplies 82 % of EU processing, but niobium is not a strategic raw material,
    # so Art. 5(1)(b) does not apply (it is shown, not judged)
    niobium = {(s.stage, s.scope): s for s in concentration("Niobium")}
    assert niobium[("processing", "EU")].largest_share == pytest.approx(0.82)
    assert niobium[("processing", "EU")].verdict == "not assessed"
    assert "not a strategic raw material" in niobium[("processing", "EU")].reason
    # LREE is not strategic as a group, but Nd, Pr, Ce and Sm are (REE for permanent magnets)
    lree = {(s.stage, s.scope): s for s in concentration("LREE")}
    assert lree[("processing", "EU")].verdict == "breach"  # China 85 %


def test_company_sourcing_overrides_shipped_shares():
    own = pd.DataFrame(
        {
            "material": ["lithium"] * 2,  # any case; canonical name Lithium
            "stage": ["processing"] * 2,
            "scope": ["EU"] * 2,
            "country": ["Chile", "Australia"],
            "share": [0.5, 0.5],
        }
    )
    stages = {(s.stage, s.scope): s for s in concentration("Lithium", supply_shares(own))}
    assert stages[("processing", "EU")].hhi == pytest.approx(0.5)
    assert stages[("processing", "EU")].verdict == "met"  # 0.5 <= 0.65
    assert stages[("processing", "global")].largest_country == "China"  # other stages unchanged


def test_bad_override_rows_are_refused_by_row():
    base = {"stage": "processing", "scope": "EU", "country": "Chile", "share": 0.5}
    with pytest.raises(CritflowError, match=r"row 1: material.*'Li' stands for several"):
        supply_shares(pd.DataFrame([{"material": "Li", **base}]))
    with pytest.raises(CritflowError, match="'Unobtainium' is not a material"):
        supply_shares(pd.DataFrame([{"material": "Unobtainium", **base}]))
    for bad in ({"share": 1.5}, {"share": float("nan")}, {"scope": "world"}, {"stage": "mining"}):
        with pytest.raises(CritflowError, match="Use scope global or EU"):
            supply_shares(pd.DataFrame([{"material": "Cobalt", **base, **bad}]))


def test_unknown_material_on_the_command_line():
    result = critflow("criticality", "Lithum")
    assert result.returncode == 2 and "Did you mean 'Lithium'" in result.stderr
