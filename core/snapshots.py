"""Where the snapshots of durable rooms are kept (issue #25): the platform database (the default) or
Redis (`GSF_SNAPSHOT_STORE=redis`), behind one small interface the API's agent endpoints and the
drain activities use.

Both keep the same contract: one entry per room, replaced only by a higher `seq` of the same server;
a room that ended is forgotten; sealing hands a server's entries to another server, after which the
old server can neither replace nor delete them. Who may read or write which server is the API's
business (placement lives in the database), never the store's.

Redis keys (prefix `GSF_SNAPSHOT_REDIS_PREFIX`, default `gsf:snap:`):

- `<prefix>room:<room id>`: a hash (server, seq, instance, version, bytes, taken_at, stored_at,
  snapshot), one per room;
- `<prefix>server:<server id>`: a sorted set of the server's room ids, scored by when each room's
  expiry was last pushed back (epoch ms). It is the only way to a server's rooms: no KEYS or SCAN.

Every change is one Lua script (atomic: the seq guard and the index move together). TTL policy:
the room a write stores, and its server's index, expire `GSF_SNAPSHOT_REDIS_TTL_SECONDS` after it
(default 7 days); each write also pushes back the expiry of up to 64 of the server's other rooms
whose expiry was last pushed back over half the TTL ago. So an idle room of a server that writes at
least once every half TTL never expires, and the snapshots of a server that stores nothing for half
the TTL or more (stopped, or every durable room of it unchanged that long) go within the TTL.
Deleting a server drops what it still holds in either store at once (`drop`, run by its workflow);
the database store's rows also go with their server's row (`ON DELETE CASCADE`). Sealing and
moving keep the entries a full TTL again. One Redis instance, not a cluster: a script reaches keys it
finds in the index.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import RoomSnapshot
from core.errors import Unavailable
from core.settings import Settings

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One room's snapshot as the agent sent it; `text` is the runtime's JSON, never parsed here."""

    room_id: str
    server_id: str
    seq: int
    instance: str
    version: str  # the server's source sha256
    taken_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class Written:
    stored: int
    deleted: int


class SnapshotStore(Protocol):
    """The store of durable-room snapshots. `room_ids` empty means every room of the server."""

    async def write(self, snapshots: Sequence[Snapshot], ended: Sequence[tuple[str, str]]) -> Written:
        """Store snapshots (one per room: `newest_per_room`) unless a higher or equal seq, or another
        server's entry, is there; then forget the ended rooms, (server id, room id), of their server."""
        ...

    async def texts(self, server_id: str, into: str = "") -> list[str]:
        """The server's snapshot texts by room id; `into`: hand them to that server in the same step."""
        ...

    async def rooms(self, server_id: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        """Room id -> seq of the server's stored rooms, by room id."""
        ...

    async def newest(self, server_id: str, room_ids: Sequence[str] = ()) -> datetime | None:
        """When the last of these rooms' snapshots was stored (UTC); None when there is none."""
        ...

    async def seal(self, server_id: str, into: str, version: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        """Hand the rooms to `into` (of game version `version`); room id -> seq of those handed over."""
        ...

    async def drop(self, server_id: str) -> int:
        """Forget every room the server still holds (it was deleted): how many. Rooms it handed over
        (sealed for another server) are the other server's and stay."""
        ...

    async def aclose(self) -> None: ...


def newest_per_room(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """The highest seq of each room in one batch (an agent may send a room twice)."""
    newest: dict[str, Snapshot] = {}
    for snap in snapshots:
        if snap.room_id not in newest or newest[snap.room_id].seq < snap.seq:
            newest[snap.room_id] = snap
    return list(newest.values())


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time the platform stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _upsert(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite both have it)."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


class DatabaseSnapshotStore:
    """`room_snapshots` rows in the platform database; each call is one transaction of its own."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    @classmethod
    def of_session(cls, session: AsyncSession) -> DatabaseSnapshotStore:
        """A store on a session its caller owns (a request's): committed, never closed, here."""

        @contextlib.asynccontextmanager
        async def borrowed() -> AsyncIterator[AsyncSession]:
            yield session

        return cls(borrowed)

    async def write(self, snapshots: Sequence[Snapshot], ended: Sequence[tuple[str, str]]) -> Written:
        stored = deleted = 0
        async with self.sessions() as session:
            if snapshots:
                table = RoomSnapshot.__table__
                now = datetime.now(UTC)
                rows = [{"room_id": s.room_id, "server_id": s.server_id, "seq": s.seq, "instance": s.instance,
                         "version": s.version, "bytes": len(s.text), "taken_at": s.taken_at, "stored_at": now,
                         "snapshot": s.text} for s in snapshots]
                stmt = _upsert(session.get_bind().dialect.name)(table).values(rows)
                # A late or repeated upload never replaces a newer snapshot, nor another server's room.
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.room_id],
                    set_={k: stmt.excluded[k] for k in ("seq", "instance", "version", "bytes", "taken_at",
                                                         "stored_at", "snapshot")},
                    where=(table.c.seq < stmt.excluded.seq) & (table.c.server_id == stmt.excluded.server_id))
                result = await session.execute(stmt)
                stored = max(0, int(getattr(result, "rowcount", 0) or 0))
            for server_id, room_id in ended:
                result = await session.execute(delete(RoomSnapshot).where(
                    RoomSnapshot.server_id == server_id, RoomSnapshot.room_id == room_id))
                deleted += max(0, int(getattr(result, "rowcount", 0) or 0))
            await session.commit()
        return Written(stored=stored, deleted=deleted)

    async def texts(self, server_id: str, into: str = "") -> list[str]:
        async with self.sessions() as session:
            texts = list((await session.scalars(select(RoomSnapshot.snapshot).where(
                RoomSnapshot.server_id == server_id).order_by(RoomSnapshot.room_id))).all())
            if into and into != server_id and texts:
                await session.execute(update(RoomSnapshot).where(RoomSnapshot.server_id == server_id)
                                      .values(server_id=into))
                await session.commit()
        return texts

    @staticmethod
    def _where(server_id: str, room_ids: Sequence[str]) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [RoomSnapshot.server_id == server_id]
        if room_ids:
            where.append(RoomSnapshot.room_id.in_(room_ids))
        return where

    async def rooms(self, server_id: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (await session.execute(select(RoomSnapshot.room_id, RoomSnapshot.seq).where(
                *self._where(server_id, room_ids)).order_by(RoomSnapshot.room_id))).all()
        return {row.room_id: int(row.seq) for row in rows}

    async def newest(self, server_id: str, room_ids: Sequence[str] = ()) -> datetime | None:
        async with self.sessions() as session:
            found = await session.scalar(select(func.max(RoomSnapshot.stored_at)).where(
                *self._where(server_id, room_ids)))
        return None if found is None else _utc(found)

    async def seal(self, server_id: str, into: str, version: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        async with self.sessions() as session:
            where = self._where(server_id, room_ids)
            rows = (await session.execute(select(RoomSnapshot.room_id, RoomSnapshot.seq).where(*where))).all()
            await session.execute(update(RoomSnapshot).where(*where).values(server_id=into, version=version))
            await session.commit()
        return {row.room_id: int(row.seq) for row in rows}

    async def drop(self, server_id: str) -> int:
        async with self.sessions() as session:
            result = await session.execute(delete(RoomSnapshot).where(RoomSnapshot.server_id == server_id))
            await session.commit()
        return max(0, int(getattr(result, "rowcount", 0) or 0))

    async def aclose(self) -> None:
        return None


# --- Redis ---------------------------------------------------------------------------------------
# Shared by the scripts: ARGV[1] prefix, ARGV[2] TTL (ms), ARGV[3] now (epoch ms). A seq is compared
# as a decimal string (length, then text): exact beyond the 2^53 of Lua's numbers.
_COMMON = """
local prefix, ttl, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local function index_of(server) return prefix .. 'server:' .. server end
local function key_of(room) return prefix .. 'room:' .. room end
"""

# ARGV[4] snapshots, ARGV[5] ended; then 8 per snapshot (room, server, seq, instance, version,
# bytes, taken_at, text), then 2 per ended room (server, room). Returns {stored, deleted}.
_WRITE = _COMMON + """
local n, m = tonumber(ARGV[4]), tonumber(ARGV[5])
local stored, deleted, servers = 0, 0, {}
for i = 0, n - 1 do
  local a = 6 + i * 8
  local room, server, seq = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local key = key_of(room)
  local cur = redis.call('HMGET', key, 'server', 'seq')
  if not cur[1] or (cur[1] == server and newer(seq, cur[2])) then
    redis.call('HSET', key, 'server', server, 'seq', seq, 'instance', ARGV[a + 3], 'version', ARGV[a + 4],
               'bytes', ARGV[a + 5], 'taken_at', ARGV[a + 6], 'stored_at', now, 'snapshot', ARGV[a + 7])
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZADD', index_of(server), now, room)
    servers[server] = true
    stored = stored + 1
  end
end
-- The writing servers' rooms whose expiry was pushed back longest ago (over half the TTL): again.
for server in pairs(servers) do
  local index = index_of(server)
  for _, room in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now - math.floor(ttl / 2), 'LIMIT', 0, 64)) do
    if redis.call('HGET', key_of(room), 'server') == server then
      redis.call('PEXPIRE', key_of(room), ttl)
      redis.call('ZADD', index, now, room)
    else
      redis.call('ZREM', index, room)
    end
  end
  redis.call('PEXPIRE', index, ttl)
end
local base = 6 + n * 8
for i = 0, m - 1 do
  local server, room = ARGV[base + i * 2], ARGV[base + i * 2 + 1]
  if redis.call('HGET', key_of(room), 'server') == server then
    redis.call('DEL', key_of(room))
    deleted = deleted + 1
  end
  redis.call('ZREM', index_of(server), room)
end
return {stored, deleted}
"""

# ARGV[4] server, ARGV[5] what ('list', 'texts', 'move', 'drop'), ARGV[6] into, ARGV[7] version ('' keeps
# it), ARGV[8..] the rooms (none: every room in the server's index). Returns room, seq, stored_at
# and, unless 'list' or 'drop', the snapshot text, for each of the server's rooms; 'move' hands them
# to `into`, 'drop' deletes them and the server's index.
_TAKE = _COMMON + """
local server, what, into, version = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local index = index_of(server)
local rooms = {}
if #ARGV > 7 then
  for i = 8, #ARGV do rooms[#rooms + 1] = ARGV[i] end
else
  rooms = redis.call('ZRANGE', index, 0, -1)
end
local out = {}
for _, room in ipairs(rooms) do
  local key = key_of(room)
  local cur = redis.call('HMGET', key, 'server', 'seq', 'stored_at')
  if cur[1] == server then
    out[#out + 1] = room
    out[#out + 1] = cur[2]
    out[#out + 1] = cur[3]
    if what ~= 'list' and what ~= 'drop' then out[#out + 1] = redis.call('HGET', key, 'snapshot') end
    if what == 'drop' then
      redis.call('DEL', key)
    elseif what == 'move' then
      redis.call('HSET', key, 'server', into)
      if version ~= '' then redis.call('HSET', key, 'version', version) end
      redis.call('PEXPIRE', key, ttl)
      redis.call('ZREM', index, room)
      redis.call('ZADD', index_of(into), now, room)
      redis.call('PEXPIRE', index_of(into), ttl)
    end
  else
    redis.call('ZREM', index, room)  -- expired, ended or moved: not this server's any more
  end
end
if what == 'drop' then redis.call('DEL', index) end
return out
"""


@dataclass(frozen=True, slots=True)
class _Entry:
    room_id: str
    seq: int
    stored_at: float  # epoch ms
    text: str


class RedisSnapshotStore:
    """One hash per room and a sorted-set index per server in Redis (see the module docstring)."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._write = redis.register_script(_WRITE)
        self._take = redis.register_script(_TAKE)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisSnapshotStore:
        redis = Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
        return cls(redis, settings.snapshot_redis_prefix, settings.snapshot_redis_ttl_seconds)

    def _common(self) -> list[str | int]:
        return [self.prefix, self.ttl_ms, int(time.time() * 1000)]

    async def _run(self, script: Any, args: list[str | int]) -> Any:
        try:
            return await script(keys=[], args=args)
        except RedisError as exc:
            raise Unavailable(f"the snapshot store (Redis) failed: {type(exc).__name__}") from None

    async def write(self, snapshots: Sequence[Snapshot], ended: Sequence[tuple[str, str]]) -> Written:
        if not snapshots and not ended:
            return Written(stored=0, deleted=0)
        args: list[str | int] = [*self._common(), len(snapshots), len(ended)]
        for s in snapshots:
            args += [s.room_id, s.server_id, str(s.seq), s.instance, s.version, len(s.text), s.taken_at.isoformat(),
                     s.text]
        for server_id, room_id in ended:
            args += [server_id, room_id]
        stored, deleted = await self._run(self._write, args)
        return Written(stored=int(stored), deleted=int(deleted))

    async def _take_entries(self, server_id: str, what: str, room_ids: Sequence[str] = (), into: str = "",
                            version: str = "") -> list[_Entry]:
        flat = await self._run(self._take, [*self._common(), server_id, what, into, version, *room_ids])
        width = 3 if what in ("list", "drop") else 4
        entries = [_Entry(room_id=flat[i], seq=int(flat[i + 1]), stored_at=float(flat[i + 2]),
                          text=flat[i + 3] if width == 4 else "") for i in range(0, len(flat), width)]
        return sorted(entries, key=lambda e: e.room_id)

    async def texts(self, server_id: str, into: str = "") -> list[str]:
        moving = bool(into) and into != server_id
        entries = await self._take_entries(server_id, "move" if moving else "texts", into=into if moving else "")
        return [e.text for e in entries]

    async def rooms(self, server_id: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        return {e.room_id: e.seq for e in await self._take_entries(server_id, "list", room_ids)}

    async def newest(self, server_id: str, room_ids: Sequence[str] = ()) -> datetime | None:
        entries = await self._take_entries(server_id, "list", room_ids)
        return datetime.fromtimestamp(max(e.stored_at for e in entries) / 1000, UTC) if entries else None

    async def seal(self, server_id: str, into: str, version: str, room_ids: Sequence[str] = ()) -> dict[str, int]:
        entries = await self._take_entries(server_id, "move", room_ids, into=into, version=version)
        return {e.room_id: e.seq for e in entries}

    async def drop(self, server_id: str) -> int:
        return len(await self._take_entries(server_id, "drop"))

    async def aclose(self) -> None:
        await self.redis.aclose()


def snapshot_store(settings: Settings, sessions: Sessions) -> SnapshotStore:
    """The store `GSF_SNAPSHOT_STORE` names; `sessions` serve the database one. Close it after use."""
    if settings.snapshot_store == "redis":
        return RedisSnapshotStore.from_settings(settings)
    return DatabaseSnapshotStore(sessions)


@contextlib.asynccontextmanager
async def open_snapshot_store(settings: Settings, sessions: Sessions) -> AsyncIterator[SnapshotStore]:
    """`snapshot_store` for one piece of work (a drain activity), closed after it."""
    store = snapshot_store(settings, sessions)
    try:
        yield store
    finally:
        await store.aclose()
