"""The drain activities (activities/drain.py) on a real database and its snapshot store: a drain's
plan names the server's stored rooms and the running servers of its version on nodes that take
work (or the one asked for),
and a seal hands rooms to an existing server only. The store's own rules, and the seal on Redis:
tests/durable/test_snapshot_store.py; a drain end to end: tests/durable/test_drain.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.drain import DrainActivities
from core.contracts import DrainPlanInput, DrainTarget, SealSnapshotsInput
from core.db.models import GameServer, Node
from core.db.session import SessionFactory
from core.settings import Settings
from core.snapshots import DatabaseSnapshotStore, Snapshot
from tests.activities.conftest import add_servers
from workflows.deployments import Deployments

V1, V2 = "1" * 64, "2" * 64


def stored(server_id: str, room_id: str, seq: int) -> Snapshot:
    text = json.dumps({"room_id": room_id, "server_id": server_id, "seq": seq})
    return Snapshot(room_id=room_id, server_id=server_id, seq=seq, instance="i1", version=V1,
                    taken_at=datetime.now(UTC), text=text)


async def test_the_plan_and_the_seal_of_a_drain(sessions: SessionFactory, temporal_env: WorkflowEnvironment,
                                                tmp_path: Path) -> None:
    await add_servers(
        sessions,
        {"id": "old", "status": "running", "source_sha256": V1, "node_id": "n1", "port": 4001},
        {"id": "twin", "status": "running", "source_sha256": V1, "node_id": "n2", "port": 4002},
        {"id": "v2", "status": "running", "source_sha256": V2, "node_id": "n1", "port": 4003},
        {"id": "gone", "status": "stopped", "source_sha256": V1, "node_id": "n1", "port": 4004})
    await add_servers(sessions, {"id": "theirs", "status": "running", "source_sha256": V1, "node_id": "n1",
                                 "port": 4005})  # another owner's
    async with sessions() as session:  # n1 and n3 drained (maintenance): no room goes there
        session.add_all([Node(id="n1", status="maintenance"), Node(id="n2"), Node(id="n3", status="maintenance")])
        twin = await session.get(GameServer, "twin")
        assert twin is not None
        session.add(GameServer(owner_id=twin.owner_id, name="cordoned", game="g", source_sha256=V1, max_players=2,
                               workflow_id="gameserver-cordoned", id="cordoned", status="running", node_id="n3",
                               port=4006))  # the newest of its version, but on a node being drained
        await session.commit()
    store = DatabaseSnapshotStore(sessions)
    assert (await store.write([stored("old", "old-a", 5), stored("old", "old-b", 2)], [])).stored == 2
    settings = Settings(env="test", data_dir=tmp_path / "data")
    drain = DrainActivities(sessions, Deployments(temporal_env.client, settings), settings, snapshots=store)
    env = ActivityEnvironment()

    plan = await env.run(drain.drain_plan, DrainPlanInput(server_id="old"))
    assert sorted(plan.room_ids) == ["old-a", "old-b"]
    assert plan.targets == [DrainTarget(server_id="twin", node_id="n2", port=4002)]
    asked = await env.run(drain.drain_plan, DrainPlanInput(server_id="old", drain_to="v2"))  # a rolling update
    assert [t.server_id for t in asked.targets] == ["v2"]
    nothing = await env.run(drain.drain_plan, DrainPlanInput(server_id="twin"))  # no durable room stored
    assert (nothing.room_ids, nothing.targets) == ([], [])

    sealed = await env.run(drain.seal_snapshots, SealSnapshotsInput(server_id="old", into="twin",
                                                                    room_ids=["old-a"], settle_ms=0))
    assert (sealed.rooms, sealed.settled) == ({"old-a": 5}, True)
    assert await store.rooms("twin") == {"old-a": 5}
    assert await store.rooms("old") == {"old-b": 2}
    with pytest.raises(ApplicationError) as refused:
        await env.run(drain.seal_snapshots, SealSnapshotsInput(server_id="old", into="nowhere", settle_ms=0))
    assert refused.value.type == "NoDrainTarget"
    assert refused.value.non_retryable
    assert await store.rooms("old") == {"old-b": 2}
