"""The stores of durable-room snapshots (issue #25, core/snapshots.py), each behind the API's agent
endpoints and the drain activities: one entry per room that only a higher seq replaces, answered to a
node only for the servers placed on it, a room that ended forgotten, sealing that locks the old server
out. Each runs on the platform database (SQLite; PostgreSQL too in the PostgreSQL pass,
GSF_TEST_DATABASE: marked `postgres`) and on the real Redis at 127.0.0.1:6379 under key prefixes of its
own, dropped after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.drain import DrainActivities
from core.contracts import DrainPlanInput, DropSnapshotsInput, SealSnapshotsInput
from core.db.models import RoomSnapshot
from core.errors import Unavailable
from core.settings import Settings
from core.snapshots import RedisSnapshotStore, Snapshot, SnapshotStore, open_snapshot_store
from tests.api.test_agent_api import deploy, node_client, place
from tests.conftest import unique
from tests.durable.game import (
    back_as_acknowledged,
    both_back,
    finish,
    play_opening,
    running_game,
    two_players,
    write_game,
)
from tests.harness import Harness, platform
from tests.problems import assert_problem
from workflows.deployments import Deployments

pytestmark = [pytest.mark.temporal]

REDIS_URL = "redis://127.0.0.1:6379/0"


async def with_redis(settings: Settings) -> Settings:
    """`settings` with the Redis snapshot store, the snapshots and the matchmaker (which uses
    `GSF_REDIS_URL` too) under key prefixes of this test's own."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        pytest.fail(f"Redis on 127.0.0.1:6379 does not answer ({exc}); start it "
                    "(`redis-server --daemonize yes`) and run the tests again", pytrace=False)
    finally:
        await client.aclose()
    run = uuid.uuid4().hex[:12]
    return settings.model_copy(update={"snapshot_store": "redis", "redis_url": REDIS_URL,
                                       "snapshot_redis_prefix": f"gsf:snap:test:{run}:",
                                       "matchmaker_redis_prefix": f"gsf:mm:test:{run}:"})


async def drop_keys(settings: Settings) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        for prefix in (settings.snapshot_redis_prefix, settings.matchmaker_redis_prefix):
            async for key in client.scan_iter(match=prefix + "*", count=1000):
                await client.delete(key)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def platform_on(kind: str, settings: Settings, temporal_env: Any, agent: bool) -> AsyncIterator[Harness]:
    if kind == "redis":
        settings = await with_redis(settings)
    try:
        async with platform(settings, temporal_env.client, agent=agent) as harness:
            yield harness
    finally:
        if kind == "redis":
            await drop_keys(settings)


@pytest.fixture(params=["database", "redis"])
async def h(request: pytest.FixtureRequest, settings: Settings, temporal_env: Any) -> AsyncIterator[Harness]:
    async with platform_on(str(request.param), settings, temporal_env, agent=False) as harness:
        yield harness


@pytest.fixture
async def store(h: Harness) -> AsyncIterator[SnapshotStore]:
    """The store the API of `h` uses, seen from outside (as the control worker sees it)."""
    async with open_snapshot_store(h.settings, h.sessions) as s:
        yield s


def snap(server_id: str, room_id: str, seq: int, **body: Any) -> dict[str, Any]:
    text = json.dumps({"room_id": room_id, "server_id": server_id, "seq": seq, "body": {"state": body}})
    return {"server_id": server_id, "room_id": room_id, "seq": seq, "instance": "i1",
            "taken_at": datetime.now(UTC).isoformat(), "text": text}


def entry(server_id: str, room_id: str, seq: int) -> Snapshot:
    text = json.dumps({"room_id": room_id, "server_id": server_id, "seq": seq})
    return Snapshot(room_id=room_id, server_id=server_id, seq=seq, instance="i1", version="v" * 64,
                    taken_at=datetime.now(UTC), text=text)


async def stored_row(h: Harness, room_id: str) -> dict[str, Any]:
    """What the store holds of a room besides its text (server, version, bytes)."""
    if h.settings.snapshot_store == "redis":
        client = aioredis.Redis.from_url(h.settings.redis_url, decode_responses=True)
        try:
            raw = await client.hgetall(f"{h.settings.snapshot_redis_prefix}room:{room_id}")
        finally:
            await client.aclose()
        return {"server_id": raw["server"], "version": raw["version"], "bytes": int(raw["bytes"])}
    async with h.sessions() as s:
        row = await s.get(RoomSnapshot, room_id)
        assert row is not None
        return {"server_id": row.server_id, "version": row.version, "bytes": row.bytes}


@pytest.mark.postgres  # tests/durable/ is SQLite-only otherwise; the upsert differs per dialect
async def test_snapshots_are_versioned_per_room_and_only_for_the_node_of_their_server(
        h: Harness, store: SnapshotStore) -> None:
    a, b = unique("node-a"), unique("node-b")
    sid = await deploy(h)
    await place(h, sid, a)
    async with await node_client(h, a) as node_a, await node_client(h, b) as node_b:
        r = await node_a.post("/api/v1/agent/snapshots", json={"snapshots": [
            snap(sid, sid, 2, moves=2), snap(sid, "rm-1", 1, n=1), snap(sid, sid, 1, moves=1)]})
        assert r.status_code == 200, r.text
        assert r.json() == {"stored": 2, "stale": 0, "deleted": 0}
        # A late (lower or equal seq) upload never replaces the newer one.
        r = await node_a.post("/api/v1/agent/snapshots", json={"snapshots": [snap(sid, sid, 2, moves=0)]})
        assert r.json()["stale"] == 1
        r = await node_a.post("/api/v1/agent/snapshots", json={"snapshots": [snap(sid, sid, 3, moves=3)]})
        assert r.json()["stored"] == 1

        loaded = await node_a.get(f"/api/v1/agent/snapshots/{sid}")
        assert loaded.status_code == 200
        by_room = {s["room_id"]: s for s in loaded.json()["snapshots"]}
        assert by_room[sid]["seq"] == 3
        assert by_room[sid]["body"]["state"] == {"moves": 3}
        assert by_room["rm-1"]["body"]["state"] == {"n": 1}
        row = await stored_row(h, sid)
        assert row["server_id"] == sid
        assert len(row["version"]) == 64
        assert row["bytes"] > 0

        # Another node neither reads nor writes them.
        assert_problem(await node_b.get(f"/api/v1/agent/snapshots/{sid}"), 404)
        assert_problem(await node_b.post("/api/v1/agent/snapshots", json={"snapshots": [snap(sid, sid, 9)]}), 403)

        # A room that ended is forgotten.
        r = await node_a.post("/api/v1/agent/snapshots", json={"ended": [{"server_id": sid, "room_id": "rm-1"}]})
        assert r.json()["deleted"] == 1
        assert await store.rooms(sid) == {sid: 3}

        too_big = snap(sid, sid, 10)
        too_big["text"] = "x" * (384 * 1024 + 1)
        assert_problem(await node_a.post("/api/v1/agent/snapshots", json={"snapshots": [too_big]}), 422)
        beyond_bigint = snap(sid, sid, 2**63)
        assert_problem(await node_a.post("/api/v1/agent/snapshots", json={"snapshots": [beyond_bigint]}), 422)


@pytest.mark.postgres  # tests/durable/ is SQLite-only otherwise; the upsert differs per dialect
async def test_a_seal_hands_the_rooms_over_and_locks_the_old_server_out(h: Harness, store: SnapshotStore) -> None:
    old, new = await deploy(h), await deploy(h)
    node = unique("node")
    await place(h, old, node)
    await place(h, new, node)
    assert (await store.write([entry(old, f"{old}-a", 5), entry(old, f"{old}-b", 2)], [])).stored == 2
    before = await store.newest(old)
    assert before is not None
    assert abs((datetime.now(UTC) - before).total_seconds()) < 5

    drain = DrainActivities(h.sessions, Deployments(h.client, h.settings), h.settings)
    plan = await ActivityEnvironment().run(drain.drain_plan, DrainPlanInput(server_id=old))
    assert plan.room_ids == [f"{old}-a", f"{old}-b"]
    sealed = await ActivityEnvironment().run(drain.seal_snapshots, SealSnapshotsInput(
        server_id=old, into=new, room_ids=[f"{old}-a"], settle_ms=0))
    assert sealed.rooms == {f"{old}-a": 5}
    assert sealed.settled
    assert await store.rooms(old) == {f"{old}-b": 2}
    assert await store.rooms(new) == {f"{old}-a": 5}
    version = (await stored_row(h, f"{old}-a"))["version"]
    assert len(version) == 64
    assert version != "v" * 64  # the target's source hash, not the one the entry was written with

    # The old server's agent can neither replace nor forget a sealed room; the new one can.
    written = await store.write([entry(old, f"{old}-a", 9)], [(old, f"{old}-a")])
    assert (written.stored, written.deleted) == (0, 0)
    assert (await store.write([entry(new, f"{old}-a", 6)], [])).stored == 1
    assert await store.rooms(new) == {f"{old}-a": 6}

    # A restore into another server (node loss) moves what is left with it, through the API.
    async with await node_client(h, node) as agent:
        loaded = await agent.get(f"/api/v1/agent/snapshots/{old}", params={"into": new})
        assert loaded.status_code == 200, loaded.text
        assert [s["room_id"] for s in loaded.json()["snapshots"]] == [f"{old}-b"]
    assert await store.rooms(old) == {}
    assert await store.rooms(new) == {f"{old}-a": 6, f"{old}-b": 2}
    assert await store.texts(new) == [entry(new, f"{old}-a", 6).text, entry(old, f"{old}-b", 2).text]
    # Deleting a server drops what it holds (not at the TTL), never what it handed over.
    assert (await store.write([entry(old, f"{old}-c", 1)], [])).stored == 1
    dropped = await ActivityEnvironment().run(drain.drop_snapshots, DropSnapshotsInput(server_id=old))
    assert dropped.dropped == 1
    assert await store.rooms(old) == {}
    assert await store.rooms(new) == {f"{old}-a": 6, f"{old}-b": 2}
    if isinstance(store, RedisSnapshotStore):
        assert not await store.redis.exists(f"{store.prefix}room:{old}-c", f"{store.prefix}server:{old}")
    assert (await store.write([], [(new, f"{old}-a"), (new, f"{old}-b")])).deleted == 2
    assert await store.newest(new) is None


async def test_redis_entries_expire_with_their_server_not_while_it_writes(settings: Settings) -> None:
    """The TTL policy of the Redis store (core/snapshots.py): a write keeps its room for the TTL and
    pushes back the expiry of the server's rooms idle for over half of it."""
    redis_settings = await with_redis(settings)
    store = RedisSnapshotStore.from_settings(redis_settings)
    store.ttl_ms = 2000  # the setting's floor is a minute; the policy is the same
    prefix = redis_settings.snapshot_redis_prefix
    try:
        await store.write([entry("s1", "idle", 1), entry("s1", "busy", 1)], [])
        ttl = await store.redis.pttl(f"{prefix}room:idle")
        assert 1000 < ttl <= 2000
        assert 1000 < await store.redis.pttl(f"{prefix}server:s1") <= 2000
        await asyncio.sleep(1.1)
        assert await store.redis.pttl(f"{prefix}room:idle") < 1000
        await store.write([entry("s1", "busy", 2)], [])  # the idle room's expiry is pushed back too
        assert await store.redis.pttl(f"{prefix}room:idle") > 1500
        assert await store.rooms("s1") == {"busy": 2, "idle": 1}
    finally:
        await store.aclose()
        await drop_keys(redis_settings)


async def test_an_unreachable_redis_is_unavailable_not_an_error(settings: Settings) -> None:
    """The API answers 503 (problem+json, core.errors.Unavailable) and the agent keeps the snapshots."""
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        await refused_by(settings, bound.getsockname()[1])


async def refused_by(settings: Settings, port: int) -> None:
    store = RedisSnapshotStore.from_settings(settings.model_copy(update={
        "snapshot_store": "redis", "redis_url": f"redis://127.0.0.1:{port}/0"}))
    try:
        with pytest.raises(Unavailable):
            await store.write([entry("s1", "r1", 1)], [])
        with pytest.raises(Unavailable):
            await store.texts("s1")
    finally:
        await store.aclose()


# --- one durable match end to end on the Redis store --------------------------------------------

async def wait_stored(store: SnapshotStore, server_id: str, moves: int, timeout: float = 10) -> int:
    """The seq of the room's stored snapshot once it holds `moves` moves."""
    async with asyncio.timeout(timeout):
        while True:
            for text in await store.texts(server_id):
                found = json.loads(text)
                if found["room_id"] == server_id and found["body"]["state"]["moves"] == moves:
                    return int(found["seq"])
            await asyncio.sleep(0.05)


@pytest.mark.docker
async def test_a_killed_container_restores_the_match_from_redis(
        settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """tests/durable/test_crash_restore.py's match with GSF_SNAPSHOT_STORE=redis: the snapshot the
    restart restores comes from Redis (the platform database holds none)."""
    async with platform_on("redis", settings, temporal_env, agent=True) as h, \
            open_snapshot_store(h.settings, h.sessions) as store:
        key = await h.user_key("durable-redis@example.com")
        async with h.api(key) as api:
            server_id = await running_game(api, write_game(tmp_path), "durable-redis")
            async with two_players(h.settings.matchmaker_url, server_id) as (x, o):
                ids = (x.player_id, o.player_id)
                acknowledged = await play_opening(x, o, 3)
                seq = await wait_stored(store, server_id, 3)
                async with h.sessions() as s:
                    assert (await s.scalars(select(RoomSnapshot.room_id))).all() == []

                (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
                killed = time.monotonic()
                container.kill()
                await both_back([x, o], timeout=60)
                print(f"kill -> both players back (Redis store): {time.monotonic() - killed:.2f} s")
                await back_as_acknowledged(x, o, ids, seq, "crash", acknowledged)
                final = await finish(x, o)
                assert final["status"] == "won"
                assert final["winnerId"] == x.player_id
                assert (await api.delete(f"/api/v1/servers/{server_id}")).json()["status"] == "deleted"
                assert await store.rooms(server_id) == {}, "a deleted server's snapshots wait for no TTL"
