"""FleetWorkflow: one per fleet, keeps its servers at the size its policy wants (issue #10)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.fleet import FleetActivities
    from core.fleets import (
        FAILED,
        ConfigureFleetInput,
        DeleteFleetInput,
        DropFleetInput,
        FleetInput,
        FleetLifecycle,
        FleetMemberInput,
        FleetPhase,
        FleetServer,
        FleetState,
        FleetView,
        MigrateFleetServerInput,
        MigrateFleetServerResult,
        RecordFleetInput,
        RetireFleetServersInput,
        StartFleetServerInput,
        StopFleetServerInput,
        SyncFleetInput,
        count,
        movable,
        phase_of,
        plan_fleet,
        rollout_count,
        rooms_per_server,
    )
    from core.temporal import SA_STATUS

CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10),
                            maximum_attempts=10)
STOP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                         maximum_attempts=5)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
MIGRATE_PATCH = "fleet-migrate-rooms"


@workflow.defn(name="FleetWorkflow")
class FleetWorkflow:
    """Keeps one fleet's servers at the size its policy wants; id `fleet-<fleet_id>`.

    Every `sync_seconds` (or at once when woken): observe the servers (records + pool state,
    releasing allocated servers whose players left), drop the lost ones, then start and retire
    servers as `core.fleets.plan_fleet` says: replacements for lost servers, the buffer on top
    of the allocated ones, a rolling update within max_surge/max_unavailable. It never stops an
    allocated server, except on a forced delete, or to move its durable rooms into the new
    version in a rollout that migrates rooms (`migrate_rooms`: one server at a time).

    Updates: `configure(ConfigureFleetInput) -> FleetView` — scale, change the policy, roll out a
             new game version; `delete(DeleteFleetInput) -> FleetView` — drain, stop, then end.
    Signals: `wake()` — sync now (an allocation found no ready server).
    Queries: `status() -> FleetView`.
    """

    @workflow.init
    def __init__(self, input: FleetInput) -> None:
        self.input = input
        self.spec = input.spec.model_copy(deep=True)
        self.s = input.state.model_copy(deep=True) if input.state else FleetState()
        self._wake = False
        self._recorded: tuple[Any, ...] | None = None
        self.records: list[asyncio.Task[Any]] = []
        self.stops: dict[str, asyncio.Task[Any]] = {}
        self.migrations: dict[str, asyncio.Task[MigrateFleetServerResult]] = {}
        self.homes: dict[str, list[str]] = {}  # server moving its rooms -> the servers they may go to
        for srv in self.s.servers.values():
            if srv.migration == "moving":  # its activity ended with the last run (`_settle`)
                srv.migration = ""

    # --- handlers -------------------------------------------------------------------------------

    @workflow.query
    def status(self) -> FleetView:
        return self._view()

    @workflow.signal
    def wake(self) -> None:
        self._wake = True

    @workflow.update
    def configure(self, input: ConfigureFleetInput) -> FleetView:
        spec = self.spec
        if input.replicas is not None:
            spec.replicas = input.replicas
        if input.buffer is not None or input.min_size is not None or input.max_size is not None:
            spec.replicas = None
            spec.buffer = spec.buffer if input.buffer is None else input.buffer
            spec.min_size = spec.min_size if input.min_size is None else input.min_size
            spec.max_size = spec.max_size if input.max_size is None else input.max_size
        if input.build is not None:
            spec.build = input.build
        if input.max_surge is not None:
            spec.max_surge = input.max_surge
        if input.max_unavailable is not None:
            spec.max_unavailable = input.max_unavailable
        if input.on_empty is not None:
            spec.on_empty = input.on_empty
        if input.migrate_rooms is not None:
            spec.migrate_rooms = input.migrate_rooms
        self.s.generation += 1
        self._wake = True
        return self._view()

    @configure.validator
    def _validate_configure(self, input: ConfigureFleetInput) -> None:
        if self.s.lifecycle != FleetLifecycle.ACTIVE:
            raise ValueError("the fleet is being deleted")
        if input.replicas is not None and (input.buffer, input.min_size, input.max_size) != (None, None, None):
            raise ValueError("give replicas or a buffer policy, not both")
        for value in (input.max_surge, input.max_unavailable):
            if value is not None:
                rollout_count(value, 1, True)  # raises ValueError for a malformed one
        if input.migrate_rooms and rooms_per_server(self.spec.model_copy(
                update={"build": input.build or self.spec.build})) <= 1:
            raise ValueError("migrate_rooms needs servers that host rooms (max_rooms above 1)")
        if input.build is not None and input.build.version == self.spec.build.version:
            raise ValueError(f"the fleet runs version {input.build.version} already")
        low = self.spec.min_size if input.min_size is None else input.min_size
        high = self.spec.max_size if input.max_size is None else input.max_size
        if input.replicas is None and (input.buffer, input.min_size, input.max_size) != (None, None, None) \
                and low > high:
            raise ValueError(f"min_size {low} is above max_size {high}")

    @workflow.update
    def delete(self, input: DeleteFleetInput) -> FleetView:
        if self.s.lifecycle == FleetLifecycle.ACTIVE:
            self._set_lifecycle(FleetLifecycle.DELETING)
        self.s.force_delete = self.s.force_delete or input.force
        self._wake = True
        return self._view()

    @delete.validator
    def _validate_delete(self, input: DeleteFleetInput) -> None:
        if self.s.lifecycle == FleetLifecycle.DELETED:
            raise ValueError("the fleet is deleted already")

    # --- main -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: FleetInput) -> FleetView:
        while not (self.s.lifecycle == FleetLifecycle.DELETING and not self.s.servers):
            self._wake = False  # a wake-up that arrives during this sync brings the next one forward
            try:
                await self._sync()
            except ActivityError as err:
                # The matchmaker or the database is away: try again at the next interval.
                workflow.logger.warning("fleet %s: sync failed: %s", input.fleet_id, _cause(err))
            self._record()
            with contextlib.suppress(TimeoutError):  # the sync interval: look again
                await workflow.wait_condition(lambda: self._wake, timeout=self._next_wait())
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._settle()
                workflow.continue_as_new(self.input.model_copy(update={"spec": self.spec, "state": self.s}))
        await workflow.execute_activity_method(
            FleetActivities.drop_fleet, DropFleetInput(fleet_id=input.fleet_id),
            task_queue=input.control_queue, start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY)
        self._set_lifecycle(FleetLifecycle.DELETED)
        self._record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._settle()
        return self._view()

    async def _sync(self) -> None:
        i, s = self.input, self.s
        self._migrations_done()
        deleting = s.lifecycle != FleetLifecycle.ACTIVE
        members = [FleetMemberInput(server_id=sid, stale=deleting or srv.version != self.spec.build.version)
                   for sid, srv in sorted(s.servers.items())]
        observed = await workflow.execute_activity_method(
            FleetActivities.sync_fleet, SyncFleetInput(fleet_id=i.fleet_id, members=members,
                                         ready_when_empty=self.spec.on_empty == "ready",
                                         limits=self.spec.limits, node_selector=self.spec.node_selector),
            task_queue=i.control_queue, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=CONTROL_RETRY)
        now = workflow.now()
        for obs in observed.servers:
            srv = s.servers.get(obs.server_id)
            if srv is None:
                continue
            phase = phase_of(obs)
            if phase is None:  # gone: failed, deleted, or stopped by someone else
                del s.servers[obs.server_id]
                self.stops.pop(obs.server_id, None)
                if obs.status in FAILED and srv.phase != FleetPhase.RETIRING:
                    s.failures += 1
                    s.last_failure_at = now
                continue
            if phase == FleetPhase.READY and srv.phase == FleetPhase.DEPLOYING:
                s.failures = 0  # a server came up: this version deploys
            if srv.phase == FleetPhase.RETIRING and srv.migration not in ("moving", "stays"):
                phase = FleetPhase.RETIRING  # on its way out, whatever the store says
            srv.phase, srv.status, srv.players, srv.allocation_id = phase, obs.status or "", obs.players, \
                obs.allocation_id
            srv.max_rooms, srv.rooms = obs.max_rooms, obs.rooms
        # A fleet in rooms (issue #22) plans for free room slots; the marker keeps histories
        # recorded before rooms replaying as they ran (they never get here with rooms).
        rooms = rooms_per_server(self.spec) > 1 and workflow.patched("fleet-rooms")
        keep = frozenset(sid for into in self.homes.values() for sid in into)
        plan = plan_fleet(self.spec, list(s.servers.values()), observed.headroom, deleting=deleting,
                          force=s.force_delete, rooms=rooms, keep=keep)
        s.capacity_limited = plan.capacity_limited
        if plan.retire:
            await self._retire(plan.retire)
        for sid, srv in sorted(s.servers.items()):
            stop = self.stops.get(sid)
            if srv.phase == FleetPhase.RETIRING and srv.migration != "moving" \
                    and (stop is None or (stop.done() and stop.exception() is not None)):
                self.stops[sid] = workflow.start_activity_method(
                    FleetActivities.stop_fleet_server, StopFleetServerInput(server_id=sid),
                    task_queue=i.control_queue, start_to_close_timeout=timedelta(minutes=3),
                    retry_policy=STOP_RETRY)
        if plan.start and not deleting and self._backoff_left() <= timedelta(0):
            await self._start(plan.start)
        if self.spec.migrate_rooms and not deleting and workflow.patched(MIGRATE_PATCH):
            self._migrate()

    def _migrate(self) -> None:
        """A rollout that migrates rooms: the oldest allocated server of an older version moves its
        durable rooms into the current version's servers with free room slots (most free first),
        one server at a time; `plan_fleet` starts servers for them when those have too few."""
        if any(not task.done() for task in self.migrations.values()):
            return
        servers = list(self.s.servers.values())
        waiting = [srv for srv in movable(self.spec, servers) if srv.migration == ""]
        version = self.spec.build.version
        homes = sorted((srv for srv in servers if srv.version == version and srv.max_rooms > srv.rooms
                        and srv.phase in (FleetPhase.READY, FleetPhase.ALLOCATED)),
                       key=lambda srv: (srv.rooms - srv.max_rooms, srv.created_at.timestamp(), srv.server_id))
        if not waiting or not homes:
            return
        srv = waiting[0]
        srv.migration = "moving"
        self.homes[srv.server_id] = [home.server_id for home in homes[:3]]
        self.migrations[srv.server_id] = workflow.start_activity_method(
            FleetActivities.migrate_fleet_server,
            MigrateFleetServerInput(fleet_id=self.input.fleet_id, server_id=srv.server_id,
                                    into=self.homes[srv.server_id]),
            task_queue=self.input.control_queue, start_to_close_timeout=timedelta(minutes=5),
            retry_policy=STOP_RETRY)
        self.migrations[srv.server_id].add_done_callback(lambda _: self.wake())  # the next step at once

    def _migrations_done(self) -> None:
        """What the finished migrations did: moved (the server is gone), stays (it keeps the rooms
        the new version refused), or nothing yet (tried again at a later sync)."""
        for sid, task in list(self.migrations.items()):
            if not task.done():
                continue
            del self.migrations[sid]
            self.homes.pop(sid, None)
            srv = self.s.servers.get(sid)
            if srv is None:
                continue
            error = task.exception()
            if error is not None:
                workflow.logger.warning("fleet %s: moving the rooms of %s failed: %s", self.input.fleet_id, sid,
                                        _cause(error))
                srv.migration = ""
                continue
            result = task.result()
            srv.migration = "moved" if result.status == "moved" else "stays" if result.status == "stays" else ""

    async def _retire(self, server_ids: list[str]) -> None:
        """Ready servers leave the pool atomically (an allocation that won the race keeps its
        server); a forced delete takes allocated ones as they are."""
        result = await workflow.execute_activity_method(
            FleetActivities.retire_fleet_servers,
            RetireFleetServersInput(fleet_id=self.input.fleet_id, server_ids=server_ids),
            task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=CONTROL_RETRY)
        going = set(result.server_ids)
        if self.s.force_delete:
            going |= {sid for sid in server_ids if self.s.servers[sid].phase == FleetPhase.ALLOCATED}
        for sid in going:
            self.s.servers[sid].phase = FleetPhase.RETIRING
            self.s.servers[sid].migration = ""

    async def _start(self, n: int) -> None:
        i, spec = self.input, self.spec
        now = workflow.now()
        ids = [workflow.uuid4().hex[:20] for _ in range(n)]
        for sid in ids:
            self.s.servers[sid] = FleetServer(server_id=sid, version=spec.build.version, created_at=now)
        results = await asyncio.gather(*(workflow.execute_activity_method(
            FleetActivities.start_fleet_server, StartFleetServerInput(
                fleet_id=i.fleet_id, owner_id=i.owner_id, fleet_name=i.name, game=i.game, server_id=sid,
                build=spec.build, labels=spec.labels, node_selector=spec.node_selector, limits=spec.limits,
                plan=spec.plan, max_rooms=spec.max_rooms or spec.build.max_rooms),
            task_queue=i.control_queue,
            start_to_close_timeout=timedelta(seconds=60), retry_policy=CONTROL_RETRY) for sid in ids),
            return_exceptions=True)
        for sid, result in zip(ids, results, strict=True):
            if isinstance(result, BaseException):
                workflow.logger.warning("fleet %s: server %s did not start: %s", i.fleet_id, sid, _cause(result))
                self.s.servers.pop(sid, None)
                self.s.failures += 1
                self.s.last_failure_at = now

    def _backoff_left(self) -> timedelta:
        """Lost servers in a row back the fleet off (1 s, 2 s, 4 s, ... up to the maximum), so a
        version that cannot run does not start servers in a tight loop."""
        if not self.s.failures or self.s.last_failure_at is None:
            return timedelta(0)
        delay = min(2.0 ** (self.s.failures - 1), self.input.failure_backoff_max_seconds)
        return self.s.last_failure_at + timedelta(seconds=delay) - workflow.now()

    def _next_wait(self) -> timedelta:
        wait = timedelta(seconds=self.input.sync_seconds)
        backoff = self._backoff_left()
        return min(wait, backoff) if backoff > timedelta(0) else wait

    # --- records ------------------------------------------------------------------------------

    def _view(self) -> FleetView:
        servers = sorted(self.s.servers.values(), key=lambda srv: (srv.created_at, srv.server_id))
        return FleetView(fleet_id=self.input.fleet_id, lifecycle=self.s.lifecycle, generation=self.s.generation,
                         spec=self.spec, counts=count(self.spec, servers), capacity_limited=self.s.capacity_limited,
                         servers=servers)

    def _set_lifecycle(self, lifecycle: FleetLifecycle) -> None:
        self.s.lifecycle = lifecycle
        workflow.upsert_search_attributes([SA_STATUS.value_set(lifecycle.value)])

    def _record(self) -> None:
        """The fleet's counts in its row, off the critical path and only when they changed."""
        counts = count(self.spec, list(self.s.servers.values()))
        key = (self.s.lifecycle, self.spec.build.version, counts, self.s.capacity_limited)
        if key == self._recorded:
            return
        self._recorded = key
        self.s.seq += 1
        self.records = [r for r in self.records if not r.done()]
        self.records.append(workflow.start_activity_method(
            FleetActivities.record_fleet,
            RecordFleetInput(fleet_id=self.input.fleet_id, seq=self.s.seq, at=workflow.now(),
                             lifecycle=self.s.lifecycle, version=self.spec.build.version,
                             counts=counts, capacity_limited=self.s.capacity_limited),
            task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY))

    async def _settle(self) -> None:
        """Let records and stops in flight finish before this run ends."""
        pending = [*self.records, *self.stops.values(), *self.migrations.values()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.records = []
        self._migrations_done()


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)
