"""Migrations 0003 and 0004 create the monitor's tables exactly as the models declare them
(SQLite and PostgreSQL), and a registry database at 0002 upgrades to them."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

import critflow.server.monitor.models  # noqa: F401 (registers the monitor's tables)
from critflow.server.database import MIGRATIONS, make_engine, upgrade
from critflow.server.models import Base


def test_the_monitor_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    upgrade(engine)  # 0002 -> head
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert (
            connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0004"
        )
    engine.dispose()
    ours = [d for d in differences if "monitor_" in repr(d)]
    assert ours == []
