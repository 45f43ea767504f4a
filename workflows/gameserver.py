"""GameServerWorkflow: one per game server, from upload to deletion (DESIGN §3)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities
    from activities.drain import DrainActivities
    from activities.durable import DurableActivities
    from activities.placement import PlacementActivities
    from activities.records import RecordActivities
    from analysis.contract import DEFAULT_MAX_PLAYERS
    from core.contracts import (
        AnalysisReport,
        AnalyzeCodeInput,
        CrashReport,
        DeregisterServerInput,
        DropSnapshotsInput,
        DurableRoomsReport,
        EnsureImageInput,
        GameServerInput,
        GameServerState,
        NoopInput,
        PlayersReport,
        RecordStatusInput,
        RegisterServerInput,
        RestoreAndRegisterInput,
        RestoreRoomsInput,
        SelectNodeInput,
        ServerStatus,
        StartContainerInput,
        StopContainerInput,
        StopServerInput,
        StopServerResult,
        WaitReadyInput,
    )
    from core.queues import node_queue
    from core.temporal import SA_NODE_ID, SA_STATUS

from workflows.deployment_steps import (
    CONTAINER,
    DEREGISTER,
    IMAGE,
    READY,
    REGISTER,
    STOP,
    DeployStep,
)
from workflows.drain import DrainMixin
from workflows.steps import DEFAULT_RETRY, NodeLost, execute_step

# Durable rooms (issue #25): a crash restart pushes the rooms' stored snapshots into the new
# container before it is registered again. Versioned: histories from before replay without the step.
DURABLE_RESTORE_PATCH = "durable-restore"
# Then the restore and the registration in one node activity: one round trip fewer before the
# players are back (histories with only the first patch replay through it).
DURABLE_RESTORE_REGISTER_PATCH = "durable-restore-register"
# A server with durable rooms has its node probed while it runs (a `noop` step on the node's queue):
# nobody picking it up within `node_schedule_to_start_seconds` is a lost node, and the server moves.
NODE_PROBE_PATCH = "durable-node-probe"
# The first report of durable rooms wakes the main loop, which then plans the node probe; before
# this, a report that came while no timer ran (players in, no idle stop) left the node unprobed.
DURABLE_WAKE_PATCH = "durable-report-wakes"
MIN_PROBE_SECONDS = 5.0
# A stop moves the server's durable rooms to another server of the same game version (graceful
# drain, workflows/drain.py); a fleet's rollout moves them to a server of the new version (`onMigrate`).
DRAIN_PATCH = "durable-drain"
DROP_SNAPSHOTS_PATCH = "drop-snapshots-on-delete"

CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10),
                            maximum_attempts=10)
MAX_PLACEMENTS = 3
ANALYSIS_MINUTES = 5  # an npm ci of a project's dependencies on a cold cache, then the analysis
ANALYSIS_HEARTBEAT_SECONDS = 10  # the analyze_code activity heartbeats every 2 s
DONE = (ServerStatus.STOPPED, ServerStatus.DELETED, ServerStatus.FAILED, ServerStatus.REJECTED)


@workflow.defn(name="GameServerWorkflow")
class GameServerWorkflow(DrainMixin):
    """Deploys, runs and tears down one game server; id `gameserver-<server_id>`.

    Updates: `stop(StopServerInput) -> StopServerResult` — stop, or with `delete` stop and delete;
             answers once the server is stopped/deleted (a stop moves its durable rooms first; with
             rooms a rolling update could not migrate, it answers `running`: they stay here).
    Signals: `report_crash(CrashReport)` — sent by the node agent when the container dies;
             `report_players(PlayersReport)`, `report_durable(DurableRoomsReport)` — from the agent.
    Queries: `state() -> GameServerState`.
    """

    @workflow.init
    def __init__(self, input: GameServerInput) -> None:
        self.input = input
        self.s = input.state.model_copy(deep=True) if input.state else GameServerState()
        self.records: list[asyncio.Task[Any]] = []
        self._idle_changed = False
        self._idle_stop = False
        self._next_probe: datetime | None = None  # when the node of a durable server is probed next
        self._probe_misses = 0

    # --- handlers -------------------------------------------------------------

    @workflow.query
    def state(self) -> GameServerState:
        return self.s

    @workflow.signal
    def report_crash(self, report: CrashReport) -> None:
        self.s.crash_reports.append(report)

    @workflow.signal
    def report_players(self, report: PlayersReport) -> None:
        """From the agent, when the player count changes: activity resets the idle timer."""
        self.s.players = report.players
        self.s.last_activity = workflow.now()
        self._idle_changed = True

    @workflow.signal
    def report_durable(self, report: DurableRoomsReport) -> None:
        """From the agent, when it first pulls a snapshot of this server: probe its node from now on."""
        first = not self.s.durable
        self.s.durable = True
        if first and workflow.patched(DURABLE_WAKE_PATCH):
            self._idle_changed = True  # the loop re-plans its timers, the probe's included

    def _idle_left(self) -> timedelta | None:
        """Time until the idle stop, or None when there is no idle timer (disabled, busy or not running)."""
        if self.input.idle_timeout_seconds <= 0 or self.s.status != ServerStatus.RUNNING or self.s.players > 0:
            return None
        since = self.s.last_activity or workflow.now()
        left = timedelta(seconds=self.input.idle_timeout_seconds) - (workflow.now() - since)
        return max(left, timedelta(0))

    def _probe_left(self) -> timedelta | None:
        """Time until the node of a running durable server is probed, or None (no probe)."""
        if not self.s.durable or self.s.status != ServerStatus.RUNNING or not self.s.node_id \
                or not workflow.patched(NODE_PROBE_PATCH):
            return None
        every = timedelta(seconds=max(MIN_PROBE_SECONDS, self.input.node_schedule_to_start_seconds))
        if self._next_probe is None:
            self._next_probe = workflow.now() + every
        return max(self._next_probe - workflow.now(), timedelta(0))

    @workflow.update
    async def stop(self, input: StopServerInput) -> StopServerResult:
        if input.delete:
            self.s.delete_requested = True
        else:
            self.s.stop_requested = True
            self.s.drain, self.s.drain_to, self.s.drain_version = input.drain, input.drain_to, input.from_version
        target = (ServerStatus.DELETED,) if input.delete else DONE
        await workflow.wait_condition(lambda: self.s.status in target or (
            not input.delete and not self.s.stop_requested and self.s.status == ServerStatus.RUNNING))
        return StopServerResult(status=self.s.status)

    @stop.validator
    def _validate_stop(self, input: StopServerInput) -> None:
        if self.s.status == ServerStatus.DELETED:
            raise ValueError("the server is already deleted")

    # --- main -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: GameServerInput) -> GameServerState:
        if self.s.status in (ServerStatus.PENDING, ServerStatus.ANALYZING, ServerStatus.BUILDING,
                             ServerStatus.STARTING):
            await self._deploy()
        while self.s.status not in (ServerStatus.FAILED, ServerStatus.REJECTED):
            idle = self._idle_left()
            probe = self._probe_left()
            timer = idle if probe is None else probe if idle is None else min(idle, probe)
            try:
                if timer != timedelta(0):
                    await workflow.wait_condition(
                        lambda: self.s.delete_requested or bool(self.s.crash_reports)
                        or (self.s.stop_requested and self.s.status == ServerStatus.RUNNING)
                        or workflow.info().is_continue_as_new_suggested() or self._idle_changed,
                        timeout=timer)
            except TimeoutError:
                pass  # the idle timer or the probe's fired; checked just below
            if probe is not None and self._probe_left() == timedelta(0) and not self.s.crash_reports:
                await self._probe_node()
            self._idle_changed = False
            if idle is not None and self._idle_left() == timedelta(0) and not self.s.stop_requested:
                # A durable timer: nobody played for `idle_timeout`; stopping frees the node.
                self.s.stop_requested = self._idle_stop = True
            if self.s.delete_requested:
                await self._teardown(delete=True)
                break
            if self.s.stop_requested and self.s.status == ServerStatus.RUNNING:
                await self._teardown(delete=False, reason=f"idle for {self.input.idle_timeout_seconds:g} s"
                                     if self._idle_stop else "")
                self.s.stop_requested = self._idle_stop = False
            while self.s.crash_reports:
                await self._on_crash(self.s.crash_reports.pop(0))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush_records()
                workflow.continue_as_new(self.input.model_copy(update={"state": self.s}))
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_records()
        if self.s.status == ServerStatus.REJECTED:
            raise ApplicationError(self.s.error or "code rejected", type="CodeRejected", non_retryable=True)
        if self.s.status == ServerStatus.FAILED:
            raise ApplicationError(self.s.error or "deployment failed", type="DeployFailed", non_retryable=True)
        return self.s

    async def _deploy(self) -> None:
        i = self.input
        self._transition(ServerStatus.ANALYZING, "analyzing code")
        # Analysis and placement do not depend on each other: run them side by side.
        analysis = workflow.start_activity_method(
            AnalysisActivities.analyze_code,
            AnalyzeCodeInput(server_id=i.server_id, source_sha256=i.source_sha256, filename=i.filename,
                             allow_rules=i.allow_rules),
            # A project's analysis first installs its dependencies (npm ci, cached by lockfile hash):
            # minutes on a cold cache, not seconds. The activity heartbeats meanwhile, so a control
            # worker that dies mid-analysis is noticed in seconds, and another one retries.
            task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(minutes=ANALYSIS_MINUTES),
            heartbeat_timeout=timedelta(seconds=ANALYSIS_HEARTBEAT_SECONDS), retry_policy=CONTROL_RETRY)
        placement = asyncio.ensure_future(self._select_node([]))
        try:
            report = (await analysis).report
        except ActivityError as err:
            placement.cancel()
            self._fail(ServerStatus.FAILED, f"analysis failed: {_cause(err)}")
            return
        if not report.ok:
            placement.cancel()
            self._fail(ServerStatus.REJECTED, _rejection(report), report=report)
            return
        if not i.max_players:
            # No seat count in the upload: the module's own `maxPlayers`, else a small room.
            exported = report.exports.get("maxPlayers")
            i.max_players = exported if isinstance(exported, int) and exported > 0 else DEFAULT_MAX_PLAYERS
        if not i.max_rooms:
            # Rooms per server: the module's `maxRooms` when it opts in, else one room per server,
            # as before rooms (its own container, the runtime's process watchdog).
            rooms = report.exports.get("maxRooms")
            i.max_rooms = rooms if isinstance(rooms, int) and not isinstance(rooms, bool) and rooms > 0 else 1
        self.s.module_kind = report.module_type
        self._record_report(report)
        excluded: list[str] = []
        for _ in range(MAX_PLACEMENTS):
            try:
                node_id = await (placement if not excluded else self._select_node(excluded))
            except ActivityError as err:
                self._fail(ServerStatus.FAILED, f"placement failed: {_cause(err)}")
                return
            except ApplicationError:  # stop or delete arrived while waiting for a node
                self._transition(ServerStatus.STOPPED, "stopped before it was placed")
                return
            try:
                await self._start_on(node_id)
                return
            except NodeLost:
                excluded.append(node_id)
                workflow.logger.warning("node %s did not pick up work; re-placing", node_id)
            except ActivityError as err:
                await self._cleanup_node(node_id)
                self._fail(ServerStatus.FAILED, _cause(err), detail=_cause_detail(err))
                return
        self._fail(ServerStatus.FAILED, f"no node picked the server up (tried {', '.join(excluded)})")

    async def _select_node(self, exclude: list[str]) -> str:
        """A node for the server; with no capacity, wait on a durable timer (nodes come and go)."""
        i = self.input
        waited = timedelta(0)
        delay = timedelta(milliseconds=500)
        while True:
            try:
                result = await workflow.execute_activity_method(
                    PlacementActivities.select_node,
                    SelectNodeInput(server_id=i.server_id, node_selector=i.node_selector, limits=i.limits,
                                    exclude=exclude),
                    task_queue=i.control_queue,
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=CONTROL_RETRY)
                return str(result.node_id)
            except ActivityError as err:
                no_capacity = isinstance(err.cause, ApplicationError) and err.cause.type == "NoCapacity"
                if not no_capacity or waited >= timedelta(seconds=i.placement_timeout_seconds):
                    raise
            try:
                await workflow.wait_condition(lambda: self.s.delete_requested or self.s.stop_requested,
                                              timeout=delay)
            except TimeoutError:
                pass  # nothing asked us to stop: look for a node again
            else:
                raise ApplicationError("stopped while waiting for capacity", type="Stopped")
            waited += delay
            delay = min(delay * 2, timedelta(seconds=5))

    async def _start_on(self, node_id: str) -> None:
        """The `gameserver-start` steps on one node (`START_STEPS`): image, container, readiness,
        registration."""
        i = self.input
        self.s.node_id = node_id
        workflow.upsert_search_attributes([SA_NODE_ID.value_set(node_id)])
        self._transition(ServerStatus.BUILDING, f"placed on node {node_id}", node_id=node_id)
        image = await self._node(node_id, IMAGE, EnsureImageInput(
            server_id=i.server_id, source_sha256=i.source_sha256, module_kind=self.s.module_kind))
        self.s.image = image.image
        self._transition(ServerStatus.STARTING, "image built" if image.built else "image cached",
                         image=image.image)
        await self._start_container(node_id)
        self.s.last_activity = workflow.now()
        self._transition(ServerStatus.RUNNING, "ready", container_id=self.s.container_id,
                         ws_url=self.s.ws_url, host=self.s.host, port=self.s.port)

    async def _start_container(self, node_id: str, restore: bool = False, source: str = "crash",
                               rooms: list[str] | None = None) -> None:
        i = self.input
        assert self.s.image is not None
        started = await self._node(node_id, CONTAINER, StartContainerInput(
            server_id=i.server_id, owner_id=i.owner_id, name=i.name, game=i.game, image=self.s.image,
            max_players=i.max_players, limits=i.limits, labels=i.labels, max_rooms=max(i.max_rooms, 1)))
        self.s.container_id, self.s.host, self.s.port = started.container_id, started.host, started.port
        self.s.ws_url = started.ws_url
        await self._node(node_id, READY, WaitReadyInput(
            server_id=i.server_id, container_id=started.container_id, host=started.host, port=started.port,
            timeout_seconds=i.ready_timeout_seconds), timedelta(seconds=i.ready_timeout_seconds + 30))
        register = RegisterServerInput(
            server_id=i.server_id, owner_id=i.owner_id, name=i.name, game=i.game, node_id=node_id,
            ws_url=started.ws_url, max_players=i.max_players, labels=i.labels, max_rooms=max(i.max_rooms, 1))
        if restore and workflow.patched(DURABLE_RESTORE_REGISTER_PATCH):
            await self._restore_rooms(node_id, RestoreRoomsInput(server_id=i.server_id, port=started.port,
                                                                 source=source, room_ids=rooms or []), register)
            return
        if restore and workflow.patched(DURABLE_RESTORE_PATCH):
            await self._restore_rooms(node_id, RestoreRoomsInput(server_id=i.server_id, port=started.port))
        await self._node(node_id, REGISTER, register)

    async def _on_crash(self, report: CrashReport) -> None:
        """Restart policy on-failure: up to `restart_limit` restarts within the restart window."""
        if self.s.status != ServerStatus.RUNNING or report.container_id != self.s.container_id:
            return  # a stale report, or a container we stopped ourselves
        assert self.s.node_id is not None
        reason = f"container exited with code {report.exit_code}" + (
            " (killed: out of memory)" if report.oom_killed else "")
        # The container's last lines come last, one per line, after what happened to it.
        output = f":\n{report.reason}" if report.reason else ""
        now = workflow.now()
        window = timedelta(seconds=self.input.restart_window_seconds)
        self.s.restart_times = [t for t in self.s.restart_times if now - t < window]
        detail = {"exit_code": report.exit_code, "oom_killed": report.oom_killed,
                  "log_tail": report.log_tail[-20:], "restarts_in_window": len(self.s.restart_times),
                  "restart_limit": self.input.restart_limit,
                  "restart_window_seconds": self.input.restart_window_seconds}
        if len(self.s.restart_times) >= self.input.restart_limit:
            await self._cleanup_node(self.s.node_id)
            self._fail(ServerStatus.FAILED, f"{reason}; restart limit ({self.input.restart_limit} within "
                                            f"{self.input.restart_window_seconds:g} s) reached{output}",
                       detail=detail)
            return
        self.s.restarts += 1
        self.s.restart_times.append(now)
        self._transition(ServerStatus.STARTING, f"{reason}; restart {len(self.s.restart_times)}/"
                         f"{self.input.restart_limit}{output}", detail=detail)
        try:
            await self._start_container(self.s.node_id, restore=True)
        except (ActivityError, NodeLost) as err:
            await self._cleanup_node(self.s.node_id)
            self._fail(ServerStatus.FAILED, f"restart failed: {_cause(err)}", detail=_cause_detail(err))
            return
        self._transition(ServerStatus.RUNNING, "ready after restart", container_id=self.s.container_id,
                         ws_url=self.s.ws_url, host=self.s.host, port=self.s.port)

    async def _probe_node(self) -> None:
        """Is the server's node still there? A step nobody picks up says it is not: move the server."""
        assert self.s.node_id is not None
        self._next_probe = None
        node_id = self.s.node_id
        try:
            await execute_step("noop", node_id, NoopInput(message="probe"), start_to_close=timedelta(seconds=5),
                               schedule_to_start=timedelta(seconds=self.input.node_schedule_to_start_seconds),
                               retry=RetryPolicy(maximum_attempts=1))
            self._probe_misses = 0
        except NodeLost:
            await self._on_node_lost(node_id)
        except ActivityError as err:
            # A poll the dead agent left open can take the probe and never answer: two probes in a row
            # that time out are a lost node too.
            self._probe_misses += 1
            workflow.logger.warning("probe of node %s failed: %s", node_id, _cause(err))
            if self._probe_misses >= 2:
                self._probe_misses = 0
                await self._on_node_lost(node_id)

    async def _on_node_lost(self, lost: str) -> None:
        """The server again on another node, its durable rooms restored from the platform database:
        the same server (id, seat key, room ids), so its players' reconnection tokens stay good."""
        i = self.input
        self._transition(ServerStatus.STARTING, f"node {lost} lost; moving the server to another node",
                         detail={"event": "node_lost", "node_id": lost})
        excluded = [lost]
        for _ in range(MAX_PLACEMENTS):
            try:
                node_id = await self._select_node(excluded)
            except (ActivityError, ApplicationError) as err:
                self._fail(ServerStatus.FAILED, f"node {lost} lost and no other node took the server: {_cause(err)}")
                return
            self.s.node_id = node_id
            workflow.upsert_search_attributes([SA_NODE_ID.value_set(node_id)])
            self._transition(ServerStatus.STARTING, f"placed on node {node_id}", node_id=node_id)
            # The API hands the stored snapshots only to the node the server is recorded on.
            await self.records[-1]
            try:
                image = await self._node(node_id, IMAGE, EnsureImageInput(
                    server_id=i.server_id, source_sha256=i.source_sha256, module_kind=self.s.module_kind))
                self.s.image = image.image
                await self._start_container(node_id, restore=True, source="node-lost")
            except NodeLost:
                excluded.append(node_id)
                continue
            except ActivityError as err:
                await self._cleanup_node(node_id)
                self._fail(ServerStatus.FAILED, f"moving off lost node {lost} failed: {_cause(err)}",
                           detail=_cause_detail(err))
                return
            self._transition(ServerStatus.RUNNING, f"ready on node {node_id} after node {lost} was lost",
                             container_id=self.s.container_id, ws_url=self.s.ws_url, host=self.s.host,
                             port=self.s.port, node_id=node_id)
            return
        self._fail(ServerStatus.FAILED, f"node {lost} lost; no node picked the server up (tried {', '.join(excluded)})")

    async def _restore_rooms(self, node_id: str, input: RestoreRoomsInput,
                             register: RegisterServerInput | None = None) -> None:
        """Durable rooms back from their stored snapshots, before players can find the server again
        (with `register`: restored and listed in one node activity). A failed restore is recorded and
        the restart goes on: the rooms start afresh, as without it."""
        timeouts: dict[str, Any] = {
            "task_queue": node_queue(node_id),
            "schedule_to_start_timeout": timedelta(seconds=self.input.node_schedule_to_start_seconds),
            "start_to_close_timeout": timedelta(seconds=30)}
        try:
            if register is None:
                result = await workflow.execute_activity_method(
                    DurableActivities.restore_rooms, input, **timeouts,
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3))
            else:
                # Registration failures end the restart as the `register` step's do.
                result = await workflow.execute_activity_method(
                    DurableActivities.restore_and_register, RestoreAndRegisterInput(rooms=input, registration=register),
                    **timeouts, retry_policy=DEFAULT_RETRY)
        except ActivityError as err:
            if register is not None:
                raise
            self._note(f"durable rooms not restored: {_cause(err)}", {"event": "restore_failed"})
            return
        if result.error:
            self._note(f"durable rooms not restored: {result.error}", {"event": "restore_failed"})
        if not result.restored and not result.skipped:
            return
        ages = [r.age_ms for r in result.restored]
        origin = f" of server {input.from_server_id}" if input.from_server_id else ""
        message = (f"restored {len(result.restored)} durable room(s) from snapshots{origin}"
                   + (f" (snapshot age {min(ages)}..{max(ages)} ms)" if ages else "")
                   + (f"; {len(result.skipped)} not restored" if result.skipped else ""))
        self._note(message, {"event": "restored", "from": input.source, "from_server_id": input.from_server_id,
                             "rooms": [r.model_dump() for r in result.restored],
                             "skipped": result.skipped})

    def _note(self, message: str, detail: dict[str, Any]) -> None:
        """A line in the server's history that is no status change (the status stays as it is)."""
        self.s.seq += 1
        self._record(RecordStatusInput(server_id=self.input.server_id, seq=self.s.seq, status=self.s.status,
                                       at=workflow.now(), message=message, detail=detail))

    async def _teardown(self, delete: bool, reason: str = "") -> None:
        if self.s.status not in (ServerStatus.STOPPED,):
            self._transition(ServerStatus.STOPPING,
                             reason or ("delete requested" if delete else "stop requested"))
        drained = False
        # A stop moves durable rooms (those of a server its agent saw snapshots of, or any when asked).
        wanted = self.s.drain if self.s.drain is not None else self.s.durable
        if not delete and not reason and wanted and self.s.node_id and workflow.patched(DRAIN_PATCH):
            drained = await self._drain(self.s.node_id)
        if self.s.node_id and not drained:
            await self._cleanup_node(self.s.node_id, remove=delete)
        if drained and self.s.status == ServerStatus.RUNNING:
            return  # rooms a rolling update could not migrate stay, and the server with them
        if delete and self.s.durable and workflow.patched(DROP_SNAPSHOTS_PATCH):
            await self._drop_snapshots()
        self._transition(ServerStatus.DELETED if delete else ServerStatus.STOPPED,
                         "deleted" if delete else "stopped")

    async def _drop_snapshots(self) -> None:
        """Deleted: its durable rooms end, so the snapshots it still holds go now (not at their TTL)."""
        try:
            await self._control(DrainActivities.drop_snapshots, DropSnapshotsInput(server_id=self.input.server_id))
        except ActivityError as err:
            workflow.logger.warning("snapshots of %s not dropped: %s", self.input.server_id, _cause(err))

    async def _cleanup_node(self, node_id: str, remove: bool = True) -> None:
        """Deregister and stop (remove) on the node; a dead node cleans up when its agent returns."""
        i = self.input
        try:
            await self._node(node_id, DEREGISTER, DeregisterServerInput(server_id=i.server_id))
            await self._node(node_id, STOP, StopContainerInput(
                server_id=i.server_id, remove=remove, remove_image=self.s.image if remove else None,
                remove_network=remove))
        except (ActivityError, NodeLost) as err:
            workflow.logger.warning("cleanup on node %s incomplete: %s", node_id, _cause(err))

    async def _node(self, node_id: str, step: DeployStep, arg: Any, start_to_close: timedelta | None = None) -> Any:
        """One step of `workflows/deployment_steps.py` on the node, in the time the list gives it."""
        timeout = start_to_close or step.timeout
        assert timeout is not None, step
        return await execute_step(step.type, node_id, arg, start_to_close=timeout,
                                  schedule_to_start=timedelta(seconds=self.input.node_schedule_to_start_seconds))

    # --- records ------------------------------------------------------------------

    def _transition(self, status: ServerStatus, message: str = "", **facts: Any) -> None:
        self.s.status = status
        self.s.seq += 1
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])
        self._record(RecordStatusInput(server_id=self.input.server_id, seq=self.s.seq, status=status,
                                       at=workflow.now(), message=message, **facts))

    def _record_report(self, report: AnalysisReport) -> None:
        self.s.seq += 1
        self._record(RecordStatusInput(server_id=self.input.server_id, seq=self.s.seq, status=self.s.status,
                                       at=workflow.now(), message=_summary(report), report=report,
                                       max_players=self.input.max_players))

    def _fail(self, status: ServerStatus, message: str, report: AnalysisReport | None = None,
              detail: dict[str, Any] | None = None) -> None:
        self.s.error = message
        self.s.status = status
        self.s.seq += 1
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])
        self._record(RecordStatusInput(server_id=self.input.server_id, seq=self.s.seq, status=status,
                                       at=workflow.now(), message=message, report=report, detail=detail))

    def _record(self, input: RecordStatusInput) -> None:
        # Records are written off the critical path; `seq` lets the DB apply them in order.
        self.records = [r for r in self.records if not r.done()]
        self.records.append(workflow.start_activity_method(
            RecordActivities.record_status, input, task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))))

    async def _flush_records(self) -> None:
        if self.records:
            await asyncio.gather(*self.records, return_exceptions=True)
            self.records = []


def _cause(err: BaseException) -> str:
    """What went wrong, in the failing step's words: `str()` of a Temporal failure would prefix
    its type (`ContainerExited: ...`), a name meant for code, not for the server's owner."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err.message if isinstance(err, FailureError) else str(err)


def _cause_detail(err: BaseException) -> dict[str, Any] | None:
    """The facts a failing step attached (exit code, the container's last lines), for the history."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, ApplicationError) and err.details and isinstance(err.details[0], dict):
        return dict(err.details[0])
    return None


def _summary(report: AnalysisReport) -> str:
    counts = {sev: sum(1 for f in report.findings if f.severity == sev) for sev in ("block", "warn", "info")}
    return f"analysis: {counts['block']} blocking, {counts['warn']} warnings, {counts['info']} notes"


def _rejection(report: AnalysisReport) -> str:
    lines = [f"{f.rule} at {f.file + ':' if f.file else ''}{f.line}:{f.column}: {f.message}"
             for f in report.blocking[:10]]
    more = len(report.blocking) - 10
    return "code rejected: " + "; ".join(lines) + (f"; and {more} more" if more > 0 else "")
