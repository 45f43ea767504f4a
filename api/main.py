"""The control-plane API: app factory and lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from api import deps, errors, metrics, spec_bounds
from api.analysis_pool import AnalysisPool
from api.middleware import EdgeMiddleware
from api.ratelimit import ApiRateLimits, RateLimitMiddleware
from api.routes import (
    agent,
    allocations,
    analysis,
    config,
    events,
    fleets,
    games,
    generation,
    health,
    nodes,
    pipelines,
    rooms,
    servers,
    users,
    webhooks,
)
from core import problems, tracing
from core.artifacts import LocalArtifactStore
from core.asgi import ClientAddressMiddleware, TrustedProxies
from core.db.session import create_schema, make_engine, make_session_factory
from core.logging import RequestContextMiddleware
from core.settings import Settings, get_settings
from core.temporal import connect

WEB_DIR = Path(__file__).parent / "web"
# The built @gsf/client (clients/js, `npm run build`): the console's play page imports it from /sdk/.
SDK_DIR = Path(__file__).resolve().parents[1] / "clients" / "js" / "dist"
API_PREFIX = "/api/"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await create_schema(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = make_session_factory(engine)
        app.state.artifacts = LocalArtifactStore(settings.artifact_dir)
        app.state.analysis_pool = AnalysisPool(settings)  # issue #19: analyses off the event loop
        app.state.temporal = None
        with contextlib.suppress(RuntimeError, OSError):
            app.state.temporal = await connect(settings)
        try:
            yield
        finally:
            await rooms.close_matchmaker_http(app)
            await allocations.close_fleet_registry(app)  # issue #10
            await agent.close_snapshot_store(app)  # issue #25: the Redis snapshot store, if made
            await app.state.analysis_pool.close()
            await engine.dispose()

    app = FastAPI(title="Game Server Factory", version="0.1.0", lifespan=lifespan,
                  description="Host multiplayer JavaScript game servers.",
                  dependencies=[Depends(deps.bind_path_context)])
    errors.install(app)
    app.state.metrics = metrics.ApiMetrics()
    app.state.rate_limits = ApiRateLimits(settings)
    # Outermost last. CORS answers preflights before anything counts them; then metrics and the
    # access log see every answer; the rate limiter refuses before a body is read or audited.
    app.add_middleware(RequestContextMiddleware)
    # Uploads are limited again, per route, once their kind is known (game module, image).
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_json_bytes,
                       max_upload_bytes=max(settings.max_upload_bytes, settings.max_image_bytes,
                                            settings.project_max_bytes))
    app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits, secret_key=settings.secret_key)
    app.add_middleware(metrics.ObserveMiddleware, metrics=app.state.metrics)
    # Issue #19: the one place X-Forwarded-For is read, and only from GSF_TRUSTED_PROXIES.
    app.add_middleware(ClientAddressMiddleware, proxies=TrustedProxies(settings.trusted_proxies))
    if settings.cors_origins:
        # Bearer keys, no cookies: credentials stay off, so a listed origin cannot ride a session.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
                           expose_headers=["X-Request-Id", "Retry-After", "Location"], max_age=600)
    # A request is matched against the routes in this order, one regex at a time: the hottest
    # path, allocation, goes first (no two routers share a path prefix, so order is only speed).
    app.include_router(allocations.router)  # issue #10
    for module in (health, servers, analysis, nodes, pipelines, agent, events, rooms, config, generation, users,
                   webhooks):
        app.include_router(module.router)
    for module in (games, fleets):  # issue #10
        app.include_router(module.router)
    app.include_router(metrics.router)
    tracing.instrument_fastapi(app, settings)  # request spans when GSF_OTEL_EXPORTER is set
    problems.document(app)
    spec_bounds.install(app, settings)  # the plans and maxima this installation allows
    app.mount("/sdk", StaticFiles(directory=SDK_DIR, check_dir=False), name="sdk")  # 404 until it is built
    if (WEB_DIR / "index.html").exists():
        app.mount("/", ConsoleFiles(directory=WEB_DIR, html=True), name="web")
    return app


class ConsoleFiles(StaticFiles):
    """The console's files. The mount takes every path no route took, so an API path asked with
    a method it lacks ends here: that is a 405 naming the path's methods, and an unknown API path
    a 404, both as problems, never the console's HTML."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(API_PREFIX):
            methods = problems.allowed_methods(scope["app"], path)
            if methods:
                raise HTTPException(405, headers={"Allow": ", ".join(methods)})
            raise HTTPException(404)
        await super().__call__(scope, receive, send)
