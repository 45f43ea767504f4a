"""Heartbeats that carry only the rooms that changed (issue #22): a server with 5,000 idle rooms
listed every room in every heartbeat (about 1 MB, and a Redis script walking every room each
round). The relay now remembers, per server, the rooms the matchmaker last accepted, and sends a
delta against them (`rooms_delta`): new and changed rooms, the ended ones by status, and the first
room always (it carries the server's own seats). A full list goes again every `full_every`
rounds, after any heartbeat the matchmaker did not accept, and when the server's registration
changed (another generation: the matchmaker's view may have been reset), so whatever the
matchmaker lost or dropped on its own is put right within one full round."""

from __future__ import annotations

from typing import Any

FULL_EVERY = 15  # rounds between full lists: 30 s at the agent's 2 s heartbeat


class HeartbeatDeltas:
    def __init__(self, full_every: int = FULL_EVERY) -> None:
        self.full_every = full_every
        # server id -> (generation, rooms by id) as last accepted by the matchmaker
        self._held: dict[str, tuple[int | None, dict[str, Any]]] = {}
        self._rounds: dict[str, int] = {}  # deltas sent since the last full list
        self._sent: dict[str, dict[str, Any]] = {}  # rooms by id of the heartbeat in flight

    def shrink(self, beat: dict[str, Any]) -> dict[str, Any]:
        """The heartbeat to send for `beat` (a full one from the relay's poll)."""
        server_id, rooms = beat["server_id"], beat.get("rooms")
        if not isinstance(rooms, list):
            return beat
        now = {r["room_id"]: r for r in rooms}
        self._sent[server_id] = now
        held = self._held.get(server_id)
        if held is None or self._rounds.get(server_id, 0) >= self.full_every:
            self._rounds[server_id] = 0
            return beat
        self._rounds[server_id] = self._rounds.get(server_id, 0) + 1
        before = held[1]
        changed = [r for rid, r in now.items() if rid == server_id or before.get(rid) != r]
        ended = [{"room_id": rid, "status": "disposed"} for rid in before if rid not in now]
        # The top-level player ids are the whole server's (5,000 rooms: ~180 kB); with a rooms list
        # the matchmaker reads the first room's from its entry, so a delta leaves them out.
        return {**beat, "rooms": changed + ended, "rooms_delta": True, "player_ids": None}

    def accepted(self, server_id: str, generation: int | None) -> None:
        """The matchmaker accepted the heartbeat in flight for `server_id`."""
        sent = self._sent.pop(server_id, None)
        held = self._held.get(server_id)
        if sent is None or (held is not None and held[0] != generation):
            self.forget(server_id)  # registered again meanwhile: a full list next round
            return
        self._held[server_id] = (generation, sent)

    def forget(self, server_id: str) -> None:
        """Send `server_id`'s next heartbeat in full."""
        self._held.pop(server_id, None)
        self._sent.pop(server_id, None)
        self._rounds.pop(server_id, None)

    def keep_only(self, server_ids: set[str]) -> None:
        """Forget servers no longer on the node."""
        for gone in set(self._held) - server_ids:
            self.forget(gone)
