"""The registry through its HTTP API: access matrix, locking, lifecycle, bad requests, audit."""

from __future__ import annotations

import copy
import csv
import hashlib
import threading

from sqlalchemy import func, select

from critflow import data
from critflow.passport.datapoints import data_points
from critflow.passport.samples import sample_battery
from critflow.server.models import ApiKey, AuditEntry, Passport, PassportVersion

PROBLEM = "application/problem+json"


def _readable() -> dict[str, set[int]]:
    with data.data_path("passport_access.csv").open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    result: dict[str, set[int]] = {}
    for row in rows:
        result.setdefault(row["audience"], set()).add(int(row["annex_xiii_point"]))
    return result


def _create(client, key, document):
    response = client.post("/api/passports", json=document, headers={"X-API-Key": key})
    assert response.status_code == 201, response.text
    return response.json()["key"], response.headers["ETag"]


def _count(app, table) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_access_matrix_every_data_point_every_audience(registry):
    client, keys, _app = registry
    readable = _readable()
    point_of = {p.field: p.annex_xiii_point for p in data_points()}
    callers = {
        "public": (None, "public"),
        "legitimate_interest": (keys.legitimate_interest, "legitimate_interest"),
        "authority": (keys.authority, "authority"),
        "issuer": (keys.issuer, "issuer"),
        "other issuer": (keys.other_issuer, "public"),  # reads another operator's passport publicly
        "admin": (keys.admin, "issuer"),
    }
    covered: set[str] = set()
    for category in ("ev", "lmt", "industrial"):
        document = sample_battery(category, serial=f"M-{category}")
        key, etag = _create(client, keys.issuer, document)
        stored = set(document["data"])
        covered |= stored
        for name, (api_key, audience) in callers.items():
            headers = {"X-API-Key": api_key} if api_key else {}
            response = client.get(f"/api/passports/{key}", headers=headers)
            assert response.status_code == 200, (name, response.text)
            shown = set(response.json()["document"]["data"])
            expected = {f for f in stored if point_of[f] in readable[audience]}
            assert shown == expected, (category, name)
            # write: only the issuing operator (and the registry's admin) may append
            update = copy.deepcopy(document)
            update["data"]["manufacturing_place"] = f"written by {name}"
            write = client.put(
                f"/api/passports/{key}", json=update, headers={**headers, "If-Match": etag}
            )
            if name in ("issuer", "admin"):
                assert write.status_code == 200, (name, write.text)
                etag = write.headers["ETag"]
            else:
                assert write.status_code in (401, 403), (name, write.status_code)
                assert write.headers["content-type"] == PROBLEM
    storable = {
        p.field
        for p in data_points()
        if any(
            p.applicability[c] in ("mandatory", "conditional", "optional")
            for c in ("ev", "lmt", "industrial")
        )
    }
    assert covered == storable  # every data point that may be filled went through the matrix


def test_audience_not_granted_is_denied_and_audited(registry):
    client, keys, app = registry
    key, _ = _create(client, keys.issuer, sample_battery("ev", "A-1"))
    denied = client.get(
        f"/api/passports/{key}?audience=authority", headers={"X-API-Key": keys.legitimate_interest}
    )
    assert denied.status_code == 403 and denied.headers["content-type"] == PROBLEM
    client.get(f"/api/passports/{key}", headers={"X-API-Key": keys.legitimate_interest})
    with app.state.registry.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.passport_key == key)).all()
    outcomes = {(e.action, e.audience, e.outcome) for e in entries}
    assert ("read", "authority", "denied") in outcomes
    assert ("read", "legitimate_interest", "allowed") in outcomes
    assert any(e.purpose == "recycling of EV batteries" for e in entries)
    assert (
        client.get(f"/api/passports/{key}", headers={"X-API-Key": "cfk_bad_key"}).status_code == 401
    )
    with app.state.registry.sessions() as session:
        assert all(k.secret_hash.startswith("$argon2") for k in session.scalars(select(ApiKey)))


def test_two_concurrent_writers_one_wins(registry):
    client, keys, app = registry
    document = sample_battery("ev", "C-1")
    key, etag = _create(client, keys.issuer, document)
    barrier = threading.Barrier(2)
    statuses = []

    def write(soc: float) -> None:
        update = copy.deepcopy(document)
        update["data"]["state_of_charge"] = soc
        barrier.wait()
        response = client.put(
            f"/api/passports/{key}",
            json=update,
            headers={"X-API-Key": keys.issuer, "If-Match": etag},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=write, args=(soc,)) for soc in (10.0, 20.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 412]
    assert _count(app, PassportVersion) == 2
    verified = client.get(f"/api/passports/{key}/verify").json()
    assert verified["valid"] and verified["versions"] == 2


def test_lifecycle_repurpose_and_recycle(registry):
    client, keys, _app = registry
    key, etag = _create(client, keys.issuer, sample_battery("ev", "L-1"))
    second = sample_battery("industrial", "L-1-2ND")
    moved = client.post(
        f"/api/passports/{key}/status",
        json={"to": "repurposed", "new_document": second},
        headers={"X-API-Key": keys.issuer, "If-Match": etag},
    )
    assert moved.status_code == 200, moved.text
    new = moved.json()["new_passport"]
    history = client.get(f"/api/passports/{key}/history", headers={"X-API-Key": keys.issuer}).json()
    assert history["versions"][-1]["links"][0]["passport_id"] == new["passport_id"]
    new_key, new_etag = new["key"], f'"{new["hash"]}"'
    bad = client.post(
        f"/api/passports/{new_key}/status",
        json={"to": "recycled"},
        headers={"X-API-Key": keys.issuer, "If-Match": new_etag},
    )
    assert bad.status_code == 409 and "waste" in bad.json()["detail"]
    waste = client.post(
        f"/api/passports/{new_key}/status",
        json={"to": "waste"},
        headers={"X-API-Key": keys.issuer, "If-Match": new_etag},
    )
    recycled = client.post(
        f"/api/passports/{new_key}/status",
        json={"to": "recycled"},
        headers={"X-API-Key": keys.issuer, "If-Match": f'"{waste.json()["hash"]}"'},
    )
    assert recycled.status_code == 200
    closed = client.put(
        f"/api/passports/{new_key}",
        json=second,
        headers={"X-API-Key": keys.issuer, "If-Match": f'"{recycled.json()["hash"]}"'},
    )
    assert closed.status_code == 409
    issuer = {"X-API-Key": keys.issuer}
    assert client.get(f"/api/passports/{new_key}/verify", headers=issuer).json()["closed"]
    # recycling is a status (Annex XIII 4(c)): the public sees the chain is valid, not that
    public = client.get(f"/api/passports/{new_key}/verify").json()
    assert public["valid"] and "closed" not in public


def test_bad_requests_store_nothing(registry):
    client, keys, app = registry
    _create(client, keys.issuer, sample_battery("ev", "B-1"))
    before = (_count(app, Passport), _count(app, PassportVersion))
    headers = {"X-API-Key": keys.issuer}
    cases = [
        client.post(
            "/api/passports",
            content=b"x" * 1_100_000,
            headers={**headers, "content-type": "application/json"},
        ),
        client.post(
            "/api/passports",
            content=b'{"kind": "battery",',
            headers={**headers, "content-type": "application/json"},
        ),
        client.post(
            "/api/passports",
            content=b"kind=battery",
            headers={**headers, "content-type": "application/x-www-form-urlencoded"},
        ),
        client.post(
            "/api/passports",
            json={"kind": "battery", "category": "ev", "data": {"capacity": "75 kWh"}},
            headers=headers,
        ),
        client.post("/api/passports", json=sample_battery("ev", "B-1"), headers=headers),  # exists
        client.post(
            "/api/passports",
            json=sample_battery("ev", "B-2"),
            headers={"X-API-Key": keys.reader_without_write},
        ),
        client.post(
            "/api/ingest",
            json={"updates": [{"passport_id": "x", "data": {"chemistry": "LFP"}}]},
            headers=headers,
        ),
    ]
    expected = [413, 400, 415, 422, 409, 403, 422]
    assert [c.status_code for c in cases] == expected
    assert all(c.headers["content-type"] == PROBLEM for c in cases)
    for injection in ("' OR 1=1 --", "x'; DROP TABLE passports; --", "%' OR '1'='1"):
        found = client.get("/api/passports", params={"product": injection})
        assert found.status_code == 200 and found.json()["items"] == []
    assert (_count(app, Passport), _count(app, PassportVersion)) == before


def test_pagination_and_public_page(registry):
    client, keys, _app = registry
    for i in range(7):
        _create(client, keys.issuer, sample_battery("ev", f"P-{i}"))
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/passports", params=params).json()
        seen += [item["passport_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    page = client.get("/01/04054123456783/21/P-3")
    assert page.status_code == 200 and "<script" not in page.text
    assert "State of charge" not in page.text  # legitimate-interest data stays off the public page
    assert "Nominal voltage" in page.text and "370 V" in page.text
    assert client.get("/01/04054123456780/21/P-3").status_code == 400  # bad check digit


def test_bulk_ingest_is_all_or_nothing(registry):
    client, keys, app = registry
    ids = []
    for i in range(3):
        document = sample_battery("ev", f"I-{i}")
        _create(client, keys.issuer, document)
        ids.append(document["data"]["unique_identifier"])
    good = {
        "updates": [
            {"passport_id": p, "data": {"state_of_charge": 55.0, "number_of_cycles": 3}}
            for p in ids
        ]
    }
    assert client.post("/api/ingest", json=good, headers={"X-API-Key": keys.issuer}).json() == {
        "written": 3
    }
    bad = copy.deepcopy(good)
    bad["updates"][2]["data"]["state_of_charge"] = 140.0
    response = client.post("/api/ingest", json=bad, headers={"X-API-Key": keys.issuer})
    assert response.status_code == 422 and "updates[2]" in response.text
    assert (
        _count(app, PassportVersion) == 6
    )  # 3 created + 3 from the good batch, none from the bad one


def test_fast_public_read_answers_like_the_application(registry):
    client, keys, _app = registry
    key, etag = _create(client, keys.issuer, sample_battery("ev", serial="FAST-1"))
    fast = client.get(f"/api/passports/{key}")  # the ASGI fast path
    routed = client.get(f"/api/passports/{key}?audience=public&via=app")  # through FastAPI
    assert fast.status_code == routed.status_code == 200
    assert fast.json() == routed.json() and fast.json()["audience"] == "public"
    assert fast.headers["ETag"] == routed.headers["ETag"]
    # the public ETag is the digest of the public body, not the version hash (which commits to
    # restricted fields); the issuer's ETag is the version hash
    assert fast.headers["ETag"] == f'"view-{hashlib.sha256(fast.content).hexdigest()}"' != etag
    own = client.get(f"/api/passports/{key}", headers={"X-API-Key": keys.issuer})
    assert own.headers["ETag"] == etag
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    missing = client.get("/api/passports/no-such-key")
    routed_missing = client.get("/api/passports/no-such-key?audience=public&via=app")
    assert missing.status_code == routed_missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM and missing.json() == routed_missing.json()
