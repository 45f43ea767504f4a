"""Async engine and session factory for SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while the control worker writes; several processes share the file.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Finish a short DB transaction even if the caller is cancelled (an activity at worker shutdown):
    a connection abandoned mid-query is never returned to the pool or closed."""
    return await asyncio.shield(asyncio.ensure_future(coro))


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema through the Alembic migrations."""
    from core.db.migrate import upgrade

    await upgrade(engine)
