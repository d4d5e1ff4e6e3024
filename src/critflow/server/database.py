"""Database connection and migrations: SQLite by default (WAL, foreign keys on), or PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit returns after the write-ahead log is
on disk, so an acknowledged write (and an acknowledged read's audit entry) survives a power loss
or an operating-system crash, not only a killed process (``NORMAL`` would lose the last
transactions then). The cost is one fsync per commit, which group commit of audit entries
(:mod:`critflow.server.audit`) shares between concurrent requests.

``CRITFLOW_DATABASE_URL`` or ``--database`` chooses the database; ``postgresql://…`` URLs use the
psycopg 3 driver. Alembic migrations run on start-up and with ``critflow db upgrade``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import sessionmaker

from critflow.errors import CritflowError

DEFAULT_URL = "sqlite:///critflow-registry.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str | None = None) -> str:
    """The database URL: the argument, ``CRITFLOW_DATABASE_URL``, or a SQLite file here."""
    url = url or os.environ.get("CRITFLOW_DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise CritflowError(
            "--database",
            f"'{url}' is neither a SQLite nor a PostgreSQL URL",
            "Use sqlite:///path/registry.db or postgresql://user@host:5432/dbname.",
        )
    return url


def _sqlite_pragmas(connection) -> None:
    cursor = connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "synchronous=FULL",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        event.listen(engine, "connect", lambda connection, _record: _sqlite_pragmas(connection))

        return engine
    # writes keep a ping per checkout: a write that failed on a dead connection could not
    # always be retried (was its commit received?); the group committer pings once per batch
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


IDLE_PING_SECONDS = 10.0
"""A pooled PostgreSQL connection unused for longer than this is pinged before it is handed out."""


def _ping_when_idle(engine: Engine) -> Engine:
    """Pessimistic disconnect handling without a round trip per request: a connection that sat
    in the pool for more than ``IDLE_PING_SECONDS`` (the server may have restarted or dropped
    it) is pinged before use and replaced when dead; a busy connection is not (``pool_pre_ping``
    costs one round trip on every checkout, 40 % of an anonymous read's time on PostgreSQL). A
    connection that dies while busy fails its statement once; SQLAlchemy then discards every
    older connection of the pool, and the single-statement reads retry once
    (:meth:`critflow.server.service.Registry._row_of`)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info["critflow_checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("critflow_checked_in")
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is closed") from exc

    return engine


def make_write_engine(engine: Engine) -> Engine:
    """The engine writes go through. On SQLite: its own connections that start every transaction
    with BEGIN IMMEDIATE (the write lock is taken at once, so concurrent writers queue instead of
    failing to upgrade a read lock); on PostgreSQL: the same engine."""
    if engine.url.get_backend_name() != "sqlite":
        return engine
    writer = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(writer, "connect")
    def _pragmas(connection, _record) -> None:
        connection.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        _sqlite_pragmas(connection)

    @event.listens_for(writer, "begin")
    def _immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    _plain_savepoints(writer)
    return writer


def _plain_savepoints(engine: Engine) -> None:
    """Emit SAVEPOINT, RELEASE and ROLLBACK TO on the driver's connection as plain text.

    SQLAlchemy compiles a savepoint clause afresh for each savepoint (its name changes, so no
    cache holds it): in a group commit, where every create or append runs in a savepoint of the
    shared transaction, that compiling was over a third of the committer's CPU per create in a profile. The statements
    are the ones SQLAlchemy would send (the name quoted by the dialect's own preparer);
    SQLAlchemy still keeps the savepoints' books."""
    dialect = engine.dialect
    quote = dialect.identifier_preparer.quote

    def run(connection, sql: str) -> None:
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    dialect.do_savepoint = lambda connection, name: run(connection, f"SAVEPOINT {quote(name)}")
    dialect.do_release_savepoint = lambda connection, name: run(
        connection, f"RELEASE SAVEPOINT {quote(name)}"
    )
    dialect.do_rollback_to_savepoint = lambda connection, name: run(
        connection, f"ROLLBACK TO SAVEPOINT {quote(name)}"
    )


def autocommit_reads(engine: Engine) -> Engine:
    """The engine single-statement reads go through. On PostgreSQL: connections of their own in
    autocommit mode, so a lone SELECT costs one round trip instead of BEGIN, SELECT and the
    pool's ROLLBACK (one statement sees one snapshot either way). On SQLite the engine itself
    (its driver opens no transaction for a SELECT)."""
    if engine.url.get_backend_name() == "sqlite":
        return engine
    return _ping_when_idle(
        create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20)
    )


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
