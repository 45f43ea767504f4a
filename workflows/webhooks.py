"""WebhookDeliveryWorkflow (one per webhook and event) and PlatformSweepWorkflow (node events, log pruning)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from core.queues import WEBHOOK_DELIVERY_WORKFLOW
    from core.webhooks import (
        AttemptDeliveryInput,
        AttemptDeliveryResult,
        AttemptOutcome,
        DeliverWebhookInput,
        DeliverWebhookResult,
        DeliveryState,
        DeliveryStatus,
        FinishDeliveryInput,
        PlatformSweepInput,
        PruneWebhookLogInput,
        SweepNodeLivenessInput,
    )

# The attempt activity turns a receiver's failure into a result; its own retries cover the platform's
# hiccups (database, worker restart) within one attempt.
ATTEMPT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                            maximum_attempts=5)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
JITTER = 0.1


@workflow.defn(name=WEBHOOK_DELIVERY_WORKFLOW)
class WebhookDeliveryWorkflow:
    """Delivers one event to one webhook, at least once; id `webhook-<webhook_id>-<event_id>`.

    Each attempt POSTs the signed event (`attempt_webhook_delivery`, which logs it); after a failure the
    workflow waits on a durable timer (exponential backoff from `backoff_initial_seconds`, doubling up to
    `backoff_max_seconds`, ±10 % jitter) and tries again until `retry_seconds` after it started. It ends
    early when the target is refused at delivery time or the webhook is disabled or deleted.
    Queries: `state() -> DeliveryState`. Signals, updates: none. Cancellation ends it where it is
    (deleting a webhook cancels its pending deliveries).
    """

    @workflow.init
    def __init__(self, input: DeliverWebhookInput) -> None:
        self.input = input
        self.s = DeliveryState()

    @workflow.query
    def state(self) -> DeliveryState:
        return self.s

    @workflow.run
    async def run(self, input: DeliverWebhookInput) -> DeliverWebhookResult:
        deadline = workflow.now() + timedelta(seconds=input.retry_seconds)
        delay = input.backoff_initial_seconds
        while True:
            self.s.attempts += 1
            self.s.next_attempt_at = None
            outcome = await self._attempt()
            if outcome == AttemptOutcome.DELIVERED:
                self.s.status = DeliveryStatus.DELIVERED
                return DeliverWebhookResult(status=self.s.status, attempts=self.s.attempts)
            if outcome in (AttemptOutcome.REFUSED, AttemptOutcome.GONE):
                break
            wait = timedelta(seconds=delay * (1 + JITTER * (2 * workflow.random().random() - 1)))
            if workflow.now() + wait > deadline:
                self.s.last_error = (f"gave up after {self.s.attempts} attempt(s) in "
                                     f"{input.retry_seconds:g} s; last error: {self.s.last_error}")
                break
            self.s.next_attempt_at = workflow.now() + wait
            await workflow.sleep(wait)
            delay = min(delay * 2, input.backoff_max_seconds)
        self.s.status = DeliveryStatus.SKIPPED if outcome == AttemptOutcome.GONE else DeliveryStatus.FAILED
        await workflow.execute_activity_method(
            WebhookActivities.finish_webhook_delivery,
            FinishDeliveryInput(delivery_id=input.delivery_id, status=self.s.status, error=self.s.last_error),
            task_queue=input.control_queue,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY)
        return DeliverWebhookResult(status=self.s.status, attempts=self.s.attempts, error=self.s.last_error)

    async def _attempt(self) -> AttemptOutcome:
        i = self.input
        try:
            result: AttemptDeliveryResult = await workflow.execute_activity_method(
                WebhookActivities.attempt_webhook_delivery, AttemptDeliveryInput(
                    webhook_id=i.webhook_id, delivery_id=i.delivery_id, attempt=self.s.attempts, event=i.event,
                    timeout_seconds=i.timeout_seconds),
                task_queue=i.control_queue,
                start_to_close_timeout=timedelta(seconds=i.timeout_seconds + 30), retry_policy=ATTEMPT_RETRY)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise  # the delivery was cancelled (its webhook deleted) while an attempt ran: end here
            self.s.last_status_code, self.s.last_error = None, f"the attempt could not run: {_cause(err)}"
            return AttemptOutcome.FAILED
        self.s.last_status_code, self.s.last_error = result.status_code, result.error
        return result.outcome


@workflow.defn(name="PlatformSweepWorkflow")
class PlatformSweepWorkflow:
    """The control plane's periodic chores; id `platform-sweep-<control queue>`, one per platform.

    Every `interval_seconds`, `sweep_node_liveness` announces nodes whose heartbeat lapsed (node.offline)
    or came back (node.online) to admins' webhooks and marks lapsed nodes offline; every
    `prune_every_sweeps` sweeps, `prune_webhook_log` drops finished deliveries past their retention.
    A failed chore is logged and tried again next time. Continues as new when suggested.
    Signals, queries, updates: none.
    """

    SWEEPS_PER_RUN = 1000

    @workflow.run
    async def run(self, input: PlatformSweepInput) -> None:
        for sweep in range(self.SWEEPS_PER_RUN):
            await self._chore(input, WebhookActivities.sweep_node_liveness, SweepNodeLivenessInput())
            if sweep % input.prune_every_sweeps == 0:
                await self._chore(input, WebhookActivities.prune_webhook_log, PruneWebhookLogInput())
            await workflow.sleep(timedelta(seconds=input.interval_seconds))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(input)

    async def _chore(self, input: PlatformSweepInput, activity: Callable[[Any, Any], Awaitable[Any]],
                     arg: Any) -> None:
        try:
            await workflow.execute_activity_method(
                activity, arg, task_queue=input.control_queue,
                start_to_close_timeout=timedelta(seconds=60), retry_policy=RetryPolicy(maximum_attempts=3))
        except ActivityError as err:
            workflow.logger.warning("%s failed: %s", activity.__name__, _cause(err))


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)
