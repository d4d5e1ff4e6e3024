"""The passport registry under attack (issue 18, registry part), on SQLite and PostgreSQL.

Each case is an attack or a careless request that once got through; each ends in a clean 4xx
problem document, changes nothing, and leaks nothing. The access-matrix test walks every data
point x every audience x every endpoint, with the expectations read from the data files by this
test (csv module), not from critflow's loaders.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from critflow import data
from critflow.errors import CritflowError
from critflow.passport.samples import sample_battery
from critflow.server import signing
from critflow.server.api import create_app
from critflow.server.auth import Limits, client_of, create_key, trusted_proxies
from critflow.server.models import AuditEntry, Passport, PassportVersion
from tests.server.conftest import (
    EXAMPLE_PREFIX,
    _postgres_database,
    other_battery,
    register_sample_organisations,
)

PROBLEM = "application/problem+json"


# --- one registry per database for the whole module (keys cost argon2 time) -------------------
@dataclass
class Env:
    client: TestClient
    app: object
    url: str
    key_file: Path
    issuer: str
    other_issuer: str
    legitimate_interest: str
    authority: str
    admin: str

    @property
    def registry(self):
        return self.app.state.registry

    def h(self, key: str | None, **extra: str) -> dict[str, str]:
        return {**({"X-API-Key": key} if key else {}), **extra}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'registry.db'}"
    else:
        url, drop = _postgres_database()
    key_file = folder / "registry.key"
    signing.init_registry_key(key_file)
    app = create_app(url, key_file=key_file)
    registry = app.state.registry
    with registry.sessions() as session:
        register_sample_organisations(session)
        keys = {
            "issuer": create_key(session, "Example Cells NV", ["issuer"], True, None),
            "other_issuer": create_key(session, "Other Cells SA", ["issuer"], True, None),
            "legitimate_interest": create_key(
                session, "Recycler BV", ["legitimate_interest"], False, "recycling"
            ),
            "authority": create_key(session, "Market surveillance BE", ["authority"], False, None),
            "admin": create_key(session, "Registry operator", ["admin"], True, None),
        }
    client = TestClient(app, raise_server_exceptions=False)
    yield Env(client, app, url, key_file, **keys)
    client.close()
    registry.engine.dispose()
    if drop:
        drop()


def _state(env: Env) -> tuple:
    """Everything a refused request must leave as it was: passports, their heads, versions."""
    with env.registry.sessions() as session:
        heads = session.execute(
            select(
                Passport.key, Passport.version, Passport.head_hash, Passport.public_view
            ).order_by(Passport.key)
        ).all()
        versions = session.scalar(select(func.count()).select_from(PassportVersion))
    return tuple(map(tuple, heads)), versions


def _create(env: Env, document: dict, key: str | None = None) -> tuple[str, str]:
    response = env.client.post("/api/passports", json=document, headers=env.h(key or env.issuer))
    assert response.status_code == 201, response.text
    return response.json()["key"], response.headers["ETag"]


def _problem(response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:400])
    assert response.headers["content-type"] == PROBLEM, response.headers["content-type"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return response.json()


# --- bulk ingest: a refused batch changes nothing ----------------------------------------------
def test_refused_batch_changes_nothing_and_the_refusal_is_audited(env):
    own = [sample_battery("ev", f"ING-{i}") for i in range(3)]
    for document in own:
        _create(env, document)
    foreign = other_battery("ING-F")
    _create(env, foreign, env.other_issuer)
    update = {"state_of_charge": 41.0, "number_of_cycles": 9}
    ids = [d["data"]["unique_identifier"] for d in own]
    foreign_id = foreign["data"]["unique_identifier"]
    batches = {  # each refused for another reason, always after updates that would be valid
        403: [*ids[:2], foreign_id, *ids[2:]],  # the case: another issuer's passport
        404: [*ids, "https://id.gs1.org/01/04054123456783/21/NO-SUCH"],
        422: [*ids, ids[0]],  # the last update is given an invalid value below
    }
    for status, targets in batches.items():
        before = _state(env)
        updates = [{"passport_id": p, "data": dict(update)} for p in targets]
        if status == 422:
            updates[-1]["data"]["state_of_charge"] = 140.0
        response = env.client.post(
            "/api/ingest", json={"updates": updates}, headers=env.h(env.issuer)
        )
        _problem(response, status)
        assert _state(env) == before, f"a batch refused with {status} changed stored data"
    with env.registry.sessions() as session:
        denial = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "ingest", AuditEntry.outcome == "denied")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert denial is not None and "Other Cells SA" in denial.detail
    assert denial.client == "testclient"  # the client's address is recorded
    # the same batch without the foreign passport goes in whole
    good = [{"passport_id": p, "data": dict(update)} for p in ids]
    before_versions = _state(env)[1]
    response = env.client.post("/api/ingest", json={"updates": good}, headers=env.h(env.issuer))
    assert response.json() == {"written": 3}
    assert _state(env)[1] == before_versions + 3


# --- identity: a GTIN belongs to the holder of its GS1 Company Prefix ---------------------------
def test_nobody_files_a_passport_under_another_manufacturers_gtin(env):
    genuine = sample_battery("ev", "SQUAT-1")
    before = _state(env)
    squatted = _problem(
        env.client.post("/api/passports", json=genuine, headers=env.h(env.other_issuer)), 403
    )
    assert "not under a GS1 Company Prefix of Other Cells SA" in squatted["detail"]
    # the squatter names itself as operator: still another manufacturer's GTIN
    disguised = copy.deepcopy(genuine)
    disguised["data"]["responsible_operator"] = {
        "name": "Other Cells SA",
        "identifier": "FR98765432100",
    }
    _problem(
        env.client.post("/api/passports", json=disguised, headers=env.h(env.other_issuer)), 403
    )
    # under its own GTIN but claiming the manufacturer's operator identifier
    impersonating = other_battery("SQUAT-2")
    impersonating["data"]["responsible_operator"] = {
        "name": "Example Cells NV",
        "identifier": "BE0123456789",
    }
    _problem(
        env.client.post("/api/passports", json=impersonating, headers=env.h(env.other_issuer)),
        403,
    )
    # no operator identifier at all: the registry cannot tie the passport to anyone
    anonymous_operator = other_battery("SQUAT-3")
    anonymous_operator["data"]["responsible_operator"] = "Other Cells SA"
    _problem(
        env.client.post("/api/passports", json=anonymous_operator, headers=env.h(env.other_issuer)),
        422,
    )
    # the admin key belongs to an organisation without prefixes: no exception for it either
    _problem(env.client.post("/api/passports", json=genuine, headers=env.h(env.admin)), 403)
    assert _state(env) == before
    # the manufacturer files it; the QR page shows the manufacturer's content
    _create(env, genuine)
    page = env.client.get("/01/04054123456783/21/SQUAT-1")
    assert page.status_code == 200 and "Example Cells NV" in page.text
    assert "Other Cells SA" not in page.text
    # and the manufacturer cannot hand its passport to another operator's identifier
    key = _create(env, sample_battery("ev", "SQUAT-4"))[0]
    own = env.client.get(f"/api/passports/{key}", headers=env.h(env.issuer))
    moved = sample_battery("ev", "SQUAT-4")
    moved["data"]["responsible_operator"] = {
        "name": "Other Cells SA",
        "identifier": "FR98765432100",
    }
    _problem(
        env.client.put(
            f"/api/passports/{key}",
            json=moved,
            headers=env.h(env.issuer, **{"If-Match": own.headers["ETag"]}),
        ),
        403,
    )


def _lot(lot_id: str) -> dict:
    return {
        "kind": "lot",
        "lot_id": lot_id,
        "product": "black mass",
        "mass": {"value": 12.5, "unit": "t"},
        "composition": {"Co": {"mass_fraction": 0.1, "sd": 0.01}},
        "origin": {"process": "shredder"},
        "recycled_content": {"pre_consumer": 0.2, "post_consumer": 0.5},
        "carbon_footprint": {"status": "pending"},
    }


def test_a_lot_passport_cannot_take_another_manufacturers_battery_id(env):
    # a lot id is first come, first served, but a battery's id is its Digital Link: a lot filed
    # under the manufacturer's next serial took that id, and the manufacturer's own battery
    # passport then got 409 "Passport exists"
    genuine = sample_battery("ev", "LOTSQUAT-1")
    battery_id = genuine["data"]["unique_identifier"]
    before = _state(env)
    refused = _problem(
        env.client.post("/api/passports", json=_lot(battery_id), headers=env.h(env.other_issuer)),
        403,
    )
    assert "not under a GS1 Company Prefix of Other Cells SA" in refused["detail"]
    assert _state(env) == before
    _create(env, genuine)  # the manufacturer still files its battery
    # a lot under one's own GTIN, and a lot id that is no Digital Link, are filed as before
    own_gtin = other_battery("LOT-OWN")["data"]["unique_identifier"]
    _create(env, _lot(own_gtin), env.other_issuer)
    _create(env, _lot("LOT-2026-0001"), env.other_issuer)


def test_status_changes_only_through_the_status_endpoint(env):
    # battery_status is a dynamic data point, so bulk ingest and appends took it: a signed
    # version then said 'waste' while the registry kept 'original' (lists by status missed it,
    # and the transitions of passport_status_transitions.csv were bypassed, waste back to
    # original included)
    key, etag = _create(env, sample_battery("ev", "STATUS-1"))
    battery_id = sample_battery("ev", "STATUS-1")["data"]["unique_identifier"]
    before = _state(env)
    ingest = {"updates": [{"passport_id": battery_id, "data": {"battery_status": "waste"}}]}
    refused = _problem(env.client.post("/api/ingest", json=ingest, headers=env.h(env.issuer)), 409)
    assert "/status" in refused["detail"]
    changed = sample_battery("ev", "STATUS-1")
    changed["data"]["battery_status"] = "waste"
    _problem(
        env.client.put(
            f"/api/passports/{key}", json=changed, headers=env.h(env.issuer, **{"If-Match": etag})
        ),
        409,
    )
    # nor may an append turn the battery passport into a lot passport under the same id
    as_lot = _lot(battery_id)
    _problem(
        env.client.put(
            f"/api/passports/{key}", json=as_lot, headers=env.h(env.issuer, **{"If-Match": etag})
        ),
        409,
    )
    assert _state(env) == before
    # the same status stated again is no change; dynamic data still goes in
    same = {"battery_status": "original", "state_of_charge": 55.0}
    ok = env.client.post(
        "/api/ingest",
        json={"updates": [{"passport_id": battery_id, "data": same}]},
        headers=env.h(env.issuer),
    )
    assert ok.json() == {"written": 1}, ok.text


def test_ingest_into_a_lot_passport_is_refused_not_a_server_error(env):
    _create(env, _lot("LOT-INGEST-1"))
    before = _state(env)
    response = env.client.post(
        "/api/ingest",
        json={"updates": [{"passport_id": "LOT-INGEST-1", "data": {"number_of_cycles": 3}}]},
        headers=env.h(env.issuer),
    )
    assert "battery" in _problem(response, 422)["detail"]
    assert _state(env) == before


def test_prefixes_are_registered_by_administrators_only(env):
    body = {"gs1_company_prefixes": ["4054123999"], "operator_ids": []}
    for key, status in ((None, 401), (env.issuer, 403), (env.legitimate_interest, 403)):
        _problem(
            env.client.put(
                "/api/admin/organisations/Other Cells SA", json=body, headers=env.h(key)
            ),
            status,
        )
    # an administrator cannot give one organisation a prefix inside another's either
    taken = _problem(
        env.client.put(
            "/api/admin/organisations/Other Cells SA", json=body, headers=env.h(env.admin)
        ),
        409,
    )
    assert EXAMPLE_PREFIX in taken["detail"] and "Example Cells NV" in taken["detail"]
    for bad in (["12"], ["40541x"], ["1234567890123"]):
        _problem(
            env.client.put(
                "/api/admin/organisations/New Org",
                json={"gs1_company_prefixes": bad},
                headers=env.h(env.admin),
            ),
            422,
        )
    listed = env.client.get("/api/admin/organisations", headers=env.h(env.admin)).json()
    owners = {o["organisation"]: o["gs1_company_prefixes"] for o in listed["organisations"]}
    assert owners["Example Cells NV"] == [EXAMPLE_PREFIX]
    assert "New Org" not in owners  # a refused registration stored nothing
    with env.registry.sessions() as session:
        denied = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.outcome == "denied", AuditEntry.action.like("admin:%")
            )
        ).all()
    assert "admin:register" in denied


def test_a_key_given_twice_in_a_passport_body_gets_422_naming_the_field(env):
    """The request guard refuses a duplicate key in every JSON body, not only the monitor's:
    which of the two values counts depends on the parser (RFC 8259), and nothing is stored."""
    document = sample_battery("ev", "DUP-1")
    text = json.dumps(document).replace('"value": 450.0', '"value": 450.0, "value": 1.0', 1)
    before = _state(env)
    found = _problem(
        env.client.post(
            "/api/passports",
            content=text,
            headers=env.h(env.issuer, **{"content-type": "application/json"}),
        ),
        422,
    )
    assert found["problems"][0]["where"] == "data.battery_mass.value"
    assert "twice" in found["problems"][0]["what"]
    assert _state(env) == before


# --- numbers JSON has not, cursors that overflow -------------------------------------------------
@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"])
def test_non_finite_numbers_get_422_naming_the_field(env, literal):
    document = sample_battery("ev", "INF-1")
    key, etag = _create(env, sample_battery("ev", f"INF-{literal}"))
    text = json.dumps(document).replace('"value": 450.0', f'"value": {literal}')
    before = _state(env)
    found = _problem(
        env.client.post(
            "/api/passports",
            content=text,
            headers=env.h(env.issuer, **{"content-type": "application/json"}),
        ),
        422,
    )
    assert "data.battery_mass.value" in json.dumps(found)
    identifier = document["data"]["unique_identifier"]
    soc = (
        f'{{"updates": [{{"passport_id": "{identifier}", '
        f'"data": {{"state_of_charge": {literal}}}}}]}}'
    )
    _problem(
        env.client.post(
            "/api/ingest",
            content=soc,
            headers=env.h(env.issuer, **{"content-type": "application/json"}),
        ),
        422,
    )
    _problem(
        env.client.put(
            f"/api/passports/{key}",
            content=text,
            headers=env.h(env.issuer, **{"content-type": "application/json", "If-Match": etag}),
        ),
        422,
    )
    _problem(
        env.client.post(
            f"/api/passports/{key}/status",
            content=f'{{"to": "repurposed", "new_document": {text}}}',
            headers=env.h(env.issuer, **{"content-type": "application/json", "If-Match": etag}),
        ),
        422,
    )
    assert _state(env) == before


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(b"9" * 30).decode().rstrip("="),  # overflowed a 64-bit id (500)
        base64.urlsafe_b64encode(str(2**63).encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(b"-5").decode().rstrip("="),
        base64.urlsafe_b64encode(b"1e5").decode().rstrip("="),
        "%%%",
        "AAAA",
        "",
    ],
)
def test_overflowing_or_forged_cursors_get_400(env, cursor):
    response = env.client.get("/api/passports", params={"cursor": cursor})
    if cursor == "":
        assert response.status_code == 200  # an empty cursor is the first page
        return
    assert "cursor" in _problem(response, 400)["detail"]


def test_booleans_are_not_numbers_and_absurd_magnitudes_are_refused(env):
    before = _state(env)
    cases = {
        "battery_mass": [
            {"value": True, "unit": "kg"},  # accepted as 1 kg before
            {"value": 1e308, "unit": "Gt"},  # overflowed to infinity after conversion
            {"value": 2e6, "unit": "kg"},  # beyond the plausible range (1,000 t)
            "1e308 Gt",
        ],
        "state_of_charge": [True, False, "55"],
        "expected_lifetime_cycles": [True, 10**7, 2.5],
        "nominal_voltage": [{"value": 3.7e9, "unit": "V"}],
        "idle_temperature_range": [{"lower": -30, "upper": 5000}, {"lower": True, "upper": 40}],
    }
    for field, values in cases.items():
        for value in values:
            document = sample_battery("ev", "BOOL-1")
            document["data"][field] = value
            found = _problem(
                env.client.post("/api/passports", json=document, headers=env.h(env.issuer)), 422
            )
            assert any(field in p["where"] for p in found["problems"]), (field, value, found)
    assert _state(env) == before


# --- keys: revocation, failed logins, client addresses -----------------------------------------
def test_revoked_key_stops_within_the_recheck_time_and_is_audited_as_denied(env):
    with env.registry.sessions() as session:
        reader = create_key(session, "Recycler BV", ["legitimate_interest"], False, "recycling")
    key = _create(env, sample_battery("ev", "REV-1"))[0]
    assert env.client.get(f"/api/passports/{key}", headers=env.h(reader)).status_code == 200
    revoked = env.client.post(
        f"/api/admin/keys/{reader.split('_')[1]}/revoke", headers=env.h(env.admin)
    )
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    while env.client.get(f"/api/passports/{key}", headers=env.h(reader)).status_code == 200:
        assert time.monotonic() - started < 5, "a revoked key still works after 5 s"
        time.sleep(0.1)
    assert time.monotonic() - started <= Limits().recheck_seconds + 1.0
    with env.registry.sessions() as session:
        after = session.scalars(
            select(AuditEntry.outcome)
            .where(
                AuditEntry.key_id == reader.split("_")[1],
                AuditEntry.action.in_(("read", "authenticate")),
            )
            .order_by(AuditEntry.id)
        ).all()
    assert after[0] == "allowed" and after[-1] == "denied"  # no read after revocation is "allowed"


def test_wrong_secrets_are_limited_per_key_and_per_client(tmp_path, monkeypatch):
    signing.init_registry_key(tmp_path / "k.key")
    limits = Limits(window_seconds=60, failures_per_key=3, failures_per_client=6)
    app = create_app(f"sqlite:///{tmp_path / 'r.db'}", key_file=tmp_path / "k.key", limits=limits)
    with app.state.registry.sessions() as session:
        good = create_key(session, "Example Cells NV", ["issuer"], False, None)
        other = create_key(session, "Example Cells NV", ["issuer"], False, None)
    key_id = good.split("_")[1]
    wrong = f"cfk_{key_id}_{'x' * 32}"
    client = TestClient(app, raise_server_exceptions=False, client=("198.51.100.7", 4000))
    from critflow.server import auth

    verified = []  # every argon2 verification the server runs
    real = auth._hasher

    class Counting:
        def hash(self, *args, **kwargs):
            return real.hash(*args, **kwargs)

        def verify(self, *args, **kwargs):
            verified.append(1)
            return real.verify(*args, **kwargs)

    monkeypatch.setattr(auth, "_hasher", Counting())
    statuses, argon2_when_throttled = [], 0
    for _ in range(5):
        before = len(verified)
        response = client.get("/api/passports", headers={"X-API-Key": wrong})
        statuses.append(response.status_code)
        if response.status_code == 429:
            argon2_when_throttled += len(verified) - before
            assert int(response.headers["Retry-After"]) >= 1
    assert statuses == [401, 401, 401, 429, 429]
    assert len(verified) == 3  # the three refused secrets were checked ...
    assert argon2_when_throttled == 0  # ... a throttled request runs no argon2 (counted, not timed)
    # the limit is per key id: another key from another client still authenticates
    elsewhere = TestClient(app, raise_server_exceptions=False, client=("198.51.100.8", 4000))
    assert elsewhere.get("/api/passports", headers={"X-API-Key": other}).status_code == 200
    # per client: unknown key ids (no argon2 at all) from one address are limited too
    noisy = TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 4000))
    codes = [
        noisy.get("/api/passports", headers={"X-API-Key": f"cfk_{i:012x}_nope"}).status_code
        for i in range(8)
    ]
    assert codes[:6] == [401] * 6 and codes[6:] == [429, 429]
    with app.state.registry.sessions() as session:
        rows = session.execute(
            select(AuditEntry.client, AuditEntry.outcome).where(AuditEntry.action == "authenticate")
        ).all()
    assert ("198.51.100.7", "denied") in rows and ("203.0.113.9", "throttled") in rows
    # a throttled window writes one 'throttled' entry, not one per request
    assert sum(1 for c, o in rows if c == "203.0.113.9" and o == "throttled") == 1
    app.state.registry.engine.dispose()


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    proxies = trusted_proxies("10.0.0.5,192.168.1.0/24")
    assert client_of("198.51.100.7", "1.2.3.4", []) == "198.51.100.7"  # no proxies: the peer
    assert client_of("198.51.100.7", "1.2.3.4", proxies) == "198.51.100.7"  # untrusted peer
    assert client_of("10.0.0.5", "1.2.3.4", proxies) == "1.2.3.4"
    # a client's own X-Forwarded-For is prepended to; the right-most untrusted hop is the client
    assert client_of("10.0.0.5", "6.6.6.6, 1.2.3.4, 192.168.1.20", proxies) == "1.2.3.4"
    assert client_of("10.0.0.5", "not-an-address", proxies) == "10.0.0.5"
    with pytest.raises(CritflowError):
        trusted_proxies("10.0.0.0/40")


# --- the registry's signing key --------------------------------------------------------------
def test_signing_key_is_created_once_and_a_foreign_key_is_refused(env, tmp_path):
    with pytest.raises(CritflowError, match="exists already"):
        signing.init_registry_key(env.key_file)
    with pytest.raises(CritflowError, match="missing"):
        create_app(env.url, key_file=tmp_path / "absent.key")
    assert not (tmp_path / "absent.key").exists()  # a worker never makes its own key
    foreign = tmp_path / "foreign.key"
    signing.init_registry_key(foreign)
    with pytest.raises(CritflowError, match="this registry signs with"):
        create_app(env.url, key_file=foreign)  # a second machine with its own key
    if env.url.startswith("postgresql"):
        import os

        saved = os.environ.pop("CRITFLOW_REGISTRY_KEY", None)
        try:
            with pytest.raises(CritflowError, match="needs its signing key file named"):
                create_app(env.url)
        finally:
            if saved is not None:
                os.environ["CRITFLOW_REGISTRY_KEY"] = saved
    published = env.client.get("/api/registry/keys").json()["keys"]
    current = [k for k in published if k["current"]]
    assert len(current) == 1
    assert current[0]["public_key"] == signing.load_registry_key(env.key_file).public_key


def test_rotation_keeps_old_versions_verifiable(tmp_path):
    key_file = tmp_path / "registry.key"
    signing.init_registry_key(key_file)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    app = create_app(url, key_file=key_file)
    registry = app.state.registry
    with registry.sessions() as session:
        register_sample_organisations(session)
        issuer = create_key(session, "Example Cells NV", ["issuer"], True, None)
    client = TestClient(app, raise_server_exceptions=False)
    headers = {"X-API-Key": issuer}
    created = client.post("/api/passports", json=sample_battery("ev", "ROT-1"), headers=headers)
    key, etag = created.json()["key"], created.headers["ETag"]
    old = registry.signer.public_key
    new, retired = signing.rotate(registry.engine, key_file)
    assert retired.exists() and signing.load_registry_key(key_file).public_key == new.public_key
    # the running worker notices at its next write and signs with the new key
    update = sample_battery("ev", "ROT-1")
    update["data"]["state_of_charge"] = 12.0
    appended = client.put(
        f"/api/passports/{key}", json=update, headers={**headers, "If-Match": etag}
    )
    assert appended.status_code == 200, appended.text
    history = client.get(f"/api/passports/{key}/history", headers=headers).json()
    with registry.sessions() as session:
        envelopes = [
            json.loads(e)
            for e in session.scalars(
                select(PassportVersion.envelope).order_by(PassportVersion.version)
            )
        ]
    assert [e["public_key"] for e in envelopes] == [old, new.public_key]
    assert len(history["versions"]) == 2
    report = client.get(f"/api/passports/{key}/verify", headers=headers).json()
    assert report["valid"], report
    periods = {k["public_key"]: k for k in client.get("/api/registry/keys").json()["keys"]}
    assert periods[old]["valid_until"] == periods[new.public_key]["valid_from"] is not None
    # a version signed with the retired key after its retirement does not verify
    from critflow.passport.integrity import SigningKey, new_record

    stale_signer = SigningKey.load(retired)
    forged = stale_signer.sign(
        new_record(
            envelopes[-1]["record"]["passport_id"],
            envelopes[-1]["record"]["document"],
            envelopes[-1],
            "original",
            None,
            "2099-01-01T00:00:00+00:00",
        )
    )
    with registry.writing() as session:
        row = session.scalar(select(Passport).where(Passport.key == key))
        session.add(
            PassportVersion(
                passport_pk=row.id, version=3, hash=forged["hash"], envelope=json.dumps(forged)
            )
        )
        row.version = 3
        row.head_hash = forged["hash"]
        session.commit()
    report = client.get(f"/api/passports/{key}/verify", headers=headers).json()
    assert not report["valid"] and "after its key was retired" in report["first_broken_link"]
    client.close()
    registry.engine.dispose()


# --- the access matrix: every data point x every audience x every endpoint ------------------------
def _access() -> tuple[dict[str, set[int]], dict[str, int], dict[str, dict]]:
    """Audience -> Annex XIII points, field -> point, field -> row (from the files, by csv)."""

    def rows(name: str) -> list[dict]:
        with data.data_path(name).open(encoding="utf-8") as handle:
            return list(csv.DictReader(line for line in handle if not line.startswith("#")))

    readable: dict[str, set[int]] = {}
    for row in rows("passport_access.csv"):
        readable.setdefault(row["audience"], set()).add(int(row["annex_xiii_point"]))
    points = rows("battery_passport_datapoints.csv")
    return (
        readable,
        {r["field"]: int(r["annex_xiii_point"]) for r in points},
        {r["field"]: r for r in points},
    )


def _canary(row: dict) -> tuple[object, list[str]]:
    """A value for a restricted data point that appears nowhere else, and the texts that reveal it."""
    nr, kind, field = int(row["nr"]), row["kind"], row["field"]
    if kind == "quantity":
        value = round(1 + nr / 1000 + 0.0001, 4)  # 5 significant digits: same in JSON and HTML
        return {"value": value, "unit": row["unit"]}, [f"{value:g}"]
    if kind == "percent":
        value = round(37 + nr / 100, 2)
        return value, [f"{value:g}"]
    if kind == "count":
        return 700000 + nr, [str(700000 + nr)]
    text = f"canary-{field}"
    if kind == "list":
        return [{"event": text}] if field == "negative_events" else [text], [text]
    if kind == "object":
        return {"canary": text}, [text]
    if kind == "document":
        return {"url": f"https://example.com/{text}"}, [text]
    return text, [text]


def test_access_matrix_every_data_point_every_audience_every_endpoint(env):
    readable, point_of, rows = _access()
    restricted = {
        f for f, p in point_of.items() if p not in readable["public"] and f != "battery_status"
    }
    callers = {  # caller -> (key, the audience the data file gives it on Example Cells' passports)
        "anonymous": (None, "public"),
        "legitimate_interest": (env.legitimate_interest, "legitimate_interest"),
        "authority": (env.authority, "authority"),
        "issuer": (env.issuer, "issuer"),
        "other issuer": (env.other_issuer, "public"),
        "admin": (env.admin, "issuer"),
    }
    covered: set[tuple[str, str, str]] = set()
    for category in ("ev", "lmt", "industrial"):
        document = sample_battery(category, f"MX-{category}")
        reveals: dict[str, list[str]] = {}
        for field in restricted:
            if rows[field][category] in ("mandatory", "conditional", "optional"):
                document["data"][field], reveals[field] = _canary(rows[field])
        key, etag = _create(env, document)
        # the status is a restricted data point too (Annex XIII 4(c)): make it 're-used'
        moved = env.client.post(
            f"/api/passports/{key}/status",
            json={"to": "re-used"},
            headers=env.h(env.issuer, **{"If-Match": etag}),
        )
        assert moved.status_code == 200, moved.text
        reveals["battery_status"] = ["re-used"]
        gtin_serial = document["data"]["unique_identifier"].split("/01/")[1]
        for name, (api_key, audience) in callers.items():
            may = {f for f in reveals if point_of[f] in readable[audience]}
            h = env.h(api_key)
            endpoints = {
                "read": env.client.get(f"/api/passports/{key}", headers=h),
                "history": env.client.get(f"/api/passports/{key}/history", headers=h),
                "list": env.client.get(
                    "/api/passports",
                    params={"gtin": document["data"]["unique_identifier"].split("/")[4]},
                    headers=h,
                ),
                "list ?status": env.client.get(
                    "/api/passports", params={"status": "re-used"}, headers=h
                ),
                "verify": env.client.get(f"/api/passports/{key}/verify", headers=h),
                "qr page": env.client.get(f"/01/{gtin_serial}", headers=h),
                "qr.svg": env.client.get(f"/api/passports/{key}/qr.svg", headers=h),
                # refusals: error texts go through the same filter
                "append refused": env.client.put(
                    f"/api/passports/{key}", json=document, headers={**h, "If-Match": '"stale"'}
                ),
                "status refused": env.client.post(
                    f"/api/passports/{key}/status",
                    json={"to": "recycled"},
                    headers={**h, "If-Match": '"stale"'},
                ),
                "audience refused": env.client.get(
                    f"/api/passports/{key}",
                    params={
                        "audience": "authority"
                        if audience != "authority"
                        else "legitimate_interest"
                    },
                    headers=h,
                ),
            }
            for audience_name in readable:
                endpoints[f"read ?audience={audience_name}"] = env.client.get(
                    f"/api/passports/{key}", params={"audience": audience_name}, headers=h
                )
            for endpoint, response in endpoints.items():
                assert response.status_code < 500, (name, endpoint, response.text[:300])
                text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
                chosen = audience
                if endpoint.startswith("read ?audience=") and response.status_code == 200:
                    chosen = endpoint.split("=")[1]
                allowed = {f for f in reveals if point_of[f] in readable[chosen]}
                for field, needles in reveals.items():
                    covered.add((field, name, endpoint))
                    shown = any(n in text for n in needles)
                    if field not in allowed:
                        assert not shown, f"{field} leaks to {name} via {endpoint}"
                    elif endpoint in ("read", "history") or (
                        endpoint.startswith("read ?audience=") and response.status_code == 200
                    ):
                        assert shown, f"{field} missing for {name} in {endpoint}"
                etag = response.headers.get("etag")
                if (
                    etag and chosen != "issuer"
                ):  # no digest of restricted data: ETag = digest of body
                    assert etag == f'"view-{hashlib.sha256(response.content).hexdigest()}"', (
                        name,
                        endpoint,
                    )
            # a filter on the status finds the passport only for those who may read its status
            found = [i["key"] for i in endpoints["list ?status"].json()["items"]]
            assert (key in found) == ("battery_status" in may), (name, found)
            # public data points are in every document view
            data_shown = endpoints["read"].json()["document"]["data"]
            public = {f for f in document["data"] if point_of[f] in readable["public"]}
            assert public <= set(data_shown), name
            assert set(data_shown) <= {f for f in point_of if point_of[f] in readable[audience]}
    fields = {f for f, _, _ in covered}
    assert fields == restricted | {"battery_status"}  # every restricted data point was walked
    assert len(covered) == len(fields) * len(callers) * 14
