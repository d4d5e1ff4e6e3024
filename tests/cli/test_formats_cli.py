"""--format table|json|csv and the results file on blend, criticality, trace, impact, reconcile and
sensitivity: json holds the numbers the table shows (parsed from both), csv the rows of json."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import EXAMPLE, ROOT
from tests.conftest import critflow_cli as critflow_run

BLEND = ROOT / "examples" / "aluminium_scrap_blending.yaml"
EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"
FLOTATION = ROOT / "examples" / "flotation_reconciliation.yaml"


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text`` (cells stripped), header rows left out."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.strip().startswith("│")
    ]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def formats(*args) -> tuple[str, object, list[dict[str, str]]]:
    """The table, the parsed JSON and the CSV rows of one command."""
    runs = {f: critflow_run(*args, "--format", f) for f in ("table", "json", "csv")}
    for name, result in runs.items():
        assert result.returncode in (0, 1), (name, result.stderr)
        assert "Traceback" not in result.stderr
    return runs["table"].stdout, json.loads(runs["json"].stdout), csv_rows(runs["csv"].stdout)


def test_blend_json_and_csv_hold_the_tables_tonnes():
    table, document, rows = formats("blend", BLEND)
    shown = {(r[0], r[1]) for r in table_rows(table) if len(r) == 3}
    expected = {
        (material, f"{tonnes:,.1f}")
        for recipe in document["recipe"].values()
        for material, tonnes in recipe.items()
        if tonnes > 1e-6
    }
    assert shown == expected and len(shown) > 5
    assert len(rows) == sum(len(r) for r in document["recipe"].values())
    for row in rows:
        assert float(row["tonnes"]) == pytest.approx(
            document["recipe"][row["product"]][row["material"]], rel=1e-12
        )
    assert f"Cost {document['totals']['cost']:,.0f}" in table


def test_criticality_json_and_csv_hold_the_tables_numbers():
    table, document, rows = formats("criticality", "Li", "Co")
    materials = {m["material"]: m for m in document["materials"]}
    shown = table_rows(table)
    firsts = {r[0]: r for r in shown if r[0]}
    assert set(materials) == set(firsts) and {"Lithium", "Cobalt"} <= set(materials)
    for name, material in materials.items():
        assert firsts[name][2].startswith(f"{material['supply_risk']:.1f}")
        assert firsts[name][3] == f"{material['economic_importance']:.1f}"
    hhis = sorted(r[7] for r in shown if r[7] != "—")
    assert hhis == sorted(f"{s['hhi']:.2f}" for m in materials.values() for s in m["stages"])
    assert len(rows) == len(shown)  # one row per material and stage (or a material without)
    assert sorted(f"{float(r['hhi']):.2f}" for r in rows if r["hhi"]) == hhis
    assert document["limit"]["label"] in table


def test_trace_json_and_csv_hold_the_tables_shares(tmp_path):
    args = ("trace", EV, "--stock", "ev_fleet", "--cohort", "2030", "--every", "10")
    table, document, rows = formats(*args)
    trace = document["trace"]
    assert len(rows) == len(trace)
    share = {
        (r["scenario"], r["element"], r["where"], r["period"]): r["share"]
        for r in trace
        if r["scenario"] == "baseline" and r["element"] == "Li"
    }
    first = table.split("Ni of the 2030 cohort")[0]  # the first table: Li, baseline
    years = [2030, 2040, 2050]
    body = [r for r in table_rows(first)]
    assert body
    for row in body:
        assert row[1:] == [f"{share[('baseline', 'Li', row[0], y)]:.1%}" for y in years]
    for item in document["longevity"]:
        assert f"Longevity of {item['element']} ({item['scenario']}): {item['years']:.1f}" in table
    # the old way still writes the full trace as CSV: the format follows the extension
    old = critflow_run(*args, "--out", tmp_path / "trace.csv")
    assert old.returncode == 0 and old.stdout == ""
    assert csv_rows((tmp_path / "trace.csv").read_text()) == rows


def test_impact_json_and_csv_hold_the_summary(tmp_path):
    table, document, rows = formats("impact", EXAMPLE, "-s", "baseline")
    (summary,) = document["summary"]
    (row,) = rows
    cells = next(r for r in table_rows(table) if r[0] == "baseline")
    assert cells[1:5] == [
        f"{summary['impact'] / 1e3:,.1f}",
        f"{summary['credits'] / 1e3:,.1f}",
        f"{summary['net'] / 1e3:,.1f}",
        f"{summary['intensity']:.3f}",
    ]
    for key in ("impact", "credits", "net", "intensity"):
        assert float(row[key]) == pytest.approx(summary[key], rel=1e-12)
    # -o is still the folder of CSV tables; --out-file the printed results
    result = critflow_run(
        "impact", EXAMPLE, "-s", "baseline", "-o", tmp_path / "tables",
        "--out-file", tmp_path / "impact.json",
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == ""
    assert (tmp_path / "tables" / "impact_summary.csv").exists()
    assert json.loads((tmp_path / "impact.json").read_text()) == document


def test_reconcile_json_and_csv_hold_the_measurements(tmp_path):
    args = ("reconcile", FLOTATION, "-o", tmp_path / "rec")
    table, document, rows = formats(*args)
    measured = [m for r in document for m in r["measurements"]]
    assert len(rows) == len(measured) > 3
    reconciled = [r[3] for r in table_rows(table) if len(r) == 8]
    assert reconciled == [f"{m['reconciled']:.6g}" for m in measured]
    for row, m in zip(rows, measured, strict=True):
        assert row["measurement"] == m["measurement"]
        assert float(row["reconciled"]) == pytest.approx(m["reconciled"], rel=1e-12)
    assert (tmp_path / "rec" / "reconciled_flows.csv").exists()


SCENARIOS = """
critflow: 1
name: two feeds
time: {start: 2025, end: 2025}
elements: [Cu]
parameters:
  feed_a: {value: 50, distribution: uniform, low: 0, high: 100}
  feed_b: {value: 25, distribution: uniform, low: 0, high: 50}
processes:
  - {id: mine_a, kind: source}
  - {id: mine_b, kind: source}
  - {id: smelter, kind: transfer}
  - {id: market, kind: sink}
flows:
  - {id: a, from: mine_a, to: smelter, value: feed_a}
  - {id: b, from: mine_b, to: smelter, value: feed_b}
  - {id: total, from: smelter, to: market}
scenarios:
  base: {}
  small_b:
    parameters: {feed_b: {value: 5, distribution: uniform, low: 0, high: 10}}
"""


def test_sensitivity_takes_several_scenarios(tmp_path):
    model = tmp_path / "two.yaml"
    model.write_text(SCENARIOS)
    args = ("sensitivity", model, "--output", "flow:total", "--samples", "256")
    both = critflow_run(*args, "-s", "base", "-s", "small_b", "-o", tmp_path / "s.json")
    assert both.returncode == 0, both.stderr
    documents = json.loads((tmp_path / "s.json").read_text())
    assert [d["scenario"] for d in documents] == ["base", "small_b"]
    a = [{r["input"]: r["S1"] for r in d["indices"]} for d in documents]
    # Var(a) = 100²/12 against Var(b) = 50²/12, then 10²/12: S1(a) = 0.8, then 0.99
    assert a[0]["parameters.feed_a"] == pytest.approx(0.8, abs=0.08)
    assert a[1]["parameters.feed_a"] == pytest.approx(100**2 / (100**2 + 10**2), abs=0.05)
    one = critflow_run(*args, "-s", "small_b", "--format", "json")
    assert json.loads(one.stdout) == documents[1]  # one scenario: one document, as before
    table = critflow_run(*args, "-s", "base", "-s", "small_b").stdout
    assert "flow:total, base" in table and "flow:total, small_b" in table


def test_format_from_the_file_extension_and_unknown_formats(tmp_path):
    result = critflow_run("criticality", "Li", "-o", tmp_path / "c.json")
    assert result.returncode == 0 and json.loads((tmp_path / "c.json").read_text())["materials"]
    result = critflow_run("criticality", "Li", "-o", tmp_path / "c.txt")
    assert "EU criticality" in (tmp_path / "c.txt").read_text()
    for command in (("blend", BLEND), ("criticality", "Li"), ("impact", EXAMPLE)):
        refused = critflow_run(*command, "--format", "xml")
        assert refused.returncode == 2 and "'xml' is not a format" in refused.stderr


def _commands():
    """Every command of ``critflow`` (groups' subcommands included): (path, click command)."""
    import typer.main

    from critflow.cli.app import app

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


@pytest.mark.parametrize("path, command", _commands(), ids=lambda v: " ".join(v) or "critflow"
                         if isinstance(v, list) else "")  # fmt: skip
def test_every_help_exits_0_and_names_every_option(path, command):
    result = critflow_run(*path, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name == "argument":
            continue
        names = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")]
        assert any(name in text for name in names), (path, names)
        assert param.help, (path, names)  # every option says what it does
