"""Control activities of FleetWorkflow: observe a fleet, start, retire and stop its servers, record it.

A fleet's servers are ordinary deployments (`GameServerWorkflow`, started and stopped through the
`Deployer` the control worker hands in, so they outlive any run of the fleet's workflow); their
allocation state lives in the matchmaker store, reached through a `FleetRegistry` (Redis directly, or the matchmaker).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.drain import DrainActivities
from core.capacity import Policy, node_capacity
from core.contracts import DrainPlanInput, Limits, ServerStatus, StopServerInput
from core.db.models import Allocation, Fleet, GameServer, Node
from core.db.session import SessionFactory, shielded
from core.deploy import Deployer, Deployment
from core.errors import Unavailable
from core.fleets import (
    FLEET_LABEL,
    VERSION_LABEL,
    DropFleetInput,
    DropFleetResult,
    MigrateFleetServerInput,
    MigrateFleetServerResult,
    RecordFleetInput,
    RecordFleetResult,
    RetireFleetServersInput,
    RetireFleetServersResult,
    ServerObservation,
    StartFleetServerInput,
    StartFleetServerResult,
    StopFleetServerInput,
    StopFleetServerResult,
    SyncFleetInput,
    SyncFleetResult,
    version_name,
)
from core.placement import ACTIVE, SCHEDULABLE
from core.settings import Settings
from matchmaker.allocator import FleetRegistry
from matchmaker.errors import MatchmakerError
from matchmaker.models import FleetMember

UNPLACED = ("pending", "analyzing")  # deployments that will take room somewhere soon
MAX_HEADROOM = 1000
LIVENESS_FACTOR = 3.0  # as placement: a node is live within three heartbeats


class FleetActivities:
    def __init__(self, sessions: SessionFactory, deployer: Deployer, settings: Settings,
                 registry: FleetRegistry) -> None:
        self.sessions = sessions
        self.deployer = deployer
        self.settings = settings
        self.registry = registry
        self.policy = Policy.from_settings(settings)
        # Moving durable rooms off a stopped or replaced server (issue #25) deploys servers too:
        # registered with the fleet's, on the control worker.
        self.drain = DrainActivities(sessions, deployer, settings)

    def activities(self) -> list[Any]:
        return [self.sync_fleet, self.start_fleet_server, self.retire_fleet_servers, self.stop_fleet_server,
                self.migrate_fleet_server, self.record_fleet, self.drop_fleet, *self.drain.activities()]

    async def _registry(self, call: Any) -> Any:
        """A registry call; an unreachable matchmaker or Redis is retried by Temporal."""
        try:
            return await call
        except MatchmakerError as exc:
            raise ApplicationError(f"the matchmaker store: {exc.detail}", type="StoreUnavailable") from None

    @activity.defn(name="sync_fleet")
    async def sync_fleet(self, input: SyncFleetInput) -> SyncFleetResult:
        """Every member's recorded status and pool state (releasing empty allocated servers), and
        how many more servers of the fleet's size fit on matching nodes."""
        ids = [m.server_id for m in input.members]
        started = datetime.now(UTC)
        statuses = await shielded(self._statuses(ids))
        held = await shielded(self._open_allocations(input.fleet_id))
        members = []
        for m in input.members:
            aid, hold = held.get(m.server_id, ("", 0.0))
            members.append(FleetMember(server_id=m.server_id, stale=m.stale, allocation_id=aid, hold_until=hold))
        slots = await self._registry(self.registry.sync(input.fleet_id, members, input.ready_when_empty))
        by_id = {s.server_id: s for s in slots.slots}
        live = {s.allocation_id for s in slots.slots} | {a for s in slots.slots for a in s.allocations}
        await shielded(self._end_allocations(input.fleet_id, live, started))
        out = []
        for sid in ids:
            slot = by_id.get(sid)
            out.append(ServerObservation(
                server_id=sid, status=statuses.get(sid), state=slot.state if slot else None,
                listed=slot.listed if slot else False, players=slot.players if slot else 0,
                allocation_id=slot.allocation_id if slot else "", max_rooms=slot.max_rooms if slot else 1,
                rooms=slot.rooms if slot else 0, allocations=list(slot.allocations) if slot else []))
        headroom = await shielded(self.headroom(input.limits, input.node_selector))
        return SyncFleetResult(servers=out, headroom=headroom)

    async def _statuses(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        async with self.sessions() as session:
            rows = await session.execute(select(GameServer.id, GameServer.status).where(GameServer.id.in_(ids)))
            return {sid: status for sid, status in rows.all()}

    async def _open_allocations(self, fleet_id: str) -> dict[str, tuple[str, float]]:
        """server id -> (allocation id, hold until) of the allocations the records hold open.

        The store keeps allocation state; these records only let a store that lost it (the
        in-process store of a restarted matchmaker) take it back, so a server a match is using
        is not handed out again. The hold is the seat reservation the allocation was given."""
        hold = self.settings.seat_reservation_seconds
        async with self.sessions() as session:
            rows = await session.execute(select(Allocation.server_id, Allocation.id, Allocation.created_at).where(
                Allocation.fleet_id == fleet_id, Allocation.status == "allocated").order_by(Allocation.created_at))
            out: dict[str, tuple[str, float]] = {}
            for server_id, aid, created in rows.all():
                at = created if created.tzinfo else created.replace(tzinfo=UTC)
                out[server_id] = (aid, at.timestamp() + hold)  # ordered: a server's newest record wins
            return out

    async def _end_allocations(self, fleet_id: str, live: set[str], before: datetime) -> None:
        """Allocations the store no longer holds (their players left) are released in the records
        too; only those made before this sync looked, so one being recorded right now stays."""
        async with self.sessions() as session:
            await session.execute(update(Allocation).where(
                Allocation.fleet_id == fleet_id, Allocation.status == "allocated", Allocation.created_at < before,
                Allocation.id.not_in(live or {""})).values(status="released", released_at=datetime.now(UTC)))
            await session.commit()

    async def headroom(self, limits: Limits, node_selector: dict[str, str]) -> int:
        """Servers of `limits` that still fit on live, schedulable, matching nodes, as placement
        counts them (core/capacity.py), less the deployments not placed yet."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            nodes = (await session.scalars(select(Node).where(Node.status.in_(SCHEDULABLE)))).all()
            held: dict[str | None, list[dict[str, Any]]] = {}
            for node_id, server_limits in (await session.execute(
                    select(GameServer.node_id, GameServer.limits).where(GameServer.status.in_(ACTIVE)))).all():
                held.setdefault(node_id, []).append(dict(server_limits or {}))
            unplaced = await session.scalar(select(func.count()).select_from(GameServer)
                                            .where(GameServer.status.in_(UNPLACED))) or 0
        fits = 0
        for node in nodes:
            if not node.online or node.last_online is None:
                continue
            last = node.last_online if node.last_online.tzinfo else node.last_online.replace(tzinfo=UTC)
            if now - last > timedelta(seconds=node.heartbeat_seconds * LIVENESS_FACTOR):
                continue
            if any(node.labels.get(k) != v for k, v in node_selector.items()):
                continue
            cap = node_capacity(node.resources, node.capacity, self.policy, held.get(node.id, []))
            while fits < MAX_HEADROOM and cap.admits(limits):
                cap = dataclasses.replace(cap, used_cpus=cap.used_cpus + limits.cpus,
                                          used_memory_mb=cap.used_memory_mb + limits.memory_mb,
                                          servers=cap.servers + 1)
                fits += 1
        return max(0, fits - int(unplaced))

    @activity.defn(name="start_fleet_server")
    async def start_fleet_server(self, input: StartFleetServerInput) -> StartFleetServerResult:
        """A new server of the fleet: a pool member first (so its room is never an ordinary,
        joinable one), then its records and its GameServerWorkflow."""
        await self._registry(self.registry.add(input.fleet_id, [input.server_id]))
        labels = {**input.labels, FLEET_LABEL: input.fleet_id, VERSION_LABEL: str(input.build.version)}
        try:
            async with self.sessions() as session:
                build = input.build
                server = await shielded(self.deployer.deploy(session, Deployment(
                    server_id=input.server_id, owner_id=input.owner_id,
                    name=f"{input.fleet_name}-{input.server_id[:6]}", game=input.game,
                    source_sha256=build.source_sha256, filename=build.filename, max_players=build.max_players,
                    allow_rules=list(build.allow_rules), labels=labels, node_selector=input.node_selector,
                    limits=input.limits, plan=input.plan, idle_timeout=0.0, max_rooms=input.max_rooms,
                    message=f"version {build.version} of {input.game} for a fleet",
                    fleet_id=input.fleet_id, fleet_version=build.version)))
        except Unavailable as exc:
            raise ApplicationError(exc.detail, type="Unavailable") from None
        return StartFleetServerResult(server_id=server.id, workflow_id=server.workflow_id)

    @activity.defn(name="retire_fleet_servers")
    async def retire_fleet_servers(self, input: RetireFleetServersInput) -> RetireFleetServersResult:
        """Take ready servers out of the pool, atomically against allocations: the ones answered
        may be stopped; an allocation that won the race keeps its server."""
        retired = await self._registry(self.registry.retire(input.fleet_id, input.server_ids))
        return RetireFleetServersResult(server_ids=retired.server_ids)

    @activity.defn(name="stop_fleet_server")
    async def stop_fleet_server(self, input: StopFleetServerInput) -> StopFleetServerResult:
        """Delete a retired server through its own workflow's `stop` update (idempotent)."""
        try:
            result = await self.deployer.stop(input.server_id,
                                              StopServerInput(delete=True, reason="retired by its fleet"))
        except WorkflowUpdateFailedError:
            return StopFleetServerResult(status="deleted")  # the validator: deleted already
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return StopFleetServerResult(status="ended")  # its workflow ended (failed, deleted)
        return StopFleetServerResult(status=result.status.value)

    @activity.defn(name="migrate_fleet_server")
    async def migrate_fleet_server(self, input: MigrateFleetServerInput) -> MigrateFleetServerResult:
        """A migrating rollout (issue #25): stop the old server into the first running server of
        `into`, its durable rooms migrating (the new version's `onMigrate` runs, the players
        reconnect there), then delete it; when the new version refused some rooms the old server
        runs on with them (`stays`). Its workflow records every step (`migrated`, `migrate_failed`)."""
        async with self.sessions() as session:
            old = await session.get(GameServer, input.server_id)
            rows = (await session.execute(select(GameServer.id, GameServer.status).where(
                GameServer.id.in_(input.into or [""])))).all()
        if old is None or old.status != ServerStatus.RUNNING.value:
            return MigrateFleetServerResult(status="gone")
        running = {sid for sid, status in rows if status == ServerStatus.RUNNING.value}
        into = next((sid for sid in input.into if sid in running), "")
        if not into:
            return MigrateFleetServerResult(status="waiting")
        plan = await self.drain.drain_plan(DrainPlanInput(server_id=input.server_id, drain_to=into))
        if not plan.room_ids:  # no durable room (nothing stored): its matches finish where they are
            return MigrateFleetServerResult(status="stays", message="no durable room to move")
        version = version_name(old.labels, old.source_sha256)
        activity.heartbeat(into)
        try:
            moved = await self.deployer.stop(input.server_id, StopServerInput(
                drain=True, drain_to=into, from_version=version))
            if moved.status == ServerStatus.RUNNING:
                async with self.sessions() as session:
                    target = await session.get(GameServer, into)
                if target is None or target.status != ServerStatus.RUNNING.value:
                    # It stopped since the check: nothing moved, the old server runs on; next time, another.
                    return MigrateFleetServerResult(status="waiting", message=f"server {into} stopped meanwhile")
                return MigrateFleetServerResult(status="stays", into=into,
                                                message="the new version refused rooms, or had no room for them")
            await self.deployer.stop(input.server_id, StopServerInput(
                delete=True, reason=f"its rooms migrated to {into} by its fleet's rollout"))
        except WorkflowUpdateFailedError:
            return MigrateFleetServerResult(status="gone")  # the validator: deleted meanwhile
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return MigrateFleetServerResult(status="gone")
        return MigrateFleetServerResult(status="moved", into=into)

    @activity.defn(name="record_fleet")
    async def record_fleet(self, input: RecordFleetInput) -> RecordFleetResult:
        """Keep the fleet's latest counts for fast lists; older records are ignored."""
        return await shielded(self._record(input))

    async def _record(self, input: RecordFleetInput) -> RecordFleetResult:
        async with self.sessions() as session:
            fleet = await session.get(Fleet, input.fleet_id)
            if fleet is None or input.seq <= fleet.status_seq:
                return RecordFleetResult(applied=False)
            fleet.status, fleet.status_seq = input.lifecycle.value, input.seq
            fleet.counts = input.counts.model_dump()
            fleet.capacity_limited = input.capacity_limited
            fleet.updated_at = input.at
            await session.commit()
            return RecordFleetResult(applied=True)

    @activity.defn(name="drop_fleet")
    async def drop_fleet(self, input: DropFleetInput) -> DropFleetResult:
        """Forget a deleted fleet in the matchmaker store."""
        await self._registry(self.registry.drop(input.fleet_id))
        return DropFleetResult()
