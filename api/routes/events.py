"""Server-Sent Events of the caller's server changes, for the web console's live tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter, Request
from sqlalchemy import or_, select

from api.deps import CurrentUser
from api.routes.servers import server_public
from core.contracts import ServerStatus
from core.db.models import GameServer
from core.db.session import SessionFactory
from core.settings import Settings
from core.sse import EventStream

router = APIRouter(prefix="/api/v1/events", tags=["events"])

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
# The browser reconnects after this long when the stream drops (EventSource's `retry`).
RETRY_MS = 2000

Snapshot = dict[str, tuple[str, datetime]]


def sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _snapshot(sessions: SessionFactory, owner_id: str | None, known: set[str]) -> Snapshot:
    """Status and update time of every live server of the owner (all owners for None), plus the
    ones already seen, so a server's last move (to `deleted`) is reported too."""
    live = GameServer.status != ServerStatus.DELETED.value
    query = select(GameServer.id, GameServer.status, GameServer.updated_at).where(
        or_(live, GameServer.id.in_(known)) if known else live)
    if owner_id is not None:
        query = query.where(GameServer.owner_id == owner_id)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return {row.id: (row.status, row.updated_at) for row in rows}


async def _changes(sessions: SessionFactory, settings: Settings,
                   owner_id: str | None) -> AsyncIterator[bytes]:
    seen = await _snapshot(sessions, owner_id, set())
    yield f"retry: {RETRY_MS}\n".encode() + sse("ready", "{}")
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while True:
        await asyncio.sleep(POLL_SECONDS)
        now = await _snapshot(sessions, owner_id, set(seen))
        changed = [sid for sid, mark in now.items() if seen.get(sid) != mark]
        if changed:
            async with sessions() as session:
                rows = (await session.scalars(select(GameServer).where(GameServer.id.in_(changed)))).all()
            for server in rows:
                yield sse("server", server_public(server, settings).model_dump_json())
            quiet_since = loop.time()
        # Deleted servers are reported once, then forgotten.
        seen = {sid: mark for sid, mark in now.items() if mark[0] != ServerStatus.DELETED.value}
        if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            quiet_since = loop.time()


@router.get("/servers", response_class=EventStream, status_code=200,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`ready` once, then `server` (ServerPublic JSON) per change"}})
async def server_events(request: Request, user: CurrentUser) -> EventStream:
    """Live changes of the caller's servers (admins: all) as Server-Sent Events."""
    owner_id = None if user.is_admin else user.id
    state = request.app.state
    return EventStream(_changes(state.sessions, state.settings, owner_id))
