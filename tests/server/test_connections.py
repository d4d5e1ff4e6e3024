"""Pooled database connections: no round trip of its own per request, and a database restart
(every server connection dropped) costs an audited or public read nothing — it is answered, and
audited, on a fresh connection."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from critflow.passport.samples import sample_battery
from critflow.server import database
from critflow.server.models import AuditEntry


def _drop_server_connections(app) -> int:
    """Terminate every server process of the registry's database (as a restart would)."""
    import psycopg

    url = app.state.registry.engine.url
    name = url.database
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        return len(
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        )


def _audited(app) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "read")
        )


def test_reads_are_answered_after_the_database_dropped_every_connection(registry):
    client, keys, app = registry
    if app.state.registry.engine.url.get_backend_name() != "postgresql":
        pytest.skip("SQLite has no server connections to lose")
    created = client.post(
        "/api/passports", json=sample_battery("ev", "R1"), headers={"X-API-Key": keys.issuer}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    for _ in range(3):  # the pools hold connections now
        assert client.get(f"/api/passports/{key}").status_code == 200
        assert (
            client.get(
                f"/api/passports/{key}", headers={"X-API-Key": keys.legitimate_interest}
            ).status_code
            == 200
        )
    before = _audited(app)
    assert _drop_server_connections(app) >= 1
    public = client.get(f"/api/passports/{key}")
    assert public.status_code == 200, public.text
    audited = client.get(f"/api/passports/{key}", headers={"X-API-Key": keys.legitimate_interest})
    assert audited.status_code == 200, audited.text
    assert audited.json()["audience"] == "legitimate_interest"
    assert _audited(app) == before + 1  # the answered read is audited
    assert client.get(f"/api/passports/{key}").json() == public.json()


def test_a_busy_connection_is_not_pinged_an_idle_one_is(registry, monkeypatch):
    client, keys, app = registry
    if app.state.registry.engine.url.get_backend_name() != "postgresql":
        pytest.skip("SQLite connections are not pinged")
    reads = app.state.registry._reads
    pings: list[int] = []
    original = reads.dialect.do_ping
    monkeypatch.setattr(reads.dialect, "do_ping", lambda c: pings.append(1) or original(c))
    created = client.post(
        "/api/passports", json=sample_battery("ev", "R2"), headers={"X-API-Key": keys.issuer}
    )
    key = created.json()["key"]
    for _ in range(20):
        assert client.get(f"/api/passports/{key}").status_code == 200
    assert pings == []  # busy: used again within the idle time, no ping
    assert _drop_server_connections(app) >= 1
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)
    # the listeners read the idle time they were made with; an engine made now pings at once
    fresh = database.autocommit_reads(app.state.registry.engine)
    with fresh.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    _drop_server_connections(app)
    with fresh.connect() as connection:  # pinged, found dead, replaced: no error
        assert connection.exec_driver_sql("SELECT 2").scalar() == 2
    fresh.dispose()
