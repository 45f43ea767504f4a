"""The control-plane API: app factory and lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors
from api.middleware import EdgeMiddleware
from api.routes import (
    agent,
    analysis,
    config,
    events,
    health,
    models,
    nodes,
    pipelines,
    rooms,
    servers,
    users,
)
from core.artifacts import LocalArtifactStore
from core.db.session import create_schema, make_engine, make_session_factory
from core.settings import Settings, get_settings
from core.temporal import connect

WEB_DIR = Path(__file__).parent / "web"


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
        app.state.temporal = None
        with contextlib.suppress(RuntimeError, OSError):
            app.state.temporal = await connect(settings)
        try:
            yield
        finally:
            await rooms.close_matchmaker_http(app)
            await engine.dispose()

    app = FastAPI(title="Game Server Factory", version="0.1.0", lifespan=lifespan,
                  description="Host multiplayer JavaScript game servers.")
    errors.install(app)
    # Uploads are limited again, per route, once their kind is known (game module, image).
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_json_bytes,
                       max_upload_bytes=max(settings.max_upload_bytes, settings.max_image_bytes))
    for module in (health, servers, analysis, nodes, pipelines, agent, events, rooms, config, models, users):
        app.include_router(module.router)
    if (WEB_DIR / "index.html").exists():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
