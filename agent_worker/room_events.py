"""Rooms' lifecycle for webhooks (issue #22): the relay's successive `/status` rounds of a server,
compared, give the rooms created and ended there; only those transitions are queued, and sent in
batches to the API (`POST /api/v1/agent/rooms/events`), which raises the owner's room.* events.

Bounds: one small entry per room seen (its status and players), never a copy of the list; at most
MAX_BACKLOG transitions wait for the API (beyond that the oldest are dropped, with a log line); one
request carries at most BATCH.

The first sight of a server is a baseline: its rooms created before this agent process started are
recorded, not sent (after an agent restart, a server with 5,000 rooms sends nothing), and those created
since are new. A room first seen already ended is sent only if it ended `failed` (the runtime lists an
ended room for a minute, so a failure during an agent restart still alerts; the event id is the room's
and the status's, so one reported before the restart is not delivered twice) or was created since.
A room that is gone from `/status` without an end status (its server crashed or was stopped) is
forgotten silently: server.failed / server.stopped say it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger("gsf.agent")

PATH = "/api/v1/agent/rooms/events"
MAX_BACKLOG = 10_000  # transitions waiting for the API (a few MB at most)
BATCH = 100  # transitions per request (the API takes 500)
MAX_REASON = 1000  # characters of an end reason (the API's limit)
OPEN = "open"  # a live room's status in the runtime's `/status`; any other is an end
# Answers after which a batch is sent again later; any other (403: a server placed elsewhere,
# 422) would be the same the next time, so the batch is dropped with a log line.
RETRY_STATUSES = frozenset({401, 408, 429})


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _stamp(seconds: Any) -> str | None:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < 1e11:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    return None


class RoomEvents:
    """The rooms seen on this node's servers, and the transitions waiting to be sent."""

    def __init__(self, started_at: float | None = None, max_backlog: int = MAX_BACKLOG, batch: int = BATCH) -> None:
        # Rooms created before this moment (the runtime's clock: the same host's) are a baseline.
        self.started_at = time.time() if started_at is None else started_at
        self.max_backlog = max_backlog
        self.batch = batch
        self.seen: dict[str, dict[str, tuple[str, int]]] = {}  # server id -> room id -> (status, players)
        self.backlog: deque[tuple[int, dict[str, Any]]] = deque()  # (number, transition), oldest first
        self.numbered = 0
        self.counts = {"queued": 0, "sent": 0, "dropped": 0, "refused": 0}

    # --- observing -----------------------------------------------------------------------------

    def observe(self, server_id: str, rooms: Any, now: float | None = None) -> int:
        """Compare a server's `/status` `rooms` with the last round's and queue what changed; how many.
        Nothing for an older runtime without a `rooms` list."""
        if not isinstance(rooms, list):
            return 0
        known = self.seen.get(server_id)
        at = datetime.fromtimestamp(time.time() if now is None else now, UTC).isoformat()
        current: dict[str, tuple[str, int]] = {}
        queued = dropped = 0
        for entry in rooms:
            room_id = entry.get("room_id") if isinstance(entry, dict) else None
            if not isinstance(room_id, str) or not room_id:
                continue
            status = str(entry.get("status") or OPEN)[:32]
            players = _count(entry.get("players"))
            before = known.get(room_id) if known is not None else None
            created = entry.get("created_at")
            new = (before is None and known is not None) or (
                known is None and isinstance(created, int | float) and created >= self.started_at)
            if status == OPEN:
                current[room_id] = (status, players)
                if new:
                    dropped += self._queue({"server_id": server_id, "room_id": room_id, "event": "created",
                                            "status": status, "players": players, "at": _stamp(created) or at})
                    queued += 1
                continue
            # Ended: the players it had when last seen open (the runtime has closed them by now).
            last = before[1] if before is not None else players
            current[room_id] = (status, last)
            if (before is not None and before[0] == OPEN) or new or (known is None and status == "failed"):
                reason = entry.get("reason")
                dropped += self._queue({"server_id": server_id, "room_id": room_id, "event": "ended",
                                        "status": status, "players": last, "at": at,
                                        "reason": str(reason)[:MAX_REASON] if reason is not None else None})
                queued += 1
        self.seen[server_id] = current
        if dropped:
            log.warning("room events: the backlog is full (%d); dropped the %d oldest", self.max_backlog, dropped)
        return queued

    def forget(self, server_ids: set[str]) -> None:
        """Keep the rooms of these servers only (the node's containers): the others are gone."""
        for sid in [sid for sid in self.seen if sid not in server_ids]:
            del self.seen[sid]

    def _queue(self, transition: dict[str, Any]) -> int:
        dropped = 0
        while len(self.backlog) >= self.max_backlog:
            self.backlog.popleft()
            dropped += 1
        self.numbered += 1
        self.backlog.append((self.numbered, transition))
        self.counts["queued"] += 1
        self.counts["dropped"] += dropped
        return dropped

    # --- sending --------------------------------------------------------------------------------

    async def flush(self, api: httpx.AsyncClient, headers: dict[str, str]) -> None:
        """Send the backlog, oldest first, a batch a request; what the API could not take now (no
        answer, 5xx, 401 while the token is renewed) waits for the next round."""
        while self.backlog:
            batch = list(itertools.islice(self.backlog, self.batch))
            try:
                resp = await api.post(PATH, json={"events": [t for _, t in batch]}, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("room events: %s (%d waiting)", exc, len(self.backlog))
                return
            if resp.status_code >= 500 or resp.status_code in RETRY_STATUSES:
                log.warning("room events: %s %s (%d waiting)", resp.status_code, resp.text[:200], len(self.backlog))
                return
            if resp.status_code == 200:
                self.counts["sent"] += len(batch)
            else:
                self.counts["refused"] += len(batch)
                log.warning("room events: %d refused and dropped: %s %s", len(batch), resp.status_code,
                            resp.text[:300])
            # Rounds may have queued more (and dropped some of this batch) while the request ran.
            last = batch[-1][0]
            while self.backlog and self.backlog[0][0] <= last:
                self.backlog.popleft()
