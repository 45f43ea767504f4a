"""The fleet activities (activities/fleet.py) on a real database and the matchmaker's in-process
store: a sync reports each member's recorded status and pool state and how many more servers fit on
matching nodes; a retired member leaves the pool. FleetWorkflow with them end to end: tests/fleets/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.fleet import FleetActivities
from core.contracts import Limits
from core.db.models import Node
from core.db.session import SessionFactory
from core.fleets import FleetMemberInput, RetireFleetServersInput, SyncFleetInput
from core.settings import Settings
from matchmaker.allocator import StoreRegistry
from matchmaker.store import MemoryStore
from tests.activities.conftest import add_servers
from workflows.deployments import Deployments

FLEET = "fleet0001"
RUNNING, UNRECORDED = "a0a0a0a0a0a0a0a0", "b1b1b1b1b1b1b1b1"
SMALL = Limits(cpus=0.5, memory_mb=256)


async def test_sync_observes_the_members_and_the_room_left_and_retire_takes_one_out(
        sessions: SessionFactory, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with sessions() as session:
        session.add_all([Node(id=node_id, labels={"region": region}, online=True, last_online=datetime.now(UTC),
                              resources={"cpus": 2, "memory_mb": 2048, "max_servers": 4})
                         for node_id, region in (("eu-1", "eu"), ("us-1", "us"))])
        await session.commit()
    await add_servers(sessions, {"id": RUNNING, "status": "running", "node_id": "eu-1",
                                 "limits": SMALL.model_dump()})
    settings = Settings(env="test", data_dir=tmp_path / "data")
    fleets = FleetActivities(sessions, Deployments(temporal_env.client, settings), settings,
                             StoreRegistry(MemoryStore()))
    env = ActivityEnvironment()

    def sync(**selector: str) -> SyncFleetInput:
        return SyncFleetInput(fleet_id=FLEET, members=[FleetMemberInput(server_id=RUNNING),
                                                       FleetMemberInput(server_id=UNRECORDED)],
                              ready_when_empty=True, limits=SMALL, node_selector=selector)

    synced = await env.run(fleets.sync_fleet, sync(region="eu"))
    assert [(s.server_id, s.status, s.state) for s in synced.servers] == [
        (RUNNING, "running", "ready"), (UNRECORDED, None, "ready")]
    assert not any(s.listed for s in synced.servers), "neither runs a room the matchmaker lists"
    assert synced.headroom > 0
    # A deployment not placed yet will take room somewhere: one server fewer fits.
    await add_servers(sessions, {"id": "c2c2c2c2c2c2c2c2", "status": "pending", "limits": SMALL.model_dump()})
    assert (await env.run(fleets.sync_fleet, sync(region="eu"))).headroom == synced.headroom - 1
    assert (await env.run(fleets.sync_fleet, sync(region="mars"))).headroom == 0

    retired = await env.run(fleets.retire_fleet_servers, RetireFleetServersInput(fleet_id=FLEET,
                                                                                 server_ids=[UNRECORDED]))
    assert retired.server_ids == [UNRECORDED]
    states = {s.server_id: s.state for s in (await env.run(fleets.sync_fleet, sync(region="eu"))).servers}
    assert states == {RUNNING: "ready", UNRECORDED: "retiring"}
