"""The HTML report: sections, totals, no external resources, re-rendering from a run folder."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import EXAMPLE
from tests.conftest import critflow_cli as critflow

SECTIONS = ("flows", "recovery", "recycling", "compliance", "scenarios", "balance")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = critflow("run", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"Open the report: {out / 'report.html'}" in result.stdout.replace("\n", "")
    return out


def _embedded(html: str, element_id: str):
    match = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S
    )
    document = json.loads(match.group(1))
    if element_id == "sankey-data":  # values travel as one base64 block of float64
        block = np.frombuffer(base64.b64decode(document.pop("packed")), dtype="<f8")
        block = block.reshape(document["shape"])
        document["values"] = {
            s: {
                p: {e: block[i, j, k].tolist() for k, e in enumerate(document["elements"])}
                for j, p in enumerate(document["periods"])
            }
            for i, s in enumerate(document["scenarios"])
        }
    return document


def test_example_report_has_every_section(run_dir):
    html = (run_dir / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert "Recycling efficiency and material recovery" in html
    # the report checks the last period (2030): the 2027 targets apply then too, the 2031 ones not yet
    assert "bat-rm-cu-2027" in html and "bat-rm-cu-2031" not in html
    assert "bat-re-lithium-2030" in html and "Annex XII, Part B, point 2(b)" in html
    run = json.loads((run_dir / "run.json").read_text())
    assert run["sha256"] in html and run["critflow"] in html


def test_sankey_totals_equal_the_flow_table(run_dir):
    html = (run_dir / "report.html").read_text()
    sankey = _embedded(html, "sankey-data")
    flows = pd.read_parquet(run_dir / "flows.parquet")
    table = flows.groupby(["scenario", "period", "element"])["value"].sum()
    goods = flows.groupby(["scenario", "period"])["value"].sum()
    for scenario, periods in sankey["values"].items():
        for period, elements in periods.items():
            for element, values in elements.items():
                expected = (
                    goods[(scenario, int(period))]
                    if element == "goods"
                    else table[(scenario, int(period), element)]
                )
                assert np.sum(values) == pytest.approx(expected, rel=1e-9), (
                    scenario,
                    period,
                    element,
                )
    assert len(sankey["source"]) == len(sankey["flows"]) == flows["flow"].nunique()


def test_report_needs_no_network(run_dir):
    html = (run_dir / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", html, re.I)
    # outside the embedded plotly.js library, the page names no address at all
    head, rest = html.split("<script>", 1)
    library, page = rest.split("</script>", 1)
    assert "Plotly" in library and len(library) > 1_000_000
    assert not re.search(r"https?://", head + page)


def test_sections_without_results_are_absent(tmp_path):
    model = tmp_path / "plain.yaml"
    model.write_text(
        "critflow: 1\nname: plain\ntime: {start: 2025, end: 2025}\nelements: [Cu]\n"
        "processes: [{id: a, kind: source}, {id: b, kind: transfer}, {id: c, kind: sink}]\n"
        "flows: [{id: f1, from: a, to: b, value: 10}, {id: f2, from: b, to: c}]\n"
    )
    result = critflow("run", str(model), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<section id="flows">' in html and '<section id="balance">' in html
    for absent in ("recovery", "recycling", "compliance", "scenarios"):
        assert f'<section id="{absent}">' not in html, absent


def test_report_rerenders_from_the_run_folder(run_dir):
    before = _embedded((run_dir / "report.html").read_text(), "sankey-data")
    (run_dir / "report.html").unlink()
    result = critflow("report", str(run_dir))
    assert result.returncode == 0, result.stderr
    after = _embedded((run_dir / "report.html").read_text(), "sankey-data")
    assert after == before


def test_report_of_a_folder_that_is_no_run_exits_2(tmp_path):
    result = critflow("report", str(tmp_path))
    assert result.returncode == 2 and "not a critflow run folder" in result.stderr


def test_run_json_format(tmp_path):
    result = critflow(
        "run", str(EXAMPLE), "--out", str(tmp_path / "o"), "--format", "json", "-s", "baseline"
    )
    document = json.loads(result.stdout)
    assert document["outputs"]["report.html"].endswith("report.html")
    assert document["max_relative_residual"] < 1e-9


def test_written_report_is_the_rendered_one(tmp_path):
    """write_report streams the Sankey's base64 blocks to the file beside the rendered text: the
    file is what render returns (the same run time), the blocks decode to the solved values, and
    no placeholder is left."""
    from critflow.analysis import Run
    from critflow.model.load import load_model
    from critflow.report.content import RunInfo
    from critflow.report.html import render, write_report

    run = Run.solve(load_model(EXAMPLE))
    info = RunInfo("m.yaml", "0" * 64, ran_at="2030-01-01T00:00:00+00:00")
    path = write_report(run, info, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text == render(run, info)
    assert "critflow-packed-block" not in text
    sankey = _embedded(text, "sankey-data")
    values = run.results.values
    first = sankey["values"][run.inputs.scenarios[0]][str(run.inputs.periods[-1])]
    assert first[run.inputs.topology.elements[0]] == values[0, -1, 0].tolist()
    assert text.count("plotly.js v") >= 1
