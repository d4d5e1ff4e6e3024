"""A real headless browser opens the report offline, finds the Sankey and switches the element.

Needs Debian's chromium and chromedriver (.ci/run installs them). Outside CI the test is skipped
when they are missing; in CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import critflow as critflow_lib
from tests.conftest import EXAMPLE, ROOT
from tests.conftest import critflow_cli as critflow

pytestmark = pytest.mark.slow  # a real headless browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTEFACTS = ROOT / "out" / "test-artifacts"

if not (CHROMIUM and DRIVER):
    if os.environ.get("CI") == "true":
        pytest.fail(
            "CI needs chromium and chromedriver (apt-get install chromium chromium-driver)",
            pytrace=False,
        )
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture()
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",
        "--window-size=1300,1400",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_report_renders_and_switches_element(browser, tmp_path):
    result = critflow("run", str(EXAMPLE), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    browser.get((tmp_path / "report.html").as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements("css selector", "#sankey svg .sankey-link"))
    nodes = browser.find_elements("css selector", "#sankey svg .sankey-node")
    links = browser.find_elements("css selector", "#sankey svg .sankey-link")
    assert len(nodes) == 19 and len(links) > 0  # 19 processes in the example

    def title():
        return browser.execute_script("return document.getElementById('sankey').layout.title.text")

    assert title().startswith("goods")
    goods_total = browser.execute_script(
        "return document.getElementById('sankey').data[0].link.value.reduce((a, b) => a + b, 0)"
    )
    Select(browser.find_element("id", "sankey-element")).select_by_visible_text("Li")
    wait.until(lambda d: title().startswith("Li"))
    li_total = browser.execute_script(
        "return document.getElementById('sankey').data[0].link.value.reduce((a, b) => a + b, 0)"
    )
    assert 0 < li_total < goods_total
    time.sleep(0.5)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "report-sankey-li.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    Path(ARTEFACTS / "README.txt").write_text(
        "Screenshots taken by tests/report/test_browser.py.\n"
    )


def test_stock_chart_follows_the_controls(browser, tmp_path):
    model = EXAMPLE.parent / "eu_ev_battery_stock.yaml"
    result = critflow("run", str(model), "-s", "baseline", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    browser.get((tmp_path / "report.html").as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements("css selector", "#stock-chart svg .scatterlayer"))

    def last_in_use():
        return browser.execute_script(
            "const d = document.getElementById('stock-chart').data[0].y; return d[d.length - 1];"
        )

    goods = last_in_use()
    Select(browser.find_element("id", "stock-element")).select_by_visible_text("Li")
    wait.until(lambda d: last_in_use() != goods)
    stocks = pd.read_csv(tmp_path / "stocks.csv")
    li_2050 = stocks[(stocks["element"] == "Li") & (stocks["period"] == 2050)]["in_use"].sum()
    assert last_in_use() == pytest.approx(li_2050, rel=1e-9)
    ranges = browser.execute_script(
        "const l = document.getElementById('stock-chart').layout; return [l.yaxis.range, l.yaxis2.range];"
    )
    assert ranges[0][0] == 0 and ranges[1][0] == 0  # both axes start at zero: one zero line
    assert browser.get_log("browser") == [] or all(
        entry["level"] != "SEVERE" for entry in browser.get_log("browser")
    )


def test_figures_are_exported_offline(tmp_path):
    model = tmp_path / "plain.yaml"
    model.write_text(
        "critflow: 1\nname: plain\ntime: {start: 2025, end: 2025}\nelements: [Cu]\n"
        "processes: [{id: a, kind: source}, {id: b, kind: transfer}, {id: c, kind: sink}]\n"
        "flows: [{id: f1, from: a, to: b, value: 10}, {id: f2, from: b, to: c}]\n"
    )
    result = critflow("run", str(model), "--out", str(tmp_path / "out"), "--figures")
    assert result.returncode == 0, result.stderr
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert figures == [
        "sankey_baseline_2025_Cu.png",
        "sankey_baseline_2025_Cu.svg",
        "sankey_baseline_2025_goods.png",
        "sankey_baseline_2025_goods.svg",
    ]
    svg = (tmp_path / "out" / "figures" / "sankey_baseline_2025_goods.svg").read_text()
    assert "<svg" in svg and "A — 10 t/a" in svg  # display name and throughput


def test_report_as_a_reader_sees_it(browser, tmp_path):
    """One Monte Carlo run of the example: labels that do not overlap or clip, links coloured by
    where their mass ends, the element summary, the targets matrix and the uncertainty section."""
    result = critflow("run", str(EXAMPLE), "--out", str(tmp_path), "--samples", "64")
    assert result.returncode == 0, result.stderr
    browser.get((tmp_path / "report.html").as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements("css selector", "#sankey svg .sankey-link"))
    time.sleep(0.5)
    boxes = browser.execute_script(
        """const area = document.getElementById('sankey').getBoundingClientRect();
        return Array.from(document.querySelectorAll('#sankey .node-label')).map((l) => {
          const r = l.getBoundingClientRect();
          return [l.textContent, r.left, r.top, r.right, r.bottom, area.left, area.top, area.right, area.bottom];
        });"""
    )
    assert len(boxes) == 19 and "Liquor Split" in [b[0] for b in boxes]  # display names
    for i, a in enumerate(boxes):
        assert a[1] >= a[5] and a[3] <= a[7] and a[2] >= a[6] and a[4] <= a[8], a  # not clipped
        for b in boxes[i + 1 :]:
            overlap = a[1] < b[3] and a[3] > b[1] and a[2] < b[4] and a[4] > b[2]
            assert not overlap, (a[0], b[0])
    colours = browser.execute_script("return document.getElementById('sankey').data[0].link.color")
    assert len(set(colours)) >= 2  # recycled and lost links differ, not all grey
    # the Li summary: the shares of Li leaving the system by fate, from the flow table
    Select(browser.find_element("id", "sankey-element")).select_by_visible_text("Li")
    wait.until(lambda d: "Li" in d.find_element("id", "sankey-summary").text)
    text = browser.find_element("id", "sankey-summary").text
    flows = pd.read_csv(tmp_path / "flows.csv")  # a column per element
    li = flows[(flows["scenario"] == "baseline") & (flows["period"] == 2030)].rename(
        columns={"Li [t/a]": "value"}
    )
    model = critflow_lib.load_model(EXAMPLE)
    sinks = {p.id for p in model.spec.processes if p.kind == "sink"}
    fates = {f.id: f.fate for f in model.spec.flows if f.to in sinks}
    leaving = li[li["flow"].isin(list(fates))]
    recycled = (
        leaving[leaving["flow"].map(fates) == "recycled"]["value"].sum() / leaving["value"].sum()
    )
    assert f"{100 * recycled:.1f} % recycled" in text, text
    # targets: one row per rule, one cell per scenario, the source once per rule
    rows = browser.find_elements("css selector", "#targets-matrix tr[data-rule]")
    compliance = pd.read_csv(tmp_path / "compliance.csv")
    applicable = compliance[compliance["status"] != "not applicable"]
    assert len(rows) == applicable["rule"].nunique()
    for row in rows:
        cells = row.find_elements("css selector", "td[data-status]")
        rule = applicable[applicable["rule"] == row.get_attribute("data-rule")]
        assert {
            c.get_attribute("data-scenario"): c.get_attribute("data-status") for c in cells
        } == dict(zip(rule["scenario"], rule["status"], strict=True))
        assert len(row.find_elements("css selector", "td.source")) == 1
    # uncertainty: the flow bands drawn as they are in the run's statistics
    wait.until(lambda d: d.find_elements("css selector", "#uncertainty-flows svg .scatterlayer"))
    drawn = browser.execute_script(
        "const d = document.getElementById('uncertainty-flows').data[0];"
        "return [d.x, d.y, d.error_y.array, d.error_y.arrayminus];"
    )
    bands = json.loads((tmp_path / "uncertainty.json").read_text())
    assert drawn[0] == [f["label"] for f in bands["flows"]]
    p50 = [f["bands"]["baseline"]["p50"] for f in bands["flows"]]
    p95 = [f["bands"]["baseline"]["p95"] for f in bands["flows"]]
    assert drawn[1] == pytest.approx(p50) and np.add(drawn[1], drawn[2]) == pytest.approx(p95)
    stats = pd.read_csv(tmp_path / "indicators_stats.csv")
    re_ = stats[(stats["indicator"] == "recycling_efficiency") & (stats["period"] == 2030)]
    cell = browser.find_element("css selector", "#uncertainty-kpis tr:nth-child(2) td:nth-child(2)")
    assert float(cell.get_attribute("data-p5")) == pytest.approx(
        re_[re_["scenario"] == "baseline"]["p5"].iloc[0], rel=1e-9
    )
    assert browser.find_elements("css selector", "#uncertainty-targets td[data-probability]")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / "report-sankey-fates.png"))


def test_reconciled_sankey_in_the_browser(browser, tmp_path):
    model = EXAMPLE.parent / "flotation_circuit_reconciliation.yaml"
    result = critflow("reconcile", str(model), "--out", str(tmp_path))
    assert result.returncode in (0, 1), result.stderr
    browser.get((tmp_path / "reconciled.html").as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements("css selector", "#sankey svg .sankey-link"))
    goods = pd.read_csv(tmp_path / "reconciled_goods.csv")
    rows = browser.find_elements("css selector", "#reconciled-table tr")[1:]
    first = goods[goods["period"] == goods["period"].iloc[0]]
    assert len(rows) == len(first)
    feed = first.set_index("flow").loc["feed"]
    row = rows[0].find_elements("css selector", "td")
    assert float(row[2].text.replace(",", "")) == pytest.approx(feed["value"], rel=1e-3)
    assert float(row[3].text.replace(",", "")) == pytest.approx(feed["sd"], rel=1e-2)
