"""The self-contained HTML report: plotly.js embedded, no network needed to open it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from critflow.analysis import Run
from critflow.report.content import RunInfo, build


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _embedded_json(value: object) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _packed_sankey(run: Run, sankey: dict) -> dict:
    """The Sankey data with its values as one base64 block of little-endian float64, (scenario,
    period, goods + elements, flow), which the page unpacks into ``values[scenario][period]
    [element]``: Python writes 1.2 million floats as JSON text in about 9 s, their bytes in 0.1 s."""
    import base64

    import numpy as np

    values = run.results.values  # (S, P, E, F)
    block = np.concatenate([values.sum(axis=2, keepdims=True), values], axis=2)
    packed = base64.b64encode(np.ascontiguousarray(block, dtype="<f8").tobytes()).decode("ascii")
    return {**sankey, "values": None, "packed": packed, "shape": list(block.shape)}


def render(run: Run, info: RunInfo) -> str:
    """The report as one HTML document."""
    env = Environment(
        loader=PackageLoader("critflow.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    content = build(run, info)
    template = env.get_template("report.html.j2")
    from markupsafe import Markup

    return template.render(
        **content,
        plotly_js=Markup(_plotly_js()),
        sankey_json=Markup(_embedded_json(_packed_sankey(run, content["sankey"]))),
        recovery_json=Markup(_embedded_json(content["recovery"])),
        stocks_json=Markup(_embedded_json(content["stocks"])),
        impact_json=Markup(_embedded_json(content["impact"])),
    )


def write_report(run: Run, info: RunInfo, path: Path) -> Path:
    """Write ``report.html`` (or ``path``) and return its path."""
    path.write_text(render(run, info), encoding="utf-8")
    return path
