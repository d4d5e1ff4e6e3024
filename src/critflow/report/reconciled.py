"""A Sankey of reconciled flows with their standard deviations (STAN's view of a balanced
system): ``critflow reconcile`` writes it as ``reconciled.html`` beside its tables.

Each link is a reconciled flow, labelled ``value ± sd``; measured flows are drawn in blue, flows
the balances derive from the measurements in grey, and flows the measurements do not determine
(not observable) are drawn with no width and listed under the diagram.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from critflow.model.core import Model
from critflow.report.sankey import KIND_COLOURS, display_name, human

MEASURED = "rgba(0,114,178,0.55)"
DERIVED = "rgba(120,120,120,0.40)"


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values]


def reconciled_data(model: Model, found: list) -> dict[str, Any]:
    """Nodes, links, and per scenario-period and element ('goods' too) the reconciled values and
    standard deviations (None where not observable), and which flows were measured."""
    spec = model.spec
    process_index = {p.id: i for i, p in enumerate(spec.processes)}
    flows = list(spec.flows)
    cases = {}
    for r in found:
        order = {f: i for i, f in enumerate(r.flows)}
        pick = np.array([order[f.id] for f in flows])
        measured = {m.flow for m in spec.measurements}
        entry = {
            "goods": {
                "value": _clean(r.goods[pick]),
                "sd": _clean(r.goods_sd[pick]),
            }
        }
        for e, element in enumerate(r.elements):
            entry[element] = {"value": _clean(r.x[e, pick]), "sd": _clean(r.sd[e, pick])}
        cases[f"{r.scenario}, {r.period}"] = {
            "scenario": r.scenario,
            "period": int(r.period),
            "passed": bool(r.passed),
            "chi2": float(r.chi2),
            "dof": int(r.dof),
            "p_value": None if not np.isfinite(r.p_value) else float(r.p_value),
            "values": entry,
            "measured": [f.id in measured for f in flows],
        }
    return {
        "name": spec.name,
        "unit": spec.unit,
        "nodes": [p.id for p in spec.processes],
        "labels": [display_name(p.id, p.name) for p in spec.processes],
        "colours": [KIND_COLOURS[p.kind] for p in spec.processes],
        "source": [process_index[f.from_] for f in flows],
        "target": [process_index[f.to] for f in flows],
        "flows": [f.id for f in flows],
        "flow_labels": [display_name(f.id, f.name) for f in flows],
        "elements": ["goods", *(found[0].elements if found else ())],
        "cases": cases,
        "measured_colour": MEASURED,
        "derived_colour": DERIVED,
    }


def link_labels(data: dict, case: str, element: str) -> list[str]:
    """``Name: value ± sd unit`` of every link (``not observable`` where the data do not fix it)."""
    values = data["cases"][case]["values"][element]
    unit = data["unit"]
    labels = []
    for name, v, sd in zip(data["flow_labels"], values["value"], values["sd"], strict=True):
        labels.append(
            f"{name}: not observable"
            if v is None
            else f"{name}: {human(v)} ± {human(sd or 0.0)} {unit}"
        )
    return labels


def write_reconciled_report(model: Model, found: list, path: Path, plotly: str = "inline") -> Path:
    """Write the reconciled Sankey as one HTML file (plotly.js as ``plotly`` says)."""
    from markupsafe import Markup

    from critflow.report.html import _plotly_tag, check_plotly_mode, place_plotly_file, templates
    from critflow.report.sankey import sankey_height

    check_plotly_mode(plotly)
    data = reconciled_data(model, found)
    env = templates()
    html = env.get_template("reconciled.html.j2").render(
        data=data,
        plotly_tag=_plotly_tag(plotly),
        height=sankey_height(data),
        data_json=Markup(json.dumps(data, separators=(",", ":")).replace("</", "<\\/")),
    )
    path.write_text(html, encoding="utf-8")
    place_plotly_file(path.parent, plotly)
    return path
