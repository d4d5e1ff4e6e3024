"""The HTML report: one file that opens offline (plotly.js embedded, the default), or a small file
that loads plotly.js from its CDN or from a ``plotly.min.js`` beside it (``--plotly``)."""

from __future__ import annotations

import contextlib
import json
import re
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
    """plotly.js as plotly ships it, read from the package's folder (importing plotly to ask for
    it took 0.15 s)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        with contextlib.suppress(OSError):
            return (Path(folder) / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
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


def _packed_sankey(sankey: dict) -> tuple[dict, dict[str, bytes]]:
    """The Sankey data of :func:`sankey_data` (packed) as the page reads it: the values one base64
    block of little-endian float64, (scenario, period, goods + elements, flow), the links' fate
    shares one block of uint16 in 1/10,000 (…, flow, class) and the mass leaving per class as
    lists; the page unpacks them into ``values[s][p][e]`` and ``fates[s][p][e]``. (Python writes
    1.2 million floats as JSON text in about 9 s, their bytes in 0.1 s.)

    Returns the document with a placeholder (:data:`_BLOCK`) in place of each base64 block and
    the blocks by placeholder: the blocks (tens of MB for a large model) go to the file as bytes,
    never through ``json.dumps`` or the template (base64 needs no escaping in JSON or HTML)."""
    import base64

    import numpy as np

    def b64(array: np.ndarray, dtype: str) -> bytes:
        return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).data)

    document = {
        k: v for k, v in sankey.items() if k not in ("value_block", "share_block", "leaving_block")
    }
    blocks: dict[str, bytes] = {}
    values = sankey["value_block"]
    blocks[_BLOCK.format(0)] = b64(values, "<f8")
    document |= {"values": None, "packed": _BLOCK.format(0), "shape": list(values.shape)}
    if "share_block" in sankey:
        # rint(clip(share, 0, 1) · 10,000), a scenario and period at a time (in the cache)
        block = sankey["share_block"]
        shares = np.empty(block.shape, dtype="<u2")
        for s in range(block.shape[0]):
            for p in range(block.shape[1]):
                slab = block[s, p] * 10_000
                np.clip(slab, 0.0, 10_000.0, out=slab)
                shares[s, p] = np.rint(slab, out=slab)
        blocks[_BLOCK.format(1)] = b64(shares, "<u2")
        del shares
        document["fates"] = None
        document["packed_shares"] = _BLOCK.format(1)
        document["leaving"] = sankey["leaving_block"].tolist()
    return document, blocks


_BLOCK = "critflow-packed-block-{}-7f3a"
"""Placeholder of a base64 block in the report's text (not a string a model can put there: it is
replaced only inside the Sankey's JSON, where every other string is a model's id or label and
would be written with its quotes)."""
_BLOCKS = re.compile(r"(critflow-packed-block-\d+-7f3a)")


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
    return "".join(
        p if isinstance(p, str) else p.decode("ascii") for p in _parts(run, info, plotly, extra)
    )


def _parts(
    run: Run, info: RunInfo, plotly: str = "inline", extra: dict | None = None
) -> list[str | bytes]:
    """The report's text in pieces: str, and the Sankey's base64 blocks as ASCII bytes."""
    from markupsafe import Markup

    from critflow.report.sankey import human, sankey_height

    check_plotly_mode(plotly)
    env = templates()
    env.filters["num"] = human
    content = build(run, info) | {"uncertainty": None, "sensitivity": None} | (extra or {})
    document, blocks = _packed_sankey(content["sankey"])
    sankey_json = _embedded_json(document)
    content["sankey"] = {k: v for k, v in content["sankey"].items() if not k.endswith("_block")}
    template = env.get_template("report.html.j2")
    marker = _BLOCK.format("sankey")  # where the Sankey's JSON and plotly.js go
    text = template.render(
        **content,
        plotly_tag=Markup(marker + "-plotly"),
        sankey_height=sankey_height(content["sankey"]),
        sankey_json=Markup(marker),
        recovery_json=Markup(_embedded_json(content["recovery"])),
        stocks_json=Markup(_embedded_json(content["stocks"])),
        impact_json=Markup(_embedded_json(content["impact"])),
        uncertainty_json=Markup(_embedded_json(content["uncertainty"])),
    )
    before, rest = text.split(marker + "-plotly", 1)
    middle, after = rest.split(marker, 1)
    parts: list[str | bytes] = [before, _plotly_tag(plotly), middle]
    for piece in _BLOCKS.split(sankey_json):
        parts.append(blocks.get(piece, piece))
    parts.append(after)
    return parts


def write_report(
    run: Run, info: RunInfo, path: Path, plotly: str = "inline", extra: dict | None = None
) -> Path:
    """Write ``report.html`` (or ``path``) and return its path; with ``plotly='directory'``, also
    plotly.min.js beside it."""
    parts = _parts(run, info, plotly, extra)
    with path.open("wb") as handle:
        for part in parts:
            handle.write(part if isinstance(part, bytes) else part.encode("utf-8"))
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
