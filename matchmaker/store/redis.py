"""The Redis room registry: rooms in Redis hashes and sorted sets, each seat-taking operation one
Lua script (`matchmaker/lua/`), events over pub/sub; several matchmakers can share it. How the
scripts' arguments and replies are encoded is `redis_codec.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from matchmaker import lua
from matchmaker.errors import (
    Forbidden,
    MatchmakerError,
    RoomFull,
    RoomLocked,
    RoomNotFound,
    StaleHeartbeat,
)
from matchmaker.models import (
    SLOT_STATES,
    Allocated,
    AllocateRequest,
    BatchHeartbeat,
    Cursor,
    FleetSlot,
    FleetSlots,
    FleetSyncRequest,
    Heartbeat,
    HeartbeatOutcome,
    NoReadyServer,
    Released,
    ReleaseRequest,
    Retired,
    RoomDetail,
    RoomFilter,
    RoomPage,
    RoomPublic,
    RoomQuery,
    ServerRegistration,
    StoreStats,
    compact_json,
    sort_key,
)
from matchmaker.store.base import SWEEP_BATCH, Store, Subscription, _nothing_to_join, room_fields
from matchmaker.store.redis_codec import (
    PubSubSubscription,
    as_received,
    filter_args,
    heartbeat_item,
    num,
    room_reply,
)


class RedisStore(Store):
    """A registry shared by several matchmaker replicas.

    Keys (prefix P): `P room:<id>` hash per server and its first room (labels as `l:<k>`,
    metadata as `m:<k>` fields for filtering, `spub` the unchanging part of its events as JSON),
    `P res:<room>` sorted set of seat reservations by expiry, `P exp` sorted set of servers by
    expiry, `P game:<game>` set of server ids, `P gen` generation counter, the other rooms
    (`P xr:<room>`, `P xrs:<server>`, `P pend`; see matchmaker.lua), and the pub/sub channel
    `P events`. Scripts build key names from the prefix, so this is for a single Redis (or a
    single hash slot), not Redis Cluster.
    """

    kind = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "gsf:mm:",
                 owns_client: bool = False) -> None:
        super().__init__()
        self.redis = client
        self.prefix = prefix
        self._owns_client = owns_client
        self._register = client.register_script(lua.REGISTER)
        self._heartbeat = client.register_script(lua.HEARTBEAT)
        self._heartbeat_many = client.register_script(lua.HEARTBEAT_MANY)
        self._deregister = client.register_script(lua.DEREGISTER)
        self._get = client.register_script(lua.GET)
        self._list = client.register_script(lua.LIST)
        self._reserve = client.register_script(lua.RESERVE)
        self._quick_join = client.register_script(lua.QUICK_JOIN)
        self._sweep = client.register_script(lua.SWEEP)
        self._stats = client.register_script(lua.STATS)
        self._fleet_add = client.register_script(lua.FLEET_ADD)
        self._allocate = client.register_script(lua.ALLOCATE)
        self._release = client.register_script(lua.RELEASE)
        self._retire = client.register_script(lua.RETIRE)
        self._fleet_sync = client.register_script(lua.FLEET_SYNC)
        self._fleet_drop = client.register_script(lua.FLEET_DROP)

    @classmethod
    def from_url(cls, url: str, prefix: str = "gsf:mm:", max_connections: int = 64) -> RedisStore:
        # A blocking pool: a burst of requests waits for a connection instead of failing with
        # "Too many connections"; the pub/sub feed holds one connection of it.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5.0, decode_responses=True)
        return cls(aioredis.Redis.from_pool(pool), prefix, owns_client=True)

    async def start(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()

    async def register(self, reg: ServerRegistration, now: float, ttl: float, takeover: bool = False) -> RoomDetail:
        labels = [x for k, v in reg.labels.items() for x in (k, v)]
        reply = await self._register(args=[
            self.prefix, reg.server_id, num(now), num(now + ttl), reg.name, reg.game,
            reg.owner_id, reg.node_id, reg.ws_url, reg.max_players,
            compact_json(reg.labels), reg.max_rooms, len(reg.labels), *labels, "1" if takeover else "0",
        ])
        if reply == "fb":
            raise Forbidden(f"server {reg.server_id!r} is registered by another node")
        gen, expired = reply
        self.expired_total += int(expired)
        return RoomDetail(**room_fields(
            room_id=reg.server_id, server_id=reg.server_id, name=reg.name, game=reg.game,
            owner_id=reg.owner_id, node_id=reg.node_id, ws_url=reg.ws_url, labels=reg.labels,
            metadata={}, players=0, max_players=reg.max_players, reserved=0, locked=False,
            ready=False, generation=int(gen), created_at=float(num(now)), heartbeat_at=None,
            options={}, status="open"))

    def _heartbeat_outcome(self, server_id: str, reply: str) -> HeartbeatOutcome | MatchmakerError:
        """What one reply of the Lua `heartbeat` means: the outcome, or the refusal (raised for
        a single heartbeat, reported in its place in a batch)."""
        if reply[:3] == "ok,":
            _, gen, ready, reserved, free, lag = reply.split(",")
            return HeartbeatOutcome(server_id, int(gen), ready == "1", int(reserved), int(free),
                                    float(lag) if lag else None)
        fields = reply.split(",")
        status = fields[0]
        if status == "fb":
            return Forbidden(f"server {server_id!r} belongs to another node")
        if status == "stale":
            return StaleHeartbeat(f"heartbeat is older than generation {fields[1]}", int(fields[1]))
        self.expired_total += int(fields[1])
        return RoomNotFound(f"no room {server_id!r}; register it again")

    async def heartbeat(self, server_id: str, node_id: str, beat: Heartbeat, now: float,
                        ttl: float) -> HeartbeatOutcome:
        args = [self.prefix, node_id, num(now), num(now + ttl)]
        reply = await self._heartbeat(args=[*args, orjson.dumps(heartbeat_item(server_id, beat))])
        if reply == "meta":
            reply = await self._heartbeat(args=[
                *args, orjson.dumps(heartbeat_item(server_id, beat, meta_fields=True))])
        out = self._heartbeat_outcome(server_id, reply)
        if isinstance(out, MatchmakerError):
            raise out
        return out

    async def heartbeat_many(self, node_id: str, beats: Sequence[BatchHeartbeat], now: float,
                             ttl: float) -> list[HeartbeatOutcome | MatchmakerError]:
        if not beats:
            return []
        args = [self.prefix, node_id, num(now), num(now + ttl)]
        items = orjson.dumps([heartbeat_item(b.server_id, b) for b in beats])
        replies = (await self._heartbeat_many(args=[*args, items])).split(";")
        # Those whose metadata changed go again, in order, with their filter fields.
        again = [i for i, reply in enumerate(replies) if reply == "meta"]
        if again:
            items = orjson.dumps([heartbeat_item(beats[i].server_id, beats[i], meta_fields=True)
                                  for i in again])
            for i, reply in zip(again, (await self._heartbeat_many(args=[*args, items])).split(";"),
                                strict=True):
                replies[i] = reply
        return [self._heartbeat_outcome(b.server_id, reply)
                for b, reply in zip(beats, replies, strict=True)]

    async def deregister(self, server_id: str, node_id: str, now: float) -> bool:
        reply = await self._deregister(args=[self.prefix, server_id, node_id, num(now)])
        if reply == "fb":
            raise Forbidden(f"server {server_id!r} belongs to another node")
        if reply == "expired":
            self.expired_total += 1
        return bool(reply == "ok")

    async def get(self, room_id: str, now: float) -> RoomDetail:
        reply = await self._get(args=[self.prefix, room_id, num(now)])
        if reply[0] != "ok":
            self.expired_total += int(reply[1])
            raise RoomNotFound(f"no room {room_id!r}")
        room = room_reply(reply[1], reply[2], reply[3], detail=True)
        assert isinstance(room, RoomDetail)
        return room

    async def list(self, query: RoomQuery, now: float) -> RoomPage:
        flt = query.filter
        cursor = query.cursor
        reply = await self._list(args=[
            self.prefix, flt.game or "", num(now),
            "" if flt.free is None else int(flt.free),
            "players" if query.sort.endswith("players") else "created",
            int(query.sort.startswith("-")), query.limit,
            int(cursor is not None), num(cursor.key) if cursor else "0",
            cursor.server_id if cursor else "", int(query.rooms), *filter_args(flt),
        ])
        has_more = reply[0] == "1"
        items = [room_reply(reserved, h, x) for reserved, h, x in reply[1:]]
        next_cursor = None
        if has_more and items:
            last = items[-1]
            next_cursor = Cursor(query.sort, sort_key(query.sort, last.players, last.created_at),
                                 last.room_id).encode()
        return RoomPage(items, next_cursor)

    async def reserve(self, room_id: str, player_id: str, now: float, until: float) -> RoomPublic:
        reply = await self._reserve(args=[self.prefix, room_id, player_id, num(now),
                                          num(until)])
        status = reply[0]
        if status == "ok":
            return room_reply(reply[1], reply[2], reply[3])
        if status == "locked":
            raise RoomLocked(f"room {room_id!r} is locked")
        if status == "full":
            raise RoomFull(f"room {room_id!r} has no free seat")
        self.expired_total += int(reply[1])
        raise RoomNotFound(f"no room {room_id!r}")

    async def quick_join(self, flt: RoomFilter, player_id: str, now: float, until: float, *,
                         new_room: str = "", options: dict[str, Any] | None = None,
                         create: bool = False) -> RoomPublic:
        reply = await self._quick_join(args=[
            self.prefix, flt.game or "", player_id, num(now), num(until), new_room,
            compact_json(options) if options else "{}", int(create), *filter_args(flt)])
        if reply[0] != "ok":
            raise _nothing_to_join(flt, reply[1] == "1", create)
        return room_reply(reply[1], reply[2], reply[3])

    async def fleet_add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        if server_ids:
            await self._fleet_add(args=[self.prefix, fleet_id, *server_ids])

    async def allocate(self, req: AllocateRequest, now: float) -> Allocated:
        filters = [x for k, v in req.labels.items() for x in ("l:" + k, v)]
        reply = await self._allocate(args=[
            self.prefix, num(now), num(req.until), req.allocation_id, "1" if req.exclusive else "0",
            len(req.player_ids), *req.player_ids, len(req.fleet_ids), *req.fleet_ids,
            len(filters) // 2, *filters, req.new_room, compact_json(req.options) if req.options else "{}"])
        if reply[0] != "ok":
            raise NoReadyServer(f"no ready server in fleets {', '.join(req.fleet_ids)} matches")
        return Allocated(fleet_id=reply[1], room=room_reply(reply[2], reply[3], reply[4]))

    async def release(self, req: ReleaseRequest, now: float) -> Released:
        reply = await self._release(args=[self.prefix, req.fleet_id, req.server_id, req.allocation_id,
                                          "x" if req.retire else "r"])
        if reply == "ok":
            return Released(released=True, state="retiring" if req.retire else "ready")
        if reply.startswith("room:"):  # a room's allocation in a member hosting rooms
            return Released(released=True, state=SLOT_STATES[reply[5:]])
        return Released(released=False, state=SLOT_STATES.get(reply))

    async def fleet_sync(self, fleet_id: str, req: FleetSyncRequest, now: float) -> FleetSlots:
        members = [x for m in req.members
                   for x in (m.server_id, "1" if m.stale else "0", m.allocation_id, num(m.hold_until))]
        reply = await self._fleet_sync(args=[self.prefix, fleet_id, num(now),
                                             "r" if req.ready_when_empty else "x",
                                             len(req.members), *members])
        return FleetSlots(slots=[
            FleetSlot(server_id=sid, state=SLOT_STATES[c], listed=listed == "1", players=int(players),
                      reserved=int(reserved), allocation_id=aid, max_rooms=int(max_rooms), rooms=int(rooms),
                      allocations=allocs.split(",") if allocs else [])
            for sid, c, listed, players, reserved, aid, max_rooms, rooms, allocs in reply])

    async def retire(self, fleet_id: str, server_ids: Sequence[str], now: float = 0.0) -> Retired:
        if not server_ids:
            return Retired(server_ids=[])
        return Retired(server_ids=list(await self._retire(args=[self.prefix, fleet_id, num(now), *server_ids])))

    async def fleet_drop(self, fleet_id: str) -> int:
        return int(await self._fleet_drop(args=[self.prefix, fleet_id]))

    async def sweep(self, now: float) -> int:
        total = 0
        # Bounded: each pass removes up to SWEEP_BATCH; stop after a short pass or 100 passes.
        for _ in range(100):
            removed = int(await self._sweep(args=[self.prefix, num(now), SWEEP_BATCH]))
            total += removed
            if removed < SWEEP_BATCH:
                break
        self.expired_total += total
        return total

    async def stats(self, now: float) -> StoreStats:
        reply = await self._stats(args=[self.prefix, num(now)])
        registered, listed, players, reserved, free = (int(x) for x in reply)
        return StoreStats(registered, listed, players, reserved, free)

    async def subscribe(self) -> Subscription:
        pubsub = self.redis.pubsub(push_handler_func=as_received)
        await pubsub.subscribe(self.prefix + "events")
        return PubSubSubscription(pubsub)

    async def delete_all(self) -> int:
        """Remove every key under the prefix (tests and benchmarks)."""
        deleted = 0
        async for key in self.redis.scan_iter(match=self.prefix + "*", count=1000):
            deleted += int(await self.redis.delete(key))
        return deleted

