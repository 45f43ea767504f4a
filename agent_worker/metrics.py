"""Prometheus metrics of the node agent, served by a tiny asyncio HTTP server on
`GSF_AGENT_METRICS_PORT` (0, the default, serves nothing).

Counted as they happen: game-server heartbeats relayed to the matchmaker (the transport of the
agent's matchmaker client) and activities run (a Temporal worker interceptor).
Read at scrape time: containers running, node CPU and memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from temporalio import activity
from temporalio.exceptions import CancelledError as ActivityCancelled
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from core import listen
from core import logging as log_context
from core.settings import Settings

log = logging.getLogger("gsf.agent")
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
HEARTBEAT_PATH = re.compile(r"^/servers/[^/]+/heartbeat$")
RELAY_RESULTS = ("ok", "not-found", "error")
HEAD_TIMEOUT = 5.0
ACTIVITY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)


class NodeCollector(Collector):
    """Gauges read when scraped: this node's containers and its CPU and memory."""

    def __init__(self, node_id: str, running: Callable[[], int]) -> None:
        self.node_id = node_id
        self.running = running
        psutil.cpu_percent(interval=None)  # the first reading only starts the interval

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("gsf_agent_info", "The node this agent serves.", labels=["node_id"])
        info.add_metric([self.node_id], 1)
        yield info
        try:
            running: int | None = self.running()
        except Exception as exc:  # noqa: BLE001 - Docker down: the gauge is left out, not the scrape
            log.warning("containers not counted for /metrics: %s", exc)
            running = None
        if running is not None:
            yield GaugeMetricFamily("gsf_agent_containers_running",
                                    "Game-server containers running on this node.", value=running)
        yield GaugeMetricFamily("gsf_agent_node_cpu_percent",
                                "CPU use of the whole node since the previous scrape (100 = every core).",
                                value=psutil.cpu_percent(interval=None))
        yield GaugeMetricFamily("gsf_agent_node_cpus", "Logical CPUs of the node.",
                                value=psutil.cpu_count() or 0)
        memory = psutil.virtual_memory()
        mem = GaugeMetricFamily("gsf_agent_node_memory_bytes", "Node memory by state.", labels=["state"])
        mem.add_metric(["total"], memory.total)
        mem.add_metric(["available"], memory.available)
        mem.add_metric(["used"], memory.total - memory.available)
        yield mem


class AgentMetrics:
    """The agent's registry and the hooks that feed it."""

    def __init__(self, node_id: str, running: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.heartbeats = Counter(
            "gsf_agent_heartbeats_relayed", "Game-server heartbeats relayed to the matchmaker, by result.",
            ["result"], registry=self.registry)
        self.activities = Counter(
            "gsf_agent_activities", "Activities run on this node's task queue, by type and result.",
            ["activity", "result"], registry=self.registry)
        for result in RELAY_RESULTS:  # present at 0 from the start, so rates over them exist
            self.heartbeats.labels(result)
        self.activity_seconds = Histogram(
            "gsf_agent_activity_duration_seconds", "Time an activity ran on this node, by type.",
            ["activity"], buckets=ACTIVITY_BUCKETS, registry=self.registry)
        self.registry.register(NodeCollector(node_id, running))
        self.interceptor = ActivityMetricsInterceptor(self)
        self.port: int | None = None

    def relay_transport(self, inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        """The transport of the agent's matchmaker client: every heartbeat relayed is counted, by
        its answer (ok, not-found: the room expired and is registered again) or as an error
        (any other answer, or none at all: refused, timed out)."""
        return _RelayCounter(inner or httpx.AsyncHTTPTransport(), self.heartbeats)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, settings: Settings) -> None:
        """Serve `GET /metrics` until cancelled; nothing when the port is 0."""
        if not settings.agent_metrics_port:
            return
        token = settings.metrics_token.encode()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._answer(reader, writer, token)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        try:
            # The socket handed over for that port, if any (core/listen.py), else bound here.
            server = await asyncio.start_server(
                handle, sock=listen.listener(settings.agent_metrics_host, settings.agent_metrics_port))
        except OSError as exc:
            log.error("agent metrics not served on %s:%s: %s", settings.agent_metrics_host,
                      settings.agent_metrics_port, exc)
            return
        self.port = int(server.sockets[0].getsockname()[1])
        log.info("agent metrics on http://%s:%s/metrics", settings.agent_metrics_host, self.port)
        async with server:
            await server.serve_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: bytes) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, _, rest = request_line.partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        given = headers.get("authorization", "").partition(" ")[2].strip().encode()
        extra = ""
        if path != "/metrics":
            status, body, kind = "404 Not Found", b"only /metrics is served here\n", "text/plain"
        elif method not in ("GET", "HEAD"):
            status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
            extra = "Allow: GET, HEAD\r\n"
        elif token and not hmac.compare_digest(given, token):
            status, body, kind = "401 Unauthorized", b"send Authorization: Bearer <metrics token>\n", "text/plain"
            extra = "WWW-Authenticate: Bearer\r\n"
        else:
            # Counting containers asks Docker: off the event loop.
            status, body, kind = "200 OK", await asyncio.to_thread(self.render), CONTENT_TYPE
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                     f"{extra}Connection: close\r\n\r\n".encode() + (b"" if method == "HEAD" else body))
        await writer.drain()


class _RelayCounter(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, heartbeats: Counter) -> None:
        self.inner = inner
        self.heartbeats = heartbeats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counted = request.method == "PUT" and HEARTBEAT_PATH.match(request.url.path) is not None
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            if counted:
                self.heartbeats.labels("error").inc()
            raise
        if counted:
            code = response.status_code
            self.heartbeats.labels("ok" if code < 300 else "not-found" if code == 404 else "error").inc()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class ActivityMetricsInterceptor(Interceptor):
    """Counts and times every activity the agent's worker runs; binds its workflow id for logs."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountingInbound(next, self.metrics)


class _CountingInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: AgentMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        name = info.activity_type
        started = time.perf_counter()
        result = "failed"
        try:
            with log_context.bound(workflow_id=info.workflow_id):  # as core.logging.ActivityLogContext
                out = await super().execute_activity(input)
            result = "ok"
            return out
        except (asyncio.CancelledError, ActivityCancelled):
            result = "cancelled"
            raise
        finally:
            self.metrics.activities.labels(name, result).inc()
            self.metrics.activity_seconds.labels(name).observe(time.perf_counter() - started)
