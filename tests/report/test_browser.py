"""A real headless browser opens the report offline, finds the Sankey and switches the element.

Needs Debian's chromium and chromedriver (.ci/run installs them). Outside CI the test is skipped
when they are missing; in CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

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
