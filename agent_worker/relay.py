"""The matchmaker relay: polls each game container's `/status` and relays the rooms' status to the
matchmaker in one batch heartbeat, registering again a room the matchmaker no longer knows; a
change of player count goes to the server's workflow as a signal, and rooms created and ended to
the webhooks (agent_worker/room_events.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from docker.models.containers import Container

from activities.containers import ContainerActivities, container_port
from activities.matchmaking import with_node_region
from agent_worker.heartbeat_deltas import HeartbeatDeltas
from agent_worker.room_events import RoomEvents
from core import security
from core.contracts import PlayersReport
from core.settings import Settings

log = logging.getLogger("gsf.agent")

Poll = Callable[[Container, httpx.AsyncClient], Awaitable[dict[str, Any] | None]]
# What the matchmaker takes of each entry of /status `rooms` (issue #22); the rest stays here.
ROOM_FIELDS = ("room_id", "players", "player_ids", "max_players", "locked", "metadata", "options",
               "created_at", "status", "reason")


def rooms_of(status: dict[str, Any]) -> dict[str, Any]:
    """The `rooms` list and `max_rooms` of a runtime's status, for a heartbeat; nothing from an
    older runtime that has neither (the matchmaker then reads the top-level fields as before)."""
    out: dict[str, Any] = {}
    rooms = status.get("rooms")
    if isinstance(rooms, list):
        out["rooms"] = [{k: r[k] for k in ROOM_FIELDS if k in r} for r in rooms
                        if isinstance(r, dict) and r.get("room_id")]
    max_rooms = status.get("max_rooms")
    if isinstance(max_rooms, int) and not isinstance(max_rooms, bool) and max_rooms >= 1:
        out["max_rooms"] = max_rooms
    return out


class Relay:
    def __init__(self, settings: Settings, node_id: str, headers: dict[str, str],
                 containers: ContainerActivities, signal: Callable[[str, Any, Any], Awaitable[None]],
                 room_events: RoomEvents | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.headers = headers  # the node credential's dict, renewed in place
        self.containers = containers  # its `expected_stops`: containers stopped on purpose
        self._signal = signal  # (server_id, signal, argument): a signal to the server's workflow
        self._players: dict[str, int] = {}
        # Rooms created and ended, compared round to round (None: nobody sends them, as in the bench).
        self.room_events = room_events
        # Whose rooms the relay speaks for: containers the agent found at its first round (adopted),
        # and those the server's workflow registered through this agent (server id -> port). A
        # container a workflow is still starting (a restart: restoring its durable rooms) is left to
        # the workflow's `register` step: a heartbeat would list the room before it is restored (with
        # the old address), and a re-registration would race the step's own (409, a retry later).
        self.adopted: set[str] | None = None
        self.listed: dict[str, int] = {}
        # Each server's rooms as the matchmaker holds them: heartbeats carry what changed.
        self.deltas = HeartbeatDeltas()

    def mark_listed(self, server_id: str, ws_url: str | None) -> None:
        """The `register` step listed the server at `ws_url` (None: deregistered)."""
        port = urllib.parse.urlsplit(ws_url).port if ws_url else None
        if port:
            self.listed[server_id] = port
        else:
            self.listed.pop(server_id, None)

    def speaks_for(self, c: Container) -> bool:
        if self.adopted is not None and c.id in self.adopted:
            return True
        port = self.listed.get(c.labels.get("gsf.server_id", ""))
        return port is not None and port == container_port(c)

    async def relay(self, containers: list[Container], probe: httpx.AsyncClient,
                    mm: httpx.AsyncClient, poll: Poll | None = None) -> None:
        """Poll every game container's status, then relay them all in one batch heartbeat."""
        if self.adopted is None:
            self.adopted = {c.id for c in containers}
        here = {c.labels.get("gsf.server_id", "") for c in containers}
        if self.room_events is not None:
            self.room_events.forget(here)
        self.deltas.keep_only(here)
        containers = [c for c in containers if self.speaks_for(c)]
        poll = poll or self.poll
        polled = await asyncio.gather(*(poll(c, probe) for c in containers))
        beats = {beat["server_id"]: (c, beat) for c, beat in zip(containers, polled, strict=True)
                 if beat is not None}
        if not beats:
            return
        resp = await mm.post("/heartbeats", json={"heartbeats": [self.deltas.shrink(b) for _, b in beats.values()]},
                             headers=self.headers)
        if resp.status_code in (413, 422):
            # One status the matchmaker refuses (a game's oversized metadata, say), or a batch too
            # large as a whole, must not silence the node's other rooms: this round, each goes on its own.
            log.warning("matchmaker refused the heartbeat batch: %s %s", resp.status_code, resp.text[:300])
            for c, beat in beats.values():
                self.deltas.forget(beat["server_id"])
                one = await mm.put(f"/servers/{beat['server_id']}/heartbeat", headers=self.headers,
                                   json={k: v for k, v in beat.items() if k != "server_id"})
                if one.status_code == 404 and beat["ready"] and c.id not in self.containers.expected_stops:
                    await self.reregister(c, beat, mm)
            return
        if resp.status_code != 200:
            log.warning("matchmaker heartbeats: %s %s", resp.status_code, resp.text[:200])
            return
        for result in resp.json().get("results", []):
            c, beat = beats[result["server_id"]]
            if result["status"] == 200:
                self.deltas.accepted(result["server_id"], result.get("generation"))
            else:
                self.deltas.forget(result["server_id"])
            if result["status"] == 404 and beat["ready"] and c.id not in self.containers.expected_stops:
                await self.reregister(c, beat, mm)
            elif result["status"] != 200:
                log.warning("matchmaker heartbeat for %s: %s %s", result["server_id"],
                            result["status"], result.get("problem"))

    async def poll(self, c: Container, probe: httpx.AsyncClient) -> dict[str, Any] | None:
        """A container's heartbeat from its status endpoint, or None if it does not answer."""
        server_id = c.labels.get("gsf.server_id", "")
        port = container_port(c)
        if not server_id or not port or c.id in self.containers.expected_stops:
            return None
        key = security.agent_key(self.settings.secret_key, server_id)
        try:
            resp = await probe.get(f"http://{self.settings.publish_host}:{port}/status",
                                   headers={"Authorization": f"Bearer {key}"})
            status = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            status = None
        if not isinstance(status, dict):
            return None
        if self.room_events is not None:
            self.room_events.observe(server_id, status.get("rooms"))
        players = int(status.get("players", 0))
        if self._players.get(server_id) != players:
            self._players[server_id] = players
            await self._signal(server_id, "report_players", PlayersReport(players=players))
        return {"server_id": server_id, "players": players,
                "max_players": int(status.get("max_players", 0)),
                "player_ids": list(status.get("player_ids") or []),
                "metadata": status.get("metadata") or {}, "locked": bool(status.get("locked", False)),
                # Not ready while the game loads (onCreate): the room is not listed before then.
                "ready": bool(status.get("ready", True)),
                # The game process: another one (a restart) releases the seats held for the last.
                "instance": str(status["instance"])[:64] if status.get("instance") else None,
                **rooms_of(status)}

    async def status_of(self, server_id: str, ws_url: str) -> dict[str, Any] | None:
        """A game's /status, found through the port of its ws_url (published on this node)."""
        port = urllib.parse.urlsplit(ws_url).port
        if not port:
            return None
        key = security.agent_key(self.settings.secret_key, server_id)
        try:
            async with httpx.AsyncClient(timeout=2) as probe:
                resp = await probe.get(f"http://{self.settings.publish_host}:{port}/status",
                                       headers={"Authorization": f"Bearer {key}"})
            status = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return status if isinstance(status, dict) else None

    async def reregister(self, c: Container, beat: dict[str, Any], mm: httpx.AsyncClient) -> None:
        """The matchmaker restarted (in-process store) or expired the room: register it again."""
        server_id, port = beat["server_id"], container_port(c)
        registration = {
            "server_id": server_id, "name": c.labels.get("gsf.name", server_id),
            "game": c.labels.get("gsf.game", ""), "owner_id": c.labels.get("gsf.owner_id", ""),
            "node_id": self.node_id, "ws_url": f"ws://{self.settings.public_host}:{port}/ws",
            "max_players": int(c.labels.get("gsf.max_players") or beat["max_players"] or 0),
            "labels": with_node_region(json.loads(c.labels.get("gsf.labels", "{}")), self.settings.node_labels),
            "max_rooms": int(beat.get("max_rooms") or c.labels.get("gsf.max_rooms") or 1),
        }
        resp = await mm.post("/servers", json=registration, headers=self.headers)
        if resp.status_code not in (200, 201):
            log.warning("re-registering %s: %s %s", server_id, resp.status_code, resp.text[:200])
            return
        single = {k: v for k, v in beat.items() if k != "server_id"}
        single["generation"] = resp.json().get("generation")
        resp = await mm.put(f"/servers/{server_id}/heartbeat", json=single, headers=self.headers)
        if resp.status_code == 200:
            log.info("re-registered %s with the matchmaker", server_id)
