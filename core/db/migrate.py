"""Schema migrations (Alembic) for SQLite and PostgreSQL: `gsf db upgrade`, and at every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`; a no-op when it is there already."""

    def run(sync_conn: Connection) -> None:
        command.upgrade(alembic_config(sync_conn), revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def revision(engine: AsyncEngine, message: str) -> None:
    """Autogenerate a migration from the models (for developers, after a model change)."""

    def run(sync_conn: Connection) -> None:
        command.revision(alembic_config(sync_conn), message=message, autogenerate=True)

    async with engine.begin() as conn:
        await conn.run_sync(run)
