"""Excel in and out: the template, uploads whose bad cells are refused in the cell's terms with
nothing stored, and an upload that is stored with its name as provenance."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from critflow.server.monitor.models import MonitorValue
from tests.server.monitor.conftest import headers, new_project

SHARE = "1.1-srm-from-recycling"
GOOD = ("A-1", 2027, SHARE, 0.12, "1")


def _template(client, key) -> object:
    response = client.get("/api/monitor/template.xlsx", headers=headers(key))
    assert response.status_code == 200
    return load_workbook(io.BytesIO(response.content))


def _workbook(client, key, rows) -> bytes:
    book = _template(client, key)
    for row in rows:
        book["values"].append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _upload(client, key, raw, name="kpis-2027.xlsx"):
    return client.post(
        "/api/monitor/uploads",
        files={
            "file": (name, raw, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        },
        headers=headers(key),
    )


def _stored(app) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(MonitorValue))


def test_template_lists_kpis_and_own_projects(monitor):
    client, keys, _app = monitor
    new_project(client, keys.a, "A-1")
    new_project(client, keys.b, "B-1")
    book = _template(client, keys.a)
    assert [c.value for c in book["values"][1]] == ["project", "year", "kpi", "value", "unit"]
    kpis = {row[0]: row[2] for row in book["kpis"].iter_rows(min_row=2, values_only=True)}
    assert kpis[SHARE] == "1" and kpis["2.2-co2eq-avoided"] == "t"
    projects = [row[0] for row in book["projects"].iter_rows(min_row=2, values_only=True)]
    assert projects == ["A-1"]  # not another organisation's


BAD = [
    pytest.param(
        ("A-1", 2027, SHARE, "twelve", "1"), "row 3, column D 'value'", "text", id="text-in-number"
    ),
    pytest.param(
        ("A-1", 2027, "1.1-srm-from-recyclng", 0.1, "1"),
        "row 3, column C 'kpi'",
        "not a KPI",
        id="unknown-kpi",
    ),
    pytest.param(
        ("A-1", 2027, SHARE, 0.1, "kg"), "row 3, column E 'unit'", "a mass", id="wrong-unit"
    ),
    pytest.param(
        ("A-1", 2040, SHARE, 0.1, "1"),
        "row 3, column B 'year'",
        "outside 2023-2035",
        id="year-2040",
    ),
    pytest.param(
        ("A-1", 2019, SHARE, 0.1, "1"),
        "row 3, column B 'year'",
        "outside 2023-2035",
        id="year-2019",
    ),
    pytest.param(
        ("B-1", 2027, SHARE, 0.1, "1"), "row 3, column A 'project'", "B-1", id="other-organisation"
    ),
]


@pytest.mark.parametrize(("row", "where", "what"), BAD)
def test_bad_cell_refuses_the_whole_upload(monitor, row, where, what):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    new_project(client, keys.b, "B-1")
    before = _stored(app)
    response = _upload(client, keys.a, _workbook(client, keys.a, [GOOD, row]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    (problem,) = response.json()["problems"]
    assert problem["where"] == f"kpis-2027.xlsx, sheet 'values', {where}"
    assert what in problem["what"]
    assert _stored(app) == before  # the good row 2 is not stored either


def test_every_bad_cell_is_named_and_a_good_upload_is_stored(monitor):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    raw = _workbook(
        client, keys.a, [("A-1", "2027x", SHARE, "0,12", "1"), ("A-1", 2027, SHARE, None, "%")]
    )
    response = _upload(client, keys.a, raw)
    wheres = [p["where"].split(", ", 2)[2] for p in response.json()["problems"]]
    assert wheres == [
        "row 2, column B 'year'",
        "row 2, column D 'value'",
        "row 3, column D 'value'",
    ]
    assert _stored(app) == 0
    # a workbook that is not one, and a sheet that is missing
    assert _upload(client, keys.a, b"not a zip").status_code == 422
    # the good upload: 12 % converted to the KPI's unit, provenance the file's name
    response = _upload(
        client,
        keys.a,
        _workbook(client, keys.a, [("A-1", 2027, SHARE, 12, "%"), ("A-1", 2026, SHARE, 0.12, "1")]),
    )
    assert response.status_code == 201, response.text
    assert response.json()["stored_values"] == 2
    values = client.get("/api/monitor/projects/A-1", headers=headers(keys.a)).json()["values"]
    assert [(v["year"], v["value"]) for v in values] == [(2026, 0.12), (2027, 0.12)]
    assert {v["provenance"]["upload_name"] for v in values} == {"kpis-2027.xlsx"}
    assert {v["provenance"]["source"] for v in values} == {"excel"}
    # anonymous uploads are refused
    assert _upload(client, None, raw).status_code == 401


def test_export_holds_what_the_caller_sees(monitor):
    client, keys, _app = monitor
    new_project(client, keys.a, "A-1")
    new_project(client, keys.b, "B-1")
    for key, project, number in ((keys.a, "A-1", 0.1), (keys.b, "B-1", 0.2)):
        response = client.post(
            "/api/monitor/submissions",
            json={
                "values": [
                    {"project": project, "year": 2027, "kpi": SHARE, "value": number, "unit": "1"}
                ]
            },
            headers=headers(key),
        )
        assert response.status_code == 201

    def exported(key):
        response = client.get("/api/monitor/export.xlsx", headers=headers(key))
        book = load_workbook(io.BytesIO(response.content), read_only=True)
        if "values" not in book.sheetnames:
            return book.sheetnames, []
        return book.sheetnames, [
            r[:4] for r in book["values"].iter_rows(min_row=2, values_only=True)
        ]

    assert exported(None) == (["aggregates"], [])
    sheets, rows = exported(keys.a)
    assert sheets == ["aggregates", "projects", "values", "verdicts", "unfc"]
    assert rows == [("A-1", 2027, SHARE, 0.1)]
    assert exported(keys.programme)[1] == [("A-1", 2027, SHARE, 0.1), ("B-1", 2027, SHARE, 0.2)]
