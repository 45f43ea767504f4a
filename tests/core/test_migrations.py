"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from core.db.migrate import upgrade
from core.db.models import Base
from core.db.session import make_engine


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second run is a no-op

        def diff(conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                         Base.metadata))

        def tables(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names())

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == [], "a model changed without a migration: gsf db revision"
            assert set(Base.metadata.tables) | {"alembic_version"} == await conn.run_sync(tables)
    finally:
        await engine.dispose()
