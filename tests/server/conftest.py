"""Registry tests run on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``CRITFLOW_TEST_DATABASE_URL`` (``.ci/run`` starts one with
``.ci/postgres``); each test gets a fresh database on it. Without the variable the PostgreSQL
variant is skipped locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from critflow.passport.identity import DigitalLink, gtin_check_digit
from critflow.passport.samples import sample_battery
from critflow.server import organisations
from critflow.server.api import create_app
from critflow.server.auth import create_key
from critflow.server.signing import init_registry_key

POSTGRES = os.environ.get("CRITFLOW_TEST_DATABASE_URL")


def _postgres_database() -> tuple[str, callable]:
    import psycopg

    if not POSTGRES:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs CRITFLOW_TEST_DATABASE_URL (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL server (set CRITFLOW_TEST_DATABASE_URL, see .ci/postgres)")
    admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    name = f"critflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return POSTGRES.rsplit("/", 1)[0] + "/" + name, drop


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    url, drop = _postgres_database()
    yield url
    drop()


@dataclass
class Keys:
    issuer: str
    other_issuer: str
    legitimate_interest: str
    authority: str
    admin: str
    reader_without_write: str


EXAMPLE_PREFIX = "4054123"  # the GS1 Company Prefix of sample_battery()'s GTIN 04054123456783
EXAMPLE_OPERATOR_ID = "BE0123456789"  # sample_battery()'s responsible_operator.identifier
OTHER_PREFIX = "5412345"
OTHER_OPERATOR_ID = "FR98765432100"


def other_battery(serial: str, category: str = "ev") -> dict:
    """A valid passport of the second manufacturer (Other Cells SA, its own GTIN and operator)."""
    document = sample_battery(category, serial)
    body = "0" + OTHER_PREFIX + "00001"
    gtin = body + str(gtin_check_digit(body))
    document["data"]["unique_identifier"] = DigitalLink.build(gtin, serial).uri
    document["data"]["responsible_operator"] = {
        "name": "Other Cells SA",
        "identifier": OTHER_OPERATOR_ID,
    }
    document["data"]["manufacturer_name"] = "Other Cells SA"
    return document


def register_sample_organisations(session) -> None:
    """The identities the samples are issued under (an administrator's `critflow keys org`)."""
    organisations.register(session, "Example Cells NV", [EXAMPLE_PREFIX], [EXAMPLE_OPERATOR_ID])
    organisations.register(session, "Other Cells SA", [OTHER_PREFIX], [OTHER_OPERATOR_ID])


@pytest.fixture()
def registry(database_url, tmp_path):
    init_registry_key(tmp_path / "registry.key")
    app = create_app(database_url, key_file=tmp_path / "registry.key")
    registry = app.state.registry
    with registry.sessions() as session:
        register_sample_organisations(session)
        keys = Keys(
            issuer=create_key(session, "Example Cells NV", ["issuer"], True, None),
            other_issuer=create_key(session, "Other Cells SA", ["issuer"], True, None),
            legitimate_interest=create_key(
                session, "Recycler BV", ["legitimate_interest"], False, "recycling of EV batteries"
            ),
            authority=create_key(session, "Market surveillance BE", ["authority"], False, None),
            admin=create_key(session, "Registry operator", ["admin"], True, None),
            reader_without_write=create_key(session, "Example Cells NV", ["issuer"], False, None),
        )
    client = TestClient(app)
    yield client, keys, app
    client.close()
    registry.engine.dispose()
