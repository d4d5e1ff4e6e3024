"""What the HTML report shows, as plain data: each section is built only when its results exist."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow import __version__
from critflow.analysis import Run
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.indicators.catalogue import IndicatorNotAvailableError, evaluate_indicator
from critflow.indicators.recovery import primary_feed
from critflow.report.sankey import (
    FATE_COLOURS,
    KIND_COLOURS,
    display_name,
    sankey_data,
)

REGULATED = ("Co", "Cu", "Li", "Ni", "Pb")
"""Elements whose recovery the Battery Regulation sets targets for (Annex XII Part C)."""


@dataclass
class RunInfo:
    """Provenance shown in the report header."""

    model_file: str
    sha256: str
    ran_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    version: str = __version__


def balance_section(results: FlowResults) -> list[dict[str, Any]]:
    """Largest absolute and relative residual per process over all scenarios, periods, elements."""
    names, kinds, inflow, outflow, change = results.balance_parts()  # each (S, P, E, U')
    scale = np.maximum(np.abs(inflow), np.abs(outflow))
    residual = np.abs(inflow - outflow - change)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, residual / np.where(scale > 0, scale, 1), 0.0)
    n_u = len(names)
    largest = residual.reshape(-1, n_u).max(axis=0)
    largest_relative = relative.reshape(-1, n_u).max(axis=0)
    throughput = scale.reshape(-1, n_u).max(axis=0)
    return [
        {
            "process": names[u],
            "kind": kinds[u],
            "largest_residual": float(largest[u]),
            "largest_relative": float(largest_relative[u]),
            "throughput": float(throughput[u]),
        }
        for u in range(n_u)
    ]


def recovery_section(run: Run) -> dict[str, Any] | None:
    """Recovery by product in the last period of each scenario (elements with any recovery)."""
    model, results = run.model, run.results
    table = run.recovery_by_product
    if table.empty:
        return None
    last = results.inputs.periods[-1]
    table = table[table["period"] == last]
    elements = [
        e for e in model.spec.elements if table.loc[table["element"] == e, "recovery"].max() > 1e-6
    ]
    products = list(dict.fromkeys(table["product"]))
    wide = table.pivot_table(
        index=["scenario", "element"],
        columns="product",
        values="recovery",
        aggfunc="sum",
        observed=True,
    )
    wide = wide.reindex(columns=products).fillna(0.0)
    scenarios = list(results.inputs.scenarios)
    data = {
        scenario: {e: wide.loc[(scenario, e)].tolist() for e in elements} for scenario in scenarios
    }
    rows = [
        {
            "element": e,
            "product": product,
            "values": [data[s][e][i] for s in scenarios],
        }
        for e in elements
        for i, product in enumerate(products)
        if max(data[s][e][i] for s in scenarios) > 0.0005
    ]
    return {
        "period": int(last),
        "products": products,
        "elements": elements,
        "scenarios": scenarios,
        "values": data,
        "rows": rows,
    }


def recycling_section(run: Run) -> dict[str, Any] | None:
    """Recycling efficiency per scenario and period, material recovery of the regulated elements."""
    if not run.fates_complete or primary_feed(run.model) is not None:
        return None  # no recycling plant: its feed is not (only) waste
    model, results = run.model, run.results
    efficiency = run.recycling_efficiency
    recovery = run.material_recovery
    elements = [e for e in REGULATED if e in model.spec.elements]
    last = results.inputs.periods[-1]
    rows = recovery[(recovery["period"] == last) & recovery["element"].isin(elements)]
    return {
        "periods": [int(p) for p in results.inputs.periods],
        "efficiency": {
            s: efficiency.loc[efficiency["scenario"] == s, "recycling_efficiency"].tolist()
            for s in results.inputs.scenarios
        },
        "period": int(last),
        "elements": elements,
        "material_recovery": {
            s: rows[rows["scenario"] == s]
            .set_index("element")
            .loc[elements, "material_recovery"]
            .tolist()
            for s in results.inputs.scenarios
        },
    }


def compliance_section(run: Run) -> dict[str, Any] | None:
    """The shipped rules that apply to the model as a matrix, rules × scenarios (last period): each
    cell pass or fail with the value and the margin, the legal source once per rule."""
    from critflow.indicators.catalogue import INDICATORS

    rows = run.compliance
    if rows is None:  # e.g. a scope the rules do not know, or outputs without a fate
        return None
    scenarios = list(run.results.inputs.scenarios)
    rules: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.status == "not applicable":
            continue
        rule = rules.setdefault(
            row.rule,
            {
                "rule": row.rule,
                "title": row.title,
                "indicator": row.indicator + (f" [{row.element}]" if row.element else ""),
                "fraction": getattr(INDICATORS.get(row.indicator), "unit", "fraction")
                == "fraction",
                "comparator": row.comparator,
                "threshold": row.threshold,
                "source": row.source,
                "cells": dict.fromkeys(scenarios),
            },
        )
        rule["cells"][row.scenario] = {
            "status": row.status,
            "value": row.value,
            "margin": row.margin,
        }
    if not rules:
        return None
    applicable = {r.rule for r in rows if r.status != "not applicable"}
    return {
        "period": rows[0].period,
        "scenarios": scenarios,
        "rules": list(rules.values()),
        "not_applicable": len({r.rule for r in rows} - applicable),
        "failed": sum(
            1 for r in rules.values() for c in r["cells"].values() if c and c["status"] == "fail"
        ),
    }


SCENARIO_KPIS = (
    ("recycling_efficiency", None, "Recycling efficiency"),
    ("secondary_supply_share", None, "Share of demand from recycling"),
    ("waste_per_product", None, "Waste per product (kg/kg)"),
    ("crm_use", None, "Primary CRM use per product (kg/kg)"),
)


def scenario_section(run: Run) -> dict[str, Any] | None:
    """The same KPIs side by side for every scenario (last period); only with two or more scenarios."""
    model, results = run.model, run.results
    if len(results.inputs.scenarios) < 2:
        return None
    ctx = run.context()
    kpis = list(SCENARIO_KPIS) + [
        ("material_recovery", e, f"Recovery of {e}") for e in REGULATED if e in model.spec.elements
    ]
    rows = []
    for name, element, label in kpis:
        try:
            values = evaluate_indicator(ctx, name, element)[:, -1]
        except (IndicatorNotAvailableError, CritflowError):
            continue
        rows.append(
            {
                "label": label,
                "fraction": "kg/kg" not in label,
                "values": [None if np.isnan(v) else float(v) for v in values],
            }
        )
    topo = results.inputs.topology
    goods = results.values.sum(axis=2)[:, -1]  # (S, F)
    inputs = goods[:, np.array(topo.process_kinds)[topo.flow_from] == "source"].sum(axis=1)
    rows.insert(
        0, {"label": f"Input ({results.unit})", "fraction": False, "values": inputs.tolist()}
    )
    return {
        "period": int(results.inputs.periods[-1]),
        "scenarios": list(results.inputs.scenarios),
        "rows": rows,
    }


def stock_section(results: FlowResults, spec=None) -> dict[str, Any] | None:
    """Stocks in use and their inflow and outflow over the years, per stock, scenario, element."""
    if results.stocks is None:
        return None
    topo = results.inputs.topology
    k = results.inputs.kg_per_unit
    in_use = results.stocks.stock_kg / k  # (S, P, E, K)
    inflow = results.mass_kg[..., topo.stock_input] / k
    outflow = results.mass_kg[..., topo.stock_output] / k
    elements = ["goods", *topo.elements]

    def by_element(array: np.ndarray, s: int, j: int) -> dict[str, list[float]]:
        series = {"goods": array[s, :, :, j].sum(axis=1).tolist()}
        series.update({e: array[s, :, i, j].tolist() for i, e in enumerate(topo.elements)})
        return series

    stocks = {}
    for j, u in enumerate(topo.stock_process):
        stocks[topo.process_ids[u]] = {
            scenario: {
                "in_use": by_element(in_use, s, j),
                "inflow": by_element(inflow, s, j),
                "outflow": by_element(outflow, s, j),
            }
            for s, scenario in enumerate(results.inputs.scenarios)
        }
    from critflow.engine.stock_solve import clipping_notes

    notes = clipping_notes(results.inputs, results.stocks)
    names = {p.id: p for p in spec.processes} if spec is not None else {}
    clipped = [{"stock": n.where, "what": n.what} for n in notes]
    return {
        "periods": [int(p) for p in results.inputs.periods],
        "elements": elements,
        "stocks": stocks,
        "stock_unit": results.stock_unit,
        "flow_unit": results.unit,
        "labels": {k: display_name(k, getattr(names.get(k), "name", None)) for k in stocks},
        "clipped": clipped,
    }


def circularity_section(run: Run) -> dict[str, Any] | None:
    """The Ellen MacArthur MCI of the products entering stocks: per scenario and element over the
    years (at most nine of them), and its inputs in the last period; None when it does not apply."""
    from critflow.indicators.circularity import MCINotApplicableError

    model, results = run.model, run.results
    try:
        inputs = run.context().mci_inputs()
    except MCINotApplicableError:
        return None
    periods = [int(y) for y in results.inputs.periods]
    shown = sorted({round(i) for i in np.linspace(0, len(periods) - 1, min(len(periods), 9))})
    rows, parts = [], []
    for element in [None, *(e for e in model.spec.elements if e != "rest")]:
        shares = inputs.shares(element)
        result = inputs.result(element)
        for s, scenario in enumerate(results.inputs.scenarios):

            def value(a: np.ndarray, p: int, s: int = s) -> float | None:
                v = float(np.asarray(a)[s, p])
                return None if np.isnan(v) else v

            label = element or "goods"
            rows.append(
                {
                    "scenario": scenario,
                    "element": label,
                    "values": [value(result.mci, p) for p in shown],
                }
            )
            parts.append(
                {"scenario": scenario, "element": label}
                | {k: value(v, -1) for k, v in shares.items()}
                | {"LFI": value(result.lfi, -1), "MCI": value(result.mci, -1)}
            )
    return {
        "periods": [periods[i] for i in shown],
        "period": periods[-1],
        "rows": rows,
        "parts": parts,
        "recycling": list(inputs.recycling_processes),
    }


def impact_section(run: Run) -> dict[str, Any] | None:
    """Climate impact per scenario, the processes that contribute most, product footprints and
    life-cycle cost, in the last period; None when no process declares an inventory."""
    impacts, results = run.impacts, run.results
    if impacts is None:
        return None
    p = len(results.inputs.periods) - 1
    period = int(results.inputs.periods[p])
    summary = impacts.summary_table()
    summary = summary[summary["period"] == period]
    reference = impacts.intensity[0, p]
    scenarios = [
        {
            "scenario": r.scenario,
            "impact_t": r.impact / 1e3,
            "credits_t": r.credits / 1e3,
            "net_t": r.net / 1e3,
            "intensity": r.intensity,
            "change": r.intensity / reference - 1 if reference > 0 else None,
        }
        for r in summary.itertuples()
    ]
    first = impacts.scenarios[0]
    by_process = impacts.process_table()
    by_process = by_process[(by_process["scenario"] == first) & (by_process["period"] == period)]
    by_process = by_process.sort_values("impact", ascending=False)
    processes = {p.id: p for p in run.model.spec.processes}
    products = impacts.product_table()
    products = products[(products["scenario"] == first) & (products["period"] == period)]
    cost = None
    if run.costs is not None:
        cost = run.costs.project_table().to_dict("records")
    return {
        "period": period,
        "method": impacts.method.name,
        "reference": first,
        "rule": f"{impacts.end_of_life}, {impacts.partition} partition",
        "end_of_life": impacts.end_of_life,
        "partition": impacts.partition,
        "scenarios": scenarios,
        "processes": {
            "names": by_process["process"].tolist(),
            "labels": [
                display_name(p, getattr(processes.get(p), "name", None))
                for p in by_process["process"]
            ],
            "values": (by_process["impact"] / 1e3).tolist(),
        },
        "products": products[["product", "mass_kg", "footprint_per_kg"]].to_dict("records"),
        "cost": cost,
        "notes": impacts.notes,
    }


def build(run: Run, info: RunInfo) -> dict[str, Any]:
    """Everything the report template needs; absent sections are None."""
    spec, results = run.model.spec, run.results
    return {
        "name": spec.name,
        "description": spec.description or "",
        "scenarios": list(results.inputs.scenarios),
        "periods": [int(p) for p in results.inputs.periods],
        "unit": results.unit,
        "info": info,
        "max_residual": results.max_relative_residual(),
        "sankey": sankey_data(results, spec, packed=True),
        "balance": balance_section(results),
        "recovery": recovery_section(run),
        "recycling": recycling_section(run),
        "compliance": compliance_section(run),
        "comparison": scenario_section(run),
        "stocks": stock_section(results, spec),
        "circularity": circularity_section(run),
        "impact": impact_section(run),
        "kind_colours": KIND_COLOURS,
        "fate_colours": FATE_COLOURS,
        "display_names": _display_names(run),
    }


def _display_names(run: Run) -> dict[str, str]:
    """Process and flow ids → the names the report shows."""
    spec = run.model.spec
    return {p.id: display_name(p.id, p.name) for p in spec.processes} | {
        f.id: display_name(f.id, f.name) for f in spec.flows
    }
