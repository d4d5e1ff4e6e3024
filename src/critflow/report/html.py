"""The HTML report: one file that opens offline (plotly.js embedded, the default), or a small file
that loads plotly.js from its CDN or from a ``plotly.min.js`` beside it (``--plotly``)."""

from __future__ import annotations

import contextlib
import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.report.content import RunInfo, build

PLOTLY_MODES = ("inline", "cdn", "directory")
"""How the report gets plotly.js: embedded (about 4.7 MB, opens offline), from cdn.plot.ly (needs
the network when opened), or from plotly.min.js in the report's folder (written next to it)."""
PLOTLY_FILE = "plotly.min.js"


def templates() -> Environment:
    """The report templates, HTML-escaped; compiled templates are kept in Jinja's per-user cache
    folder (a private folder in the temporary directory), which saves compiling them (0.3 s) on
    every run."""
    from jinja2 import FileSystemBytecodeCache

    class QuietCache(FileSystemBytecodeCache):
        """A cache that cannot be read or written (disk full, removed) is no cache."""

        def load_bytecode(self, bucket) -> None:
            with contextlib.suppress(OSError):
                super().load_bytecode(bucket)

        def dump_bytecode(self, bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        cache = QuietCache()
    except (OSError, RuntimeError):  # no private temporary folder: compile every time
        cache = None
    return Environment(
        loader=PackageLoader("critflow.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        bytecode_cache=cache,
    )


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def plotly_js_version() -> str:
    """The version of the plotly.js the report embeds (the CDN file of the same version)."""
    import re

    found = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", _plotly_js()[:500])
    return found.group(1) if found else "latest"


def _embedded_json(value: object) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _packed_sankey(sankey: dict) -> dict:
    """The Sankey data of :func:`sankey_data` (packed) as the page reads it: the values one base64
    block of little-endian float64, (scenario, period, goods + elements, flow), the links' fate
    shares one block of uint16 in 1/10,000 (…, flow, class) and the mass leaving per class as
    lists; the page unpacks them into ``values[s][p][e]`` and ``fates[s][p][e]``. (Python writes
    1.2 million floats as JSON text in about 9 s, their bytes in 0.1 s.)"""
    import base64

    import numpy as np

    def b64(array: np.ndarray, dtype: str) -> str:
        return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()

    document = {
        k: v for k, v in sankey.items() if k not in ("value_block", "share_block", "leaving_block")
    }
    values = sankey["value_block"]
    document |= {"values": None, "packed": b64(values, "<f8"), "shape": list(values.shape)}
    if "share_block" in sankey:
        shares = np.rint(np.clip(sankey["share_block"], 0.0, 1.0) * 10_000)
        document["fates"] = None
        document["packed_shares"] = b64(shares, "<u2")
        document["leaving"] = sankey["leaving_block"].tolist()
    return document


def check_plotly_mode(plotly: str) -> None:
    if plotly not in PLOTLY_MODES:
        raise CritflowError(
            "plotly=",
            f"'{plotly}' is not a way to include plotly.js",
            "Use inline (embedded, works offline), cdn or directory.",
        )


def _plotly_tag(plotly: str):
    from markupsafe import Markup

    if plotly == "inline":
        return Markup(f"<script>{_plotly_js()}</script>")
    if plotly == "cdn":
        return Markup(
            f'<script src="https://cdn.plot.ly/plotly-{plotly_js_version()}.min.js" '
            'charset="utf-8"></script>'
        )
    return Markup(f'<script src="{PLOTLY_FILE}" charset="utf-8"></script>')


def render(run: Run, info: RunInfo, plotly: str = "inline", extra: dict | None = None) -> str:
    """The report as one HTML document; ``extra`` adds sections (``uncertainty``, ``sensitivity``,
    ``reconciled``) built elsewhere."""
    from markupsafe import Markup

    from critflow.report.sankey import human, sankey_height

    check_plotly_mode(plotly)
    env = templates()
    env.filters["num"] = human
    content = build(run, info) | {"uncertainty": None, "sensitivity": None} | (extra or {})
    template = env.get_template("report.html.j2")
    return template.render(
        **content,
        plotly_tag=_plotly_tag(plotly),
        sankey_height=sankey_height(content["sankey"]),
        sankey_json=Markup(_embedded_json(_packed_sankey(content["sankey"]))),
        recovery_json=Markup(_embedded_json(content["recovery"])),
        stocks_json=Markup(_embedded_json(content["stocks"])),
        impact_json=Markup(_embedded_json(content["impact"])),
        uncertainty_json=Markup(_embedded_json(content["uncertainty"])),
    )


def write_report(
    run: Run, info: RunInfo, path: Path, plotly: str = "inline", extra: dict | None = None
) -> Path:
    """Write ``report.html`` (or ``path``) and return its path; with ``plotly='directory'``, also
    plotly.min.js beside it."""
    path.write_text(render(run, info, plotly, extra), encoding="utf-8")
    place_plotly_file(path.parent, plotly)
    return path


def place_plotly_file(folder: Path, plotly: str) -> None:
    """Write plotly.min.js into ``folder`` for ``plotly='directory'``; otherwise remove one an
    earlier report left there, unless another page in the folder still loads it."""
    target = folder / PLOTLY_FILE
    if plotly == "directory":
        target.write_text(_plotly_js(), encoding="utf-8")
        return
    if not target.is_file():
        return
    tag = f'src="{PLOTLY_FILE}"'
    for page in folder.glob("*.html"):
        try:
            if tag in page.read_text(encoding="utf-8", errors="replace"):
                return
        except OSError:
            return
    target.unlink(missing_ok=True)
