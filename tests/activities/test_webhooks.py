"""The webhook activities (activities/webhooks.py). Automatic disabling counts consecutive days of
failures: a success, or a whole day without a failed attempt, starts the count again (the attempt log
on a real database, both SQLite and PostgreSQL). The deliveries end to end: tests/webhooks/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import WebhookActivities
from core.db.models import User, Webhook, WebhookDelivery
from core.db.session import SessionFactory
from core.events import EventEmitter
from core.settings import Settings
from core.webhooks import (
    AttemptDeliveryInput,
    AttemptDeliveryResult,
    AttemptOutcome,
    EventType,
    WebhookEvent,
)


async def test_consecutive_failed_days_disable_and_gaps_or_successes_reset(
        sessions: SessionFactory, settings: Settings, temporal_env: WorkflowEnvironment) -> None:
    s = settings.model_copy(update={"webhook_disable_after_days": 3.0})
    now = datetime.now(UTC)
    async with sessions() as session:
        user = User(email="dev@example.com")
        session.add(user)
        await session.flush()
        hook = Webhook(owner_id=user.id, url="http://x", events=["server.running"], secret="s" * 20)
        session.add(hook)
        await session.flush()
        delivery = WebhookDelivery(webhook_id=hook.id, event_id="evt_1", event_type="server.running",
                                   workflow_id="w")
        session.add(delivery)
        await session.commit()
    event = WebhookEvent(id="evt_1", type=EventType.SERVER_RUNNING, time=now, resource={})
    failed = AttemptDeliveryResult(outcome=AttemptOutcome.FAILED, status_code=503, latency_ms=3.0,
                                   error="the receiver answered HTTP 503")
    async with httpx.AsyncClient() as http:
        acts = WebhookActivities(s, sessions, EventEmitter(sessions, temporal_env.client, s), http)
        attempt = 0

        async def log(result: AttemptDeliveryResult, failing_since: timedelta | None,
                      last_failure: timedelta | None) -> Webhook:
            nonlocal attempt
            async with sessions() as session:
                row = await session.get(Webhook, hook.id)
                assert row is not None
                row.failing_since = now - failing_since if failing_since is not None else None
                row.last_failure_at = now - last_failure if last_failure is not None else None
                await session.commit()
            attempt += 1
            await acts._log_attempt(AttemptDeliveryInput(webhook_id=hook.id, delivery_id=delivery.id,
                                                         attempt=attempt, event=event), result)
            async with sessions() as session:
                row = await session.get(Webhook, hook.id)
                assert row is not None
                return row

        first = await log(failed, None, None)
        assert first.enabled, "a first failure starts the streak"
        assert first.failing_since is not None, "a first failure starts the streak"
        gap = await log(failed, timedelta(days=4), timedelta(days=2))
        assert gap.enabled, "a day without failures in between: the streak starts again"
        assert gap.failing_since is not None
        assert now - gap.failing_since.replace(tzinfo=gap.failing_since.tzinfo or UTC) < timedelta(minutes=1)
        ok = await log(AttemptDeliveryResult(outcome=AttemptOutcome.DELIVERED, status_code=200, latency_ms=2.0),
                       timedelta(days=4), timedelta(hours=1))
        assert ok.enabled
        assert ok.failing_since is None
        assert ok.last_success_at is not None
        young = await log(failed, timedelta(days=2), timedelta(hours=1))
        assert young.enabled, "two days of failures are not three"
        disabled = await log(failed, timedelta(days=3, minutes=1), timedelta(hours=1))
        assert not disabled.enabled
        assert disabled.disabled_at is not None
        assert disabled.disabled_reason is not None
        assert disabled.disabled_reason.startswith("disabled automatically: every delivery failed for 3 day(s)")
        assert disabled.disabled_reason.endswith("last error: the receiver answered HTTP 503")
    async with sessions() as session:
        logged = await session.get(WebhookDelivery, delivery.id)
        assert logged is not None
        assert logged.attempts == attempt
        assert logged.status == "delivered"
