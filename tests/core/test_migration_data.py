"""Rows written under the first schema survive every migration, and new columns get their defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.migrate import upgrade
from core.db.models import ApiKey, GameServer, Node, PipelineRun, ServerEvent, StatSample, User
from core.db.session import make_engine, make_session_factory

FIRST = "a922e8e40dbc"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def first_schema_table(name: str, *columns: tuple[str, sa.types.TypeEngine[Any]]) -> sa.TableClause:
    """A lightweight table as the first revision created it (the models describe today's schema)."""
    return sa.table(name, *(sa.column(col, type_) for col, type_ in columns))


# String, Number (integer), Float, JSON, Boolean, DateTime
S, N, F, J, B, D = sa.String(), sa.Integer(), sa.Float(), sa.JSON(), sa.Boolean(), sa.DateTime(timezone=True)

USERS = first_schema_table("users", ("id", S), ("email", S), ("name", S), ("is_admin", B), ("created_at", D))
API_KEYS = first_schema_table("api_keys", ("id", S), ("user_id", S), ("name", S), ("prefix", S), ("key_hash", S),
                              ("scopes", J), ("created_at", D))
SERVERS = first_schema_table(
    "game_servers", ("id", S), ("owner_id", S), ("name", S), ("game", S), ("source_sha256", S), ("source_size", N),
    ("max_players", N), ("labels", J), ("node_selector", J), ("limits", J), ("allow_rules", J), ("status", S),
    ("status_seq", N), ("node_id", S), ("port", N), ("workflow_id", S), ("created_at", D), ("updated_at", D))
EVENTS = first_schema_table("server_events", ("server_id", S), ("seq", N), ("status", S), ("message", S), ("at", D))
STATS = first_schema_table("server_stats", ("server_id", S), ("ts", D), ("cpu_percent", F), ("memory_bytes", N))
NODES = first_schema_table(
    "nodes", ("id", S), ("name", S), ("model", S), ("type", S), ("status", S), ("status_reason", S),
    ("location", S), ("hardware", J), ("network", J), ("resources", J), ("metrics", J), ("labels", J),
    ("online", B), ("last_online", D), ("heartbeat_seconds", F), ("created_at", D), ("updated_at", D))
PIPELINES = first_schema_table(
    "pipeline_runs", ("id", S), ("owner_id", S), ("name", S), ("node_id", S), ("status", S), ("definition", J),
    ("variables", J), ("state", J), ("state_seq", N), ("workflow_id", S), ("created_at", D), ("updated_at", D))


async def insert_first_schema_rows(conn: AsyncConnection) -> None:
    await conn.execute(USERS.insert().values(id="u1", email="old@example.com", name="old", is_admin=True,
                                             created_at=AT))
    await conn.execute(API_KEYS.insert().values(id="k1", user_id="u1", name="bootstrap", prefix="gsf_abcd",
                                                key_hash="h" * 64, scopes=["servers", "admin"], created_at=AT))
    await conn.execute(SERVERS.insert().values(
        id="s1", owner_id="u1", name="ttt", game="tictactoe", source_sha256="a" * 64, source_size=123,
        max_players=2, labels={"mode": "ranked"}, node_selector={}, limits={"memory_mb": 128}, allow_rules=[],
        status="running", status_seq=3, node_id="n1", port=31000, workflow_id="gameserver-s1",
        created_at=AT, updated_at=AT))
    await conn.execute(EVENTS.insert(), [
        {"server_id": "s1", "seq": seq, "status": status, "message": f"now {status}", "at": AT}
        for seq, status in enumerate(["pending", "building", "running"], start=1)])
    await conn.execute(STATS.insert(), [
        {"server_id": "s1", "ts": AT, "cpu_percent": 1.5 * i, "memory_bytes": 40_000_000 + i} for i in range(3)])
    await conn.execute(NODES.insert().values(
        id="n1", name="eu-1", model="x", type="virtual", status="online", status_reason="", location="eu",
        hardware={"cpus": 8}, network={}, resources={"memory_mb": 16384}, metrics={"cpu": 3.0},
        labels={"region": "eu"}, online=True, last_online=AT, heartbeat_seconds=2.0, created_at=AT, updated_at=AT))
    await conn.execute(PIPELINES.insert().values(
        id="p1", owner_id="u1", name="platform-start", node_id="n1", status="succeeded",
        definition={"steps": [{"type": "prepare_network"}]}, variables={"network": "net"},
        state={"steps": [{"status": "succeeded"}]}, state_seq=4, workflow_id="pipeline-p1",
        created_at=AT, updated_at=AT))


async def test_first_schema_rows_survive_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine, FIRST)
        async with engine.begin() as conn:
            await insert_first_schema_rows(conn)
        await upgrade(engine)

        async with make_session_factory(engine)() as session:
            user = await session.get(User, "u1")
            assert user is not None
            assert user.email == "old@example.com"
            assert user.is_admin
            assert user.created_at == AT
            key = await session.get(ApiKey, "k1")
            assert key is not None
            assert key.scopes == ["servers", "admin"]
            assert key.revoked_at is None
            server = await session.get(GameServer, "s1")
            assert server is not None
            assert (server.status, server.status_seq, server.port, server.labels) == (
                "running", 3, 31000, {"mode": "ranked"})
            events = (await session.scalars(select(ServerEvent).where(ServerEvent.server_id == "s1")
                                            .order_by(ServerEvent.seq))).all()
            assert [(e.seq, e.status, e.detail) for e in events] == [
                (1, "pending", None), (2, "building", None), (3, "running", None)]
            stats = (await session.scalars(select(StatSample).order_by(StatSample.id))).all()
            assert [(s.cpu_percent, s.memory_bytes) for s in stats] == [(0.0, 40_000_000), (1.5, 40_000_001),
                                                                       (3.0, 40_000_002)]
            assert {(s.pids, s.net_rx_bytes, s.net_tx_bytes, s.uptime_seconds) for s in stats} == {(0, 0, 0, 0.0)}
            node = await session.get(Node, "n1")
            assert node is not None
            assert node.capacity == {}
            assert node.labels == {"region": "eu"}
            assert node.last_online == AT
            assert node.online
            run = await session.get(PipelineRun, "p1")
            assert run is not None
            assert run.status == "succeeded"
            assert run.state_seq == 4
            assert run.definition == {"steps": [{"type": "prepare_network"}]}

            # The widened column holds what the old one could not.
            session.add(StatSample(server_id="s1", memory_bytes=2**40, pids=7))
            await session.commit()
            big = await session.scalar(select(StatSample).where(StatSample.pids == 7))
            assert big is not None
            assert big.memory_bytes == 2**40
    finally:
        await engine.dispose()
