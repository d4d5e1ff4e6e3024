"""The registry's signed checkpoint (GET /api/passports/{key}/checkpoint) against offline rollback.

A copy of a registry passport's versions that leaves out the newest ones verifies on its own;
with the checkpoint the registry publishes it does not. Runs on the registry fixture of
tests/server (SQLite here, PostgreSQL too when a server is configured).
"""

from __future__ import annotations

import copy
import json

from sqlalchemy import func, select

from critflow.passport.checkpoint import verify_checkpoint
from critflow.passport.integrity import key_id
from critflow.passport.samples import sample_battery
from critflow.server.models import Passport, PassportVersion
from tests.adversarial.test_passports import cli, refused, store
from tests.server.conftest import database_url, registry  # noqa: F401 (fixtures)

PROBLEM = "application/problem+json"


def _stored(app, key: str) -> list[dict]:
    with app.state.registry.sessions() as session:
        texts = session.scalars(
            select(PassportVersion.envelope)
            .join(Passport, Passport.id == PassportVersion.passport_pk)
            .where(Passport.key == key)
            .order_by(PassportVersion.version)
        ).all()
    return [json.loads(t) for t in texts]


def _update(client, api_key, key, etag, document, soc):
    document = copy.deepcopy(document)
    document["data"]["state_of_charge"] = soc
    response = client.put(
        f"/api/passports/{key}", json=document, headers={"X-API-Key": api_key, "If-Match": etag}
    )
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def test_registry_checkpoint_detects_withheld_versions(registry, tmp_path, capsys):  # noqa: F811
    client, keys, app = registry
    document = sample_battery("ev", serial="CP-1")
    created = client.post("/api/passports", json=document, headers={"X-API-Key": keys.issuer})
    assert created.status_code == 201, created.text
    key, etag = created.json()["key"], created.headers["ETag"]
    for soc in (70.0, 60.0):
        etag = _update(client, keys.issuer, key, etag, document, soc)

    with app.state.registry.sessions() as session:
        versions_before = session.scalar(select(func.count()).select_from(PassportVersion))
    response = client.get(f"/api/passports/{key}/checkpoint")  # anonymous: it is public
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    signer = app.state.registry.signer
    checkpoint = verify_checkpoint(response.json(), {signer.public_key}, "registry")
    assert (checkpoint.version, f'"{checkpoint.head_hash}"') == (3, etag)
    assert response.json()["checkpoint"]["key_id"] == key_id(signer.public_key)
    with app.state.registry.sessions() as session:  # reading a checkpoint stores nothing
        assert session.scalar(select(func.count()).select_from(PassportVersion)) == versions_before

    (tmp_path / "registry.pub").write_text(signer.public_key + "\n")
    (tmp_path / "cp.json").write_text(response.text)
    trusted = ("--trusted", tmp_path / "registry.pub", "--checkpoint", tmp_path / "cp.json")
    chain = tmp_path / "copy"
    chain.mkdir()
    stored = _stored(app, key)
    store(chain, stored)
    code, out, err = cli(capsys, "passport", "verify", chain, *trusted)
    assert code == 0, out + err
    assert "3 version(s) verify" in out and "the chain reaches it" in out

    store(chain, stored[:2])  # the newest version withheld
    text = refused(capsys, "passport", "verify", chain, *trusted)
    assert "the chain ends at version 2" in text and "rollback" in text

    # a newer version after the checkpoint: the old checkpoint still holds for the longer chain …
    _update(client, keys.issuer, key, etag, document, 50.0)
    store(chain, _stored(app, key))
    code, out, _ = cli(capsys, "passport", "verify", chain, *trusted)
    assert code == 0 and "1 newer version(s) after it" in out
    # … and the new checkpoint refuses the three-version copy
    (tmp_path / "cp.json").write_text(client.get(f"/api/passports/{key}/checkpoint").text)
    store(chain, stored)
    assert "the chain ends at version 3" in refused(capsys, "passport", "verify", chain, *trusted)

    unknown = client.get("/api/passports/0000000000/checkpoint")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(PROBLEM)
