"""The ``critflow`` command end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from tests.conftest import EXAMPLE, ROOT, critflow_cli

critflow = critflow_cli  # in this process; the installed command: test_entry_point_*


def test_run_writes_tables_with_right_totals(tmp_path):
    result = critflow("run", str(EXAMPLE), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Mass balance" in result.stdout and "closes" in result.stdout
    out = tmp_path / "out"
    for name in ("flows.csv", "flows.parquet", "balance.csv", "balance.parquet", "results.xlsx"):
        assert (out / name).stat().st_size > 0, name
    parquet = pd.read_parquet(out / "flows.parquet")  # tidy: a row per element
    assert list(parquet.columns) == [
        "scenario",
        "period",
        "flow",
        "from",
        "to",
        "element",
        "value",
        "unit",
    ]
    feed = parquet[(parquet.scenario == "baseline") & (parquet.flow == "nmc_cells")]
    # goods mass = sum of the elements: the feed time series {2025: 6000, 2030: 15000}
    assert feed.groupby("period")["value"].sum().loc[2025] == pytest.approx(6000, rel=1e-12)
    assert feed.groupby("period")["value"].sum().loc[2030] == pytest.approx(15000, rel=1e-12)
    flows = pd.read_csv(out / "flows.csv")  # for people: a row per flow, a column per element
    assert list(flows.columns[:6]) == ["scenario", "period", "flow", "from", "to", "goods [t/a]"]
    csv_feed = flows[(flows.scenario == "baseline") & (flows.flow == "nmc_cells")]
    assert csv_feed.set_index("period")["goods [t/a]"].loc[2030] == pytest.approx(15000, rel=1e-12)
    elements = [c for c in flows.columns if c.endswith(" [t/a]") and c != "goods [t/a]"]
    assert flows[elements].to_numpy().sum() == pytest.approx(parquet["value"].sum(), rel=1e-12)
    balance = pd.read_csv(out / "balance.csv")
    assert (balance["residual"].abs() <= 1e-9 * balance[["input", "output"]].max(axis=1)).all()
    book = openpyxl.load_workbook(out / "results.xlsx", read_only=True)
    # the summary workbook: key figures, balance and flows of one period, then the small tables
    assert book.sheetnames == [
        "run",
        "kpis",
        "balance",
        "flows",
        "recovery",
        "recycling_efficiency",
        "material_recovery",
        "compliance",
        "impact_summary",
        "impact_processes",
        "impact_items",
        "impact_products",
        "cost_annual",
        "cost_project",
    ]
    # the impact tables add up: processes and items each sum to the scenario's total
    summary = pd.read_csv(out / "impact_summary.csv").set_index(["scenario", "period"])
    for name in ("impact_processes", "impact_items"):
        parts = pd.read_csv(out / f"{name}.csv").groupby(["scenario", "period"])["impact"].sum()
        assert np.allclose(parts.loc[summary.index], summary["impact"], rtol=1e-12)
    recycling = pd.read_csv(out / "recycling_efficiency.csv")
    # every output of the example has a fate; RE = recycled / input for each scenario and year
    assert (
        recycling["recycled"] / recycling["input"] - recycling["recycling_efficiency"]
    ).abs().max() < 1e-12
    header = next(book["flows"].iter_rows(max_row=1, values_only=True))
    assert "Li [t/a]" in header and "goods [t/a]" in header


def test_run_one_scenario_to_default_folder(tmp_path):
    result = critflow("run", str(EXAMPLE), "--scenario", "no_decasing", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    flows = pd.read_csv(tmp_path / "out" / "battery_recycling_hydromet" / "flows.csv")
    assert set(flows.scenario) == {"no_decasing"}


def test_validate_and_version():
    result = critflow("validate", str(EXAMPLE))
    assert result.returncode == 0 and "is valid" in result.stdout
    version = critflow("--version")
    assert version.returncode == 0 and version.stdout.startswith("critflow ")


def test_schema_is_json_schema_that_accepts_the_example():
    result = critflow("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text())))
    jsonschema.validate(data, schema)
    data["processes"][0]["knd"] = "source"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("  - {id: collection, kind: source", "  - {id: collection, kind: source,"),
            "YAML syntax error",
        ),
        (("    to: decasing_nmc\n", "    to: decasing_nmx\n"), "Did you mean 'decasing_nmc'?"),
        (("unit: t/a\n", "unit: t\n"), "is not a mass flow"),
    ],
)
def test_bad_model_exits_2_without_traceback(tmp_path, change, expected):
    text = EXAMPLE.read_text()
    assert change[0] in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(change[0], change[1], 1))
    result = critflow("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert not (tmp_path / "out").exists()


def test_missing_file_and_unknown_scenario_exit_2(tmp_path):
    missing = critflow("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    scenario = critflow("run", str(EXAMPLE), "--scenario", "basline", "--out", str(tmp_path / "o"))
    assert scenario.returncode == 2 and "Did you mean 'baseline'?" in scenario.stderr


def test_unwritable_output_folder_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = critflow("run", str(EXAMPLE), "--out", str(blocker / "out"))
    assert result.returncode == 2
    assert "cannot be written there" in result.stderr and "Traceback" not in result.stderr


EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("shape: 2.3, scale: pack_life_scale", "shape = -1 is impossible for a weibull lifetime"),
        ("total: 14000", "sum to 14000 t, not the total 15000 t"),
    ],
)
def test_bad_stock_exits_2_naming_process_and_parameter(tmp_path, change, expected):
    text = EV.read_text()
    assert change in text
    bad = change.replace("shape: 2.3", "shape: -1").replace("total: 14000", "total: 15000")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eu_bev_registrations.csv").write_text(
        (ROOT / "examples" / "data" / "eu_bev_registrations.csv").read_text()
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(change, bad))
    result = critflow("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "processes[2]" in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_prints_where_a_cohort_is(tmp_path):
    out_csv = tmp_path / "trace.csv"
    args = ("trace", str(EV), "--stock", "ev_fleet", "--cohort", "2030", "-s", "baseline")
    result = critflow(*args)
    assert result.returncode == 0, result.stderr
    assert "ev_fleet (after recycling)" in result.stdout and "Longevity of Li" in result.stdout
    written = critflow(*args, "--out", str(out_csv))  # the full trace, as CSV (its extension)
    assert written.returncode == 0 and written.stdout == "", written.stderr
    import pandas as pd

    table = pd.read_csv(out_csv)
    assert np.allclose(table.groupby(["period", "element"])["share"].sum(), 1.0)
    wrong = critflow("trace", str(EV), "--stock", "ev_flet", "--cohort", "2030")
    assert wrong.returncode == 2 and "Did you mean 'ev_fleet'?" in wrong.stderr


def test_impact_command_table_json_and_bad_input(tmp_path):
    result = critflow(
        "impact",
        str(EXAMPLE),
        "--reference",
        "baseline",
        "--samples",
        "200",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "kg CO2-eq/kg product" in result.stdout and "NPV" in result.stdout
    assert (tmp_path / "impact_products.csv").exists() and (tmp_path / "cost_project.csv").exists()
    result = critflow(
        "impact",
        str(EXAMPLE),
        "-s",
        "decarbonised",
        "--reference",
        "baseline",
        "--year",
        "2030",
        "--format",
        "json",
    )
    document = json.loads(result.stdout)
    rows = {r["scenario"]: r for r in document["summary"]}
    assert rows["decarbonised"]["intensity_change"] == pytest.approx(
        rows["decarbonised"]["intensity"] / rows["baseline"]["intensity"] - 1, rel=1e-12
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("sodium_carbonate: 9.16 t/t", "soda_ash: 9.16 t/t"))
    result = critflow("impact", str(bad))
    assert result.returncode == 2
    assert "'soda_ash' is not an inventory item" in result.stderr
    assert "bad.yaml, line" in result.stderr and "Traceback" not in result.stderr


def test_run_with_samples_on_two_local_workers(tmp_path):
    result = critflow(
        "run",
        str(EXAMPLE),
        "-s",
        "baseline",
        "--samples",
        "400",
        "--seed",
        "3",
        "--chunk-size",
        "100",
        "--workers",
        "2",
        "--keep-samples",
        "--out",
        str(tmp_path / "mc"),
    )
    assert result.returncode == 0, result.stderr
    assert "Monte Carlo: 400 samples" in result.stdout and "2 local workers" in result.stdout
    stats = pd.read_csv(tmp_path / "mc" / "indicators_stats.csv")
    li = stats[
        (stats.indicator == "material_recovery") & (stats.element == "Li") & (stats.period == 2030)
    ]
    assert 0.85 < li["mean"].iloc[0] < 0.95 and li["sd"].iloc[0] > 0
    raw = pd.read_parquet(tmp_path / "mc" / "samples.parquet")
    assert raw["sample"].nunique() == 400
    flows = pd.read_csv(tmp_path / "mc" / "flows_stats.csv")
    mean = flows[(flows.flow == "lithium_carbonate") & (flows.period == 2030)]["mean"].sum()
    assert mean == pytest.approx(raw[raw.period == 2030]["lithium_carbonate"].mean(), rel=1e-9)


def test_bad_distribution_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("low: 0.80, high: 0.95}", "low: 0.95, high: 0.99}"))
    result = critflow("run", str(bad), "--samples", "10")
    assert result.returncode == 2
    assert "parameters.decasing_yield" in result.stderr and "low <= value <= high" in result.stderr


def test_reconcile_command(tmp_path):
    example = ROOT / "examples" / "flotation_reconciliation.yaml"
    result = critflow("reconcile", str(example), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "the global test passes" in result.stdout
    flows = pd.read_csv(tmp_path / "r" / "reconciled_flows.csv")
    goods = flows[flows.flow == "feed"]["value"].sum()
    assert goods == pytest.approx(100.545, abs=1e-3)
    # a solve is refused: the splits come from the measurements
    refused = critflow("run", str(example), "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and "critflow reconcile" in refused.stderr
    # a gross error: report with the suspect, exit code 1
    biased = tmp_path / "biased.yaml"
    biased.write_text(
        example.read_text().replace(
            "{flow: concentrate, value: 12, sd: 0.5}", "{flow: concentrate, value: 16, sd: 0.5}"
        )
    )
    result = critflow("reconcile", str(biased), "--out", str(tmp_path / "b"))
    assert result.returncode == 1
    assert "fails" in result.stdout and "Suspect measurements" in result.stdout
    assert "concentrate goods" in result.stdout.split("Suspect measurements")[1]
    # a measurement of a flow that does not exist: exit code 2 naming it
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        example.read_text().replace("{flow: feed, value: 100", "{flow: fed, value: 100")
    )
    result = critflow("reconcile", str(wrong))
    assert (
        result.returncode == 2
        and "no flow 'fed'" in result.stderr
        and "Did you mean 'feed'" in result.stderr
    )


def test_reconcile_names_unobservable_flows_and_ties(tmp_path):
    example = ROOT / "examples" / "flotation_circuit_reconciliation.yaml"
    result = critflow("reconcile", str(example), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    # goods on six streams, Cu assays on four, Fe on two: the scavenger loop's Cu and the circuit's
    # Fe and rest are named, with no value; every goods mass is reconciled
    assert (
        "Fe, rest in rougher_conc; Cu, Fe, rest in rougher_tail; Fe, rest in cleaner_tail; " in said
    )
    assert "Cu, Fe, rest in scavenger_conc." in said
    assert "Their goods masses are reconciled (reconciled_goods.csv)" in said
    flows = pd.read_csv(tmp_path / "r" / "reconciled_flows.csv")
    hidden = flows[flows.status == "unobservable"]
    assert len(hidden) == 10 and hidden["value"].isna().all()
    goods = pd.read_csv(tmp_path / "r" / "reconciled_goods.csv").set_index("flow")
    assert goods["observable"].all() and (goods["status"] == "reconciled").all()
    g = goods["value"]
    assert g["rougher_tail"] == pytest.approx(g["scavenger_conc"] + g["final_tail"], rel=1e-12)
    # a gross error in rougher_conc: it and cleaner_tail enter the goods balances in the same
    # proportions, so the suspects come as groups, and the report says they cannot be told apart
    biased = tmp_path / "biased.yaml"
    biased.write_text(
        example.read_text().replace(
            "{flow: rougher_conc, value: 13.6", "{flow: rougher_conc, value: 19.6"
        )
    )
    result = critflow("reconcile", str(biased), "--out", str(tmp_path / "b"))
    assert result.returncode == 1
    said = " ".join(result.stdout.split())
    assert "rougher_conc goods, cleaner_tail goods — cannot be told apart" in said
    measured = pd.read_csv(tmp_path / "b" / "measurements.csv").set_index("measurement")
    assert measured.loc["rougher_conc goods", "tied_with"] == "cleaner_tail goods"
    assert measured.loc["rougher_conc goods", "z"] == pytest.approx(
        measured.loc["cleaner_tail goods", "z"], rel=1e-9
    )
    # a measured value that is not a number: exit code 2 naming the measurement
    broken = tmp_path / "nan.yaml"
    broken.write_text(
        example.read_text().replace(
            "{flow: final_conc, value: 4.05", "{flow: final_conc, value: .nan"
        )
    )
    result = critflow("reconcile", str(broken))
    assert result.returncode == 2 and "measurements[2].value" in result.stderr
    assert "the value is NaN" in result.stderr and "Traceback" not in result.stderr


def test_criticality_with_a_models_own_sourcing(tmp_path):
    model = tmp_path / "sourcing.yaml"
    model.write_text(
        "critflow: 1\nname: cobalt sourcing\ntime: {start: 2025, end: 2025}\nelements: [Co]\n"
        "processes: [{id: supplier, kind: source}, {id: plant, kind: sink}]\n"
        "flows: [{id: cobalt, from: supplier, to: plant, value: 10}]\n"
        "criticality:\n  shares:\n"
        "    - {material: Cobalt, stage: processing, scope: global, country: Finland, share: 0.8,\n"
        "       source: purchasing 2025}\n"
        "    - {material: Cobalt, stage: processing, scope: global, country: China, share: 0.2,\n"
        "       source: purchasing 2025}\n"
    )
    result = critflow("criticality", "Cobalt", "--model", str(model))
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "processing (global)" in line)
    assert "0.68" in row and "China 20%" in row  # HHI 0.8² + 0.2²; the largest third country
    assert "2 supply shares replaced by your own (purchasing 2025)" in result.stdout


def test_run_regional_example_lists_no_generated_helpers(tmp_path):
    """`critflow run` on the regional battery example: the summary's largest flows leave out the
    total of a split supply (supply.total[…], a generated helper) and name one origin's part by
    the source it leaves at that origin; flows.csv keeps region, product and origin columns."""
    example = ROOT / "examples" / "eu_battery_materials_regions.yaml"
    result = critflow_cli("run", str(example), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert ".total[" not in text and ".by_origin[" not in text, text
    flows = pd.read_csv(tmp_path / "o" / "flows.csv")
    assert {"region", "product", "from_region", "Li [t/a]"} <= set(flows.columns)
    supply = flows[(flows.flow == "supply") & (flows.period == 2030)]
    assert set(supply.from_region) >= {"CL", "CH", "AR", "RoW"}


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("3", "3")])
def test_the_command_keeps_openblas_to_one_thread_unless_told(given, expected):
    """OpenBLAS's idle threads spin on the cores the writers need; a number the user set wins."""
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    }
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = (
        "import os, sys; sys.argv = ['critflow', '--version']; from critflow.cli import main; "
        "main(); import numpy; print(os.environ['OPENBLAS_NUM_THREADS'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split()[-1] == expected


def test_a_thread_count_set_through_omp_is_left_to_openblas():
    """OpenBLAS reads OMP_NUM_THREADS when OPENBLAS_NUM_THREADS is unset: the user's choice."""
    import os

    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS")
    }
    env["OMP_NUM_THREADS"] = "2"
    code = (
        "import os, sys; sys.argv = ['critflow', '--version']; from critflow.cli import main; "
        "main(); print(os.environ.get('OPENBLAS_NUM_THREADS', 'unset'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split()[-1] == "unset"
