"""Roadmap-monitor fixtures on the registry's (SQLite and PostgreSQL, see tests/server/conftest.py):
four companies with write keys, a company key without write right, a programme-staff key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from critflow.server.auth import create_key

COMPANIES = {
    "a": "Alpha Recycling NV",
    "b": "Beta Metals BV",
    "c": "Gamma Refining SA",
    "d": "Delta Cells NV",
}


@dataclass
class MonitorKeys:
    a: str
    b: str
    c: str
    d: str
    a_reader: str
    programme: str


@pytest.fixture()
def monitor(registry):
    """(client, keys, app): the registry's test client with the monitor's keys."""
    client, _keys, app = registry
    with app.state.registry.sessions() as session:
        made = {
            k: create_key(session, name, ["issuer"], True, None) for k, name in COMPANIES.items()
        }
        keys = MonitorKeys(
            **made,
            a_reader=create_key(session, COMPANIES["a"], ["issuer"], False, None),
            programme=create_key(session, "MateriNex programme", ["programme"], True, None),
        )
    return client, keys, app


def headers(key: str | None) -> dict[str, str]:
    return {"X-API-Key": key} if key else {}


def new_project(client, key, project_id, domains=("1.1",), instrument="icon", **extra):
    body = {
        "project_id": project_id,
        "title": f"Project {project_id}",
        "instrument": instrument,
        "domains": list(domains),
        "partners": ["KU Leuven", "VITO"],
        "start_year": 2024,
        "end_year": 2028,
        **extra,
    }
    response = client.post("/api/monitor/projects", json=body, headers=headers(key))
    assert response.status_code == 201, response.text
    return response.json()


def submit(client, key, values, status=201, **extra):
    response = client.post(
        "/api/monitor/submissions", json={"values": values, **extra}, headers=headers(key)
    )
    assert response.status_code == status, response.text
    return response.json()


def value(project, kpi, year, number, unit):
    return {"project": project, "kpi": kpi, "year": year, "value": number, "unit": unit}


@pytest.fixture()
def live_monitor(monitor):
    """(base URL, keys, app): the monitor's application served by uvicorn on a free port in a
    thread (for the command line and the browser)."""
    import threading
    import time

    import uvicorn

    from tests.conftest import free_port

    client, keys, app = monitor
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", keys, app, client
    server.should_exit = True
    thread.join(timeout=10)
