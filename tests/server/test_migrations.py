"""A registry database from before revision 0002 upgrades in place (SQLite and PostgreSQL): its
stored public views lose the battery status and the chain hash, its signing key is registered,
its passports still verify, and a server with another key is refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from critflow.errors import CritflowError
from critflow.passport.integrity import new_record
from critflow.passport.samples import sample_battery
from critflow.passport.views import view
from critflow.server.api import create_app
from critflow.server.database import MIGRATIONS, make_engine
from critflow.server.models import Passport, PassportVersion, RegistryKey
from critflow.server.service import passport_key
from critflow.server.signing import init_registry_key

MOMENT = dt.datetime(2027, 2, 18, tzinfo=dt.UTC)


def _at_revision_0001(url: str) -> None:
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()


def _old_public_view(key: str, envelope: dict) -> str:
    """What the registry stored before 0002 (status and version hash included)."""
    record = envelope["record"]
    return json.dumps(
        {
            "key": key,
            "passport_id": record["passport_id"],
            "version": record["version"],
            "status": record["status"],
            "hash": envelope["hash"],
            "audience": "public",
            "document": view(record["document"], "public"),
        },
        separators=(",", ":"),
    )


def test_database_from_0001_upgrades_and_keeps_verifying(database_url, tmp_path):
    _at_revision_0001(database_url)
    signer = init_registry_key(tmp_path / "registry.key")
    document = sample_battery("ev", "OLD-1")
    document["data"]["battery_status"] = "waste"
    identifier = document["data"]["unique_identifier"]
    key = passport_key(identifier)
    envelope = signer.sign(new_record(identifier, document, None, "waste"))
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            insert(Passport.__table__),
            [
                {
                    "id": 1,
                    "key": key,
                    "passport_id": identifier,
                    "kind": "battery",
                    "category": "ev",
                    "gtin": "04054123456783",
                    "serial": "OLD-1",
                    "product": "NMC811 / graphite",
                    "status": "waste",
                    "operator": "Example Cells NV",
                    "version": 1,
                    "head_hash": envelope["hash"],
                    "public_view": _old_public_view(key, envelope),
                    "closed": False,
                    "created_at": MOMENT,
                    "updated_at": MOMENT,
                }
            ],
        )
        connection.execute(
            insert(PassportVersion.__table__),
            [
                {
                    "passport_pk": 1,
                    "version": 1,
                    "hash": envelope["hash"],
                    "envelope": json.dumps(envelope),
                    "created_at": MOMENT,
                }
            ],
        )
    engine.dispose()
    # another key on this database is refused: its versions are signed by the old one
    other = tmp_path / "other.key"
    init_registry_key(other)
    with pytest.raises(CritflowError, match="signed by key"):
        create_app(database_url, key_file=other)
    app = create_app(database_url, key_file=tmp_path / "registry.key")  # upgrades to head
    client = TestClient(app)
    public = client.get(f"/api/passports/{key}").json()
    assert "status" not in public and "hash" not in public and '"waste"' not in json.dumps(public)
    assert public["document"]["data"]["battery_mass"] == {"value": 450.0, "unit": "kg"}
    assert client.get(f"/api/passports/{key}/verify").json()["valid"]
    with app.state.registry.sessions() as session:
        keys = session.scalars(select(RegistryKey)).all()
    assert [(k.public_key, k.current, k.valid_from) for k in keys] == [
        (signer.public_key, True, None)
    ]
    client.close()
    app.state.registry.engine.dispose()
