"""The roadmap monitor's API per role (company, programme staff, public), the three-organisation
rule, the subtraction attack, units, and all-or-nothing batches."""

from __future__ import annotations

import io

import numpy as np
from openpyxl import load_workbook
from sqlalchemy import func, select

from critflow.server.monitor.models import MonitorProject, MonitorValue
from tests.server.monitor.conftest import COMPANIES, headers, new_project, submit, value

SHARE = "1.1-srm-from-recycling"  # unit "1" (a fraction), averaged over organisations
MASS_11 = "1.1-srm-recycled-mass"  # t, adds up; part of the programme total "srm-from-recycling"
MASS_12 = "1.2-srm-recovered-mass"  # t, the same total


def _count(app, table) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def _public(client) -> list[dict]:
    response = client.get("/api/monitor/aggregates")
    assert response.status_code == 200, response.text
    return response.json()["aggregates"]


def _export_aggregates(client, key=None) -> list[dict]:
    response = client.get("/api/monitor/export.xlsx", headers=headers(key))
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(book["aggregates"].iter_rows(values_only=True))
    names = ["domain", "kpi", "year", "value", "statistic", "unit", "organisations"]
    return [dict(zip(names, row, strict=True)) for row in rows[1:]], book.sheetnames


def test_roles_company_programme_public(monitor):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    new_project(client, keys.b, "B-1")
    submit(client, keys.a, [value("A-1", SHARE, 2025, 0.08, "1")])
    submit(client, keys.b, [value("B-1", SHARE, 2025, 12, "%")])

    # a company sees its own organisation's projects and values, also with a key that cannot write
    for key in (keys.a, keys.a_reader):
        listed = client.get("/api/monitor/projects", headers=headers(key)).json()["projects"]
        assert [p["project_id"] for p in listed] == ["A-1"]
        assert client.get("/api/monitor/projects/B-1", headers=headers(key)).status_code == 404
        domain = client.get("/api/monitor/domains/1.1", headers=headers(key)).json()
        shown = next(k for k in domain["kpis"] if k["id"] == SHARE)
        assert shown["projects"] == {"A-1": {"2025": 0.08}} or shown["projects"] == {
            "A-1": {2025: 0.08}
        }
    # programme staff see every project and value
    listed = client.get("/api/monitor/projects", headers=headers(keys.programme)).json()
    assert [p["project_id"] for p in listed["projects"]] == ["A-1", "B-1"]
    b1 = client.get("/api/monitor/projects/B-1", headers=headers(keys.programme)).json()
    assert b1["organisation"] == COMPANIES["b"]
    assert b1["values"][0]["value"] == 0.12  # 12 % in the KPI's unit "1"
    assert b1["values"][0]["given"] == {"value": 12.0, "unit": "%"}
    assert b1["values"][0]["provenance"]["organisation"] == COMPANIES["b"]
    # the public: no projects, no values; the domain view has only aggregates (none: 2 orgs)
    assert client.get("/api/monitor/projects").status_code == 401
    assert client.get("/api/monitor/projects/A-1").status_code == 401
    public = client.get("/api/monitor/domains/1.1").json()
    assert public["sees"] == "aggregates" and public["projects"] == []
    assert all(k["projects"] == {} and k["aggregate"] == [] for k in public["kpis"])
    # a reader key cannot write; nobody writes into another organisation's project
    before = _count(app, MonitorValue)
    submit(client, keys.a_reader, [value("A-1", SHARE, 2026, 0.1, "1")], status=403)
    refused = submit(client, keys.a, [value("B-1", SHARE, 2026, 0.1, "1")], status=422)
    assert refused["problems"][0]["where"] == "values[0].project"
    assert _count(app, MonitorValue) == before
    # programme staff may file a project for a company and submit for it
    new_project(client, keys.programme, "C-9", organisation=COMPANIES["c"])
    submit(client, keys.programme, [value("C-9", SHARE, 2026, 0.2, "1")])
    assert [
        p["project_id"]
        for p in client.get("/api/monitor/projects", headers=headers(keys.c)).json()["projects"]
    ] == ["C-9"]
    # a company cannot file a project for another organisation
    response = client.post(
        "/api/monitor/projects",
        json={
            "project_id": "X-1",
            "title": "x",
            "instrument": "icon",
            "domains": ["1.1"],
            "start_year": 2024,
            "end_year": 2026,
            "organisation": COMPANIES["b"],
        },
        headers=headers(keys.a),
    )
    assert response.status_code == 422 and response.json()["problems"][0]["where"] == "organisation"
    assert _count(app, MonitorProject) == 3


def test_three_organisations_make_a_public_aggregate(monitor):
    client, keys, _app = monitor
    for name, key in (("a", keys.a), ("b", keys.b), ("c", keys.c)):
        new_project(client, key, f"{name.upper()}-1")
    # two projects of one organisation are still one organisation
    new_project(client, keys.a, "A-2")
    submit(
        client, keys.a, [value("A-1", SHARE, 2027, 0.10, "1"), value("A-2", SHARE, 2027, 0.30, "1")]
    )
    submit(client, keys.b, [value("B-1", SHARE, 2027, 0.05, "1")])
    assert [a for a in _public(client) if a["kpi"] == SHARE] == []  # 2 organisations
    exported, sheets = _export_aggregates(client)
    assert exported == [] and sheets == ["aggregates"]  # the public export: aggregates only

    submit(client, keys.c, [value("C-1", SHARE, 2027, 0.15, "1")])
    (shown,) = [a for a in _public(client) if a["kpi"] == SHARE]
    # mean over organisations of their summed values: (0.10 + 0.30 + 0.05 + 0.15) / 3
    assert shown["organisations"] == 3 and shown["year"] == 2027
    assert (
        abs(shown["value"] - 0.60 / 3) < 1e-12 and shown["statistic"] == "mean over organisations"
    )
    (row,) = [r for r in _export_aggregates(client)[0] if r["kpi"] == SHARE]
    assert row["organisations"] == 3 and abs(row["value"] - 0.2) < 1e-12
    domain = client.get("/api/monitor/domains/1.1").json()
    assert (
        next(k for k in domain["kpis"] if k["id"] == SHARE)["aggregate"][0]["value"]
        == shown["value"]
    )
    # a later submission supersedes the earlier value (the latest row counts) — but once the
    # mean of A, B, C was public, the corrected mean would give C's correction away (new sum
    # minus old): it is not published; programme staff see the corrected value
    submit(client, keys.c, [value("C-1", SHARE, 2027, 0.45, "1")])
    assert [a for a in _public(client) if a["kpi"] == SHARE] == []
    seen = client.get("/api/monitor/projects/C-1", headers=headers(keys.programme)).json()
    assert [v["value"] for v in seen["values"]] == [0.45]


def _revealed(
    published: list[dict], membership: dict[tuple, dict[str, float]], target: str
) -> bool:
    """Whether the published sums determine ``target``'s value: its unit vector lies in the row
    space of the 0/1 matrix of published groups over the organisations' values (an independent
    linear-algebra check of what an attacker can compute by adding and subtracting)."""
    organisations = sorted({o for m in membership.values() for o in m})
    rows = [
        [1.0 if o in membership[(a["domain"], a["kpi"], a["year"])] else 0.0 for o in organisations]
        for a in published
    ]
    if not rows:
        return False
    matrix = np.array(rows)
    unit = np.array([1.0 if o == target else 0.0 for o in organisations])
    coefficients, *_ = np.linalg.lstsq(matrix.T, unit, rcond=None)
    return bool(np.allclose(matrix.T @ coefficients, unit, atol=1e-9))


def test_subtraction_attack_refused_in_api_and_excel(monitor):
    """A, B, C report tonnes under 1.1; D alone under 1.2. The programme total (A+B+C+D) minus
    the 1.1 aggregate (A+B+C) would give D's tonnes: the two are never both published."""
    client, keys, _app = monitor
    new_project(client, keys.a, "A-1")
    new_project(client, keys.b, "B-1")
    new_project(client, keys.c, "C-1")
    new_project(client, keys.d, "D-1", domains=("1.2",))
    submit(client, keys.a, [value("A-1", MASS_11, 2027, 120, "t")])
    submit(client, keys.b, [value("B-1", MASS_11, 2027, 0.08, "kt")])  # 80 t
    submit(client, keys.c, [value("C-1", MASS_11, 2027, 95, "t")])
    # before D reports, the 1.1 aggregate and the programme total (the same three) are public
    shown = {(a["domain"], a["kpi"]): a for a in _public(client) if a["year"] == 2027}
    assert shown[("1.1", MASS_11)]["value"] == 295.0  # 120 + 80 + 95 t
    assert shown[("programme", "srm-from-recycling")]["value"] == 295.0
    submit(client, keys.d, [value("D-1", MASS_12, 2027, 40, "t")])

    membership = {
        ("1.1", MASS_11, 2027): {"a": 120, "b": 80, "c": 95},
        ("1.2", MASS_12, 2027): {"d": 40},
        ("programme", "srm-from-recycling", 2027): {"a": 120, "b": 80, "c": 95, "d": 40},
    }
    published = [a for a in _public(client) if (a["domain"], a["kpi"], a["year"]) in membership]
    keys_shown = {(a["domain"], a["kpi"]) for a in published}
    assert ("1.2", MASS_12) not in keys_shown  # one organisation
    assert not {("1.1", MASS_11), ("programme", "srm-from-recycling")} <= keys_shown
    assert keys_shown  # the rule suppresses one of the two, not both
    for company in "abcd":
        assert not _revealed(published, membership, company), company
    for a in published:  # what is published is the independent sum of its members
        assert a["value"] == sum(membership[(a["domain"], a["kpi"], a["year"])].values())

    # the Excel export (public, company, programme) carries the same aggregates, no more
    for key in (None, keys.a, keys.programme):
        exported, _sheets = _export_aggregates(client, key)
        rows = [r for r in exported if (r["domain"], r["kpi"], r["year"]) in membership]
        assert {(r["domain"], r["kpi"]) for r in rows} == keys_shown
        for company in "abcd":
            assert not _revealed(rows, membership, company)
    # and the programme totals view
    totals = client.get("/api/monitor/totals").json()["totals"]
    srm = next(t for t in totals if t["total"] == "srm-from-recycling")
    assert {("programme", "srm-from-recycling")} & keys_shown == (
        {("programme", "srm-from-recycling")} if srm["aggregate"] else set()
    )


def test_batches_are_all_or_nothing_with_field_paths(monitor):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    before = _count(app, MonitorValue)
    refused = submit(
        client,
        keys.a,
        [
            value("A-1", SHARE, 2027, 0.1, "1"),
            value("A-1", "1.1-srm-from-recyclin", 2027, 0.1, "1"),
            value("A-1", SHARE, 2040, 0.1, "1"),
            value("A-1", SHARE, 2027, 0.1, "kg"),
            value("A-1", "2.2-co2eq-avoided", 2027, 10, "t"),  # A-1 addresses 1.1 only
            value("A-1", MASS_11, 2027, 5, "t CO2-eq"),
        ],
        status=422,
    )
    wheres = [p["where"] for p in refused["problems"]]
    assert wheres == [
        "values[1].kpi",
        "values[2].year",
        "values[3].unit",
        "values[4].kpi",
        "values[5].unit",
    ]
    assert "Did you mean '1.1-srm-from-recycling'" in refused["problems"][0]["fix"]
    assert _count(app, MonitorValue) == before
    # a type error is a problem document naming the field path, from the typed body
    response = client.post(
        "/api/monitor/submissions",
        json={"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "value": "ten"}]},
        headers=headers(keys.a),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (
        "values[0].value" in response.json()["detail"]
        or "values.0.value" in response.json()["detail"]
    )
    # NaN is refused before the application sees it
    response = client.post(
        "/api/monitor/submissions",
        content=b'{"values": [{"project": "A-1", "kpi": "x", "year": 2027, "value": NaN, "unit": "1"}]}',
        headers={**headers(keys.a), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert _count(app, MonitorValue) == before
    # CO2-eq for a CO2 KPI and kilotonnes are converted (pint)
    new_project(client, keys.a, "A-2", domains=("2.2",))
    submit(client, keys.a, [value("A-2", "2.2-co2eq-avoided", 2027, 1.5, "kt CO2-eq")])
    stored = client.get("/api/monitor/projects/A-2", headers=headers(keys.a)).json()["values"]
    assert stored[0]["value"] == 1500.0 and stored[0]["unit"] == "t"


def test_project_checks_name_fields(monitor):
    client, keys, app = monitor
    response = client.post(
        "/api/monitor/projects",
        json={
            "project_id": "bad id!",
            "title": "t",
            "instrument": "ikon",
            "domains": ["1.1", "9.9"],
            "start_year": 2028,
            "end_year": 2025,
        },
        headers=headers(keys.a),
    )
    assert response.status_code == 422
    assert [p["where"] for p in response.json()["problems"]] == [
        "project_id",
        "instrument",
        "domains[1]",
        "end_year",
    ]
    assert "Did you mean 'icon'" in response.json()["problems"][1]["fix"]
    assert client.post("/api/monitor/projects", json={}, headers=headers(None)).status_code == 422
    new_project(client, keys.a, "A-1")
    response = client.post(
        "/api/monitor/projects",
        json={
            "project_id": "A-1",
            "title": "again",
            "instrument": "icon",
            "domains": ["1.1"],
            "start_year": 2024,
            "end_year": 2025,
        },
        headers=headers(keys.b),
    )
    assert response.status_code == 409
    assert _count(app, MonitorProject) == 1
