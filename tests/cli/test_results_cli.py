"""The command line as a person meets it: formats and files of results, repeatable options, tied
ranks, the order of the commands, and the starter model of ``critflow init``."""

from __future__ import annotations

import csv
import io
import json

import pytest

import critflow
from critflow.cli.analyse import tied_ranks
from tests.conftest import EXAMPLE
from tests.conftest import critflow_cli as critflow_run

CRITERIA = EXAMPLE.parent / "route_criteria.yaml"


def test_tied_ranks():
    assert tied_ranks([0.5, 0.9, 0.5, 0.1]) == [2, 1, 2, 4]
    assert tied_ranks([0.3, 0.3 + 1e-15, 0.2]) == [1, 1, 3]  # rounding is a tie
    assert tied_ranks([1.0, 2.0, 3.0]) == [3, 2, 1]


def test_check_formats_agree(tmp_path):
    args = ("check", EXAMPLE, "-r", "battery-regulation", "-s", "baseline", "--year", "2027")
    as_json = critflow_run(*args, "--format", "json")
    assert as_json.returncode == 1  # a rule fails: exit code 1 whatever the format
    rows = json.loads(as_json.stdout)
    result = critflow_run(*args, "--format", "csv", "-o", tmp_path / "sub" / "check.csv")
    assert result.returncode == 1 and result.stdout == ""
    table = list(csv.DictReader((tmp_path / "sub" / "check.csv").open()))
    assert [r["rule"] for r in table] == [r["rule"] for r in rows]
    assert [r["status"] for r in table] == [r["status"] for r in rows]
    for r, row in zip(table, rows, strict=True):
        if row["value"] is not None:
            assert float(r["value"]) == pytest.approx(row["value"], rel=1e-12)
    text = critflow_run(*args, "-o", tmp_path / "check.txt")
    written = (tmp_path / "check.txt").read_text()
    shown = [r["rule"] for r in rows if r["status"] != "not applicable"]
    assert "\x1b[" not in written and all(rule in written for rule in shown)
    assert text.stdout == ""


def test_old_comma_form_still_works_with_a_note():
    new = critflow_run(
        "check", EXAMPLE, "-r", "battery-regulation", "-r", "crma", "--format", "json"
    )
    old = critflow_run("check", EXAMPLE, "--rules", "battery-regulation,crma", "--format", "json")
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert "deprecated" in old.stderr and "-r battery-regulation -r crma" in old.stderr
    assert "deprecated" not in new.stderr


def test_compare_repeatable_scenarios_ranks_and_csv(tmp_path):
    base = ("compare", EXAMPLE, "-c", CRITERIA)
    new = critflow_run(*base, "-s", "baseline", "-s", "no_decasing", "--format", "json")
    old = critflow_run(*base, "--scenarios", "baseline,no_decasing", "--format", "json")
    assert new.returncode == 0, new.stderr
    document = json.loads(new.stdout)
    assert document == json.loads(old.stdout) and "deprecated" in old.stderr
    assert list(document["scenarios"]) == ["baseline", "no_decasing"]
    for method in document["scenarios"]["baseline"]["scores"]:
        scores = [document["scenarios"][s]["scores"][method] for s in document["scenarios"]]
        ranks = [document["scenarios"][s]["ranks"][method] for s in document["scenarios"]]
        assert ranks == tied_ranks(scores)
    # baseline and decarbonised differ only in the climate: on flows-only criteria they tie
    result = critflow_run(*base, "--format", "csv", "-o", tmp_path / "c.csv")
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert [r["scenario"] for r in rows] == list(critflow.load_model(EXAMPLE).spec.scenarios), (
        result.stderr
    )
    by_name = {r["scenario"]: r for r in rows}
    for method in [k.removesuffix(" rank") for k in rows[0] if k.endswith(" rank")]:
        scores = [float(r[f"{method} score"]) for r in rows]
        assert [int(r[f"{method} rank"]) for r in rows] == tied_ranks(scores)
        assert by_name["baseline"][f"{method} rank"] == by_name["decarbonised"][f"{method} rank"]


def test_indicators_csv_equals_json():
    as_json = json.loads(
        critflow_run("indicators", EXAMPLE, "-s", "baseline", "--format", "json").stdout
    )
    as_csv = list(
        csv.DictReader(
            io.StringIO(
                critflow_run("indicators", EXAMPLE, "-s", "baseline", "--format", "csv").stdout
            )
        )
    )
    assert [r["indicator"] for r in as_csv] == [r["indicator"] for r in as_json]
    for r, row in zip(as_csv, as_json, strict=True):
        assert (r["value"] == "") == (row["value"] is None)
        if row["value"] is not None:
            assert float(r["value"]) == pytest.approx(row["value"], rel=1e-12)


def test_unknown_format_is_refused():
    result = critflow_run("indicators", EXAMPLE, "--format", "xml")
    assert result.returncode == 2 and "--format" in result.stderr and "csv" in result.stderr


def test_help_lists_commands_in_order():
    result = critflow_run("--help")
    text = result.stdout
    order = ["init", "validate", "run", "report", "indicators", "check", "compare", "serve"]
    positions = [text.index(f" {name} ") for name in order]
    assert positions == sorted(positions)
    assert "PROMETHEE II" in critflow_run("compare", "--help").stdout


def test_init_writes_a_starter_model_that_validates_and_solves(tmp_path):
    result = critflow_run("init", "my_plant", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "my_plant.yaml"
    text = path.read_text()
    assert text.count("\n#") + text.count("  # ") > 10  # commented for a new user
    assert critflow_run("validate", path).returncode == 0
    model = critflow.load_model(path)
    results = critflow.solve(model)
    flows = results.flows()
    last = flows[(flows["scenario"] == "baseline") & (flows["period"] == 2030)]
    cu = last[last["element"] == "Cu"].set_index("flow")["value"]
    # the loop by hand: smelter Cu input x = 850 · 0.95 + 0.8 · 0.10 x → x = 807.5 / 0.92
    x = 850 * 0.95 / (1 - 0.8 * 0.10)
    assert cu["remelted"] == pytest.approx(0.8 * 0.10 * x, rel=1e-9)
    assert cu["cathode"] == pytest.approx(0.99 * (0.92 - 0.10) * x, rel=1e-9)
    again = critflow_run("init", "my_plant", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
