"""The monitor remembers what it published (table monitor_published, migration 0004): an
organisation joining a group later cannot be recovered by subtracting the earlier aggregate —
through the HTTP API, on SQLite and PostgreSQL, after a restart and across workers."""

from __future__ import annotations

import io
import math

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from critflow.server.api import create_app
from critflow.server.monitor.models import MonitorPublished
from tests.server.monitor.conftest import headers, new_project, submit, value

SHARE = "1.1-srm-from-recycling"  # a fraction, averaged over organisations
MASS_11 = "1.1-srm-recycled-mass"  # t, adds up; part of the programme total


def _published(client) -> dict[tuple, dict]:
    response = client.get("/api/monitor/aggregates")
    assert response.status_code == 200, response.text
    return {(a["domain"], a["kpi"], a["year"]): a for a in response.json()["aggregates"]}


def _recorded(app) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(MonitorPublished))


def _everything_public(client, key=None) -> str:
    """Every view of the aggregates as text: API, domain and totals views, Excel, pages."""
    parts = [
        client.get("/api/monitor/aggregates").text,
        client.get("/api/monitor/domains/1.1", headers=headers(key)).text,
        client.get("/api/monitor/totals", headers=headers(key)).text,
        client.get("/monitor/domains/1.1").text,
    ]
    book = load_workbook(
        io.BytesIO(client.get("/api/monitor/export.xlsx", headers=headers(key)).content),
        read_only=True,
    )
    parts.append(repr(list(book["aggregates"].iter_rows(values_only=True))))
    return "\n".join(parts)


def _three_then_d(client, keys, kpi, numbers, unit):
    for name, key in (("a", keys.a), ("b", keys.b), ("c", keys.c), ("d", keys.d)):
        new_project(client, key, f"{name.upper()}-1")
    for name, key in (("a", keys.a), ("b", keys.b), ("c", keys.c)):
        submit(client, key, [value(f"{name.upper()}-1", kpi, 2027, numbers[name], unit)])


def test_an_organisation_joining_later_is_not_revealed_by_the_web_service(monitor):
    """A, B, C report a share, the public sees their mean; D reports later: the new mean of
    four (times four, minus the old sum) would be D's value — it is not published."""
    client, keys, app = monitor
    _three_then_d(client, keys, SHARE, {"a": 0.10, "b": 0.20, "c": 0.30}, "1")
    before = _published(client)[("1.1", SHARE, 2027)]
    assert before["organisations"] == 3 and abs(before["value"] - 0.2) < 1e-12
    assert _recorded(app) == 1

    submit(client, keys.d, [value("D-1", SHARE, 2027, 0.777, "1")])
    assert ("1.1", SHARE, 2027) not in _published(client)
    for key in (None, keys.a, keys.programme):
        text = _everything_public(client, key)
        # neither D's value (but for programme staff) nor the sum or mean of four appears
        assert "0.777" not in text or key == keys.programme, key
        for leaked in (math.fsum([0.1, 0.2, 0.3, 0.777]), math.fsum([0.1, 0.2, 0.3, 0.777]) / 4):
            assert repr(leaked) not in text and f"{leaked:.4f}" not in text, key
    # programme staff see D's project value, but no aggregate of four
    domain = client.get("/api/monitor/domains/1.1", headers=headers(keys.programme)).json()
    share = next(k for k in domain["kpis"] if k["id"] == SHARE)
    assert share["aggregate"] == [] and share["projects"]["D-1"] == {"2027": 0.777}
    assert _recorded(app) == 1  # the suppressed aggregate is not recorded


def test_a_joiner_to_a_total_is_not_revealed_and_the_memory_survives_a_restart(
    monitor, database_url, tmp_path
):
    """Tonnes add up: the 1.1 sum over A, B, C, then over A, B, C, D. After a restart (a new
    application on the same database) the earlier aggregate still counts."""
    client, keys, app = monitor
    _three_then_d(client, keys, MASS_11, {"a": 120.0, "b": 80.0, "c": 95.0}, "t")
    shown = _published(client)
    assert shown[("1.1", MASS_11, 2027)]["value"] == 295.0
    assert shown[("programme", "srm-from-recycling", 2027)]["value"] == 295.0
    recorded = _recorded(app)
    assert recorded == 2

    # restart: a fresh application (its cache empty) on the same database
    client.close()
    app.state.registry.engine.dispose()
    app2 = create_app(database_url, key_file=tmp_path / "registry.key")
    with TestClient(app2) as client2:
        assert _published(client2)[("1.1", MASS_11, 2027)]["value"] == 295.0
        submit(client2, keys.d, [value("D-1", MASS_11, 2027, 41.5, "t")])
        now = _published(client2)
        assert ("1.1", MASS_11, 2027) not in now
        assert ("programme", "srm-from-recycling", 2027) not in now
        for key in (None, keys.a):
            text = _everything_public(client2, key)
            assert "41.5" not in text and "336.5" not in text, key
        assert _recorded(app2) == recorded
    app2.state.registry.engine.dispose()


def test_a_second_worker_sees_what_the_first_published(monitor, database_url, tmp_path):
    """Two workers (two applications on one database, each with its own cache): the first
    publishes A+B+C; D reports; the second worker, which never showed anything, still
    refuses the sum of four."""
    client, keys, _app = monitor
    worker2 = create_app(database_url, key_file=tmp_path / "registry.key")
    try:
        with TestClient(worker2) as client2:
            _three_then_d(client, keys, MASS_11, {"a": 10.0, "b": 20.0, "c": 30.0}, "t")
            assert _published(client)[("1.1", MASS_11, 2027)]["value"] == 60.0
            submit(client2, keys.d, [value("D-1", MASS_11, 2027, 7.25, "t")])
            for c in (client2, client):
                assert ("1.1", MASS_11, 2027) not in _published(c)
                assert "7.25" not in _everything_public(c) and "67.25" not in _everything_public(c)
    finally:
        worker2.state.registry.engine.dispose()


def test_a_refused_submission_publishes_and_records_nothing(monitor):
    client, keys, app = monitor
    _three_then_d(client, keys, SHARE, {"a": 0.1, "b": 0.2, "c": 0.3}, "1")
    _published(client)
    recorded = _recorded(app)
    refused = submit(
        client,
        keys.d,
        [value("D-1", SHARE, 2027, 0.5, "1"), value("D-1", SHARE, 2099, 0.5, "1")],
        status=422,
    )
    assert refused["problems"][0]["where"] == "values[1].year"
    assert _published(client)[("1.1", SHARE, 2027)]["organisations"] == 3
    assert _recorded(app) == recorded


def test_a_revision_after_publication_is_not_revealed(monitor):
    """C corrects its value after the mean of A, B, C was shown: the new mean minus the old
    one would be C's correction; the corrected aggregate is not published."""
    client, keys, app = monitor
    _three_then_d(client, keys, SHARE, {"a": 0.1, "b": 0.2, "c": 0.3}, "1")
    assert abs(_published(client)[("1.1", SHARE, 2027)]["value"] - 0.2) < 1e-12
    submit(client, keys.c, [value("C-1", SHARE, 2027, 0.6, "1")])
    assert ("1.1", SHARE, 2027) not in _published(client)
    # a value equal to the published one again: the same sum, published again, no new record
    recorded = _recorded(app)
    submit(client, keys.c, [value("C-1", SHARE, 2027, 0.3, "1")])
    assert abs(_published(client)[("1.1", SHARE, 2027)]["value"] - 0.2) < 1e-12
    assert _recorded(app) == recorded
