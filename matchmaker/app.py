"""The matchmaker service: app factory, lifespan (event pump + expiry sweeper), problem handlers."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from core.asgi import (
    BodyTooLarge,
    TrackedSend,
    TrustedProxies,
    settle_client,
    with_security_headers,
)
from core.problems import document, http_error_headers
from core.settings import Settings, get_settings
from matchmaker.deps import Matchmaker
from matchmaker.edge import BodyLimitMiddleware, PlayerCORSMiddleware
from matchmaker.errors import (
    MatchmakerError,
    error_problem,
    internal_problem,
    problem,
    store_unavailable_problem,
    too_large_problem,
    validation_problem,
)
from matchmaker.fastpath import HeartbeatFastPath
from matchmaker.ratelimit import JOIN_PATHS, JOIN_PLAYER_HEADER, JoinLimiter, JoinRateLimitMiddleware
from matchmaker.routes import heartbeat_router, router
from matchmaker.store import MemoryStore, RedisStore, Store, Subscription
from matchmaker.stream import StreamHub

log = logging.getLogger("gsf.matchmaker")


class MatchmakerApp(FastAPI):
    """The FastAPI app, with `front` (the heartbeat fast path) answering HTTP requests first.

    A subclass rather than a wrapper around the app, so that what serves and what tests hold is
    still the FastAPI app (`app.state`, `openapi()`, lifespan). Starlette's and FastAPI's outer
    layers (error middleware, telemetry hooks, body-limit scope) cost a heartbeat about a third
    again of what the fast path itself costs (measured in-process), so the fast path goes before
    them too; it handles its own errors as they would.
    """

    front: ASGIApp | None = None
    proxies: TrustedProxies = TrustedProxies(())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Before the fast path too, so every answer has them and every layer sees one client.
        if scope["type"] == "http":
            send = with_security_headers(send)
        settle_client(scope, self.proxies)
        if self.front is not None and scope["type"] == "http" and not self.root_path:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, store: Store | None = None,
               clock: Callable[[], float] | None = None, *,
               keepalive_seconds: float = 15.0, sweep_seconds: float | None = None,
               heartbeat_fast_path: bool = True) -> FastAPI:
    """The matchmaker app. Without a store: Redis if `settings.redis_url`, else in-process.

    `clock` gives unix seconds (tests pass a controllable one). A store handed in is not closed
    by the app; one the app creates is. `heartbeat_fast_path=False` leaves the two heartbeat
    routes to FastAPI (tests compare both ways of serving them).
    """
    settings = settings or get_settings()
    owns_store = store is None
    if store is None:
        store = (RedisStore.from_url(settings.redis_url, settings.matchmaker_redis_prefix) if settings.redis_url
                 else MemoryStore())
    if sweep_seconds is None:
        sweep_seconds = max(0.05, min(1.0, settings.room_ttl_seconds / 4))
    # FastAPI's native telemetry reports to OpenTelemetry's global providers, which gsf never
    # installs (core.tracing keeps its own); left on, it looks them up on every request, a
    # tenth of a heartbeat's cost.
    app = MatchmakerApp(title="gsf matchmaker", version="1", lifespan=_lifespan,
                        summary="Room registry, live room list and seat reservations",
                        telemetry={"tracing": False, "metrics": False, "logs": False})
    app.proxies = TrustedProxies(settings.trusted_proxies)
    app.state.matchmaker = Matchmaker(
        settings=settings, store=store, clock=clock or time.time, owns_store=owns_store,
        keepalive_seconds=keepalive_seconds, sweep_seconds=sweep_seconds)
    app.add_exception_handler(MatchmakerError, _matchmaker_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Only an unreachable Redis is a 503; any other Redis error (a script bug) is a 500.
    app.add_exception_handler(RedisConnectionError, _redis_unavailable)
    app.add_exception_handler(RedisTimeoutError, _redis_unavailable)
    app.add_middleware(JoinRateLimitMiddleware, limiter=JoinLimiter.for_store(settings, store),
                       mm=app.state.matchmaker)
    app.add_middleware(MetricsTokenMiddleware, token=settings.metrics_token)
    # Outermost last. The size limit comes before the join limiter, so an oversized join takes
    # no token; CORS is outside the catch-all, so a player route's 500 is readable too.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(PlayerCORSMiddleware)
    if heartbeat_fast_path:
        # Ahead of FastAPI itself: a heartbeat then costs no middleware and no routing. The
        # routes below stay registered for the OpenAPI document (and serve when this is off).
        app.front = HeartbeatFastPath(partial(FastAPI.__call__, app), app.state.matchmaker)
    app.include_router(heartbeat_router)
    app.include_router(router)
    document(app, limited=lambda method, path: method == "POST" and path in JOIN_PATHS, always=(500, 503),
             per_operation=ROUTE_PROBLEMS,
             parameters={("POST", path): [JOIN_PLAYER_HEADER] for path in JOIN_PATHS})
    return app


STOP_TIMEOUT = 5.0
POLL_SECONDS = 1.0


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    mm: Matchmaker = app.state.matchmaker
    if mm.hub.closed:  # the app is started again after a shutdown
        mm.hub = StreamHub()
    await mm.store.start()
    # Subscribed before the app takes requests, so no event of ours can be missed.
    subscription = await mm.store.subscribe()
    mm.stopping.clear()
    mm.tasks = [asyncio.create_task(_pump(mm, subscription), name="matchmaker-events"),
                asyncio.create_task(_sweeper(mm), name="matchmaker-sweeper")]
    try:
        yield
    finally:
        mm.hub.close()
        mm.stopping.set()
        for task in mm.tasks:
            task.cancel()
        _, pending = await asyncio.wait(mm.tasks, timeout=STOP_TIMEOUT)
        if pending:
            log.warning("background tasks did not stop: %s", [t.get_name() for t in pending])
        mm.tasks = []
        if mm.owns_store:
            await mm.store.close()


async def _pump(mm: Matchmaker, subscription: Subscription) -> None:
    """Store events → SSE listeners. On a broken Redis connection, resubscribe after a pause."""
    sub: Subscription | None = subscription
    try:
        while not mm.stopping.is_set():
            try:
                if sub is None:
                    sub = await mm.store.subscribe()
                raw = await sub.get(POLL_SECONDS)
                # Every replica receives every room update; decoding one costs as much as
                # applying a heartbeat, so it is skipped while no stream is open here.
                if raw is not None and len(mm.hub):
                    for event in sub.decode(raw):
                        mm.hub.publish(event)
            except (RedisError, OSError) as exc:
                if mm.stopping.is_set():
                    break
                log.warning("room event feed broke (%s); resubscribing", exc)
                if sub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await sub.aclose()
                    sub = None
                await asyncio.sleep(POLL_SECONDS)
    finally:
        if sub is not None:
            with contextlib.suppress(RedisError, OSError):
                await sub.aclose()


async def _sweeper(mm: Matchmaker) -> None:
    """Remove expired rooms even when nobody reads them, so `removed` events go out on time."""
    while not mm.stopping.is_set():
        await asyncio.sleep(mm.sweep_seconds)
        if mm.stopping.is_set():
            break
        try:
            await mm.store.sweep(mm.clock())
        except (RedisError, OSError) as exc:
            log.warning("expiry sweep failed: %s", exc)


# --- problems ----------------------------------------------------------------------------------


async def _matchmaker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MatchmakerError)
    return error_problem(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors())


_HTTP_SLUGS = {400: ("bad-request", "Bad request"), 404: ("not-found", "Not found"),
               405: ("method-not-allowed", "Method not allowed")}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):  # read by a route: the same answer as from the edge
        return too_large_problem(exc.limit)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    response = problem(exc.status_code, slug, title, str(exc.detail))
    response.headers.update(http_error_headers(request, exc))
    return response


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis error on %s %s: %s", request.method, request.url.path, exc)
    return store_unavailable_problem()


class CatchAllMiddleware:
    """Any unhandled exception becomes a 500 problem without a stack trace (logged here)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if tracked.started:
                return
            await internal_problem()(scope, receive, send)


# Problems an operation answers besides 500, 503 (store unreachable) and what `document` finds
# itself (422 for parameters, 404 for path ids, 401 for node routes, 429 on /join).
ROUTE_PROBLEMS: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/servers"): (403,),
    ("PUT", "/servers/{server_id}/heartbeat"): (403, 409),
    ("DELETE", "/servers/{server_id}"): (403,),
    ("POST", "/join"): (404, 409),
    ("POST", "/create"): (409,),
    ("GET", "/metrics"): (401, 404),
}


class MetricsTokenMiddleware:
    """`GET /metrics` is on the public port, so it answers only `Authorization: Bearer
    <GSF_METRICS_TOKEN>`: 404 while no token is set, 401 without the right one (as the API's)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only the scrape: any other method goes on to the router, whose answer is the 405 (with
        # `Allow`) that an undeclared method gets on every other path.
        if scope["type"] == "http" and scope.get("path") == "/metrics" and scope.get("method") in ("GET", "HEAD"):
            if not self.token:
                await problem(404, "not-found", "Not found",
                              "/metrics is served only when GSF_METRICS_TOKEN is set")(scope, receive, send)
                return
            scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                response = problem(401, "unauthorized", "Unauthorized",
                                   "/metrics needs Authorization: Bearer <metrics token>")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
