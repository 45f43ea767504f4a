"""Node-local activities that (de)register a game server with the matchmaker, as its node's agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts import DeregisterServerInput, EmptyResult, RegisterServerInput


class MatchmakingActivities:
    def __init__(self, http: httpx.AsyncClient, headers: Mapping[str, str],
                 status: Callable[[str, str], Awaitable[dict[str, Any] | None]] | None = None,
                 listed: Callable[[str, str | None], None] | None = None,
                 node_labels: Mapping[str, str] | None = None) -> None:
        # `http` has the matchmaker's base URL; injected so tests can hand in a transport.
        self.http = http
        # The node token's `Authorization` header, shared with the agent, which renews it in place.
        self.headers = headers
        # The game's own status (players, metadata, lock) by server id and ws_url, from its node.
        self.status = status
        # Told (server id, ws_url) once a server is listed, (server id, None) once it is not: the
        # agent's relay heartbeats a container the workflow started only from then on.
        self.listed = listed
        # The node's labels: its `region` is the server's unless the deployment labelled one.
        self.node_labels = dict(node_labels or {})

    @activity.defn(name="register_with_matchmaker")
    async def register_with_matchmaker(self, input: RegisterServerInput) -> EmptyResult:
        """Register the server and list it at once: `wait_ready` has just seen it healthy."""
        body = input.model_dump(mode="json")
        body["max_rooms"] = max(input.max_rooms, 1)  # an input recorded before rooms has none
        body["labels"] = with_node_region(input.labels, self.node_labels)
        resp = await self.http.post("/servers", json=body, headers=self.headers)
        if resp.status_code in (401, 403, 422):
            raise ApplicationError(f"matchmaker refused registration: {resp.text[:300]}",
                                   type="RegistrationRefused", non_retryable=True)
        resp.raise_for_status()
        # The first heartbeat lists the room with what the game reports now (its onCreate has run:
        # `wait_ready` saw it healthy), so the list never shows it without its metadata; the agent's
        # relay keeps it current from here on.
        status = await self.status(input.server_id, input.ws_url) if self.status is not None else None
        status = status or {}
        beat = {"players": int(status.get("players", 0)), "max_players": input.max_players,
                "metadata": status.get("metadata") or {}, "locked": bool(status.get("locked", False)),
                "ready": True, "generation": resp.json().get("generation")}
        if status.get("instance"):  # the game process these seats are for (a restart releases them)
            beat["instance"] = str(status["instance"])[:64]
        resp = await self.http.put(f"/servers/{input.server_id}/heartbeat", json=beat, headers=self.headers)
        resp.raise_for_status()
        if self.listed is not None:
            self.listed(input.server_id, input.ws_url)
        return EmptyResult()

    @activity.defn(name="deregister_from_matchmaker")
    async def deregister_from_matchmaker(self, input: DeregisterServerInput) -> EmptyResult:
        """Remove the server from the room list; idempotent."""
        if self.listed is not None:
            self.listed(input.server_id, None)
        resp = await self.http.delete(f"/servers/{input.server_id}", headers=self.headers)
        if resp.status_code not in (204, 404):
            resp.raise_for_status()
        return EmptyResult()


def with_node_region(labels: Mapping[str, str], node_labels: Mapping[str, str]) -> dict[str, str]:
    """A server's room-list labels with its node's `region` (what `GET /regions` and the SDKs'
    region choice read), unless the deployment named a region itself."""
    out = dict(labels)
    if "region" in node_labels and "region" not in out:
        out["region"] = node_labels["region"]
    return out
