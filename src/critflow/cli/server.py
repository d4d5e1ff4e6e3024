"""The passport registry's commands: ``critflow serve``, ``critflow db upgrade`` and ``critflow
keys …`` (API keys, organisations' GS1 Company Prefixes, the registry's signing key).

They need the ``server`` extra (``pip install 'critflow[server]'``); without it they say so
(``critflow.cli.app`` turns the ImportError into that message)."""

import json
from pathlib import Path
from typing import Annotated

import typer

from critflow.cli.common import out

db_app = typer.Typer(name="db", help="The registry's database.", no_args_is_help=True)
keys_app = typer.Typer(
    name="keys",
    help="API keys, organisations' identifiers and the registry's signing key.",
    no_args_is_help=True,
)

Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///file.db or postgresql://user@host/db (default: CRITFLOW_DATABASE_URL, "
        "else critflow-registry.db here).",
    ),
]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The registry's signing key (default: CRITFLOW_REGISTRY_KEY, else next to a SQLite "
        "database; required for PostgreSQL).",
    ),
]


def _engine(database: str | None):
    from critflow.server.database import make_engine, upgrade

    engine = make_engine(database)
    upgrade(engine)
    return engine


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    database: Database = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    key_file: KeyFile = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network of a reverse proxy whose X-Forwarded-For is believed "
            "(repeatable; default CRITFLOW_TRUSTED_PROXIES; none: the TCP peer is the client).",
        ),
    ] = None,
) -> None:
    """Run the passport registry (migrations run first); OpenAPI docs at /docs.

    The signing key is created here, once, before any worker starts (or loaded); a worker without
    it refuses to start, and a key that is not the registry's current key is refused."""
    import os

    import uvicorn

    from critflow.server import signing
    from critflow.server.auth import trusted_proxies
    from critflow.server.database import database_url

    url = database_url(database)
    engine = _engine(url)
    path = signing.key_path(key_file, engine)
    key, created = signing.ensure_registry_key(path)
    signing.attach(engine, key)
    engine.dispose()
    proxies = (
        ",".join(trusted_proxy) if trusted_proxy else os.environ.get("CRITFLOW_TRUSTED_PROXIES")
    )
    trusted_proxies(proxies)  # refuse a bad address here, not in every worker
    os.environ["CRITFLOW_DATABASE_URL"] = url
    os.environ["CRITFLOW_REGISTRY_KEY"] = str(path)
    os.environ["CRITFLOW_TRUSTED_PROXIES"] = proxies or ""
    if created:
        out.print(f"Created the registry's signing key {path} (back it up; keep it private).")
    out.print(
        f"critflow registry on http://{host}:{port} (database {url}, signing key "
        f"{key.public_key}); API docs at /docs"
    )
    uvicorn.run(
        "critflow.server.app:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=False,  # the client address policy is critflow's own (--trusted-proxy)
    )


@db_app.command("upgrade")
def db_upgrade(database: Database = None) -> None:
    """Create or migrate the registry's tables (Alembic)."""
    from critflow.server.database import database_url

    url = database_url(database)
    _engine(url)
    out.print(f"Database at the newest schema: {url}")


@keys_app.command("create")
def keys_create(
    organisation: Annotated[str, typer.Option("--org", help="Organisation the key belongs to.")],
    audience: Annotated[
        list[str],
        typer.Option(help="issuer, legitimate_interest, authority or admin (repeatable)."),
    ],
    write: Annotated[
        bool, typer.Option("--write", help="May create and change passports.")
    ] = False,
    purpose: Annotated[
        str | None, typer.Option(help="Declared purpose (required for legitimate interest).")
    ] = None,
    database: Database = None,
) -> None:
    """Create an API key; it is printed once and stored only as an argon2 hash."""
    from critflow.server.auth import create_key
    from critflow.server.database import session_factory

    with session_factory(_engine(database))() as session:
        key = create_key(session, organisation, audience, write, purpose)
    out.print(f"API key for {organisation} ({', '.join(audience)}{', write' if write else ''}):")
    print(key)


@keys_app.command("list")
def keys_list(database: Database = None) -> None:
    """Every API key: id, organisation, audiences, write right, revoked (never a secret)."""
    from critflow.server.auth import list_keys
    from critflow.server.database import session_factory

    with session_factory(_engine(database))() as session:
        for key in list_keys(session):
            print(json.dumps(key, ensure_ascii=False))


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id (or the whole key).")],
    database: Database = None,
) -> None:
    """Revoke an API key; every running worker refuses it within seconds."""
    from critflow.server.auth import revoke_key
    from critflow.server.database import session_factory

    with session_factory(_engine(database))() as session:
        key_id, organisation = revoke_key(session, key)
    out.print(f"Revoked key {key_id} of {organisation}.")


@keys_app.command("org")
def keys_org(
    organisation: Annotated[str, typer.Option("--org", help="The organisation.")],
    prefix: Annotated[
        list[str] | None,
        typer.Option("--prefix", help="GS1 Company Prefix it holds (4-12 digits; repeatable)."),
    ] = None,
    operator_id: Annotated[
        list[str] | None,
        typer.Option(
            "--operator-id",
            help="Economic-operator identifier its passports carry in "
            "responsible_operator.identifier (repeatable).",
        ),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A prefix or identifier to remove.")
    ] = None,
    database: Database = None,
) -> None:
    """Register (or remove) an organisation's GS1 Company Prefixes and operator identifiers: its
    keys create battery passports only under them."""
    from critflow.server import organisations
    from critflow.server.database import session_factory

    with session_factory(_engine(database))() as session:
        for value in remove or []:
            organisations.unregister(session, organisation, value)
        found = organisations.register(session, organisation, prefix or [], operator_id or [])
    out.print(
        f"{found.organisation}: GS1 Company Prefixes {', '.join(found.prefixes) or '(none)'}; "
        f"operator identifiers {', '.join(found.operator_ids) or '(none)'}"
    )


@keys_app.command("orgs")
def keys_orgs(database: Database = None) -> None:
    """Every organisation with its prefixes and operator identifiers (JSON lines)."""
    from critflow.server import organisations
    from critflow.server.database import session_factory

    with session_factory(_engine(database))() as session:
        for entry in organisations.everyone(session):
            print(json.dumps(entry, ensure_ascii=False))


@keys_app.command("init-registry")
def keys_init_registry(key_file: KeyFile = None, database: Database = None) -> None:
    """Create the registry's signing key (once: refuses when it exists) and register it."""
    from critflow.server import signing

    engine = _engine(database)
    path = signing.key_path(key_file, engine)
    key = signing.init_registry_key(path)
    signing.attach(engine, key)
    out.print(f"Registry signing key {path} (public key {key.public_key}); back it up.")


@keys_app.command("rotate-registry")
def keys_rotate_registry(key_file: KeyFile = None, database: Database = None) -> None:
    """Retire the registry's signing key and start a new one; the old file is kept beside it
    and stays published (GET /api/registry/keys) with its validity period."""
    from critflow.server import signing

    engine = _engine(database)
    path = signing.key_path(key_file, engine)
    key, retired = signing.rotate(engine, path)
    out.print(
        f"New registry signing key {key.public_key} in {path}; the old one is in {retired}. "
        "Copy the new file to every server of this registry."
    )
