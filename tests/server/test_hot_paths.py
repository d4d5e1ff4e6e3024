"""The registry's hot paths against the slow ones they stand in for: the body check without
field paths refuses exactly what the full check refuses, and audit rows written straight to the
driver are the rows a session writes."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, select

from critflow.passport.samples import sample_battery
from critflow.server.models import AuditEntry, Passport, PassportVersion
from critflow.server.problems import RegistryError
from critflow.server.service import MAX_DEPTH, _plain_json, check_json

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([2**53, -(2**53), 2**53 + 1, -(2**53) - 1, math.inf, -math.inf, math.nan]),
)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.text(max_size=5), _NUMBERS),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=30,
)


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _refused(value: object) -> bool:
    try:
        check_json(value)
    except RegistryError:
        return True
    return False


def _refused_by_full_walk(value: object, depth: int = 0) -> bool:
    """The rule written out independently: a non-finite float, an integer beyond 2^53, or a list
    or object at depth MAX_DEPTH or deeper."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > 2**53
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(_refused_by_full_walk(item, depth + 1) for item in items)
    return False


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_quick_body_check_refuses_exactly_what_the_full_check_refuses(value):
    expected = _refused_by_full_walk(value)
    assert _refused(value) == expected
    assert _plain_json(value) == (not expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 2), _NUMBERS)
def test_the_quick_body_check_agrees_at_the_depth_limit(depth, leaf):
    value = _nested(depth, leaf)
    expected = _refused_by_full_walk(value)
    assert _refused(value) == expected
    assert _plain_json(value) == (not expected)


def test_a_refusal_still_names_the_field():
    document = sample_battery("ev", "Q-1")
    document["data"]["rated_capacity_in_use"] = {"value": math.inf, "unit": "A*h"}
    assert not _plain_json(document)
    try:
        check_json(document)
    except RegistryError as exc:
        assert exc.status == 422
        assert "body.data.rated_capacity_in_use.value" in exc.detail
    else:  # pragma: no cover - the assertion above makes this a failure
        raise AssertionError("Infinity was accepted")
    assert _plain_json(sample_battery("ev", "Q-2"))  # a whole valid passport passes


def _rows(registry_, action: str) -> list[tuple]:
    with registry_.sessions() as session:
        found = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).all()
        return [
            (
                r.at.replace(tzinfo=None),
                r.key_id,
                r.organisation,
                r.passport_key,
                r.audience,
                r.purpose,
                r.outcome,
                r.detail,
                r.client,
            )
            for r in found
        ]


def test_audit_rows_written_by_the_driver_equal_those_a_session_writes(registry):
    _client, _keys, app = registry
    registry_ = app.state.registry
    reader = registry_.principal(_keys.legitimate_interest)
    entries = [
        registry_._stamped(
            registry_._entry(reader, action, f"k{i}", "legitimate_interest", "allowed", detail)
        )
        for action in ("probe-driver", "probe-session")
        for i, detail in enumerate((None, "x" * 500, "ünïcode ✓"))
    ]
    driver = [e for e in entries if e["action"] == "probe-driver"]
    session = [e for e in entries if e["action"] == "probe-session"]
    for entry in session:
        entry["client"] = "192.0.2.7"
    moment = entries[0]["at"]
    driver[0]["at"] = session[0]["at"] = moment  # one time written both ways: stored alike
    assert registry_.write_audit(driver) is True
    with registry_.writing() as transaction:  # the way a batch with writes in it goes
        transaction.connection().execute(AuditEntry.__table__.insert(), session)
        transaction.commit()
    written_by_driver = _rows(registry_, "probe-driver")
    written_by_session = _rows(registry_, "probe-session")
    assert len(written_by_driver) == 3
    for by_driver, by_session, entry in zip(
        written_by_driver, written_by_session, driver, strict=True
    ):
        assert by_driver[1:-1] == by_session[1:-1]  # the same but for the time and client
        assert by_driver[0] == entry["at"].replace(tzinfo=None)  # the time, to the microsecond
        assert by_session[-1] == "192.0.2.7" and by_driver[-1] is None
    # as stored (on SQLite a text compared as text, as the throttling window's query does)
    with registry_.engine.connect() as connection:
        stored = connection.execute(
            select(AuditEntry.action, cast(AuditEntry.at, Text))
            .where(AuditEntry.action.in_(["probe-driver", "probe-session"]))
            .order_by(AuditEntry.id)
        ).all()
    firsts = {action: at for action, at in reversed(stored)}
    assert firsts["probe-driver"] == firsts["probe-session"]


def test_rows_not_of_the_usual_form_go_to_a_session(registry):
    _client, _keys, app = registry
    registry_ = app.state.registry
    assert registry_.write_audit([]) is False
    assert registry_.write_audit([{"action": "read", "outcome": "allowed"}]) is False
    # the committer writes such rows in a session: they are committed all the same
    registry_.committer.write({"action": "probe-short", "outcome": "allowed"})
    assert len(_rows(registry_, "probe-short")) == 1


def test_savepoints_are_sent_as_sqlalchemy_writes_them_and_keep_their_meaning(tmp_path):
    from sqlalchemy.sql.elements import (
        ReleaseSavepointClause,
        RollbackToSavepointClause,
        SavepointClause,
    )

    from critflow.server.database import make_engine, make_write_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'savepoints.db'}")
    writer = make_write_engine(engine)
    sent: list[str] = []
    with writer.connect() as connection:
        connection.connection.dbapi_connection.set_trace_callback(sent.append)
        with connection.begin():
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            kept = connection.begin_nested()
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            kept.commit()
            undone = connection.begin_nested()
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            undone.rollback()
        names = [s.split()[-1] for s in sent if s.startswith("SAVEPOINT")]
        assert len(names) == 2
        expected = [
            str(SavepointClause(names[0]).compile(dialect=writer.dialect)),
            str(ReleaseSavepointClause(names[0]).compile(dialect=writer.dialect)),
            str(SavepointClause(names[1]).compile(dialect=writer.dialect)),
            str(RollbackToSavepointClause(names[1]).compile(dialect=writer.dialect)),
        ]
        assert [s for s in sent if "SAVEPOINT" in s] == expected
        assert connection.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    writer.dispose()
    engine.dispose()


def test_a_created_passport_is_stored_as_sqlalchemy_stores_it(registry):
    client, keys, app = registry
    registry_ = app.state.registry
    created = client.post(
        "/api/passports", json=sample_battery("ev", "H-1"), headers={"X-API-Key": keys.issuer}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    with registry_.engine.connect() as connection:
        stored, loaded = connection.execute(
            select(cast(Passport.created_at, Text), Passport.created_at).where(Passport.key == key)
        ).one()
        closed = connection.execute(select(Passport.closed).where(Passport.key == key)).scalar()
        written = connection.execute(
            select(cast(PassportVersion.created_at, Text)).where(
                PassportVersion.hash == created.json()["hash"]
            )
        ).scalar()
    # the stored text is what SQLAlchemy writes for the time it reads back
    processor = Passport.__table__.c.created_at.type._cached_bind_processor(
        registry_.engine.dialect
    )
    if processor is not None:  # SQLite: a text
        assert stored == processor(loaded)
        assert written == processor(loaded)
    else:  # PostgreSQL: a timestamp with time zone
        assert loaded.tzinfo is not None and written == stored
    assert closed is False
