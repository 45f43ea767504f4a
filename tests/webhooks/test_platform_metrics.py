"""The database-derived metrics behind the alert rules: node liveness, deployment outcomes, webhook backlog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.db.models import GameServer, Node, ServerEvent, User, Webhook, WebhookDelivery
from core.db.session import SessionFactory, create_schema, make_engine, make_session_factory
from core.platform_metrics import PlatformCollector


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    await create_schema(engine)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_gauges_follow_the_database(sessions: SessionFactory) -> None:
    now = datetime.now(UTC)
    async with sessions() as s:
        user = User(email="dev@example.com")
        s.add(user)
        await s.flush()
        s.add_all([Node(id="fresh", last_online=now - timedelta(seconds=1), heartbeat_seconds=2.0, online=True),
                   Node(id="lapsed", last_online=now - timedelta(seconds=30), heartbeat_seconds=2.0, online=True),
                   Node(id="drained", status="maintenance", last_online=None),
                   GameServer(id="s1", owner_id=user.id, name="a", game="g", source_sha256="0" * 64, max_players=2,
                              workflow_id="gameserver-s1")])
        await s.flush()
        s.add_all([ServerEvent(server_id="s1", seq=i, status=st)
                   for i, st in enumerate(["pending", "running", "failed", "running", "rejected"], 1)])
        hook = Webhook(owner_id=user.id, url="http://x", events=["server.running"], secret="s" * 20)
        off = Webhook(owner_id=user.id, url="http://y", events=["server.running"], secret="s" * 20, enabled=False)
        s.add_all([hook, off])
        await s.flush()
        s.add_all([WebhookDelivery(webhook_id=hook.id, event_id="e1", event_type="server.running", status="pending",
                                   workflow_id="w1", created_at=now - timedelta(minutes=10)),
                   WebhookDelivery(webhook_id=hook.id, event_id="e2", event_type="server.running", status="pending",
                                   attempts=2, workflow_id="w2", created_at=now - timedelta(minutes=5)),
                   WebhookDelivery(webhook_id=hook.id, event_id="e3", event_type="server.running",
                                   status="delivered", workflow_id="w3", created_at=now)])
        await s.commit()
    registry = CollectorRegistry()
    collector = PlatformCollector(registry)
    assert samples(registry) == {}, "nothing before the first refresh"
    await collector.refresh(sessions)
    got = samples(registry)
    assert got[("gsf_node_online", (("node_id", "fresh"),))] == 1
    assert got[("gsf_node_online", (("node_id", "lapsed"),))] == 0
    assert got[("gsf_node_online", (("node_id", "drained"),))] == 0
    assert got[("gsf_node_maintenance", (("node_id", "drained"),))] == 1
    assert got[("gsf_node_maintenance", (("node_id", "fresh"),))] == 0
    assert 29 < got[("gsf_node_heartbeat_age_seconds", (("node_id", "lapsed"),))] < 60
    assert ("gsf_node_heartbeat_age_seconds", (("node_id", "drained"),)) not in got, "never heard from"
    assert got[("gsf_node_heartbeat_interval_seconds", (("node_id", "fresh"),))] == 2.0
    assert got[("gsf_server_transitions_total", (("status", "running"),))] == 2
    assert got[("gsf_server_transitions_total", (("status", "failed"),))] == 1
    assert got[("gsf_server_transitions_total", (("status", "rejected"),))] == 1
    assert got[("gsf_webhook_deliveries_pending", ())] == 2
    assert got[("gsf_webhook_deliveries_stalled", ())] == 1, "only the never-attempted one"
    assert 590 < got[("gsf_webhook_oldest_pending_seconds", ())] < 700
    assert got[("gsf_webhooks", (("state", "enabled"),))] == 1
    assert got[("gsf_webhooks", (("state", "disabled"),))] == 1

    async with sessions() as s:
        await s.delete(await s.get(Node, "lapsed"))
        await s.commit()
    await collector.refresh(sessions)
    assert ("gsf_node_online", (("node_id", "lapsed"),)) not in samples(registry), "a deleted node disappears"
