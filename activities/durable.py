"""Node activity of durable rooms (issue #25): `restore_rooms` pushes the stored snapshots of a
server's durable rooms into a runtime (`POST /rooms/restore`, agent key) before the server is
listed again: after a crash restart (the same server), a node loss or a drain (another server of
the same game version, `from_server_id`). Where the snapshots come from is the node agent's
business (agent_worker/durable.py `SnapshotPuller`: its own copy and the platform database's)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from temporalio import activity

from core import security
from core.contracts import (
    EmptyResult,
    RegisterServerInput,
    RestoreAndRegisterInput,
    RestoredRoom,
    RestoreRoomsInput,
    RestoreRoomsResult,
)
from core.settings import Settings

log = logging.getLogger("gsf.agent")

RESTORE_TIMEOUT_SECONDS = 15.0


class SnapshotSource(Protocol):
    """The stored snapshots of a server's durable rooms: room id -> (seq, snapshot JSON text).
    `into`: the server they are restored into when it is another one (node loss, drain)."""

    async def stored(self, server_id: str, into: str = "") -> dict[str, tuple[int, str]]: ...


class DurableActivities:
    def __init__(self, source: SnapshotSource, settings: Settings,
                 register: Callable[[RegisterServerInput], Awaitable[EmptyResult]] | None = None) -> None:
        self.source = source
        self.settings = settings
        # The matchmaker registration (activities/matchmaking.py), for `restore_and_register`.
        self.register = register
        # (server id, port) -> the restore done by an attempt whose registration then failed: a retry
        # registers without restoring the rooms (and running their onRestore) a second time.
        self._done: dict[tuple[str, int], RestoreRoomsResult] = {}

    @activity.defn(name="restore_and_register")
    async def restore_and_register(self, input: RestoreAndRegisterInput) -> RestoreRoomsResult:
        """Restore the durable rooms, then list the server: the room is never listed unrestored.
        A failed restore is reported in the result and the server registered all the same (its
        rooms start afresh, as without durable rooms)."""
        assert self.register is not None, "the agent hands in the matchmaker registration"
        key = (input.rooms.server_id, input.rooms.port)
        result = self._done.get(key)
        if result is None:
            try:
                result = await self.restore_rooms(input.rooms)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                result = RestoreRoomsResult(error=f"{type(exc).__name__}: {exc}"[:500])
            self._done[key] = result
        await self.register(input.registration)
        self._done.pop(key, None)
        return result

    @activity.defn(name="restore_rooms")
    async def restore_rooms(self, input: RestoreRoomsInput) -> RestoreRoomsResult:
        """Restore the rooms into the runtime on `port`; each room's `onRestore` runs there."""
        origin = input.from_server_id or input.server_id
        snaps = await self.source.stored(origin, into=input.server_id if origin != input.server_id else "")
        if input.room_ids:  # a drain or a migration: the rooms sealed for this server, not its own
            wanted = set(input.room_ids)
            snaps = {rid: snap for rid, snap in snaps.items() if rid in wanted}
        if not snaps:
            return RestoreRoomsResult()
        # A rolling update: the rooms come from another game version; the runtime runs `onMigrate`.
        migrate = f',"migrate":{{"from_version":{json.dumps(input.from_version)}}}' if input.from_version else ""
        # The snapshots stay the runtime's text: joined, never parsed and encoded again.
        body = ('{"from":' + json.dumps(input.source) + migrate + ',"snapshots":['
                + ",".join(text for _, text in snaps.values()) + "]}")
        key = security.agent_key(self.settings.secret_key, input.server_id)
        async with httpx.AsyncClient(timeout=RESTORE_TIMEOUT_SECONDS) as probe:
            resp = await probe.post(f"http://{self.settings.publish_host}:{input.port}/rooms/restore",
                                    content=body, headers={"Authorization": f"Bearer {key}",
                                                           "Content-Type": "application/json"})
        resp.raise_for_status()
        answer = resp.json()
        restored = [RestoredRoom(room_id=r["room_id"], seq=int(r["seq"]), age_ms=int(r["age_ms"]),
                                 players=list(r.get("players") or [])) for r in answer.get("restored", [])]
        for r in restored:
            log.info("server %s: room %s restored from snapshot %s of %s (%s ms old)", input.server_id,
                     r.room_id, r.seq, origin, r.age_ms)
        return RestoreRoomsResult(restored=restored, skipped=list(answer.get("skipped", [])))
