"""The monitor's pages per role: log in with a key (a Secure, HttpOnly, SameSite=Strict session
cookie), what each role sees on the domain and project pages, upload through the page, log out."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from critflow.server.auth import revoke_key
from tests.server.monitor.conftest import COMPANIES, new_project, submit, value

SHARE = "1.1-srm-from-recycling"


def _browser(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")  # the cookie is Secure


def _login(app, key) -> TestClient:
    browser = _browser(app)
    response = browser.post("/monitor/login", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "critflow_monitor=" in cookie
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/monitor"):
        assert flag.lower() in cookie.lower(), cookie
    return browser


def _points(page: str, kpi: str) -> list[tuple[str, str, str]]:
    svg = re.search(rf'<svg class="chart" data-kpi="{re.escape(kpi)}".*?</svg>', page, re.S).group(
        0
    )
    return re.findall(
        r'<circle class="point" data-series="([^"]+)" data-year="(\d+)" data-value="([^"]+)"', svg
    )


def _setup(client, keys):
    for name, key in (("A", keys.a), ("B", keys.b), ("C", keys.c)):
        new_project(client, key, f"{name}-1")
        submit(
            client,
            key,
            [value(f"{name}-1", SHARE, 2027, {"A": 0.1, "B": 0.2, "C": 0.3}[name], "1")],
        )


def test_pages_per_role(monitor):
    client, keys, app = monitor
    _setup(client, keys)
    # the public: the aggregate (mean 0.2 of three organisations), no project, no value
    public = _browser(app)
    page = public.get("/monitor/domains/1.1").text
    assert _points(page, SHARE) == [("aggregate", "2027", "0.2")]
    assert "A-1" not in page and COMPANIES["a"] not in page
    assert "log in" in page
    assert public.get("/monitor/projects/A-1").status_code == 401
    assert "Focus domains" in public.get("/monitor").text
    # a company: its own project beside the aggregate, not the others'
    company = _login(app, keys.a)
    page = company.get("/monitor/domains/1.1").text
    assert sorted(_points(page, SHARE)) == [("A-1", "2027", "0.1"), ("aggregate", "2027", "0.2")]
    assert "B-1" not in page and COMPANIES["a"] in page
    assert company.get("/monitor/projects/A-1").status_code == 200
    assert company.get("/monitor/projects/B-1").status_code == 404
    # programme staff: every project
    staff = _login(app, keys.programme)
    page = staff.get("/monitor/domains/1.1").text
    assert {s for s, _y, _v in _points(page, SHARE)} == {"aggregate", "A-1", "B-1", "C-1"}
    project = staff.get("/monitor/projects/B-1").text
    assert "0.2" in project and COMPANIES["b"] in project
    # the export follows the session
    book = load_workbook(io.BytesIO(company.get("/monitor/export.xlsx").content), read_only=True)
    assert [r[0] for r in book["values"].iter_rows(min_row=2, values_only=True)] == ["A-1"]
    # log out: the session ends
    assert company.post("/monitor/logout", follow_redirects=False).status_code == 303
    assert "A-1" not in company.get("/monitor/domains/1.1").text


def test_login_refusals_and_revocation(monitor):
    client, keys, app = monitor
    browser = _browser(app)
    response = browser.post("/monitor/login", data={"api_key": "cfk_nothere_x"})
    assert response.status_code == 401 and "unknown or revoked" in response.text
    assert "set-cookie" not in response.headers
    # a form posted from another site is refused
    response = browser.post(
        "/monitor/login", data={"api_key": keys.a}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    # revoking the key ends its sessions at once
    company = _login(app, keys.a)
    new_project(client, keys.a, "A-1")
    assert company.get("/monitor/projects/A-1").status_code == 200
    with app.state.registry.sessions() as session:
        revoke_key(session, keys.a)
    assert company.get("/monitor/projects/A-1").status_code == 401


def test_upload_through_the_page(monitor):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    company = _login(app, keys.a)
    assert 'href="/monitor/template.xlsx"' in company.get("/monitor/upload").text
    book = load_workbook(io.BytesIO(company.get("/monitor/template.xlsx").content))
    book["values"].append(["A-1", 2027, SHARE, "abc", "1"])
    buffer = io.BytesIO()
    book.save(buffer)
    response = company.post(
        "/monitor/upload",
        files={"file": ("mine.xlsx", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 422
    assert "mine.xlsx, sheet &#x27;values&#x27;, row 2, column D &#x27;value&#x27;" in response.text
    book["values"]["D2"] = 0.25
    buffer = io.BytesIO()
    book.save(buffer)
    response = company.post(
        "/monitor/upload",
        files={"file": ("mine.xlsx", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 200 and 'id="stored"' in response.text
    page = company.get("/monitor/domains/1.1").text
    assert _points(page, SHARE) == [("A-1", "2027", "0.25")]
    # the public cannot upload
    assert "log in" in _browser(app).get("/monitor/upload").text


def test_every_domain_page_renders_for_every_role(monitor):
    client, keys, app = monitor
    _setup(client, keys)
    domains = [d["id"] for d in client.get("/api/monitor/roadmap").json()["domains"]]
    assert "enablers.tools" in domains and len(domains) == 10
    for browser in (_browser(app), _login(app, keys.a), _login(app, keys.programme)):
        for domain in domains:
            page = browser.get(f"/monitor/domains/{domain}")
            assert page.status_code == 200, (domain, page.text[:500])
            assert "colour code" in page.text
        missing = browser.get("/monitor/domains/9.9")
        assert missing.status_code == 404 and "1.1" in missing.text
        assert browser.get("/monitor").status_code == 200
