"""`critflow db upgrade`, `critflow keys create` and `critflow serve` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from critflow.passport.samples import sample_battery
from tests.conftest import free_port


def _critflow(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "critflow", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow  # a real server process
def test_keys_and_serve(tmp_path):
    database = f"sqlite:///{tmp_path / 'reg.db'}"
    assert _critflow("db", "upgrade", "--database", database, cwd=tmp_path).returncode == 0
    created = _critflow(
        "keys",
        "create",
        "--org",
        "Example Cells NV",
        "--audience",
        "issuer",
        "--write",
        "--database",
        database,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("cfk_")
    refused = _critflow(
        "keys",
        "create",
        "--org",
        "Recycler BV",
        "--audience",
        "legitimate_interest",
        "--database",
        database,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "declared purpose" in refused.stderr
    registered = _critflow(
        "keys",
        "org",
        "--org",
        "Example Cells NV",
        "--prefix",
        "4054123",
        "--operator-id",
        "BE0123456789",
        "--database",
        database,
        cwd=tmp_path,
    )
    assert registered.returncode == 0, registered.stderr
    squatting = _critflow(
        "keys",
        "org",
        "--org",
        "Squatter Ltd",
        "--prefix",
        "405412",
        "--database",
        database,
        cwd=tmp_path,
    )  # a prefix overlapping Example Cells' is refused
    assert squatting.returncode == 2 and "overlaps" in squatting.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "critflow", "serve", "--port", str(port), "--database", database],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        created = httpx.post(
            f"{base}/api/passports", json=sample_battery("ev", "CLI-1"), headers={"X-API-Key": key}
        )
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/docs").status_code == 200
        page = httpx.get(f"{base}/01/04054123456783/21/CLI-1")
        assert page.status_code == 200 and "Battery passport" in page.text
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (tmp_path / "reg.key").exists()  # the registry's signing key, next to the database


def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``critflow *args`` in this process (the key commands need no fresh interpreter)."""
    from unittest import mock

    from critflow.cli import main

    with mock.patch.object(sys, "argv", ["critflow", *args]):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_key_commands_revoke_rotate_and_register(tmp_path, capsys):
    import json

    from fastapi.testclient import TestClient

    from critflow.server.api import create_app

    database = f"sqlite:///{tmp_path / 'reg.db'}"
    key_file = str(tmp_path / "signing" / "registry.key")
    run = lambda *a: _in_process(capsys, *a, "--database", database)  # noqa: E731
    code, out, _ = run("keys", "init-registry", "--key-file", key_file)
    assert code == 0 and "back it up" in out
    code, _, err = run("keys", "init-registry", "--key-file", key_file)
    assert code == 2 and "exists already" in err  # created once, never replaced
    code, out, _ = run(
        "keys",
        "org",
        "--org",
        "Example Cells NV",
        "--prefix",
        "4054123",
        "--operator-id",
        "BE0123456789",
    )
    assert code == 0 and "4054123" in out
    code, _, err = run("keys", "org", "--org", "Other Cells SA", "--prefix", "40541234")
    assert code == 2 and "overlaps" in err
    code, out, _ = run("keys", "orgs")
    assert json.loads(out.strip().splitlines()[0])["gs1_company_prefixes"] == ["4054123"]
    code, out, _ = run("keys", "create", "--org", "Example Cells NV", "--audience", "issuer")
    key = out.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    code, out, _ = run("keys", "revoke", key_id)
    assert code == 0 and key_id in out
    listed = [json.loads(line) for line in run("keys", "list")[1].strip().splitlines()]
    assert [k["revoked"] for k in listed if k["key_id"] == key_id] == [True]
    assert key not in json.dumps(listed)  # the list never shows a secret
    assert run("keys", "revoke", "cfk_nosuchkey_x")[0] == 2
    code, out, _ = run("keys", "rotate-registry", "--key-file", key_file)
    assert code == 0 and "retired" in out.replace("\n", "")
    assert len(list((tmp_path / "signing").glob("registry.retired-*.key"))) == 1
    app = create_app(database, key_file=tmp_path / "signing" / "registry.key")
    published = TestClient(app).get("/api/registry/keys").json()["keys"]
    assert [k["current"] for k in published] == [False, True]
    assert published[0]["valid_until"] == published[1]["valid_from"]
    revoked = TestClient(app).get("/api/passports", headers={"X-API-Key": key})
    assert revoked.status_code == 401
    app.state.registry.engine.dispose()
