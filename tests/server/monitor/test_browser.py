"""A real headless Chromium logs in to the monitor with an API key, uploads KPI values from the
template, and sees the domain chart change (no script on the pages: the server draws the SVG).

Needs Debian's chromium and chromedriver (.ci/run installs them). Outside CI the test is skipped
when they are missing; in CI (CI=true) a missing browser is a failure."""

from __future__ import annotations

import io
import os
import shutil
import tempfile

import pytest
from openpyxl import load_workbook

from tests.server.monitor.conftest import new_project, submit, value

pytestmark = pytest.mark.slow  # a real headless browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI") == "true":
        pytest.fail("CI needs chromium and chromedriver", pytrace=False)
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHARE = "1.1-srm-from-recycling"


@pytest.fixture()
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,1400",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _points(browser) -> list[tuple[str, str, str]]:
    circles = browser.find_elements(By.CSS_SELECTOR, f'svg.chart[data-kpi="{SHARE}"] circle.point')
    return sorted(
        (
            c.get_attribute("data-series"),
            c.get_attribute("data-year"),
            c.get_attribute("data-value"),
        )
        for c in circles
    )


def test_log_in_upload_and_see_the_chart_change(live_monitor, browser, tmp_path):
    url, keys, _app, client = live_monitor
    url = url.replace("127.0.0.1", "localhost")  # a Secure cookie over http: localhost only
    new_project(client, keys.a, "A-1")
    submit(client, keys.a, [value("A-1", SHARE, 2025, 0.06, "1")])
    wait = WebDriverWait(browser, 30)

    browser.get(f"{url}/monitor/domains/1.1")
    assert _points(browser) == []  # the public: one organisation, no aggregate, no project

    browser.get(f"{url}/monitor/login")
    browser.find_element(By.NAME, "api_key").send_keys(keys.a)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: "Alpha Recycling NV" in d.page_source)
    cookie = browser.get_cookie("critflow_monitor")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

    browser.get(f"{url}/monitor/domains/1.1")
    assert _points(browser) == [("A-1", "2025", "0.06")]

    # the template from the upload page, filled and uploaded through the form
    browser.get(f"{url}/monitor/upload")
    template = client.get("/api/monitor/template.xlsx", headers={"X-API-Key": keys.a}).content
    book = load_workbook(io.BytesIO(template))
    book["values"].append(["A-1", 2027, SHARE, 11, "%"])
    book["values"].append(["A-1", 2029, SHARE, 0.14, "1"])
    path = tmp_path / "kpis.xlsx"
    book.save(path)
    browser.find_element(By.NAME, "file").send_keys(str(path))
    browser.find_element(By.ID, "upload").click()
    wait.until(lambda d: d.find_elements(By.ID, "stored") or d.find_elements(By.ID, "refused"))
    assert browser.find_elements(By.ID, "stored"), browser.page_source[:3000]

    browser.get(f"{url}/monitor/domains/1.1")
    assert _points(browser) == [
        ("A-1", "2025", "0.06"),
        ("A-1", "2027", "0.11"),
        ("A-1", "2029", "0.14"),
    ]
    target = browser.find_element(
        By.CSS_SELECTOR, f'svg.chart[data-kpi="{SHARE}"] path.target[data-year="2027"]'
    )
    assert target.get_attribute("data-value") == "0.1"  # the roadmap's 2027 target, 10 %

    # log out: the public view again
    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    wait.until(lambda d: "log in" in d.page_source)
    browser.get(f"{url}/monitor/domains/1.1")
    assert _points(browser) == []
