"""Property tests: random operation sequences keep seats consistent, and both stores agree."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchmaker.errors import MatchmakerError
from matchmaker.models import (
    BatchHeartbeat,
    Heartbeat,
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
    st.tuples(st.just("register"), room_ids, st.integers(1, 5), st.sampled_from(["eu", "us"])),
    st.tuples(st.just("beat"), room_ids, st.integers(0, 7), st.integers(0, 6), st.booleans(),
              st.booleans(), st.sampled_from(["ranked", "casual"]), st.booleans()),
    st.tuples(st.just("join"), room_ids),
    st.tuples(st.just("quick"), st.sampled_from([None, "eu", "us"])),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 5.0, 7.0, 16.0])),
    st.tuples(st.just("deregister"), room_ids),
)


async def apply(store: Store, op: tuple[Any, ...], now: float, n: int) -> str:
    """Run one operation; the outcome as text (the error slug, or what succeeded)."""
    try:
        match op:
            case ("register", sid, max_players, region):
                room = await store.register(ServerRegistration(
                    server_id=sid, name=sid, game="g", owner_id="u", node_id="n",
                    ws_url="ws://h/ws", max_players=max_players, labels={"region": region}),
                    now, TTL)
                return f"registered gen={room.generation}"
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
            case ("quick", region):
                flt = RoomFilter.parse("g", [("label.region", region)] if region else [])
                room = await store.quick_join(flt, f"p{n}", now, now + HOLD)
                return f"joined {room.server_id} free={room.free_seats}"
            case ("deregister", sid):
                return f"deregistered={await store.deregister(sid, 'n', now)}"
    except MatchmakerError as exc:
        return exc.slug
    raise AssertionError(op)


async def snapshot(store: Store, now: float) -> list[dict[str, Any]]:
    page = await store.list(RoomQuery(RoomFilter(), "created", 50), now)
    return [room.model_dump() for room in page.items]


def check_seats(rooms: list[dict[str, Any]]) -> None:
    for room in rooms:
        assert 0 <= room["players"] <= room["max_players"]
        assert room["reserved"] >= 0 and room["free_seats"] >= 0
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
            got_memory = await apply(memory, op, now, n)
            got_redis = await apply(redis_store, op, now, n)
            assert got_memory == got_redis, (op, got_memory, got_redis)
            rooms = await snapshot(memory, now)
            check_seats(rooms)
            assert rooms == await snapshot(redis_store, now)
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
                assert exc.slug == "room-full"
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
