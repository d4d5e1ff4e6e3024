"""A server killed with SIGKILL midway: after a restart every bulk-ingest batch is fully in or
fully out and every passport's chain verifies; every audited read that was answered has its
audit entry and every acknowledged create is stored. The server is a real uvicorn process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import func, select

from critflow.passport.samples import sample_battery
from critflow.server.auth import create_key
from critflow.server.database import make_engine, session_factory, upgrade
from critflow.server.models import AuditEntry, Passport
from critflow.server.signing import init_registry_key
from tests.conftest import free_port
from tests.server.conftest import register_sample_organisations


def _start(url: str, key_file, port: int) -> subprocess.Popen:
    env = {**os.environ, "CRITFLOW_DATABASE_URL": url, "CRITFLOW_REGISTRY_KEY": str(key_file)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "critflow.server.app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"registry did not start: {process.stderr.read().decode()[-2000:]}")


@pytest.mark.slow
def test_sigkill_during_bulk_ingest(database_url, tmp_path):
    engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        issuer = create_key(session, "Example Cells NV", ["issuer"], True, None)
        register_sample_organisations(session)
    engine.dispose()
    key_file = tmp_path / "registry.key"
    init_registry_key(key_file)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": issuer}
    server = _start(database_url, key_file, port)
    ids = []
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for i in range(40):
                document = sample_battery("ev", f"K-{i:03d}")
                assert client.post("/api/passports", json=document).status_code == 201
                ids.append(document["data"]["unique_identifier"])
        acknowledged = []
        stop = threading.Event()

        def ingest() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                batch = 0
                while not stop.is_set():
                    batch += 1
                    updates = [
                        {
                            "passport_id": p,
                            "data": {
                                "state_of_charge": float(batch % 100),
                                "number_of_cycles": batch,
                            },
                        }
                        for p in ids
                    ]
                    try:
                        response = client.post("/api/ingest", json={"updates": updates})
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        acknowledged.append(batch)

        worker = threading.Thread(target=ingest)
        worker.start()
        # kill in the middle of the stream: once two batches are acknowledged (a loaded machine
        # may take long for the first), plus a moment so that a batch is in flight
        deadline = time.monotonic() + 60
        while len(acknowledged) < 2 and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        stop.set()
        worker.join()
    finally:
        if server.poll() is None:
            server.kill()
    assert acknowledged, "no batch finished within 60 s before the kill"
    server = _start(database_url, key_file, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            keys, cursor = [], None
            while True:
                page = client.get(
                    "/api/passports",
                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                ).json()
                keys += [item["key"] for item in page["items"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            versions = set()
            for key in keys:
                report = client.get(f"/api/passports/{key}/verify", headers=headers).json()
                assert report["valid"], report
                versions.add(report["versions"])
    finally:
        server.kill()
        server.wait()
    assert len(keys) == 40
    # one version per batch on every passport: all equal, and at least every acknowledged batch
    assert len(versions) == 1
    (count,) = versions
    assert count - 1 >= len(acknowledged)


@pytest.mark.slow
def test_sigkill_during_audited_reads_and_creates(database_url, tmp_path):
    """Kill -9 while recyclers read (audited, group-committed) and an issuer creates: every read
    that was answered has its audit entry, every acknowledged create is there and verifies."""
    engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        issuer = create_key(session, "Example Cells NV", ["issuer"], True, None)
        reader = create_key(session, "Recycler BV", ["legitimate_interest"], False, "recycling")
        register_sample_organisations(session)
    key_file = tmp_path / "registry.key"
    init_registry_key(key_file)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(database_url, key_file, port)
    answered: dict[str, int] = {}
    created: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": issuer}, timeout=30) as client:
            keys = []
            for i in range(10):
                response = client.post("/api/passports", json=sample_battery("ev", f"R-{i:03d}"))
                assert response.status_code == 201
                keys.append(response.json()["key"])

        def read(offset: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": reader}, timeout=30) as c:
                n = offset
                while not stop.is_set():
                    n += 1
                    key = keys[n % len(keys)]
                    try:
                        response = c.get(f"/api/passports/{key}")
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        assert response.json()["audience"] == "legitimate_interest"
                        with lock:
                            answered[key] = answered.get(key, 0) + 1

        def create(worker: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": issuer}, timeout=30) as c:
                n = 0
                while not stop.is_set():
                    n += 1
                    document = sample_battery("ev", f"N-{worker}-{n:05d}")
                    try:
                        response = c.post("/api/passports", json=document)
                    except httpx.HTTPError:
                        return
                    if response.status_code == 201:
                        with lock:
                            created.append(response.json()["key"])

        threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
        threads += [threading.Thread(target=create, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while (sum(answered.values()) < 200 or len(created) < 10) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)  # with reads and creates in flight
        server.wait()
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
    assert sum(answered.values()) >= 200 and len(created) >= 10, (
        "too little traffic before the kill"
    )
    reader_id = reader.split("_")[1]
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditEntry.passport_key, func.count())
            .where(
                AuditEntry.action == "read",
                AuditEntry.key_id == reader_id,
                AuditEntry.outcome == "allowed",
            )
            .group_by(AuditEntry.passport_key)
        ).all()
        audited = dict(rows)
        stored = set(connection.execute(select(Passport.key)).scalars())
        creates_audited = set(
            connection.execute(
                select(AuditEntry.passport_key).where(
                    AuditEntry.action == "create", AuditEntry.outcome == "allowed"
                )
            ).scalars()
        )
    engine.dispose()
    # an answered read has its entry (a read cut off before its answer may have one too)
    assert all(audited.get(key, 0) >= n for key, n in answered.items()), (answered, audited)
    assert set(created) <= stored and set(created) <= creates_audited
    server = _start(database_url, key_file, port)
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": issuer}, timeout=30) as client:
            for key in created:
                report = client.get(f"/api/passports/{key}/verify").json()
                assert report["valid"] and report["versions"] == 1, report
    finally:
        server.kill()
        server.wait()
