"""Revision c19b0user0del (`users.deleted_at`) goes up and down on SQLite and PostgreSQL, keeping users."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection, inspect

from core.db.migrate import alembic_config, upgrade
from core.db.session import make_engine

REVISION = "c19b0user0del"
USERS = sa.table("users", sa.column("id", sa.String()), sa.column("email", sa.String()),
                 sa.column("name", sa.String()), sa.column("is_admin", sa.Boolean()),
                 sa.column("created_at", sa.DateTime(timezone=True)))


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("users")}


async def test_deleted_at_goes_up_and_down_and_users_stay(database_url: str) -> None:
    from core.db.migrations.versions.c19b0user0del_users_deleted_at import down_revision

    engine = make_engine(database_url)
    try:
        await upgrade(engine, down_revision)
        async with engine.begin() as conn:
            assert "deleted_at" not in await conn.run_sync(_columns)
            await conn.execute(USERS.insert().values(id="u1", email="kept@example.com", name="kept", is_admin=False,
                                                     created_at=datetime(2026, 1, 2, tzinfo=UTC)))
            # A row that references the user (ON DELETE CASCADE): a downgrade that rebuilt `users`
            # would delete it with its user's old row.
            await conn.execute(sa.text(
                "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at) "
                "VALUES ('k1', 'u1', 'kept', 'gsf_kept', 'hash', '[]', '2026-01-02')"))
        await upgrade(engine, REVISION)
        async with engine.begin() as conn:
            assert "deleted_at" in await conn.run_sync(_columns)
            row = (await conn.execute(sa.text("SELECT email, deleted_at FROM users WHERE id = 'u1'"))).one()
            assert tuple(row) == ("kept@example.com", None)

        def down(sync_conn: Connection) -> None:
            command.downgrade(alembic_config(sync_conn), down_revision)

        async with engine.begin() as conn:
            await conn.run_sync(down)
            assert "deleted_at" not in await conn.run_sync(_columns)
            assert (await conn.execute(sa.text("SELECT email FROM users"))).scalars().all() == ["kept@example.com"]
            assert (await conn.execute(sa.text("SELECT id FROM api_keys"))).scalars().all() == ["k1"]
        await upgrade(engine)
    finally:
        await engine.dispose()
