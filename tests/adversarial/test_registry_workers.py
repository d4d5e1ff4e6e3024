"""A real ``critflow serve --workers 2`` on a free loopback port, on SQLite and PostgreSQL.

- the signing key is created once on a fresh key file, and every version written by either
  worker during concurrent updates verifies (the race of issue 18 lost versions for good);
- ``critflow keys revoke`` reaches both workers within seconds;
- schemathesis walks create → update → status → ingest through the OpenAPI links, with generated
  and valid documents, anonymously and with keys: every answer is below 500, every error a
  problem document, anonymous answers carry no restricted field, and afterwards every passport
  verifies and every stored head matches its last version (no partial write);
- a second server with another key file, a PostgreSQL server without an explicit key file, and
  a worker without a key are refused before they serve anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from critflow.passport.samples import sample_battery
from critflow.server.auth import Limits, create_key, revoke_key
from critflow.server.database import make_engine, session_factory, upgrade
from critflow.server.models import AuditEntry, Passport, PassportVersion, RegistryKey
from tests.conftest import free_port
from tests.server.conftest import _postgres_database, register_sample_organisations

pytestmark = pytest.mark.slow  # a real `critflow serve --workers 2`


@dataclass
class Server:
    base: str
    url: str
    key_file: Path
    folder: Path
    process: subprocess.Popen
    issuer: str
    reader: str
    admin: str


def _critflow(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "critflow", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _wait(base: str, process: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"serve-{request.param}")
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'registry.db'}"
    else:
        url, drop = _postgres_database()
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        register_sample_organisations(session)
        issuer = create_key(session, "Example Cells NV", ["issuer"], True, None)
        reader = create_key(session, "Recycler BV", ["legitimate_interest"], False, "recycling")
        admin = create_key(session, "Registry operator", ["admin"], True, None)
    engine.dispose()
    key_file = folder / "keys" / "registry.key"  # fresh: `critflow serve` creates it
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CRITFLOW_REGISTRY_KEY"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "critflow",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--database",
            url,
            "--key-file",
            str(key_file),
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, process)
        yield Server(base, url, key_file, folder, process, issuer, reader, admin)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if drop:
            drop()


def _db(server: Server):
    engine = make_engine(server.url)
    return engine, session_factory(engine)


def test_concurrent_writes_on_two_workers_all_verify(server):
    headers = {"X-API-Key": server.issuer}
    keys: dict[str, str] = {}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for i in range(3):
            created = client.post("/api/passports", json=sample_battery("ev", f"W-{i}"))
            assert created.status_code == 201, created.text
            keys[created.json()["key"]] = f"W-{i}"
    outcomes: list[int] = []
    lock = threading.Lock()

    def writer(thread: int, round_: int) -> None:
        # a fresh connection per request spreads the writes over both workers
        for key, serial in keys.items():
            with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
                head = client.get(f"/api/passports/{key}")
                document = sample_battery("ev", serial)
                document["data"]["state_of_charge"] = float(round_ * 10 + thread)
                answer = client.put(
                    f"/api/passports/{key}",
                    json=document,
                    headers={"If-Match": head.headers["ETag"]},
                )
            with lock:
                outcomes.append(answer.status_code)

    for round_ in range(8):  # the 8 rounds of concurrent updates
        threads = [threading.Thread(target=writer, args=(t, round_)) for t in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert set(outcomes) <= {200, 412}, outcomes  # a lost race is a clean 412
    assert outcomes.count(200) >= 8 * len(keys)  # at least one writer wins each round
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for key in keys:
            report = client.get(f"/api/passports/{key}/verify").json()
            assert report["valid"], report
        published = client.get("/api/registry/keys").json()["keys"]
    assert len(published) == 1 and published[0]["current"]
    public = server.key_file.with_suffix(".pub").read_text().strip()
    assert published[0]["public_key"] == public
    engine, sessions = _db(server)
    with sessions() as session:
        signers = {
            json.loads(e)["public_key"] for e in session.scalars(select(PassportVersion.envelope))
        }
        assert session.scalar(select(func.count()).select_from(RegistryKey)) == 1
    engine.dispose()
    assert signers == {public}  # both workers signed with the one key
    assert sorted(p.name for p in server.key_file.parent.iterdir()) == [
        "registry.key",
        "registry.pub",
    ]  # created once, no stray temporary files


def test_revocation_reaches_both_workers(server):
    with httpx.Client(base_url=server.base, timeout=30) as client:
        created = client.post(
            "/api/passports",
            json=sample_battery("ev", "REVOKE-1"),
            headers={"X-API-Key": server.issuer},
        )
        key = created.json()["key"]

    def reads() -> list[int]:  # fresh connections: both workers answer some of them
        codes = []
        for _ in range(8):
            with httpx.Client(base_url=server.base, timeout=30) as client:
                codes.append(
                    client.get(
                        f"/api/passports/{key}", headers={"X-API-Key": server.reader}
                    ).status_code
                )
        return codes

    assert set(reads()) == {200}  # remembered by both workers
    engine, sessions = _db(server)
    with sessions() as session:  # what `critflow keys revoke` does (its CLI: test_commands.py)
        revoke_key(session, server.reader)
    engine.dispose()
    at = time.monotonic()
    time.sleep(Limits().recheck_seconds + 0.5)
    assert set(reads()) == {401}, "a worker still accepts the revoked key"
    assert time.monotonic() - at < 10
    engine, sessions = _db(server)
    with sessions() as session:
        last_allowed, first_denied = (
            session.scalar(
                select(func.max(AuditEntry.id)).where(
                    AuditEntry.key_id == server.reader.split("_")[1],
                    AuditEntry.outcome == outcome,
                )
            )
            for outcome in ("allowed", "denied")
        )
        clients = set(session.scalars(select(AuditEntry.client)).all())
    engine.dispose()
    assert first_denied is not None and last_allowed < first_denied
    assert "127.0.0.1" in clients  # the audit log has the peer's address


def _header(response, name: str) -> str:
    """A header of a schemathesis response (its headers map to lists of values)."""
    for key, values in response.headers.items():
        if key.lower() == name:
            return values[0] if isinstance(values, list) else values
    return ""


def _anonymous_leaks(case, response) -> str | None:
    """A restricted field in an anonymous answer (status, links, closed, record hashes)."""
    if "X-API-Key" in (case.headers or {}) or response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    objects = []
    if isinstance(body, dict):
        objects.append(body)
        for name in ("items", "versions"):
            if isinstance(body.get(name), list):
                objects += [i for i in body[name] if isinstance(i, dict)]
    for item in objects:
        battery = item.get("kind") == "battery" or (
            isinstance(item.get("document"), dict) and item["document"].get("kind") == "battery"
        )
        if battery and {"status", "links", "closed", "hash", "previous_hash"} & set(item):
            return f"{sorted(set(item))} in {case.method} {case.path}"
        document = item.get("document") if isinstance(item.get("document"), dict) else {}
        if "battery_status" in (document.get("data") or {}):
            return f"battery_status in {case.method} {case.path}"
    return None


def test_stateful_fuzzing_create_update_status_ingest(server):
    import schemathesis
    from hypothesis import HealthCheck, settings

    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json").include(
        path_regex=r"^/api/(passports|ingest)"  # the admin API has its own cases
    )
    counter: dict[str, int] = {}
    issuer, admin = server.issuer, server.admin
    run = uuid.uuid4().hex[:6]  # serials unique across runs and examples (status stays 201)
    known: dict[str, str] = {}  # passport key -> serial, for valid follow-up documents
    scenario: list[str] = []  # passports created in the running scenario
    failures: list[str] = []
    seen: dict[tuple[str, int], int] = {}
    keyed = {
        "PUT /api/passports/{key}",
        "POST /api/passports/{key}/status",
        "GET /api/passports/{key}",
        "GET /api/passports/{key}/history",
    }

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self):
            # choices depend on the step number within a scenario only, so replaying a scenario
            # makes the same calls (Hypothesis needs that), while serials stay unique
            counter.clear()
            scenario.clear()

        def before_call(self, case):
            # half the creates and appends carry a valid document, and half the calls on a
            # random key are pointed at a passport of this scenario with its current ETag (so
            # update, status and ingest reach stored passports); the rest stay as generated.
            # The caller is anonymous, the issuer or the admin. The turn is counted per operation,
            # so every fourth call of each operation is the issuer's with a valid document: which
            # operations schemathesis picks, and in what order, changes with its version.
            label = case.operation.label
            counter[label] = counter.get(label, 0) + 1
            n = counter[label]
            unique = f"{run}{uuid.uuid4().hex[:8]}"
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"
            }
            who = (None, issuer, issuer, admin)[n % 4]
            if who:
                case.headers["X-API-Key"] = who
            params = case.path_parameters or {}
            if label in keyed and scenario and params.get("key") not in known and n % 2 == 0:
                params["key"] = scenario[n % len(scenario)]
                case.path_parameters = params
                if label in ("PUT /api/passports/{key}", "POST /api/passports/{key}/status"):
                    head = httpx.get(
                        f"{server.base}/api/passports/{params['key']}",
                        headers={"X-API-Key": issuer},
                        timeout=30,
                    )
                    case.headers["If-Match"] = head.headers.get("ETag", '"none"')
            if label == "POST /api/passports" and n % 2:
                case.body = sample_battery(("ev", "lmt", "industrial")[n % 3], f"S{unique}")
            elif label == "PUT /api/passports/{key}" and n % 2 == 0:
                serial = known.get(str(params.get("key")))
                if serial:
                    case.body = sample_battery("ev", serial)
                    case.body["data"]["state_of_charge"] = float(n % 100)
            elif label == "POST /api/passports/{key}/status" and n % 3 == 0:
                case.body = {
                    "to": "repurposed",
                    "new_document": sample_battery("industrial", f"R{unique}"),
                }
            elif label == "POST /api/passports/{key}/status" and n % 3 == 1:
                case.body = {"to": "waste"}
            elif label == "POST /api/ingest" and scenario and n % 2 == 0:
                case.body = {
                    "updates": [
                        {
                            "passport_id": next(
                                f"https://id.gs1.org/01/04054123456783/21/{known[k]}"
                                for k in scenario
                            ),
                            "data": {"number_of_cycles": n, "state_of_charge": 50.0},
                        }
                    ]
                }

        def after_call(self, response, case):
            if case.operation.label == "POST /api/passports" and response.status_code == 201:
                serial = case.body["data"]["model_and_serial"].split("/ ")[-1]
                known[response.json()["key"]] = serial
                scenario.append(response.json()["key"])

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            label = (case.operation.label, response.status_code)
            seen[label] = seen.get(label, 0) + 1
            where = f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
            if response.status_code >= 500:
                failures.append(where)
            elif response.status_code >= 400 and not _header(response, "content-type").startswith(
                "application/problem+json"
            ):
                failures.append("not a problem document: " + where)
            elif "Traceback" in response.text:
                failures.append("traceback: " + where)
            leak = _anonymous_leaks(case, response)
            if leak:
                failures.append("leak: " + leak)

    Machine.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=8,
            derandomize=True,  # the same walk every run (the server answers it the same way)
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert not failures, failures[:5]
    # the links were walked: create, then update, status change and ingest on what was created
    for operation in (
        "POST /api/passports",
        "PUT /api/passports/{key}",
        "POST /api/passports/{key}/status",
        "POST /api/ingest",
    ):
        assert seen.get((operation, 200), 0) + seen.get((operation, 201), 0) > 0, (
            operation,
            sorted(seen.items()),
        )
    assert known, "no valid passport was created: the links led nowhere"
    engine, sessions = _db(server)
    with sessions() as session:  # no partial write: every head is its last stored version
        rows = session.execute(
            select(Passport.id, Passport.key, Passport.version, Passport.head_hash)
        ).all()
        for pk, key, version, head in rows:
            stored = session.execute(
                select(PassportVersion.version, PassportVersion.hash)
                .where(PassportVersion.passport_pk == pk)
                .order_by(PassportVersion.version)
            ).all()
            assert [v for v, _ in stored] == list(range(1, version + 1)), key
            assert stored[-1][1] == head, key
    engine.dispose()
    with httpx.Client(base_url=server.base, headers={"X-API-Key": admin}, timeout=30) as client:
        for _, key, _, _ in rows:
            report = client.get(f"/api/passports/{key}/verify").json()
            assert report["valid"], report


def test_servers_without_the_registry_key_refuse_to_start(server, tmp_path):
    before = server.key_file.read_bytes()
    if server.url.startswith("postgresql"):
        # a second machine with its own key file on the same database (the multi-machine case)
        other = _critflow(
            "serve",
            "--port",
            str(free_port()),
            "--database",
            server.url,
            "--key-file",
            str(tmp_path / "other.key"),
            cwd=tmp_path,
            timeout=60,
        )
        assert other.returncode == 2 and "this registry signs with" in other.stderr, other.stderr
        assert server.key_file.read_bytes() == before
        return  # (without --key-file at all: test_registry.py, in process)
    # a worker started by hand without the key file exits at once, naming the fix
    worker = subprocess.run(
        [sys.executable, "-m", "uvicorn", "critflow.server.app:app", "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "CRITFLOW_DATABASE_URL": server.url,
            "CRITFLOW_REGISTRY_KEY": str(tmp_path / "missing.key"),
        },
        timeout=60,
    )
    assert worker.returncode != 0 and "init-registry" in worker.stderr, worker.stderr
    assert "Traceback" not in worker.stderr
    assert not (tmp_path / "missing.key").exists()
    assert server.key_file.read_bytes() == before  # and nobody replaced the registry's key
