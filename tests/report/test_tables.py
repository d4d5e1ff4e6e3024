"""The tables a run writes: Parquet and CSV that read back as the results exactly, and an Excel
summary whose numbers are the Parquet tables' aggregates (computed here with plain pandas)."""

from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

import critflow as cf
from critflow.analysis import Run
from critflow.report import tables
from tests.conftest import EXAMPLE
from tests.conftest import critflow_cli as critflow

FLEET = """
critflow: 1
name: fleet with a stock
time: {start: 2020, end: 2030}
unit: t/a
elements: [Li, rest]
parameters: {collection: 0.8}
processes:
  - {id: mine, kind: source}
  - {id: production, kind: market, balancing: primary}
  - id: fleet
    kind: stock
    lifetime: {distribution: weibull, shape: 2.3, scale: 6}
    driven_by: inflow
  - id: collection
    kind: transfer
    transfer: {to_recycling: {default: collection}, lost: {default: 1 - collection}}
  - id: recycling
    kind: transfer
    transfer: {secondary: {Li: 0.9, rest: 0.0}, residue: {Li: 0.1, rest: 1.0}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: production}
  - {id: sales, from: production, to: fleet, value: {2020: 500, 2030: 2000}, composition: {Li: 0.02}}
  - {id: eol, from: fleet, to: collection}
  - {id: to_recycling, from: collection, to: recycling}
  - {id: lost, from: collection, to: landfill}
  - {id: secondary, from: recycling, to: production}
  - {id: residue, from: recycling, to: landfill}
scenarios:
  baseline: {}
  poor_collection: {parameters: {collection: 0.4}}
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    path = folder / "fleet.yaml"
    path.write_text(FLEET)
    return path


def _run(model, out, *options):
    result = critflow("run", str(model), "--out", str(out), *options)
    assert result.returncode == 0, result.stderr
    return out


def _sheet(path, name) -> pd.DataFrame:
    return pd.read_excel(path, sheet_name=name, engine="openpyxl")


def test_parquet_and_csv_read_back_as_the_results_exactly(fleet, tmp_path):
    out = _run(fleet, tmp_path / "o")
    results = cf.solve(cf.load_model(fleet))
    expected = results.flows()
    # independent of the table code: rows are scenario, period, element, flow in array order
    assert np.array_equal(expected["value"].to_numpy(), results.values.reshape(-1))
    parquet = pd.read_parquet(out / "flows.parquet")
    pd.testing.assert_frame_equal(parquet, expected)
    # flows.csv: a row per scenario, period and flow, a column per element (pandas 3 parses
    # floats exactly): the same numbers, laid out from the array independently of the table code
    csv = pd.read_csv(out / "flows.csv")
    topo = results.inputs.topology
    unit = results.unit
    assert list(csv.columns) == ["scenario", "period", "flow", "from", "to"] + [
        f"{e} [{unit}]" for e in ["goods", *topo.elements]
    ]
    n_s, n_p, n_e, n_f = results.values.shape
    by_row = results.values.transpose(0, 1, 3, 2).reshape(-1, n_e)  # (S·P·F, E)
    for e, element in enumerate(topo.elements):
        assert np.array_equal(csv[f"{element} [{unit}]"].to_numpy(), by_row[:, e]), element
    assert np.allclose(csv[f"goods [{unit}]"], by_row.sum(axis=1), rtol=1e-15, atol=0)
    assert csv["scenario"].tolist() == list(np.repeat(results.inputs.scenarios, n_p * n_f))
    assert np.array_equal(csv["period"], np.tile(np.repeat(results.inputs.periods, n_f), n_s))
    assert csv["flow"].tolist() == list(topo.flow_ids) * (n_s * n_p)
    ids = topo.process_ids
    assert csv["from"].tolist() == [ids[u] for u in topo.flow_from] * (n_s * n_p)
    assert csv["to"].tolist() == [ids[u] for u in topo.flow_to] * (n_s * n_p)
    balance = pd.read_parquet(out / "balance.parquet")
    pd.testing.assert_frame_equal(balance, results.balance())
    stocks = pd.read_parquet(out / "stocks.parquet")
    assert np.allclose(
        stocks["in_use"].to_numpy(), (results.stocks.stock_kg / 1000).reshape(-1), rtol=1e-12
    )


@pytest.mark.parametrize("period", ["last", "2025", "all"])
def test_the_summary_workbook_holds_the_parquet_tables_aggregates(fleet, tmp_path, period):
    out = _run(fleet, tmp_path / "o", "--excel-period", period)
    flows = pd.read_parquet(out / "flows.parquet")
    balance = pd.read_parquet(out / "balance.parquet")
    stocks = pd.read_parquet(out / "stocks.parquet")
    book = out / "results.xlsx"
    if period == "all":
        label, unit = "2020–2030 total", "t"
        chosen = flows
        chosen_balance = balance
    else:
        year = 2030 if period == "last" else int(period)
        label, unit = year, "t/a"
        chosen = flows[flows["period"] == year]
        chosen_balance = balance[balance["period"] == year]
    info = _sheet(book, "run").set_index("item")["value"]
    assert info["period shown"] == ("all periods (totals)" if period == "all" else str(label))

    sheet = _sheet(book, "flows")
    assert (sheet["period"].astype(str) == str(label)).all()
    goods = chosen.groupby(["scenario", "flow"], observed=True)["value"].sum()
    lithium = (
        chosen[chosen["element"] == "Li"]
        .groupby(["scenario", "flow"], observed=True)["value"]
        .sum()
    )
    keyed = sheet.set_index(["scenario", "flow"])
    assert len(sheet) == len(goods)
    assert np.allclose(keyed[f"goods [{unit}]"].loc[goods.index], goods, rtol=1e-12, atol=0)
    assert np.allclose(keyed[f"Li [{unit}]"].loc[lithium.index], lithium, rtol=1e-12, atol=0)

    sheet = _sheet(book, "balance").set_index(["scenario", "process"])
    sums = chosen_balance.groupby(["scenario", "process"])[
        ["input", "output", "stock_change"]
    ].sum()
    for column in ("input", "output", "stock_change"):
        assert np.allclose(
            sheet[f"{column} [{unit}]"].loc[sums.index], sums[column], rtol=1e-12, atol=1e-9
        ), column

    # key figures: scenarios as columns; input from the sources = the flows leaving the mine
    kpis = _sheet(book, "kpis")
    row = kpis[(kpis["kpi"] == f"input from sources [{unit}]") & (kpis["element"] == "goods")]
    mined = chosen[chosen["from"] == "mine"].groupby("scenario", observed=True)["value"].sum()
    for scenario in ("baseline", "poor_collection"):
        assert row[scenario].iloc[0] == pytest.approx(mined[scenario], rel=1e-12)
    # poorer collection mines more
    assert mined["poor_collection"] > mined["baseline"]

    sheet = _sheet(book, "stocks")
    end = 2030 if period == "all" else label
    in_use = stocks[stocks["period"] == end].groupby(["scenario", "element"])["in_use"].sum()
    keyed = sheet.set_index(["scenario", "element"])
    assert np.allclose(keyed["in_use [t]"].loc[in_use.index], in_use, rtol=1e-12)
    chosen_stocks = stocks if period == "all" else stocks[stocks["period"] == label]
    inflow = chosen_stocks.groupby(["scenario", "element"])["inflow"].sum()
    assert np.allclose(keyed[f"inflow [{unit}]"].loc[inflow.index], inflow, rtol=1e-12)


def test_excel_full_writes_every_row(fleet, tmp_path):
    out = _run(fleet, tmp_path / "o", "--excel", "full")
    flows = pd.read_parquet(out / "flows.parquet")
    balance = pd.read_parquet(out / "balance.parquet")
    sheet = _sheet(out / "results.xlsx", "flows")
    # one row per scenario, period and flow; one column per element
    assert len(sheet) == len(flows) // 2
    wide = flows.pivot_table(
        index=["scenario", "period", "flow"], columns="element", values="value", observed=True
    )
    keyed = sheet.set_index(["scenario", "period", "flow"])
    for element in ("Li", "rest"):
        assert np.allclose(keyed[f"{element} [t/a]"].loc[wide.index], wide[element], rtol=1e-12)
    sheet = _sheet(out / "results.xlsx", "balance")
    assert len(sheet) == len(balance)
    assert np.allclose(sheet["residual [t/a]"], balance["residual"], atol=1e-9)


def test_excel_full_continues_past_the_sheet_row_limit(fleet, tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "EXCEL_MAX_ROWS", 50)
    run = Run.solve(cf.load_model(fleet))
    paths = tables.write_tables(run, tmp_path, tables.ExcelChoice("full"))
    book = openpyxl.load_workbook(paths["results.xlsx"], read_only=True)
    flow_sheets = [n for n in book.sheetnames if n == "flows" or n.startswith("flows_")]
    rows = sum(sum(1 for _ in book[n].iter_rows(min_row=2)) for n in flow_sheets)
    n_s, n_p, _, n_f = run.results.values.shape
    assert rows == n_s * n_p * n_f and len(flow_sheets) == -(-rows // 50)


def test_excel_none_and_a_bad_period(fleet, tmp_path):
    out = _run(fleet, tmp_path / "o", "--excel", "none")
    assert not (out / "results.xlsx").exists() and (out / "flows.parquet").exists()
    for option, value, expected in (
        ("--excel-period", "1999", "is not a period of the run (2020–2030)"),
        ("--excel", "everything", "is not a workbook choice"),
    ):
        result = critflow("run", str(fleet), "--out", str(tmp_path / "bad"), option, value)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "bad").exists()


def test_one_summary_table_with_the_scenarios_as_columns_and_processes_as_validate(tmp_path):
    ran = critflow("validate", str(EXAMPLE))
    counted = " ".join(ran.stdout.split()).split("is valid — ")[1].split(",")[0]
    assert "processes (" in counted and "balanced)" in counted
    result = critflow("run", str(EXAMPLE), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.count("largest flows") == 1
    header = next(line for line in text.splitlines() if "from → to" in line)
    for scenario in ("baseline", "hot_li_precipitation", "no_decasing", "decarbonised"):
        assert scenario in header
    assert f"over {counted} ×" in " ".join(text.split())
