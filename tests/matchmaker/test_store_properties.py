"""Property tests: random operation sequences keep seats consistent, and both stores agree."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchmaker.errors import MatchmakerError
from matchmaker.models import (
    AllocateRequest,
    BatchHeartbeat,
    FleetMember,
    FleetSyncRequest,
    Heartbeat,
    HeartbeatRoom,
    ReleaseRequest,
    RoomFilter,
    RoomQuery,
    ServerRegistration,
)
from matchmaker.store import MemoryStore, RedisStore, Store

from .conftest import REDIS_URL, START

TTL = 6.0
HOLD = 15.0
ROOMS = [f"r{i}" for i in range(4)]

room_ids = st.sampled_from(ROOMS)
ops = st.one_of(
    st.tuples(st.just("register"), room_ids, st.integers(1, 5), st.sampled_from(["eu", "us"]),
              st.integers(1, 3)),
    st.tuples(st.just("beat"), room_ids, st.integers(0, 7), st.integers(0, 6), st.booleans(),
              st.booleans(), st.sampled_from(["ranked", "casual"]), st.booleans()),
    st.tuples(st.just("join"), room_ids),
    st.tuples(st.just("quick"), st.sampled_from([None, "eu", "us"]), st.booleans()),
    # Rooms (issue #22): a heartbeat listing rooms, picked among the known ones (by index into
    # the room list) or new ids, each with players, a status and maybe the player ids.
    st.tuples(st.just("rooms"), room_ids, st.integers(0, 3), st.sampled_from(["open", "failed", "absent"]),
              st.lists(st.tuples(st.integers(0, 7), st.integers(0, 4),
                                 st.sampled_from(["open", "open", "failed", "disposed"])), max_size=3),
              st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 5.0, 7.0, 16.0])),
    st.tuples(st.just("deregister"), room_ids),
    # Fleets (issues #10, #22): members, allocation of a server or of a room in it, release,
    # the platform's sync (stale or not) and retirement.
    st.tuples(st.just("member"), room_ids),
    st.tuples(st.just("allocate"), st.integers(0, 3), st.booleans(), st.booleans()),
    st.tuples(st.just("release"), room_ids, st.integers(0, 24), st.booleans()),
    st.tuples(st.just("fsync"), st.booleans(), st.booleans()),
    st.tuples(st.just("retire"), room_ids),
)


async def apply(store: Store, op: tuple[Any, ...], now: float, n: int, known: list[str]) -> str:
    """Run one operation; the outcome as text (the error slug, or what succeeded). `known`: the
    room ids listed before it."""
    try:
        match op:
            case ("register", sid, max_players, region, max_rooms):
                detail = await store.register(ServerRegistration(
                    server_id=sid, name=sid, game="g", owner_id="u", node_id="n",
                    ws_url="ws://h/ws", max_players=max_players, labels={"region": region},
                    max_rooms=max_rooms), now, TTL)
                return f"registered gen={detail.generation}"
            case ("beat", sid, players, max_players, locked, ready, mode, batched):
                fields = {"players": players, "max_players": max_players, "locked": locked,
                          "ready": ready, "metadata": {"mode": mode}}
                if batched:  # the same heartbeat through the batch path, next to another one
                    first, _ = await store.heartbeat_many("n", [
                        BatchHeartbeat(server_id=sid, **fields),
                        BatchHeartbeat(server_id="absent", players=0)], now, TTL)
                    if isinstance(first, MatchmakerError):
                        raise first
                    out = first
                else:
                    out = await store.heartbeat(sid, "n", Heartbeat(**fields), now, TTL)
                return f"beat listed={out.listed} reserved={out.reserved} free={out.free_seats}"
            case ("join", sid):
                room = await store.reserve(sid, f"p{n}", now, now + HOLD)
                return f"joined {room.server_id} free={room.free_seats}"
            case ("quick", region, create):
                flt = RoomFilter.parse("g", [("label.region", region)] if region else [])
                room = await store.quick_join(flt, f"p{n}", now, now + HOLD, new_room=f"rm-{n:016x}",
                                              options={"n": n}, create=create)
                return f"joined {room.room_id} free={room.free_seats}"
            case ("rooms", sid, players, first, picks, with_ids):
                entries = [] if first == "absent" else [HeartbeatRoom(room_id=sid, players=players, status=first)]
                for pick, count, status in picks:
                    rid = known[pick] if pick < len(known) else f"rm-new{pick}"
                    entries.append(HeartbeatRoom(
                        room_id=rid, players=count, status=status, reason="boom" if status == "failed" else "",
                        player_ids=[f"p{j}" for j in range(n)] if with_ids else None))
                out = await store.heartbeat(sid, "n", Heartbeat(players=players, rooms=entries), now, TTL)
                return f"beat listed={out.listed} reserved={out.reserved} free={out.free_seats}"
            case ("deregister", sid):
                return f"deregistered={await store.deregister(sid, 'n', now)}"
            case ("member", sid):
                await store.fleet_add("f", [sid])
                return "member"
            case ("allocate", players, in_rooms, exclusive):
                got = await store.allocate(AllocateRequest(
                    fleet_ids=["f"], allocation_id=f"a{n}", new_room=f"rm-{n:016x}" if in_rooms else "",
                    player_ids=[f"q{n}-{j}" for j in range(players)], until=now + HOLD, exclusive=exclusive,
                    options={"n": n}), now)
                return f"allocated {got.room.model_dump()}"
            case ("release", sid, k, retire):
                released = await store.release(ReleaseRequest(fleet_id="f", server_id=sid, allocation_id=f"a{k}",
                                                              retire=retire), now)
                return f"released {released.model_dump()}"
            case ("fsync", ready_when_empty, stale):
                slots = await store.fleet_sync("f", FleetSyncRequest(
                    members=[FleetMember(server_id=sid, stale=stale and sid == "r0") for sid in ROOMS],
                    ready_when_empty=ready_when_empty), now)
                return f"synced {slots.model_dump()}"
            case ("retire", sid):
                return f"retired {(await store.retire('f', [sid], now)).server_ids}"
    except MatchmakerError as exc:
        return exc.slug
    raise AssertionError(op)


async def snapshot(store: Store, now: float, rooms: bool = False) -> list[dict[str, Any]]:
    page = await store.list(RoomQuery(RoomFilter(), "created", 50, rooms=rooms), now)
    return [room.model_dump() for room in page.items]


def check_seats(rooms: list[dict[str, Any]]) -> None:
    for room in rooms:
        assert 0 <= room["players"] <= room["max_players"]
        assert room["reserved"] >= 0
        assert room["free_seats"] >= 0
        assert room["players"] + room["reserved"] + room["free_seats"] == room["max_players"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=25))
async def test_memory_and_redis_stores_behave_the_same(sequence: list[tuple[Any, ...]]) -> None:
    memory = MemoryStore()
    redis_store = RedisStore.from_url(REDIS_URL, f"gsf:mm:prop:{uuid.uuid4().hex[:12]}:")
    try:
        now = START
        for n, op in enumerate(sequence):
            if op[0] == "advance":
                now += op[1]
                continue
            # Distinct instants: reservations of the same instant tie, and a tie has no order.
            now += 0.001
            known = sorted(r["room_id"] for r in await snapshot(memory, now, rooms=True))
            got_memory = await apply(memory, op, now, n, known)
            got_redis = await apply(redis_store, op, now, n, known)
            assert got_memory == got_redis, (op, got_memory, got_redis)
            for rooms_too in (False, True):
                rooms = await snapshot(memory, now, rooms_too)
                check_seats(rooms)
                assert rooms == await snapshot(redis_store, now, rooms_too), (op, rooms_too)
        stats = [await s.stats(now) for s in (memory, redis_store)]
        assert stats[0] == stats[1]
    finally:
        await redis_store.delete_all()
        await redis_store.close()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["join", "beat", "advance"]), st.integers(0, 6)),
                max_size=40), st.integers(1, 6))
async def test_reserved_seats_never_exceed_the_room(steps: list[tuple[str, int]],
                                                    max_players: int) -> None:
    """Whatever joins, arrivals and lapses happen, granted seats fit: a model of the room."""
    store = MemoryStore()
    now = START
    await store.register(ServerRegistration(server_id="r", name="r", game="g", owner_id="u",
                                            node_id="n", ws_url="ws://h/ws",
                                            max_players=max_players), now, 1e9)
    await store.heartbeat("r", "n", Heartbeat(players=0), now, 1e9)
    players = 0
    holds: list[float] = []  # expiry of each granted seat not yet claimed
    for i, (kind, value) in enumerate(steps):
        now += 0.01
        holds = [t for t in holds if t > now]
        if kind == "join":
            try:
                await store.reserve("r", f"p{i}", now, now + HOLD)
                holds.append(now + HOLD)
            except MatchmakerError as exc:
                assert exc.slug == "room-full"  # noqa: PT017 (a refusal is one outcome among several)
                assert players + len(holds) >= max_players
        elif kind == "beat":
            # Up to `value` reserved players arrive; nobody leaves.
            arriving = min(value, len(holds))
            holds = holds[arriving:]
            players += arriving
            await store.heartbeat("r", "n", Heartbeat(players=players), now, 1e9)
        else:
            now += value * 3.0
            holds = [t for t in holds if t > now]
        assert players + len(holds) <= max_players
        room = (await snapshot(store, now))[0]
        assert room["reserved"] == len(holds)
        assert room["free_seats"] == max_players - players - len(holds)
