"""Static figures for papers: the Sankey diagrams (goods and each element) and the recovery chart,
as SVG and PNG. Plotly's export (kaleido) drives a headless Chromium: Debian's `chromium` works
offline; set BROWSER_PATH if it is not on the PATH."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.report.content import recovery_section
from critflow.report.sankey import ELEMENT_PALETTE, sankey_data, sankey_figure


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_figures(run: Run, folder: Path, formats: tuple[str, ...] = ("svg", "png")) -> list[Path]:
    """Sankeys of the last period — goods and every element for the first scenario, goods for the
    others — and the recovery chart of each scenario."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise CritflowError(
            "--figures",
            "static figures need the kaleido package",
            "Install it: pip install 'critflow[figures]'.",
        ) from None
    if not os.environ.get("BROWSER_PATH") and shutil.which("chromium"):
        os.environ["BROWSER_PATH"] = shutil.which(
            "chromium"
        )  # Debian's chromium, no download needed
    folder.mkdir(parents=True, exist_ok=True)
    data = sankey_data(run.results, run.model.spec)
    period = data["periods"][-1]
    first = data["scenarios"][0]
    figures = {
        f"sankey_{_safe(s)}_{period}_{_safe(e)}": sankey_figure(data, s, period, e)
        for s in data["scenarios"]
        for e in (data["elements"] if s == first else ["goods"])
    }
    recovery = recovery_section(run)
    if recovery:
        import plotly.graph_objects as go

        palette = ELEMENT_PALETTE[:8]
        for scenario, values in recovery["values"].items():
            chart = go.Figure(
                [
                    go.Bar(
                        name=e,
                        x=recovery["products"],
                        y=[100 * v for v in values[e]],
                        marker_color=palette[i % 8],
                    )
                    for i, e in enumerate(recovery["elements"])
                ]
            )
            chart.update_layout(
                barmode="group",
                title=f"Recovery by product, {scenario}, {recovery['period']} (%)",
                yaxis_range=[0, 100],
                width=1000,
                height=500,
            )
            figures[f"recovery_{_safe(scenario)}_{recovery['period']}"] = chart
    import plotly.io as pio

    written = [folder / f"{name}.{fmt}" for fmt in formats for name in figures]
    try:  # one browser session for all figures
        for fmt in formats:
            pio.write_images(
                list(figures.values()),
                [str(folder / f"{name}.{fmt}") for name in figures],
                scale=2 if fmt == "png" else 1,
            )
    except Exception as exc:  # kaleido reports a missing or failing browser in several ways
        raise CritflowError(
            "--figures",
            f"the figures could not be exported ({type(exc).__name__}: {exc})",
            "Install a browser for plotly's export: apt-get install chromium (or set BROWSER_PATH).",
        ) from None
    return written
