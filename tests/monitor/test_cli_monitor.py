"""``critflow monitor screen`` and ``critflow monitor unfc`` through the real command group."""

from __future__ import annotations

import json

from tests.conftest import ROOT, critflow_cli

EXAMPLES = ROOT / "examples" / "monitor"
MODEL = ROOT / "examples" / "battery_recycling_hydromet.yaml"


def test_screen_an_eligible_proposal_with_a_model_and_write_the_sheet(tmp_path):
    sheet = tmp_path / "sheet.html"
    result = critflow_cli(
        "monitor", "screen", EXAMPLES / "proposal_icon_battery_recycling.yaml",
        "--model", MODEL, "--out", sheet,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "eligible" in result.stdout and "icon-consortium" in result.stdout
    assert "roadmap-1.1-rm-li" not in result.stdout  # the table shows values, not rule ids
    assert "90%" in result.stdout  # the model's lithium recovery
    assert sheet.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_screen_exit_code_1_when_not_eligible_or_too_late():
    result = critflow_cli("monitor", "screen", EXAMPLES / "proposal_icon_two_companies.yaml")
    assert result.returncode == 1 and "not eligible" in result.stdout
    result = critflow_cli("monitor", "screen", EXAMPLES / "proposal_csbo_late_start.yaml", "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["too_late"] is True and document["window"] is None
    assert document["colours"][0]["verdict"].startswith("too late")


def test_a_bad_proposal_is_a_paragraph_and_exit_code_2(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "title: X\ninstrument: icon\ndomains: ['1.7']\nstart_year: 2026\n"
        "partners: [{organisation: A, kind: company}]\n",
        encoding="utf-8",
    )
    result = critflow_cli("monitor", "screen", path)
    assert result.returncode == 2
    assert "domains[0]" in result.stderr and "no focus domain '1.7'" in result.stderr
    assert "Traceback" not in result.stderr
    result = critflow_cli(
        "monitor",
        "screen",
        EXAMPLES / "proposal_icon_two_companies.yaml",
        "--out",
        tmp_path / "s.docx",
    )
    assert result.returncode == 2 and "neither .html nor .pdf" in result.stderr


def test_unfc_prints_classes_and_tonnes_per_class_and_element():
    result = critflow_cli("monitor", "unfc", EXAMPLES / "unfc_zinc_residue.yaml")
    assert result.returncode == 0, result.stderr
    assert "Potentially viable projects — Development pending" in result.stdout
    assert "42,000" in result.stdout and "E3.2 F2.2 G3" in result.stdout
    result = critflow_cli("monitor", "unfc", EXAMPLES / "unfc_zinc_residue.yaml", "--json")
    totals = json.loads(result.stdout)["totals"]
    zinc = {t["class_name"]: t["tonnes"] for t in totals if t["element"] == "Zn"}
    # the example file: 8,000 t viable, 42,000 t potentially viable, 15,000 t remaining
    assert zinc == {
        "Viable projects": 8000.0,
        "Potentially viable projects": 42000.0,
        "Remaining products not developed from identified projects": 15000.0,
    }


def test_unfc_refuses_a_contradictory_combination(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "project: P\nevaluator: me\ndate: 2026-01-01\nquantities:\n"
        "  - {source_type: landfill, element: Zn, tonnes: 5, reference_point: Zn,"
        " e: E1, f: F4, g: G2, justification: x}\n",
        encoding="utf-8",
    )
    result = critflow_cli("monitor", "unfc", path)
    assert result.returncode == 2
    assert "quantities[0]" in result.stderr and "E is one of E3" in result.stderr


def test_monitor_is_listed_and_has_its_commands():
    result = critflow_cli("monitor", "--help")
    assert result.returncode == 0 and "screen" in result.stdout and "unfc" in result.stdout
    assert "monitor" in critflow_cli("--help").stdout


def test_roadmap_lists_kpis_instruments_and_the_unknown_cells():
    result = critflow_cli("monitor", "roadmap")
    assert result.returncode == 0, result.stderr
    assert "1.3-srm-from-responsible-mining" in result.stdout and "7%" in result.stdout
    assert "min_unrelated_companies" in result.stdout
    # 10 domains x 2 rated instruments x 2 windows, none given in the roadmap's text
    assert "0 of 40 cells given; 40 unknown" in result.stdout


def test_missing_files_say_which_file_was_expected(tmp_path):
    result = critflow_cli("monitor", "screen", tmp_path / "nope.yaml")
    assert result.returncode == 2 and "no such proposal file" in result.stderr
    result = critflow_cli(
        "monitor", "screen", EXAMPLES / "proposal_icon_two_companies.yaml",
        "--roadmap", tmp_path / "other.yaml",
    )  # fmt: skip
    assert result.returncode == 2 and "no such roadmap file" in result.stderr
    result = critflow_cli("monitor", "unfc", tmp_path)
    assert result.returncode == 2 and "a classification file was expected" in result.stderr
