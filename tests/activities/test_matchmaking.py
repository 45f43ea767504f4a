"""The matchmaker activities (activities/matchmaking.py) against a real matchmaker, as the node
agent runs them: a registration lists the server at once with what its game reports and its node's
region, a deregistration takes it off the list (twice is fine), and a refused one is not retried."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.matchmaking import MatchmakingActivities
from core.contracts import DeregisterServerInput, RegisterServerInput
from tests.clients.platform import NODE, NODE_TOKEN, LocalPlatform

NODE_HEADERS = {"Authorization": f"Bearer {NODE_TOKEN}"}


def registration(**labels: str) -> RegisterServerInput:
    sid = uuid.uuid4().hex[:16]
    return RegisterServerInput(server_id=sid, owner_id="o1", name="duel", game="duel", node_id=NODE,
                               ws_url=f"ws://127.0.0.1:9/{sid}", max_players=2, labels=labels)


async def game_status(server_id: str, ws_url: str) -> dict[str, Any]:
    """What the agent's relay reads from the game's /status."""
    return {"players": 1, "metadata": {"map": "dust"}, "locked": False, "instance": "i-1"}


async def test_register_lists_the_server_and_deregister_takes_it_off(local_platform: LocalPlatform) -> None:
    told: list[tuple[str, str | None]] = []
    env = ActivityEnvironment()
    async with httpx.AsyncClient(base_url=local_platform.url, timeout=5) as http:
        acts = MatchmakingActivities(http, NODE_HEADERS, status=game_status,
                                     listed=lambda sid, url: told.append((sid, url)), node_labels={"region": "eu"})
        first, second = registration(), registration(region="us")
        for reg in (first, second):
            await env.run(acts.register_with_matchmaker, reg)
        for reg, region in ((first, "eu"), (second, "us")):  # the deployment's own region wins
            room = (await http.get(f"/rooms/{reg.server_id}")).json()
            assert (room["ready"], room["players"], room["metadata"]) == (True, 1, {"map": "dust"})
            assert room["labels"] == {"region": region}
        assert told == [(first.server_id, first.ws_url), (second.server_id, second.ws_url)]

        for _ in range(2):
            await env.run(acts.deregister_from_matchmaker, DeregisterServerInput(server_id=first.server_id))
        assert (await http.get(f"/rooms/{first.server_id}")).status_code == 404
        assert told[-2:] == [(first.server_id, None)] * 2
        await env.run(acts.deregister_from_matchmaker, DeregisterServerInput(server_id=second.server_id))

        stranger = MatchmakingActivities(http, {"Authorization": "Bearer gsfn_not_a_node"})
        with pytest.raises(ApplicationError) as refused:
            await env.run(stranger.register_with_matchmaker, registration())
        assert (refused.value.type, refused.value.non_retryable) == ("RegistrationRefused", True)
