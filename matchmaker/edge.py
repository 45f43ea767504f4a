"""What wraps the matchmaker's requests: the body-size limit (413) and CORS for the player routes.

Size limits. Every body of the matchmaker's models fits in `MAX_BODY_BYTES` (1 MiB) as compact
JSON — fleet syncs, allocations and member lists of 1000 ids, registrations, joins, and one
heartbeat with metadata and state at their limits (32 + 128 KiB) — except the heartbeats. A
heartbeat lists its server's rooms (up to `MAX_ROOMS`, about 200 bytes each as the relay sends
them: a server with 5,000 idle rooms is a 1 MB heartbeat), so `PUT /servers/{id}/heartbeat`
gets `MAX_HEARTBEAT_BODY_BYTES`, 1 MiB plus 1 KiB a room. A heartbeat batch: 1000 heartbeats
(`MAX_BATCH`) with metadata at its limit are 32 MiB; `POST /heartbeats` gets
`MAX_BATCH_BODY_BYTES`, 64 KiB a heartbeat (metadata at its limit, player ids, the other
fields; agents relay no game state), which a node's few servers of thousands of rooms share.
Only the number of `player_ids` is bounded by the model (100,000), so a heartbeat listing tens
of thousands of long ids can exceed these; no game gets there. Both heartbeat routes read
their bodies only after the node token is checked. A body over the limit is answered 413
`request-too-large`: at once when Content-Length says so (before authentication), or when the
body is read past the limit.

CORS. The player routes (`GET /servers`, `/rooms`, their `/{id}` and `/stream`, `POST /join`,
`/create`) are
public and take no credentials, so a browser game on any origin may call them: they answer
`Access-Control-Allow-Origin: *`, never with credentials. Node, platform and ops routes send no
CORS headers (a preflight for them is refused), so no web page can drive them with a token.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.asgi import BodyTooLarge, TrackedSend, limited_receive
from matchmaker.errors import too_large_problem
from matchmaker.models import MAX_BATCH, MAX_ROOMS

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = MAX_BATCH * 64 * 1024
MAX_HEARTBEAT_BODY_BYTES = MAX_BODY_BYTES + MAX_ROOMS * 1024
BATCH_PATH = "/heartbeats"
_SERVERS, _HEARTBEAT = "/servers/", "/heartbeat"


def body_limit(method: str, path: str) -> int:
    """The largest body a request may carry, in bytes."""
    if method == "POST" and path == BATCH_PATH:
        return MAX_BATCH_BODY_BYTES
    if method == "PUT" and path.startswith(_SERVERS) and path.endswith(_HEARTBEAT):
        server_id = path[len(_SERVERS):-len(_HEARTBEAT)]
        if server_id and "/" not in server_id:
            return MAX_HEARTBEAT_BODY_BYTES
    return MAX_BODY_BYTES


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it gives a valid one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Pure ASGI: refuses a declared length over the limit at once, counts what is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        length = declared_length(scope)
        if length is not None and length > limit:
            await too_large_problem(limit)(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, limited_receive(receive, limit), tracked)
        except BodyTooLarge:
            if not tracked.started:
                await too_large_problem(limit)(scope, receive, send)


def is_player_route(method: str, path: str) -> bool:
    """GET /servers, /rooms, /servers/{id}, /rooms/{id} (and their streams), /regions; POST /join,
    /create, /reconnect."""
    if method == "GET":
        if path == "/regions":
            return True
        for base in ("/servers", "/rooms"):
            if path == base:
                return True
            rest = path[len(base) + 1:] if path.startswith(base + "/") else ""
            if rest and "/" not in rest:
                return True
        return False
    return method == "POST" and path in ("/join", "/create", "/reconnect")


class PlayerCORSMiddleware:
    """Starlette's CORS, for the player routes only: any origin, no credentials."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=["*"], allow_credentials=False, allow_methods=["GET", "POST"],
            # X-Player-Id: the join limit per player; Last-Event-ID: an EventSource reconnecting.
            allow_headers=["Content-Type", "X-Player-Id", "Last-Event-ID"],
            expose_headers=["Retry-After"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            if method == "OPTIONS":  # a preflight names the method it asks for
                for name, value in scope["headers"]:
                    if name == b"access-control-request-method":
                        method = value.decode("latin-1")
                        break
            if is_player_route(method, scope["path"]):
                await self.cors(scope, receive, send)
                return
        await self.app(scope, receive, send)
