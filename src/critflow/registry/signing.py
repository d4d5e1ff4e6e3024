"""The registry's signing key: every version it stores is signed with it (Ed25519)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from critflow.passport.integrity import SigningKey


def key_path(key_file: Path | None, engine: Engine) -> Path:
    """Where the key lives: the argument, ``CRITFLOW_REGISTRY_KEY``, next to a SQLite file, or here."""
    if key_file is not None:
        return key_file
    if os.environ.get("CRITFLOW_REGISTRY_KEY"):
        return Path(os.environ["CRITFLOW_REGISTRY_KEY"])
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if database:
        return Path(database).with_suffix(".key")
    return Path("critflow-registry.key")


def registry_key(key_file: Path | None, engine: Engine) -> SigningKey:
    """Load the registry key, creating it (mode 0600) on first start."""
    path = key_path(key_file, engine)
    if path.exists():
        return SigningKey.load(path)
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    key.save(path.with_suffix(""))
    return key
