"""Metrics behind deploy/prometheus/alerts.yml that only the platform database knows (node liveness,
deployment outcomes, the webhook delivery backlog), and the control worker's Temporal SDK metrics.

`PlatformCollector` is read when scraped; the API refreshes it from the database first:

    collector = PlatformCollector(registry)            # once, next to the API's other metrics
    await collector.refresh(sessions)                  # in the /metrics handler, before rendering
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.db.models import Node, ServerEvent, Webhook, WebhookDelivery
from core.db.session import SessionFactory
from core.settings import Settings
from core.webhooks import DeliveryStatus

# Statuses whose transitions are counted: deployments that came up, and the ways they end badly.
COUNTED_TRANSITIONS = ("running", "failed", "rejected")
# A pending delivery nobody has attempted after this long means no control worker is delivering.
STALLED_AFTER = timedelta(seconds=60)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class PlatformCollector(Collector):
    """Families computed by the last `refresh()`; a node that was deleted disappears from them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.families: list[Metric] = []
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield from self.families

    async def refresh(self, sessions: SessionFactory) -> None:
        now = datetime.now(UTC)
        async with sessions() as session:
            nodes = (await session.execute(select(Node.id, Node.status, Node.last_online,
                                                  Node.heartbeat_seconds))).all()
            transitions: dict[str, int] = {status: n for status, n in (await session.execute(
                select(ServerEvent.status, func.count()).where(ServerEvent.status.in_(COUNTED_TRANSITIONS))
                .group_by(ServerEvent.status))).all()}
            pending = DeliveryStatus.PENDING.value
            backlog = await session.scalar(select(func.count()).where(WebhookDelivery.status == pending)) or 0
            oldest = await session.scalar(select(func.min(WebhookDelivery.created_at))
                                          .where(WebhookDelivery.status == pending))
            stalled = await session.scalar(select(func.count()).where(
                WebhookDelivery.status == pending, WebhookDelivery.attempts == 0,
                WebhookDelivery.created_at < now - STALLED_AFTER)) or 0
            hooks: dict[bool, int] = {bool(enabled): n for enabled, n in (await session.execute(
                select(Webhook.enabled, func.count()).group_by(Webhook.enabled))).all()}

        online = GaugeMetricFamily("gsf_node_online", "1 if the node's agent heartbeats in time, else 0.",
                                   labels=["node_id"])
        maintenance = GaugeMetricFamily("gsf_node_maintenance",
                                        "1 if an admin drains the node (no new placements).", labels=["node_id"])
        age = GaugeMetricFamily("gsf_node_heartbeat_age_seconds", "Seconds since the node's last heartbeat.",
                                labels=["node_id"])
        interval = GaugeMetricFamily("gsf_node_heartbeat_interval_seconds",
                                     "The heartbeat interval the node's agent announced.", labels=["node_id"])
        for node_id, status, last, every in nodes:
            seconds = (now - _aware(last)).total_seconds() if last is not None else None
            online.add_metric([node_id], 1 if seconds is not None and seconds <= 3 * every else 0)
            maintenance.add_metric([node_id], 1 if status == "maintenance" else 0)
            if seconds is not None:
                age.add_metric([node_id], max(0.0, seconds))
            interval.add_metric([node_id], every)
        counted = CounterMetricFamily("gsf_server_transitions",
                                      "Game-server status transitions recorded, by the status reached.",
                                      labels=["status"])
        for status in COUNTED_TRANSITIONS:
            counted.add_metric([status], transitions.get(status, 0))
        waiting = GaugeMetricFamily("gsf_webhook_deliveries_pending",
                                    "Webhook deliveries not yet delivered, failed or skipped (the backlog).",
                                    value=backlog)
        stuck = GaugeMetricFamily("gsf_webhook_deliveries_stalled",
                                  f"Pending deliveries never attempted {STALLED_AFTER.seconds} s after the event.",
                                  value=stalled)
        oldest_age = GaugeMetricFamily("gsf_webhook_oldest_pending_seconds",
                                       "Age of the oldest pending delivery (0: none).",
                                       value=(now - _aware(oldest)).total_seconds() if oldest else 0)
        webhooks = GaugeMetricFamily("gsf_webhooks", "Webhooks by state.", labels=["state"])
        webhooks.add_metric(["enabled"], hooks.get(True, 0))
        webhooks.add_metric(["disabled"], hooks.get(False, 0))
        self.families = [online, maintenance, age, interval, counted, waiting, stuck, oldest_age, webhooks]


def control_metrics_runtime(settings: Settings) -> Runtime:
    """A Temporal runtime whose SDK serves Prometheus metrics (workflow task failures, schedule-to-start
    latency, task slots) on `control_metrics_host:control_metrics_port`, names as alerts.yml uses them."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"{settings.control_metrics_host}:{settings.control_metrics_port}",
        counters_total_suffix=True, unit_suffix=True, durations_as_seconds=True)))
