"""Moving a server's durable rooms to another server (issue #25): the graceful drain of a stop, and
the migration of a fleet's rolling update. A part of `GameServerWorkflow` (a mixin: one workflow,
its steps in their own file); deterministic, as the workflow.

The order keeps every move acknowledged before the drain: the new home first (a running server of
the same version, else a new one), then the old server leaves the room list, its snapshots settle
in the store and are sealed for the target, the old container stops (players are dropped, not
ended: their SDKs reconnect), and the rooms are restored on the target, where the matchmaker lists
them with their ids. `POST /reconnect` sends the players there with a token re-signed for it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.drain import DrainActivities
    from activities.durable import DurableActivities
    from core.contracts import (
        DeregisterServerInput,
        DrainPlanInput,
        DrainTarget,
        GameServerInput,
        GameServerState,
        RestoredRoom,
        RestoreRoomsInput,
        RestoreRoomsResult,
        SealSnapshotsInput,
        SealSnapshotsResult,
        ServerStatus,
        StartDrainServerInput,
        StopContainerInput,
    )
    from core.queues import node_queue

from workflows.deployment_steps import DEREGISTER, STOP
from workflows.steps import NodeLost, execute_step

DRAIN_SETTLE_MS = 1000  # no newer snapshot stored for this long: the last changes have reached the store
DRAIN_MAX_WAIT_MS = 5000
CONTROL = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                      maximum_attempts=5)
FULL = "server-full"
MIGRATE_FULL_PATCH = "migrate-full-stays"
# A stop into a server that is gone by then leaves the server running with its rooms (it used to end them).
DRAIN_TO_GONE_PATCH = "drain-to-gone-stays"


class DrainMixin:
    """`_drain`: the rooms of a stopping server moved; `GameServerWorkflow` provides the rest."""

    input: GameServerInput
    s: GameServerState

    # Provided by GameServerWorkflow.
    def _note(self, message: str, detail: dict[str, Any]) -> None: ...
    def _transition(self, status: ServerStatus, message: str = "", **facts: Any) -> None: ...
    async def _start_container(self, node_id: str, restore: bool = False, source: str = "crash",
                               rooms: list[str] | None = None) -> None: ...

    async def _control(self, fn: Any, arg: Any, seconds: float = 30) -> Any:
        return await workflow.execute_activity_method(
            fn, arg, task_queue=self.input.control_queue, start_to_close_timeout=timedelta(seconds=seconds),
            heartbeat_timeout=timedelta(seconds=30) if seconds > 30 else None, retry_policy=CONTROL)

    async def _drain(self, node_id: str) -> bool:
        """Move the durable rooms; True when the old container is stopped (the stop is done but for
        its record) or the server runs on (`drain_to` gone, rooms a migration refused), False when
        there was nothing to move or no home for the rooms (stop as before)."""
        i = self.input
        plan = await self._control(DrainActivities.drain_plan,
                                   DrainPlanInput(server_id=i.server_id, drain_to=self.s.drain_to))
        if not plan.room_ids:
            return False
        targets: list[DrainTarget] = list(plan.targets)
        migrate = self.s.drain_version
        if not targets:
            if self.s.drain_to and workflow.patched(DRAIN_TO_GONE_PATCH):
                # It stopped since the caller checked it: the rooms stay, and the server with them
                # (nothing was deregistered yet), rather than ending them.
                self._transition(ServerStatus.RUNNING, f"not stopped: server {self.s.drain_to}, which was to "
                                 "take its durable rooms, is not running", detail={"event": "drain_failed"})
                return True
            if self.s.drain_to:
                self._note(f"durable rooms not moved: server {self.s.drain_to} is not running",
                           {"event": "drain_failed"})
                return False
            try:
                targets.append(await self._new_home(len(plan.room_ids)))
            except ActivityError as err:
                self._note(f"durable rooms not moved: no server for them: {_cause(err)}", {"event": "drain_failed"})
                return False
        self._note(f"moving {len(plan.room_ids)} durable room(s) to server {targets[0].server_id}",
                   {"event": "draining", "to": targets[0].server_id, "rooms": plan.room_ids})
        # No new players from now on; those in a game play on until the container stops.
        await self._on_node(node_id, DEREGISTER, DeregisterServerInput(server_id=i.server_id))
        sealed: SealSnapshotsResult = await self._control(DrainActivities.seal_snapshots, SealSnapshotsInput(
            server_id=i.server_id, into=targets[0].server_id, room_ids=plan.room_ids, settle_ms=DRAIN_SETTLE_MS,
            max_wait_ms=DRAIN_MAX_WAIT_MS), seconds=DRAIN_MAX_WAIT_MS / 1000 + 60)
        # The drain signal (SIGUSR2): the durable rooms' sockets are cut (no onDispose), so that their
        # players see a drop and reconnect; the other rooms end as on any stop (close code 1001, onDispose).
        await self._on_node(node_id, STOP, StopContainerInput(server_id=i.server_id, remove=False, drain=True))
        moved, left, failed = await self._restore_on(targets, list(sealed.rooms), migrate)
        if left and migrate and workflow.patched(MIGRATE_FULL_PATCH):
            # A new home would run the old version: rooms the new one has no room for stay instead.
            failed.update({rid: f"no room for it on the new version ({FULL})" for rid in left})
            left = []
        if left:  # every running server full: one more, just for them
            try:
                home = await self._new_home(len(left))
                await self._control(DrainActivities.seal_snapshots, SealSnapshotsInput(
                    server_id=targets[-1].server_id, into=home.server_id, room_ids=left, settle_ms=0))
                more, left, more_failed = await self._restore_on([home], left, migrate)
                moved += more
                failed.update(more_failed)
            except ActivityError as err:
                self._note(f"no server for {len(left)} durable room(s): {_cause(err)}", {"event": "drain_failed"})
        where = sorted({m["to"] for m in moved})
        message = (f"moved {len(moved)} durable room(s) to server {', '.join(where)}" if moved
                   else "no durable room moved")
        if left or failed:
            message += f"; {len(left) + len(failed)} not moved"
        self._note(message, {"event": "migrated" if migrate else "drained", "from_version": migrate,
                             "rooms": moved, "not_moved": left, "failed": failed, "settled": sealed.settled})
        if failed and migrate:
            await self._keep_unmigrated(node_id, targets, failed)
        return True  # stopped; or, with rooms that stay (`unmigrated`), running again

    async def _new_home(self, rooms: int) -> DrainTarget:
        """A new server of this game version with room for `rooms` more rooms, running."""
        sid = workflow.uuid4().hex[:20]
        like = self.input.model_copy(update={"state": None, "server_id": sid})
        result: DrainTarget = await self._control(
            DrainActivities.start_drain_server, StartDrainServerInput(like=like, server_id=sid, rooms=rooms),
            seconds=360)
        return result

    async def _restore_on(self, targets: list[DrainTarget], rooms: list[str], migrate: str
                          ) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
        """Restore `rooms` (sealed for `targets[0]`) on the targets in turn, each taking what fits:
        (moved, left over because every target was full, failed -> why)."""
        moved: list[dict[str, Any]] = []
        failed: dict[str, str] = {}
        left = list(rooms)
        for n, target in enumerate(targets):
            if n > 0:  # what the previous target had no room for is this one's now
                await self._control(DrainActivities.seal_snapshots, SealSnapshotsInput(
                    server_id=targets[n - 1].server_id, into=target.server_id, room_ids=left, settle_ms=0))
            try:
                result: RestoreRoomsResult = await workflow.execute_activity_method(
                    DurableActivities.restore_rooms, RestoreRoomsInput(
                        server_id=target.server_id, port=target.port, source="migrate" if migrate else "drain",
                        room_ids=left, from_version=migrate),
                    task_queue=node_queue(target.node_id),
                    schedule_to_start_timeout=timedelta(seconds=self.input.node_schedule_to_start_seconds),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3))
            except ActivityError as err:
                workflow.logger.warning("restore on %s failed: %s", target.server_id, _cause(err))
                continue
            moved += [_moved(r, target.server_id) for r in result.restored]
            full = [str(k.get("room_id")) for k in result.skipped if k.get("reason") == FULL]
            failed.update({str(k.get("room_id")): str(k.get("reason") or "")[:300]
                           for k in result.skipped if k.get("reason") != FULL})
            left = full
            if not left:
                break
        return moved, left, failed  # what is left is sealed for the last target

    async def _keep_unmigrated(self, node_id: str, targets: list[DrainTarget], failed: dict[str, str]) -> None:
        """Rooms whose new version refused them stay on this one: their snapshots back to this
        server, its container started again with them (players reconnect as after a crash)."""
        i = self.input
        for target in targets:
            await self._control(DrainActivities.seal_snapshots, SealSnapshotsInput(
                server_id=target.server_id, into=i.server_id, room_ids=list(failed), settle_ms=0))
        self.s.unmigrated = sorted(failed)
        self._transition(ServerStatus.STARTING, f"{len(failed)} durable room(s) stay on this version: "
                         + "; ".join(f"{rid}: {why}" for rid, why in sorted(failed.items()))[:1000],
                         detail={"event": "migrate_failed", "rooms": failed})
        try:
            await self._start_container(node_id, restore=True, source="migrate-failed", rooms=sorted(failed))
        except (ActivityError, NodeLost) as err:
            self._note(f"the rooms that stay could not be restored: {_cause(err)}", {"event": "restore_failed"})
            return
        self._transition(ServerStatus.RUNNING, "ready with the rooms that stay on this version",
                         container_id=self.s.container_id, ws_url=self.s.ws_url, host=self.s.host, port=self.s.port)

    async def _on_node(self, node_id: str, step: Any, arg: Any) -> Any:
        return await execute_step(step.type, node_id, arg, start_to_close=step.timeout,
                                  schedule_to_start=timedelta(seconds=self.input.node_schedule_to_start_seconds))


def _moved(room: RestoredRoom, to: str) -> dict[str, Any]:
    return {**room.model_dump(), "to": to}


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(getattr(err, "message", "") or err)
