"""Settings groups of observability: logs, metrics endpoints and tracing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.settings.base import GroupSettings


class ObservabilitySettings(GroupSettings):
    """Logs and metrics.

    How each process logs, and where the node agent and the control worker serve their
    Prometheus metrics.
    """

    metrics_token: str = Field(
        default="", description="`/metrics` of the API and the matchmaker answers only `Authorization: Bearer "
        "<token>` (401 without it); empty: they answer 404. The agent's own metrics port needs it too when set")
    agent_metrics_host: str = Field(default="127.0.0.1", description="address the node agent serves `/metrics` on")
    agent_metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="port of the node agent's `/metrics`; 0 (the default): no metrics server")
    control_metrics_host: str = Field(
        default="127.0.0.1", description="Address of the control worker's Temporal SDK /metrics.")
    control_metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Port of the control worker's Temporal SDK /metrics (workflow task failures, "
        "schedule-to-start latency); 0: none.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text` for a terminal; `json`: one object per line (ts, level, logger, msg, "
        "request_id, user, server_id, workflow_id) for log shippers")
    log_level: str = Field(default="INFO", description="level of the process's logging (DEBUG, INFO, WARNING, ...)")


class TracingSettings(GroupSettings):
    """Tracing.

    OpenTelemetry spans of Temporal calls, workflows and activities, and where they go.
    """

    otel_exporter: Literal["none", "otlp", "console"] = Field(
        default="none", description="where OpenTelemetry spans go: `none` (no tracing), `otlp` (OTLP over HTTP "
        "to `GSF_OTEL_ENDPOINT`), `console` (stdout); spans cover Temporal calls, workflows and activities")
    otel_endpoint: str = Field(
        default="", description="OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`; empty: the "
        "exporter's own default (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `http://localhost:4318/v1/traces`)")
    otel_service_name: str = Field(default="gsf", description="`service.name` of every span this process sends")
