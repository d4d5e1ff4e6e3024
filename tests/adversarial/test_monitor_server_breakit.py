"""The roadmap monitor's web service attacked from outside (issue 22), on SQLite and PostgreSQL.

Each case is an attack or a careless request that once got through; each now ends in a clean
refusal (a problem document naming the field path), changes nothing and leaks nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from critflow.server.monitor.models import MonitorProject
from tests.server import conftest as server_fixtures
from tests.server.monitor import conftest as monitor_fixtures
from tests.server.monitor.conftest import headers

# the registry's fixtures (SQLite and PostgreSQL) and the monitor's keys
database_url = server_fixtures.database_url
registry = server_fixtures.registry
monitor = monitor_fixtures.monitor

PROBLEM = "application/problem+json"
SHARE = "1.1-srm-from-recycling"  # a fraction
MASS_11 = "1.1-srm-recycled-mass"  # t


def _count(app, table) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def _project_body(project_id: str, **extra) -> dict:
    return {
        "project_id": project_id,
        "title": "A project",
        "instrument": "icon",
        "domains": ["1.1"],
        "partners": [],
        "start_year": 2024,
        "end_year": 2028,
        **extra,
    }


@pytest.mark.parametrize(
    "reserved", ["aggregate", "Aggregate", "AGGREGATES", "programme", "template", "export"]
)
def test_a_project_may_not_take_a_word_the_monitor_uses(monitor, reserved):
    """A project called 'aggregate' drew its own values as the public aggregate's black line on
    every chart of its domain (its series replaced the aggregate's)."""
    client, keys, app = monitor
    response = client.post(
        "/api/monitor/projects", json=_project_body(reserved), headers=headers(keys.a)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    (problem,) = response.json()["problems"]
    assert problem["where"] == "project_id" and "uses itself" in problem["what"]
    assert _count(app, MonitorProject) == 0
