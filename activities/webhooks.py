"""Control activities of webhooks: one signed delivery attempt with its log, a delivery's end, the
node-liveness sweep."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from temporalio import activity

from core.db.models import Node, NodeLiveness, Webhook, WebhookAttempt, WebhookDelivery
from core.db.session import SessionFactory, shielded
from core.events import EventEmitter
from core.settings import Settings
from core.webhooks import (
    SIGNATURE_HEADER,
    USER_AGENT,
    AttemptDeliveryInput,
    AttemptDeliveryResult,
    AttemptOutcome,
    DeliveryStatus,
    FinishDeliveryInput,
    FinishDeliveryResult,
    PruneWebhookLogInput,
    PruneWebhookLogResult,
    SecretUnreadable,
    SweepNodeLivenessInput,
    SweepNodeLivenessResult,
    body_bytes,
    open_secret,
    sign,
)
from core.webhooks_net import (
    AddressPolicy,
    Resolver,
    WebhookTargetRefused,
    WebhookTargetUnresolvable,
    post,
    resolve_target,
    system_resolver,
)

MAX_ERROR_CHARS = 500
STREAK_GAP = timedelta(days=1)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def node_is_live(node: Node, now: datetime) -> bool:
    """The API's liveness rule (api/routes/nodes.py `is_online`): a heartbeat within three intervals."""
    return node.last_online is not None and now - _aware(node.last_online) <= timedelta(
        seconds=3 * node.heartbeat_seconds)


class WebhookActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, events: EventEmitter,
                 http: httpx.AsyncClient, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.sessions = sessions
        self.events = events
        self.http = http
        self.resolver = resolver
        self.policy = AddressPolicy.from_settings(settings)

    @classmethod
    def create(cls, settings: Settings, sessions: SessionFactory, events: EventEmitter) -> WebhookActivities:
        """With an HTTP client of their own that follows no redirect and ignores proxy variables
        (a proxy would connect to the name again, not to the address that was checked)."""
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        return cls(settings, sessions, events, http)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.attempt_webhook_delivery, self.finish_webhook_delivery, self.sweep_node_liveness,
                self.prune_webhook_log]

    async def close(self) -> None:
        await self.http.aclose()

    # --- deliveries ---------------------------------------------------------------------------

    @activity.defn(name="attempt_webhook_delivery")
    async def attempt_webhook_delivery(self, input: AttemptDeliveryInput) -> AttemptDeliveryResult:
        """POST the signed event once to the webhook's checked address and log the attempt.

        A receiver's failure is a result (the workflow waits and tries again), not an activity error."""
        async with self.sessions() as session:
            hook = await session.get(Webhook, input.webhook_id)
            delivery = await session.get(WebhookDelivery, input.delivery_id)
        if hook is None or delivery is None:
            return AttemptDeliveryResult(outcome=AttemptOutcome.GONE, error="the webhook was deleted")
        if delivery.status == DeliveryStatus.DELIVERED:
            return AttemptDeliveryResult(outcome=AttemptOutcome.DELIVERED, status_code=delivery.last_status_code)
        if not hook.enabled:
            return AttemptDeliveryResult(outcome=AttemptOutcome.GONE,
                                         error=f"the webhook is disabled: {hook.disabled_reason or 'by its owner'}")
        body = body_bytes(input.event)
        try:
            secret = open_secret(self.settings.secret_key, hook.secret)
        except SecretUnreadable as exc:  # no retry can sign it: the owner sees why in the attempt log
            result = AttemptDeliveryResult(outcome=AttemptOutcome.REFUSED, error=f"cannot sign the delivery: {exc}")
            await shielded(self._log_attempt(input, result))
            return result
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   SIGNATURE_HEADER: sign(secret, body, int(time.time())),
                   "X-GSF-Event": input.event.type.value, "X-GSF-Event-Id": input.event.id,
                   "X-GSF-Delivery": delivery.id, "X-GSF-Attempt": str(input.attempt)}
        status_code: int | None = None
        latency_ms: float | None = None
        error: str | None
        try:
            # Checked again now, after resolving: the name may point somewhere else than at creation.
            target = await resolve_target(hook.url, self.policy, self.resolver)
        except WebhookTargetUnresolvable as exc:
            outcome, error = AttemptOutcome.FAILED, exc.detail
        except WebhookTargetRefused as exc:
            outcome, error = AttemptOutcome.REFUSED, exc.detail
        else:
            started = time.monotonic()
            try:
                status_code = await post(self.http, target, body, headers, input.timeout_seconds)
                error = None if 200 <= status_code < 300 else f"the receiver answered HTTP {status_code}"
            except httpx.TimeoutException:
                error = f"no answer from {target.address} within {input.timeout_seconds:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__} talking to {target.address}: {exc}"
            latency_ms = round((time.monotonic() - started) * 1000, 2)
            outcome = AttemptOutcome.DELIVERED if error is None else AttemptOutcome.FAILED
        result = AttemptDeliveryResult(outcome=outcome, status_code=status_code, latency_ms=latency_ms,
                                       error=error[:MAX_ERROR_CHARS] if error else None)
        await shielded(self._log_attempt(input, result))
        return result

    async def _log_attempt(self, input: AttemptDeliveryInput, result: AttemptDeliveryResult) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            delivery = await session.get(WebhookDelivery, input.delivery_id)
            hook = await session.get(Webhook, input.webhook_id)
            if delivery is None or hook is None:
                return
            logged = await session.scalar(select(WebhookAttempt.id).where(
                WebhookAttempt.delivery_id == delivery.id, WebhookAttempt.attempt == input.attempt))
            if logged is None:
                session.add(WebhookAttempt(delivery_id=delivery.id, attempt=input.attempt, at=now,
                                           status_code=result.status_code, latency_ms=result.latency_ms,
                                           error=result.error))
            delivery.attempts = max(delivery.attempts, input.attempt)
            delivery.last_status_code, delivery.last_error = result.status_code, result.error
            delivery.updated_at = now
            if result.outcome == AttemptOutcome.DELIVERED:
                delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED.value, now
                hook.failing_since, hook.last_success_at = None, now
            else:
                # The days must be consecutive: a whole day without a failed attempt starts a new streak.
                if hook.failing_since is None or (hook.last_failure_at is not None
                                                  and now - _aware(hook.last_failure_at) > STREAK_GAP):
                    hook.failing_since = now
                hook.last_failure_at = now
                if hook.enabled and now - _aware(hook.failing_since) >= timedelta(
                        days=self.settings.webhook_disable_after_days):
                    days = self.settings.webhook_disable_after_days
                    hook.enabled, hook.disabled_at = False, now
                    hook.disabled_reason = (
                        f"disabled automatically: every delivery failed for {days:g} day(s) in a row, since "
                        f"{_aware(hook.failing_since).isoformat(timespec='seconds')}; last error: {result.error}")
                    activity.logger.warning("webhook %s disabled: %s", hook.id, hook.disabled_reason)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()  # a retried attempt raced its first run: that one is logged

    @activity.defn(name="finish_webhook_delivery")
    async def finish_webhook_delivery(self, input: FinishDeliveryInput) -> FinishDeliveryResult:
        """Close a delivery that will not get through (retries ran out, refused, or its webhook is gone)."""
        return await shielded(self._finish(input))

    async def _finish(self, input: FinishDeliveryInput) -> FinishDeliveryResult:
        async with self.sessions() as session:
            delivery = await session.get(WebhookDelivery, input.delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.PENDING:
                return FinishDeliveryResult(applied=False)
            delivery.status = input.status.value
            if input.error:
                delivery.last_error = input.error[:MAX_ERROR_CHARS]
            delivery.updated_at = datetime.now(UTC)
            await session.commit()
            return FinishDeliveryResult(applied=True)

    @activity.defn(name="prune_webhook_log")
    async def prune_webhook_log(self, input: PruneWebhookLogInput) -> PruneWebhookLogResult:
        """Drop finished deliveries (their attempts go with them) older than the log's retention."""
        return await shielded(self._prune())

    async def _prune(self) -> PruneWebhookLogResult:
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.webhook_log_retention_days)
        async with self.sessions() as session:
            result = await session.execute(delete(WebhookDelivery).where(
                WebhookDelivery.status != DeliveryStatus.PENDING.value, WebhookDelivery.updated_at < cutoff))
            await session.commit()
        return PruneWebhookLogResult(deleted=int(getattr(result, "rowcount", 0) or 0))

    # --- node liveness -----------------------------------------------------------------------

    @activity.defn(name="sweep_node_liveness")
    async def sweep_node_liveness(self, input: SweepNodeLivenessInput) -> SweepNodeLivenessResult:
        """Compare each node's heartbeat with the liveness last announced; announce the changes
        (node.online / node.offline) and mark lapsed nodes offline (DESIGN §5)."""
        return await shielded(self._sweep())

    async def _sweep(self) -> SweepNodeLivenessResult:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            nodes = list((await session.scalars(select(Node))).all())
            known = {row.node_id: row for row in (await session.scalars(select(NodeLiveness))).all()}
        changes: list[tuple[Node, bool, int, NodeLiveness | None]] = []
        for node in nodes:
            live = node_is_live(node, now)
            row = known.get(node.id)
            if row is None:
                # First sight: a live node is announced; one never seen alive stays quiet.
                changes.append((node, live, 1 if live else 0, None))
            elif row.online != live:
                changes.append((node, live, row.seq + 1, row))
        # Announce first, then remember: if remembering fails, the retry announces the same (seq-derived)
        # events again and their ids de-duplicate them.
        result = SweepNodeLivenessResult()
        for node, live, seq, _ in changes:
            if seq:
                await self.events.node_transition(node, live, seq, now)
                (result.went_online if live else result.went_offline).append(node.id)
        async with self.sessions() as session:
            for node, live, seq, row in changes:
                if row is None:
                    session.add(NodeLiveness(node_id=node.id, online=live, seq=seq, changed_at=now))
                else:
                    await session.execute(update(NodeLiveness).where(
                        NodeLiveness.node_id == node.id, NodeLiveness.seq == row.seq).values(
                        online=live, seq=seq, changed_at=now))
            for node in nodes:
                if node.online and not node_is_live(node, now):
                    # Only if no heartbeat came in since this sweep looked.
                    await session.execute(update(Node).where(
                        Node.id == node.id, Node.last_online == node.last_online).values(online=False))
            gone = set(known) - {n.id for n in nodes}
            if gone:
                await session.execute(delete(NodeLiveness).where(NodeLiveness.node_id.in_(gone)))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()  # another sweep recorded the first sight meanwhile
        return result
