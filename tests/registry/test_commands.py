"""`critflow db upgrade`, `critflow keys create` and `critflow serve` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from critflow.passport.samples import sample_battery
from tests.registry.test_crash import _free_port


def _critflow(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "critflow", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


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
    port = _free_port()
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
