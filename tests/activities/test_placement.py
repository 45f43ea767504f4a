"""`select_node` (activities/placement.py) on a real database: the least-loaded live node whose labels
match, `NoCapacity` when none fits. How placement counts a node's load and capacity, through the
nodes' heartbeats: tests/api/test_nodes_api.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.placement import PlacementActivities
from core.contracts import SelectNodeInput, SelectNodeResult
from core.db.models import Node
from core.db.session import SessionFactory
from tests.activities.conftest import add_servers

ROOMY = {"cpus": 4, "memory_mb": 4096, "max_servers": 10}


async def test_select_node_takes_the_least_loaded_live_match_or_says_no_capacity(sessions: SessionFactory) -> None:
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add_all([
            Node(id="eu-1", labels={"region": "eu"}, resources=ROOMY, online=True, last_online=now),
            Node(id="eu-2", labels={"region": "eu"}, resources=ROOMY, online=True, last_online=now),
            # Its last heartbeat is older than three of its intervals: not live, whatever `online` says.
            Node(id="eu-3", labels={"region": "eu"}, resources=ROOMY, online=True,
                 last_online=now - timedelta(seconds=60)),
            Node(id="us-1", labels={"region": "us"}, resources=ROOMY, online=True, last_online=now,
                 status="maintenance"),
        ])
        await session.commit()
    await add_servers(sessions, {"id": "busy", "status": "running", "node_id": "eu-1"})
    placement = PlacementActivities(sessions)
    env = ActivityEnvironment()

    placed = await env.run(placement.select_node, SelectNodeInput(server_id="s1", node_selector={"region": "eu"}))
    assert placed == SelectNodeResult(node_id="eu-2")
    placed = await env.run(placement.select_node, SelectNodeInput(server_id="s1", node_selector={"region": "eu"},
                                                                  exclude=["eu-2"]))
    assert placed.node_id == "eu-1"
    for selector in ({"region": "us"}, {"region": "mars"}):  # draining; no such node
        with pytest.raises(ApplicationError) as refused:
            await env.run(placement.select_node, SelectNodeInput(server_id="s1", node_selector=selector))
        assert refused.value.type == "NoCapacity"
        assert refused.value.non_retryable
