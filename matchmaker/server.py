"""Run the matchmaker under uvicorn (`gsf matchmaker`).

uvicorn waits for open responses before it runs the lifespan shutdown, and an SSE stream never
finishes by itself, so a plain uvicorn.Server would hang on Ctrl-C while a browser is watching
the room list. `MatchmakerServer` ends the streams first.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from core.settings import Settings, get_settings
from matchmaker.app import create_app
from matchmaker.deps import Matchmaker

# On SIGTERM: stop accepting, answer the requests already being read, then close; a request still
# open after this long (a stuck client) is cut. Open list streams are ended at once (hub.close).
GRACE_SECONDS = 5


class MatchmakerServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.matchmaker: Matchmaker = app.state.matchmaker

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.matchmaker.hub.close()
        await super().shutdown(sockets=sockets)


def build_server(settings: Settings | None = None, log_level: str = "info") -> MatchmakerServer:
    settings = settings or get_settings()
    app = create_app(settings)
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app reads it
    # itself, from GSF_TRUSTED_PROXIES only (core.asgi).
    config = uvicorn.Config(app, host=settings.matchmaker_host, port=settings.matchmaker_port,
                            lifespan="on", log_level=log_level, proxy_headers=False,
                            timeout_graceful_shutdown=GRACE_SECONDS)
    return MatchmakerServer(config, app)


def run(settings: Settings | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    build_server(settings).run()
