"""``critflow serve``, ``critflow db upgrade`` and ``critflow keys create``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()
db_app = typer.Typer(name="db", help="The registry's database.", no_args_is_help=True)
keys_app = typer.Typer(name="keys", help="API keys of the registry.", no_args_is_help=True)

Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///file.db or postgresql://user@host/db (default: CRITFLOW_DATABASE_URL, "
        "else critflow-registry.db here).",
    ),
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    database: Database = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    key_file: Annotated[
        Path | None, typer.Option(help="The registry's signing key (created if missing).")
    ] = None,
) -> None:
    """Run the passport registry (migrations run first); OpenAPI docs at /docs."""
    import os

    import uvicorn

    from critflow.registry.database import database_url, make_engine, upgrade

    url = database_url(database)
    upgrade(make_engine(url))
    os.environ["CRITFLOW_DATABASE_URL"] = url
    if key_file is not None:
        os.environ["CRITFLOW_REGISTRY_KEY"] = str(key_file)
    out.print(f"critflow registry on http://{host}:{port} (database {url}); API docs at /docs")
    uvicorn.run(
        "critflow.registry.app:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@db_app.command("upgrade")
def db_upgrade(database: Database = None) -> None:
    """Create or migrate the registry's tables (Alembic)."""
    from critflow.registry.database import database_url, make_engine, upgrade

    url = database_url(database)
    upgrade(make_engine(url))
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
    from critflow.registry.auth import create_key
    from critflow.registry.database import make_engine, session_factory, upgrade

    engine = make_engine(database)
    upgrade(engine)
    with session_factory(engine)() as session:
        key = create_key(session, organisation, audience, write, purpose)
    out.print(f"API key for {organisation} ({', '.join(audience)}{', write' if write else ''}):")
    print(key)
