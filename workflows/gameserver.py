"""GameServerWorkflow: one per game server, from upload to deletion (DESIGN §3)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities
    from activities.placement import PlacementActivities
    from activities.records import RecordActivities
    from analysis.contract import DEFAULT_MAX_PLAYERS
    from core.contracts import (
        AnalysisReport,
        AnalyzeCodeInput,
        CrashReport,
        DeregisterServerInput,
        EnsureImageInput,
        GameServerInput,
        GameServerState,
        PlayersReport,
        RecordStatusInput,
        RegisterServerInput,
        SelectNodeInput,
        ServerStatus,
        StartContainerInput,
        StopContainerInput,
        StopServerInput,
        StopServerResult,
        WaitReadyInput,
    )
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
from workflows.steps import NodeLost, execute_step

CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10),
                            maximum_attempts=10)
MAX_PLACEMENTS = 3
DONE = (ServerStatus.STOPPED, ServerStatus.DELETED, ServerStatus.FAILED, ServerStatus.REJECTED)


@workflow.defn(name="GameServerWorkflow")
class GameServerWorkflow:
    """Deploys, runs and tears down one game server; id `gameserver-<server_id>`.

    Updates: `stop(StopServerInput) -> StopServerResult` — stop, or with `delete` stop and delete;
             answers once the server is stopped/deleted.
    Signals: `report_crash(CrashReport)` — sent by the node agent when the container dies.
    Queries: `state() -> GameServerState`.
    """

    @workflow.init
    def __init__(self, input: GameServerInput) -> None:
        self.input = input
        self.s = input.state.model_copy(deep=True) if input.state else GameServerState()
        self.records: list[asyncio.Task[Any]] = []
        self._idle_changed = False
        self._idle_stop = False

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

    def _idle_left(self) -> timedelta | None:
        """Time until the idle stop, or None when there is no idle timer (disabled, busy or not running)."""
        if self.input.idle_timeout_seconds <= 0 or self.s.status != ServerStatus.RUNNING or self.s.players > 0:
            return None
        since = self.s.last_activity or workflow.now()
        left = timedelta(seconds=self.input.idle_timeout_seconds) - (workflow.now() - since)
        return max(left, timedelta(0))

    @workflow.update
    async def stop(self, input: StopServerInput) -> StopServerResult:
        if input.delete:
            self.s.delete_requested = True
        else:
            self.s.stop_requested = True
        target = (ServerStatus.DELETED,) if input.delete else DONE
        await workflow.wait_condition(lambda: self.s.status in target)
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
            try:
                if idle != timedelta(0):
                    await workflow.wait_condition(
                        lambda: self.s.delete_requested or bool(self.s.crash_reports)
                        or (self.s.stop_requested and self.s.status == ServerStatus.RUNNING)
                        or workflow.info().is_continue_as_new_suggested() or self._idle_changed,
                        timeout=idle)
            except TimeoutError:
                pass  # the idle timer fired; checked just below
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
            task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=60), retry_policy=CONTROL_RETRY)
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

    async def _start_container(self, node_id: str) -> None:
        i = self.input
        assert self.s.image is not None
        started = await self._node(node_id, CONTAINER, StartContainerInput(
            server_id=i.server_id, owner_id=i.owner_id, name=i.name, game=i.game, image=self.s.image,
            max_players=i.max_players, limits=i.limits, labels=i.labels))
        self.s.container_id, self.s.host, self.s.port = started.container_id, started.host, started.port
        self.s.ws_url = started.ws_url
        await self._node(node_id, READY, WaitReadyInput(
            server_id=i.server_id, container_id=started.container_id, host=started.host, port=started.port,
            timeout_seconds=i.ready_timeout_seconds), timedelta(seconds=i.ready_timeout_seconds + 30))
        await self._node(node_id, REGISTER, RegisterServerInput(
            server_id=i.server_id, owner_id=i.owner_id, name=i.name, game=i.game, node_id=node_id,
            ws_url=started.ws_url, max_players=i.max_players, labels=i.labels))

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
            await self._start_container(self.s.node_id)
        except (ActivityError, NodeLost) as err:
            await self._cleanup_node(self.s.node_id)
            self._fail(ServerStatus.FAILED, f"restart failed: {_cause(err)}", detail=_cause_detail(err))
            return
        self._transition(ServerStatus.RUNNING, "ready after restart", container_id=self.s.container_id,
                         ws_url=self.s.ws_url, host=self.s.host, port=self.s.port)

    async def _teardown(self, delete: bool, reason: str = "") -> None:
        if self.s.status not in (ServerStatus.STOPPED,):
            self._transition(ServerStatus.STOPPING,
                             reason or ("delete requested" if delete else "stop requested"))
        if self.s.node_id:
            await self._cleanup_node(self.s.node_id, remove=delete)
        self._transition(ServerStatus.DELETED if delete else ServerStatus.STOPPED,
                         "deleted" if delete else "stopped")

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
    lines = [f"{f.rule} at {f.line}:{f.column}: {f.message}" for f in report.blocking[:10]]
    more = len(report.blocking) - 10
    return "code rejected: " + "; ".join(lines) + (f"; and {more} more" if more > 0 else "")
