"""Write solved flows and balances as CSV, Parquet and Excel tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from critflow import __version__
from critflow.analysis import Run
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.indicators.recovery import primary_feed

EXCEL_MAX_ROWS = 1_048_575
"""Rows an Excel sheet holds below its header."""


def wide_flows(results: FlowResults) -> pd.DataFrame:
    """One row per scenario, period and flow; one column per element plus goods, unit in headers."""
    topo = results.inputs.topology
    values = results.values  # (S, P, E, F)
    n_s, n_p, n_e, _n_f = values.shape
    frame = pd.DataFrame(
        values.transpose(0, 1, 3, 2).reshape(-1, n_e),
        columns=[f"{e} [{results.unit}]" for e in topo.elements],
    )
    frame.insert(0, f"goods [{results.unit}]", values.sum(axis=2).reshape(-1))
    index = pd.MultiIndex.from_product(
        [list(results.inputs.scenarios), results.inputs.periods, list(topo.flow_ids)],
        names=["scenario", "period", "flow"],
    ).to_frame(index=False)
    process_ids = pd.Series(topo.process_ids)
    index["from"] = process_ids[topo.flow_from].to_numpy().tolist() * (n_s * n_p)
    index["to"] = process_ids[topo.flow_to].to_numpy().tolist() * (n_s * n_p)
    return pd.concat([index, frame], axis=1)


def run_info(run: Run) -> pd.DataFrame:
    """Provenance of a run: model, file hash, version, time."""
    model, results = run.model, run.results
    rows = [
        ("model", model.name),
        ("model file", str(model.path) if model.path else "(in memory)"),
        ("model file SHA-256", model.text_sha256 or ""),
        ("scenarios", ", ".join(results.inputs.scenarios)),
        ("periods", f"{results.inputs.periods[0]}–{results.inputs.periods[-1]}"),
        ("unit", results.unit),
        ("largest relative balance residual", f"{results.max_relative_residual():.3g}"),
        ("critflow version", __version__),
        ("run at (UTC)", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def write_tables(run: Run, out_dir: Path) -> dict[str, Path]:
    """Write flows.csv, flows.parquet, balance.csv and results.xlsx; return their paths.

    The Excel workbook holds the flows in wide form (one column per element); a model too large
    for one sheet gets a note in its place and keeps its full tables in CSV and Parquet.
    """
    try:
        return _write(run, out_dir)
    except OSError as exc:
        raise CritflowError(
            str(out_dir),
            f"the output tables cannot be written there ({exc.strerror or exc}: {exc.filename or out_dir})",
            "Choose a folder you can write to with --out, and close any of its files open in Excel.",
        ) from None


def indicator_tables(run: Run) -> dict[str, pd.DataFrame]:
    """Recovery per output (always) and, when every output has a fate, the Battery Regulation's
    recycling efficiency and material recovery; the shipped rules' verdicts; impacts and costs.
    Shares are fractions (0-1)."""
    tables = {"recovery": run.recovery}
    if run.fates_complete and primary_feed(run.model) is None:
        tables["recycling_efficiency"] = run.recycling_efficiency
        tables["material_recovery"] = run.material_recovery
    compliance = _compliance(run)
    if compliance is not None:
        tables["compliance"] = compliance
    return tables | impact_tables(run)


def impact_tables(run: Run) -> dict[str, pd.DataFrame]:
    """Climate impact (and life-cycle cost when the model has economics:) of a model with
    inventories: summary, per process, per item, per product; cost per year and per project."""
    impacts = run.impacts
    if impacts is None:
        return {}
    tables = {
        "impact_summary": impacts.summary_table(),
        "impact_processes": impacts.process_table(),
        "impact_items": impacts.item_table(),
        "impact_products": impacts.product_table(),
    }
    if run.costs is not None:
        tables["cost_annual"] = run.costs.annual_table()
        tables["cost_project"] = run.costs.project_table()
    return tables


def _compliance(run: Run) -> pd.DataFrame | None:
    """Every shipped rule, checked in the last period (pass, fail, not applicable with the reason)."""
    rows = run.compliance
    if rows is None or all(r.status == "not applicable" for r in rows):
        return None
    frame = pd.DataFrame([r.as_dict() for r in rows])
    frame["scope"] = frame["scope"].astype(str)
    return frame


def _write(run: Run, out_dir: Path) -> dict[str, Path]:
    results = run.results
    out_dir.mkdir(parents=True, exist_ok=True)
    flows = results.flows()
    balance = results.balance()
    paths = {
        "flows.csv": out_dir / "flows.csv",
        "flows.parquet": out_dir / "flows.parquet",
        "balance.csv": out_dir / "balance.csv",
        "results.xlsx": out_dir / "results.xlsx",
    }
    flows.to_csv(paths["flows.csv"], index=False)
    flows.to_parquet(paths["flows.parquet"], index=False)
    balance.to_csv(paths["balance.csv"], index=False)
    tables = indicator_tables(run)
    if results.stocks is not None:
        stocks = results.stock_table()
        tables = {"stocks": stocks, **tables}
        paths["stocks.parquet"] = out_dir / "stocks.parquet"
        stocks.to_parquet(paths["stocks.parquet"], index=False)
    for name, table in tables.items():
        paths[f"{name}.csv"] = out_dir / f"{name}.csv"
        table.to_csv(paths[f"{name}.csv"], index=False)
    wide = wide_flows(results)
    balance_sheet = balance.rename(
        columns={
            c: f"{c} [{results.unit}]" for c in ("input", "output", "stock_change", "residual")
        }
    ).drop(columns="unit")
    with pd.ExcelWriter(paths["results.xlsx"], engine="openpyxl") as writer:
        run_info(run).to_excel(writer, sheet_name="run", index=False)
        for name, table in (("flows", wide), ("balance", balance_sheet), *tables.items()):
            if len(table) > EXCEL_MAX_ROWS:
                pd.DataFrame(
                    {
                        "note": [
                            f"{len(table)} rows do not fit in an Excel sheet; see {name}.csv / flows.parquet"
                        ]
                    }
                ).to_excel(writer, sheet_name=name, index=False)
            else:
                table.to_excel(writer, sheet_name=name, index=False)
    return paths
