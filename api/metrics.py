"""Prometheus metrics of the API (`GET /metrics`) and the middleware that counts, times and logs
every request."""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.contracts import ServerStatus
from core.db.models import GameServer
from core.errors import NotFound, Unauthorized
from core.platform_metrics import PlatformCollector
from core.problems import problems

log = logging.getLogger("gsf.api")
access_log = logging.getLogger("gsf.api.access")
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Node agents call these several times a second; their lines go to DEBUG.
QUIET_PREFIXES = ("/api/v1/agent/", "/metrics", "/health")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) keep separate counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gsf_api_requests", "API requests by method, route template and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "gsf_api_request_duration_seconds", "Time to answer an API request, by method and route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("gsf_api_requests_in_flight", "API requests being answered now (event streams too).",
                               registry=self.registry)
        self.deployments = Gauge("gsf_api_deployments", "Game servers by status, from the platform database.",
                                 ["status"], registry=self.registry)
        # Node liveness, deployment outcomes and the webhook backlog, for deploy/prometheus/alerts.yml.
        self.platform = PlatformCollector(self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope, status: int) -> str:
    """The matched route's template (`/api/v1/servers/{server_id}`), so ids never become labels."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return "unmatched" if status == 404 else f"mount:{route.name or route.path}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObserveMiddleware:
    """Outermost but CORS: counts and times every answer (413 and 429 too) and writes one access
    log line per request, carrying the request id EdgeMiddleware (or the rate limiter) chose."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            method = scope.get("method", "")
            self.metrics.observe(method if method in METHODS else "other", route_template(scope, status),
                                 status, seconds)
            path = scope.get("path", "")
            state = scope.get("state", {})
            level = logging.DEBUG if path.startswith(QUIET_PREFIXES) and status < 400 else logging.INFO
            access_log.log(level, "%s %s %s %.1fms", method, path, status, seconds * 1000,
                           extra={"request_id": state.get("request_id"), "user": state.get("user_id"),
                                  "method": method, "path": path, "status": status,
                                  "duration_ms": round(seconds * 1000, 2)})


async def refresh_from_database(request: Request, metrics: ApiMetrics) -> None:
    """The gauges only the database knows, as it has them now: deployments by status (every
    status listed, 0 included) and the platform collector's. A database that does not answer
    leaves the last values and is logged; the request metrics are still served."""
    sessions = request.app.state.sessions
    try:
        async with sessions() as session:
            rows = (await session.execute(
                select(GameServer.status, func.count()).group_by(GameServer.status))).all()
        counts = {str(status): int(n) for status, n in rows}
        for status in sorted({*(s.value for s in ServerStatus), *counts}):
            metrics.deployments.labels(status).set(counts.get(status, 0))
        await metrics.platform.refresh(sessions)
    except SQLAlchemyError as exc:
        log.warning("database gauges for /metrics not read: %s", exc)


def check_metrics_token(token: str, authorization: str) -> None:
    """/metrics is on the public port, so it answers a scraper holding GSF_METRICS_TOKEN only:
    NotFound while no token is set (nobody may scrape), Unauthorized for a missing or wrong one."""
    if not token:
        raise NotFound("/metrics is served only when GSF_METRICS_TOKEN is set")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("/metrics needs `Authorization: Bearer <metrics token>`")


router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
          "description": "Prometheus text exposition format"},
    **problems(401, 404)})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, in-flight requests, deployments by status."""
    check_metrics_token(request.app.state.settings.metrics_token, request.headers.get("authorization", ""))
    api_metrics: ApiMetrics = request.app.state.metrics
    await refresh_from_database(request, api_metrics)
    return Response(api_metrics.render(), media_type=CONTENT_TYPE)
