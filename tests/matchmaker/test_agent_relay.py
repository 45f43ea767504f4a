"""The node agent's heartbeat relay against the matchmaker, on both stores: a batch the
matchmaker refuses as a whole (422: one status it cannot take; 413: too large) goes out again one
heartbeat at a time, so one game cannot silence the node's other rooms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_worker.agent import Agent
from agent_worker.credentials import token_path, write_token
from matchmaker import edge
from tests.matchmaker.conftest import MM, make_settings, token_for


@dataclass
class FakeContainer:
    id: str
    labels: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize("refusal", ["one-invalid", "too-large"])
async def test_a_refused_batch_goes_out_one_heartbeat_at_a_time(mm: MM, tmp_path: Path, refusal: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    good, other = (await mm.register())["server_id"], (await mm.register())["server_id"]
    beats: dict[str, dict[str, Any]] = {
        sid: {"server_id": sid, "players": 1, "max_players": 4, "player_ids": ["p1"], "locked": False,
              "ready": True, "metadata": {"mode": "duel", "note": "x" * 3000}} for sid in (good, other)}
    if refusal == "one-invalid":
        beats[other]["metadata"] = {"blob": "x" * 200_000}  # over the matchmaker's metadata limit
    else:
        monkeypatch.setattr(edge, "MAX_BATCH_BODY_BYTES", 4000)  # both fit alone, not together
    settings = make_settings(tmp_path)
    write_token(token_path(settings, "node-a"), token_for("node-a"))  # as enrollment leaves it
    agent = Agent(settings, "node-a")
    try:
        async def poll(c: FakeContainer, probe: object) -> dict[str, Any]:
            return beats[c.id]

        monkeypatch.setattr(agent, "_poll", poll)
        batch = await mm.client.post("/heartbeats", headers=agent.headers,
                                     json={"heartbeats": list(beats.values())})
        assert batch.status_code == (422 if refusal == "one-invalid" else 413), batch.text
        await agent._relay([FakeContainer(good), FakeContainer(other)], probe=None,  # type: ignore[arg-type]
                           mm=mm.client)
    finally:
        agent.docker.close()
    listed = {room["server_id"]: room for room in await mm.listing()}
    assert good in listed
    assert listed[good]["players"] == 1
    assert listed[good]["metadata"]["mode"] == "duel"
    assert (other in listed) == (refusal == "too-large"), "only the invalid status stays out"
