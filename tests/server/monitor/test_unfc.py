"""UNFC-2019 classified quantities of a project through the API: classes from the codes or the
questionnaire, tonnes per class and element on the domain page (summed independently here), the
public aggregate only from three organisations, and a contradictory combination refused whole."""

from __future__ import annotations

from collections import defaultdict

import yaml
from sqlalchemy import func, select

from critflow.server.monitor.models import MonitorQuantity
from tests.conftest import ROOT
from tests.server.monitor.conftest import headers, new_project
from tests.server.monitor.test_pages import _browser, _login

FILE = ROOT / "examples" / "monitor" / "unfc_zinc_residue.yaml"


def _quantities() -> list[dict]:
    raw = yaml.safe_load(FILE.read_text())
    shared = {k: str(raw[k]) for k in ("evaluator", "date")}
    return [{**shared, **q, "date": str(q.get("date", raw["date"]))} for q in raw["quantities"]]


def _stored(app) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(MonitorQuantity))


def test_classified_quantities_and_their_aggregates(monitor):
    client, keys, app = monitor
    quantities = _quantities()
    for name, key in (("A", keys.a), ("B", keys.b), ("C", keys.c)):
        new_project(client, key, f"{name}-Z", domains=("1.2",), instrument="csbo")
    response = client.post(
        "/api/monitor/projects/A-Z/quantities",
        json={"quantities": quantities},
        headers=headers(keys.a),
    )
    assert response.status_code == 201, response.text
    classes = response.json()["classes"]
    # the germanium quantity was classified by the questionnaire's answers
    germanium = next(c for c in classes if c["element"] == "Ge")
    assert germanium["code"].startswith("E3")
    # tonnes per class and element, summed here from the answer
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for c in classes:
        expected[(c["class"].split(" — ")[0], c["element"])] += c["tonnes"]
    staff = _login(app, keys.programme)
    page = staff.get("/monitor/domains/1.2").text
    assert 'id="unfc"' in page
    for (name, element), tonnes in expected.items():
        assert f"<td>{name}</td><td>{element}</td><td>{tonnes:.4g}</td>" in page, (name, element)
    # one organisation: nothing public
    assert 'id="unfc"' not in _browser(app).get("/monitor/domains/1.2").text
    # three organisations with the same Zn quantity: the public sees the class total
    zinc = [q for q in quantities if q["element"] == "Zn" and q.get("e") == "E1.1"]
    for project, key in (("B-Z", keys.b), ("C-Z", keys.c)):
        response = client.post(
            f"/api/monitor/projects/{project}/quantities",
            json={"quantities": zinc},
            headers=headers(key),
        )
        assert response.status_code == 201, response.text
    public = [
        a
        for a in client.get("/api/monitor/aggregates").json()["aggregates"]
        if a["kpi"].startswith("unfc:")
    ]
    assert len(public) == 1 and public[0]["organisations"] == 3
    assert public[0]["value"] == 3 * zinc[0]["tonnes"]
    assert public[0]["kpi"] == "unfc:Viable projects:Zn"


def test_a_contradictory_classification_is_refused_whole(monitor):
    client, keys, app = monitor
    new_project(client, keys.a, "A-Z", domains=("1.2",), instrument="csbo")
    quantities = _quantities()
    quantities[1] = {**quantities[0], "e": "E1.1", "f": "F4", "g": "G1"}
    quantities[2] = {**quantities[2], "domain": "1.3"}
    response = client.post(
        "/api/monitor/projects/A-Z/quantities",
        json={"quantities": quantities},
        headers=headers(keys.a),
    )
    assert response.status_code == 422, response.text
    wheres = [p["where"] for p in response.json()["problems"]]
    assert wheres[0].startswith("quantities[1]") and "quantities[2].domain" in wheres
    assert _stored(app) == 0
    # someone else's project
    response = client.post(
        "/api/monitor/projects/A-Z/quantities",
        json={"quantities": _quantities()},
        headers=headers(keys.b),
    )
    assert response.status_code == 404 and _stored(app) == 0
