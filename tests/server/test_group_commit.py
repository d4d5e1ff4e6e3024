"""Group commit: an audited read is answered only once its audit entry is committed, concurrent
requests share commits, a refused request changes nothing, and a failed commit answers 503."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from critflow.passport.samples import sample_battery
from critflow.server.audit import GroupCommitter
from critflow.server.auth import Limits
from critflow.server.models import AuditEntry, Base, Passport, PassportVersion
from critflow.server.problems import RegistryError
from tests.server.conftest import other_battery

PROBLEM = "application/problem+json"


def _audited(url: str, **where) -> int:
    """Audit rows matching ``where``, counted on a connection of its own (what is committed)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(AuditEntry)
            for column, value in where.items():
                query = query.where(getattr(AuditEntry, column) == value)
            return connection.execute(query).scalar()
    finally:
        engine.dispose()


def _wait_until(condition, what: str) -> None:
    """Wait for ``condition`` (a guard against hanging, not a timed assertion)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_waiting_requests_share_one_commit_and_are_released_after_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    gate = threading.Event()
    entered = threading.Event()

    @contextmanager
    def begin():
        entered.set()
        gate.wait()  # the first batch is held until the others have queued behind it
        with Session(engine) as session:
            yield session

    committer = GroupCommitter(begin)
    acknowledged: dict[int, int] = {}

    def read(i: int) -> None:
        committer.write({"action": "read", "outcome": "allowed", "passport_key": f"p{i}"})
        acknowledged[i] = _audited(url, passport_key=f"p{i}")  # committed when answered

    first = threading.Thread(target=read, args=(0,))
    first.start()
    _wait_until(entered.is_set, "the first batch")
    others = [threading.Thread(target=read, args=(i,)) for i in range(1, 11)]
    for thread in others:
        thread.start()
    _wait_until(lambda: len(committer._pending) == 10, "ten queued requests")
    assert not acknowledged  # nobody is answered before a commit
    gate.set()
    for thread in (first, *others):
        thread.join()
    assert acknowledged == {i: 1 for i in range(11)}
    assert committer.batches == 2 and committer.largest == 10  # ten requests, one commit
    assert _audited(url) == 11
    engine.dispose()


def test_a_failed_commit_acknowledges_nobody(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")  # no tables: inserts fail
    committer = GroupCommitter(lambda: Session(engine))
    with pytest.raises(RegistryError) as refused:
        committer.write({"action": "read", "outcome": "allowed"})
    assert refused.value.status == 503
    assert committer.batches == 0
    engine.dispose()


def test_concurrent_audited_reads_are_each_audited_when_answered(registry):
    client, keys, app = registry
    registry_ = app.state.registry
    url = registry_.engine.url.render_as_string(hide_password=False)
    passports = [
        client.post(
            "/api/passports",
            json=sample_battery("ev", f"G-{i:02d}"),
            headers={"X-API-Key": keys.issuer},
        ).json()["key"]
        for i in range(8)
    ]
    reader = registry_.principal(keys.legitimate_interest)
    expected = client.get(
        f"/api/passports/{passports[0]}?audience=legitimate_interest",
        headers={"X-API-Key": keys.legitimate_interest},
    )
    assert expected.status_code == 200
    before = _audited(url, action="read", outcome="allowed")
    batches = registry_.committer.batches
    failures: list[str] = []
    barrier = threading.Barrier(len(passports))

    def reads(key: str) -> None:
        barrier.wait()
        for j in range(1, 6):
            text, _etag = registry_.read(reader, key)
            seen = _audited(url, action="read", passport_key=key, key_id=reader.key_id)
            offset = 1 if key == passports[0] else 0  # the HTTP read above
            if seen != j + offset or '"audience":"legitimate_interest"' not in text:
                failures.append(f"{key}: read {j} answered with {seen - offset} audit rows")

    threads = [threading.Thread(target=reads, args=(key,)) for key in passports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert _audited(url, action="read", outcome="allowed") == before + 40
    # 40 reads, at most one commit each (often fewer: concurrent reads share one)
    assert 1 <= registry_.committer.batches - batches <= 40


def test_the_fast_path_answers_like_the_application_and_audits_once(registry, monkeypatch):
    client, keys, app = registry
    registry_ = app.state.registry
    url = registry_.engine.url.render_as_string(hide_password=False)
    key = client.post(
        "/api/passports", json=sample_battery("ev", "F-1"), headers={"X-API-Key": keys.issuer}
    ).json()["key"]
    # keys stay remembered for the test's length (no recheck falls back to the application)
    monkeypatch.setattr(registry_.keys, "limits", Limits(recheck_seconds=3600))
    for api_key, audience in (
        (keys.legitimate_interest, None),
        (keys.authority, "authority"),
        (keys.issuer, None),
        (keys.issuer, "public"),
    ):
        principal = registry_.principal(api_key)  # verified: the fast path takes its requests
        routed_text, routed_etag = registry_.read(principal, key, audience)
        before = _audited(url, action="read", passport_key=key)
        with monkeypatch.context() as patched:  # the application's read is not called
            patched.setattr(registry_, "read", _refuse_to_serve)
            query = f"?audience={audience}" if audience else ""
            fast = client.get(f"/api/passports/{key}{query}", headers={"X-API-Key": api_key})
        assert fast.status_code == 200, fast.text
        assert fast.text == routed_text and fast.headers["ETag"] == f'"{routed_etag}"'
        assert fast.headers["content-type"] == "application/json"
        audited = audience != "public"
        assert _audited(url, action="read", passport_key=key) == before + audited


def _refuse_to_serve(*_args, **_kwargs):
    raise AssertionError("the fast path should have answered")


def test_refused_requests_change_nothing_among_concurrent_ones(registry):
    client, keys, app = registry
    registry_ = app.state.registry
    url = registry_.engine.url.render_as_string(hide_password=False)
    taken = sample_battery("ev", "R-0")
    key = client.post("/api/passports", json=taken, headers={"X-API-Key": keys.issuer}).json()[
        "key"
    ]
    issuer = registry_.principal(keys.issuer)
    reader = registry_.principal(keys.legitimate_interest)
    jobs = []
    for i in range(6):
        jobs.append(("create", sample_battery("ev", f"R-{i + 1}"), 201))  # allowed
        jobs.append(("create", other_battery(f"R-{i}"), 403))  # another manufacturer's GTIN
        jobs.append(("create", taken, 409))  # exists
        jobs.append(("read", "issuer", 403))  # audience not granted
    before_versions = _count(registry_, PassportVersion)
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[str, int, int]] = []

    def run(action, payload, expected) -> None:
        barrier.wait()
        try:
            if action == "create":
                registry_.create(issuer, payload)
            else:
                registry_.read(reader, key, payload)
            status = 201
        except RegistryError as exc:
            status = exc.status
        outcomes.append((action, expected, status))

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == expected for _, expected, status in outcomes), outcomes
    # the six allowed creates are there, each with one version; the refusals left no trace
    assert _count(registry_, Passport) == 7
    assert _count(registry_, PassportVersion) == before_versions + 6
    assert _audited(url, action="create", outcome="allowed") == 7
    assert _audited(url, action="create", outcome="denied") == 6  # 409 is not a denial
    assert _audited(url, action="read", outcome="denied", passport_key=key) == 6
    assert _audited(url, action="read", outcome="allowed", passport_key=key) == 0
    with registry_.sessions() as session:
        gtins = set(session.scalars(select(Passport.gtin)))
    assert gtins == {"04054123456783"}


def test_an_audited_read_whose_entry_cannot_be_written_is_not_served(registry, monkeypatch):
    client, keys, app = registry
    registry_ = app.state.registry
    key = client.post(
        "/api/passports", json=sample_battery("ev", "U-1"), headers={"X-API-Key": keys.issuer}
    ).json()["key"]
    monkeypatch.setattr(registry_.keys, "limits", Limits(recheck_seconds=3600))
    registry_.principal(keys.legitimate_interest)

    @contextmanager
    def broken():
        raise RuntimeError("disk full")
        yield

    def no_driver(_rows):
        raise RuntimeError("disk full")

    # both ways a batch is written: a session, and audit rows alone straight to the driver
    monkeypatch.setattr(registry_.committer, "_begin", broken)
    monkeypatch.setattr(registry_.committer, "write_rows", no_driver)
    for _ in range(2):  # the fast path and (the key verified anew) the application
        refused = client.get(
            f"/api/passports/{key}", headers={"X-API-Key": keys.legitimate_interest}
        )
        assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
        assert "document" not in refused.text
        registry_.keys.forget()
    public = client.get(f"/api/passports/{key}")  # public reads are not audited: still served
    assert public.status_code == 200


def _count(registry_, table) -> int:
    with registry_.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_the_create_fast_path_answers_like_the_application_and_stores_once(registry, monkeypatch):
    client, keys, app = registry
    registry_ = app.state.registry
    url = registry_.engine.url.render_as_string(hide_password=False)
    headers = {"X-API-Key": keys.issuer}
    registry_.keys.forget()  # not verified yet: the application creates (and verifies the key)
    routed = client.post("/api/passports", json=sample_battery("ev", "C-1"), headers=headers)
    assert routed.status_code == 201, routed.text
    monkeypatch.setattr(registry_.keys, "limits", Limits(recheck_seconds=3600))
    batches = registry_.committer.batches
    with monkeypatch.context() as patched:  # the application's create is not called
        patched.setattr(registry_, "create", _refuse_to_serve)
        fast = client.post("/api/passports", json=sample_battery("ev", "C-2"), headers=headers)
    assert fast.status_code == 201, fast.text
    # SQLite: acknowledged after its group commit; PostgreSQL: a transaction of its own
    assert registry_.committer.batches == batches + registry_.groups_creates
    # the same answer: body (same fields, same order, same separators) and headers
    swapped = routed.text
    for name in ("key", "passport_id", "hash"):
        swapped = swapped.replace(routed.json()[name], fast.json()[name])
    assert fast.text == swapped
    assert fast.headers["ETag"] == f'"{fast.json()["hash"]}"'
    assert fast.headers["Location"] == f"/api/passports/{fast.json()['key']}"
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    # stored once, readable, verifying, audited once
    key = fast.json()["key"]
    read = client.get(f"/api/passports/{key}", headers=headers)
    assert read.json()["document"]["data"]["unique_identifier"].endswith("/21/C-2")
    assert client.get(f"/api/passports/{key}/verify", headers=headers).json()["valid"] is True
    assert _audited(url, action="create", outcome="allowed", passport_key=key) == 1


def test_refused_fast_path_creates_answer_like_the_application_and_write_nothing(
    registry, monkeypatch
):
    client, keys, app = registry
    registry_ = app.state.registry
    url = registry_.engine.url.render_as_string(hide_password=False)
    headers = {"X-API-Key": keys.issuer}
    monkeypatch.setattr(registry_.keys, "limits", Limits(recheck_seconds=3600))
    taken = sample_battery("ev", "D-1")
    assert client.post("/api/passports", json=taken, headers=headers).status_code == 201
    registry_.principal(keys.issuer)  # remembered: the fast path takes the next requests
    invalid = sample_battery("ev", "D-2")
    invalid["data"]["capacity_fade"] = "a lot"
    cases = (
        (taken, 409, None),  # exists (refused inside the commit: its savepoint rolled back)
        (other_battery("D-3"), 403, "denied"),  # another manufacturer's GTIN (inside the commit)
        (invalid, 422, None),  # refused before any database access
    )
    for document, status, audited in cases:
        passports = _count(registry_, Passport)
        denied = _audited(url, action="create", outcome="denied")
        refused = client.post("/api/passports", json=document, headers=headers)
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert _count(registry_, Passport) == passports
        assert _audited(url, action="create", outcome="denied") == denied + (audited is not None)


def test_a_create_whose_commit_fails_is_not_acknowledged(registry, monkeypatch):
    _client, keys, app = registry
    registry_ = app.state.registry
    monkeypatch.setattr(registry_.keys, "limits", Limits(recheck_seconds=3600))
    registry_.principal(keys.issuer)

    @contextmanager
    def broken():
        raise RuntimeError("disk full")
        yield

    monkeypatch.setattr(registry_.committer, "_begin", broken)
    monkeypatch.setattr(registry_, "writing", broken)
    answering = TestClient(app, raise_server_exceptions=False)  # as a real client sees it
    refused = answering.post(
        "/api/passports", json=sample_battery("ev", "E-1"), headers={"X-API-Key": keys.issuer}
    )
    # 503 (the fast path) or 500 (the application): not acknowledged
    assert refused.status_code in (500, 503) and refused.headers["content-type"] == PROBLEM
    monkeypatch.undo()
    assert _count(registry_, Passport) == 0
