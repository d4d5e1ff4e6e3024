"""Screening a proposal through the API and the page: eligibility, the colour of the window, a
start past the roadmap's horizon reported as too late, the sheet as HTML."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml

from tests.conftest import ROOT
from tests.server.monitor.conftest import headers
from tests.server.monitor.test_pages import _browser, _login

EXAMPLES = ROOT / "examples" / "monitor"
LATE = EXAMPLES / "proposal_csbo_late_start.yaml"
ICON = EXAMPLES / "proposal_icon_battery_recycling.yaml"


def test_screening_api(monitor):
    client, keys, _app = monitor
    late = yaml.safe_load(LATE.read_text())
    assert client.post("/api/monitor/screening", json=late).status_code == 401
    response = client.post("/api/monitor/screening", json=late, headers=headers(keys.programme))
    assert response.status_code == 200, response.text
    screened = response.json()
    assert screened["too_late"] is True and screened["window"] is None  # starts 2031, past 2030
    icon = yaml.safe_load(ICON.read_text())
    screened = client.post("/api/monitor/screening", json=icon, headers=headers(keys.a)).json()
    assert screened["too_late"] is False and screened["window"] == "2024-2027"
    # ICON needs at least three unrelated companies: the example has three (A and its subsidiary
    # count once); with two it is not eligible
    assert screened["eligible"] is not False
    icon["partners"] = [p for p in icon["partners"] if p["organisation"] != "Equipment C"]
    fewer = client.post("/api/monitor/screening", json=icon, headers=headers(keys.a)).json()
    assert fewer["eligible"] is False
    # the sheet
    sheet = client.post("/api/monitor/screening?sheet=html", json=icon, headers=headers(keys.a))
    assert sheet.status_code == 200 and sheet.text.startswith("<!doctype html>")
    assert "Screening sheet" in sheet.text
    # a mistake names the field
    icon["instrument"] = "ikon"
    refused = client.post("/api/monitor/screening", json=icon, headers=headers(keys.a))
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["where"] == "proposal: instrument"


def test_screening_page_with_upload_and_form(monitor):
    _client, keys, app = monitor
    assert "log in" in _browser(app).get("/monitor/screening").text
    staff = _login(app, keys.programme)
    page = staff.post(
        "/monitor/screening",
        data={"action": "screen"},
        files={"proposal_file": ("late.yaml", LATE.read_bytes(), "application/yaml")},
    )
    assert page.status_code == 200, page.text
    assert 'id="too-late"' in page.text and 'id="sheet"' in page.text
    # the form: a proposal typed in, its sheet downloaded as HTML
    form = {
        "title": "Electrified drying of black mass",
        "acronym": "EDRY",
        "instrument": "icon",
        "domains": ["2.2"],
        "start_year": "2026",
        "duration_years": "3",
        "partners": "Recycler A | company\nChemicals B | company\nEquipment C | company\n"
        "University X | research_group | Hydrometallurgy lab",
        "claims": "2.2-climate-intensity-change -0.15 2028",
    }
    page = staff.post("/monitor/screening", data={**form, "action": "screen"})
    assert page.status_code == 200 and 'id="too-late"' not in page.text
    download = staff.post("/monitor/screening", data={**form, "action": "html"})
    assert download.headers["content-disposition"] == 'attachment; filename="screening-EDRY.html"'
    assert "Electrified drying of black mass" in download.text
    # a partner of no known kind and a malformed claim are named by line
    page = staff.post(
        "/monitor/screening",
        data={
            **form,
            "partners": "Recycler A | firm",
            "claims": "2.2-climate-intensity-change lots",
        },
    )
    assert page.status_code == 422
    assert "partners, line 1" in page.text and "claims, line 1" in page.text
    # with a model file: the model's values appear on the sheet
    page = staff.post(
        "/monitor/screening",
        data={"action": "html"},
        files={
            "proposal_file": ("icon.yaml", ICON.read_bytes(), "application/yaml"),
            "model_file": (
                "battery_recycling_hydromet.yaml",
                (ROOT / "examples" / "battery_recycling_hydromet.yaml").read_bytes(),
                "application/yaml",
            ),
        },
    )
    assert page.status_code == 200, page.text[:2000]
    model = (ROOT / "examples" / "battery_recycling_hydromet.yaml").read_bytes()
    assert f"SHA-256 {hashlib.sha256(model).hexdigest()[:16]}" in page.text


@pytest.mark.slow  # a headless Chromium prints the PDF
def test_screening_sheet_as_pdf(monitor):
    client, keys, _app = monitor
    if shutil.which("chromium") is None:
        pytest.skip("no chromium")
    icon = yaml.safe_load(ICON.read_text())
    response = client.post(
        "/api/monitor/screening?sheet=pdf", json=icon, headers=headers(keys.programme)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
