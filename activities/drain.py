"""Control activities that move durable rooms off a server being stopped or replaced (issue #25:
graceful drain and rolling update): which rooms it has and where they may go, sealing their stored
snapshots for the move, and a new server for them when no running one can take them.

Sealing hands the stored snapshots to the target server in the snapshot store (core/snapshots.py:
the platform database, or Redis): the old server's agent can then neither replace them (a write only
replaces an entry of the same server) nor delete them when the old runtime disposes the rooms on its
way down (forgetting names the old server). The restore on the target's node reads them as the
target's own (`RestoreRoomsInput.room_ids`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts import (
    DrainPlanInput,
    DrainPlanResult,
    DrainTarget,
    DropSnapshotsInput,
    DropSnapshotsResult,
    SealSnapshotsInput,
    SealSnapshotsResult,
    ServerStatus,
    StartDrainServerInput,
)
from core.db.models import GameServer, Node
from core.db.session import SessionFactory, shielded
from core.deploy import Deployer, Deployment
from core.errors import Unavailable
from core.fleets import FLEET_LABEL, VERSION_LABEL
from core.placement import SCHEDULABLE
from core.settings import Settings
from core.snapshots import SnapshotStore, open_snapshot_store

MAX_TARGETS = 3
POLL_SECONDS = 0.1
ENDED = (ServerStatus.FAILED.value, ServerStatus.REJECTED.value, ServerStatus.STOPPED.value,
         ServerStatus.DELETED.value)


class DrainActivities:
    def __init__(self, sessions: SessionFactory, deployer: Deployer, settings: Settings,
                 snapshots: SnapshotStore | None = None) -> None:
        self.sessions = sessions
        self.deployer = deployer
        self.settings = settings
        # A store handed in is the caller's to close; without one, each activity opens the
        # configured store (GSF_SNAPSHOT_STORE) and closes it when done.
        self.snapshots = snapshots

    def activities(self) -> list[object]:
        return [self.drain_plan, self.seal_snapshots, self.start_drain_server, self.drop_snapshots]

    @contextlib.asynccontextmanager
    async def _store(self) -> AsyncIterator[SnapshotStore]:
        if self.snapshots is not None:
            yield self.snapshots
            return
        async with open_snapshot_store(self.settings, self.sessions) as store:
            yield store

    @activity.defn(name="drain_plan")
    async def drain_plan(self, input: DrainPlanInput) -> DrainPlanResult:
        """The server's durable rooms (those with a stored snapshot) and the running servers of the
        same owner and game version, on nodes that take new work, that could take them (or the one
        asked for)."""
        return await shielded(self._plan(input))

    async def _plan(self, input: DrainPlanInput) -> DrainPlanResult:
        async with self._store() as store:
            rooms = list(await store.rooms(input.server_id))
        async with self.sessions() as session:
            old = await session.get(GameServer, input.server_id)
            if not rooms or old is None:
                return DrainPlanResult(room_ids=rooms)
            query = select(GameServer).where(GameServer.status == ServerStatus.RUNNING.value,
                                             GameServer.owner_id == old.owner_id, GameServer.id != old.id,
                                             GameServer.node_id.is_not(None), GameServer.port.is_not(None))
            if input.drain_to:
                query = query.where(GameServer.id == input.drain_to)
            else:  # not onto a node being drained or deleted (its own, say): only where placement goes
                query = query.where(GameServer.source_sha256 == old.source_sha256).join(
                    Node, Node.id == GameServer.node_id).where(Node.status.in_(SCHEDULABLE))
            servers = (await session.scalars(query.order_by(GameServer.created_at.desc()).limit(MAX_TARGETS))).all()
        targets = [DrainTarget(server_id=s.id, node_id=str(s.node_id), port=int(s.port or 0)) for s in servers]
        return DrainPlanResult(room_ids=rooms, targets=targets)

    @activity.defn(name="drop_snapshots")
    async def drop_snapshots(self, input: DropSnapshotsInput) -> DropSnapshotsResult:
        """A deleted server's stored snapshots go at once (in Redis they would wait for their TTL)."""
        try:
            async with self._store() as store:
                return DropSnapshotsResult(dropped=await shielded(store.drop(input.server_id)))
        except Unavailable as exc:
            raise ApplicationError(exc.detail, type="Unavailable") from None

    @activity.defn(name="seal_snapshots")
    async def seal_snapshots(self, input: SealSnapshotsInput) -> SealSnapshotsResult:
        """Once no newer snapshot of the rooms came for `settle_ms` (the last changes made before
        the drain have reached the store), the rooms become `into`'s. Heartbeats while it waits."""
        began = time.monotonic()
        settled = True
        async with self._store() as store:
            while input.settle_ms > 0:
                newest = await store.newest(input.server_id, input.room_ids)
                now = datetime.now(UTC)
                if newest is None:
                    break
                quiet = (now - newest).total_seconds() * 1000
                if quiet >= input.settle_ms:
                    break
                if (time.monotonic() - began) * 1000 >= input.max_wait_ms:
                    settled = False
                    break
                activity.heartbeat()
                await asyncio.sleep(POLL_SECONDS)
            return await shielded(self._seal(store, input, settled))

    async def _seal(self, store: SnapshotStore, input: SealSnapshotsInput, settled: bool) -> SealSnapshotsResult:
        async with self.sessions() as session:
            version = await session.scalar(select(GameServer.source_sha256).where(GameServer.id == input.into))
        if version is None:
            raise ApplicationError(f"no server {input.into!r} to move rooms into", type="NoDrainTarget",
                                   non_retryable=True)
        rooms = await store.seal(input.server_id, input.into, version, input.room_ids)
        return SealSnapshotsResult(rooms=rooms, settled=settled)

    @activity.defn(name="start_drain_server")
    async def start_drain_server(self, input: StartDrainServerInput) -> DrainTarget:
        """Deploy a server like `like` (idempotent for its id) and wait until it runs."""
        like = input.like
        labels = {k: v for k, v in like.labels.items() if k not in (FLEET_LABEL, VERSION_LABEL)}
        rooms = max(like.max_rooms, 1) + max(input.rooms, 1)
        try:
            async with self.sessions() as session:
                await shielded(self.deployer.deploy(session, Deployment(
                    server_id=input.server_id, owner_id=like.owner_id, name=like.name[:100], game=like.game,
                    source_sha256=like.source_sha256, filename=like.filename, max_players=like.max_players,
                    limits=like.limits, plan=self.settings.default_plan, idle_timeout=like.idle_timeout_seconds,
                    message=f"started for the durable rooms of a drained server ({input.rooms})",
                    max_rooms=rooms, labels=labels, node_selector=like.node_selector,
                    allow_rules=list(like.allow_rules))))
        except Unavailable as exc:
            raise ApplicationError(exc.detail, type="Unavailable") from None
        deadline = time.monotonic() + input.wait_seconds
        while time.monotonic() < deadline:
            async with self.sessions() as session:
                server = await session.get(GameServer, input.server_id)
                if server is not None and server.status in ENDED:
                    raise ApplicationError(f"server {input.server_id} for the drained rooms {server.status}: "
                                           f"{server.error or ''}"[:500], type="DrainServerFailed",
                                           non_retryable=True)
                if server is not None and server.status == ServerStatus.RUNNING.value and server.port \
                        and server.node_id:
                    return DrainTarget(server_id=server.id, node_id=server.node_id, port=server.port)
            activity.heartbeat()
            await asyncio.sleep(POLL_SECONDS * 2)
        raise ApplicationError(f"server {input.server_id} for the drained rooms did not start in time",
                               type="DrainServerFailed", non_retryable=True)
