"""The two heartbeat routes served as plain ASGI, ahead of FastAPI's middleware and routing.

`PUT /servers/{server_id}/heartbeat` and `POST /heartbeats` are the matchmaker's hot path, and
FastAPI's machinery (middleware layers, routing, request objects, exception handlers) costs
several times what applying a heartbeat does. `HeartbeatFastPath` answers exactly these two
method+path pairs itself and passes every other request on. It keeps the routes' contract
step for step, with the same functions: body size limit (a declared length first), node token
(`authenticate_node`), the body validated by the same pydantic models with errors located under
"body", the store call and counters (`apply_heartbeat(s)`), and the same problem answers
(`matchmaker.errors`). The routes stay registered with FastAPI for the OpenAPI document;
`create_app(heartbeat_fast_path=False)` lets them serve, and the tests compare both.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from matchmaker.deps import Matchmaker, authenticate_node
from matchmaker.edge import BATCH_PATH, body_limit
from matchmaker.errors import (
    MatchmakerError,
    error_problem,
    internal_problem,
    store_unavailable_problem,
    too_large_problem,
    validation_problem,
)
from matchmaker.models import Heartbeat, HeartbeatBatch
from matchmaker.routes import apply_heartbeat, apply_heartbeats

log = logging.getLogger("gsf.matchmaker")

_PREFIX, _SUFFIX = "/servers/", "/heartbeat"
_JSON = (b"content-type", b"application/json")


class HeartbeatFastPath:
    """Pure ASGI middleware: the heartbeat routes here, everything else to `app`."""

    def __init__(self, app: ASGIApp, mm: Matchmaker) -> None:
        self.app = app
        self.mm = mm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A root_path (the app mounted under a prefix) is left to Starlette's routing.
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == BATCH_PATH:
                await self._serve(scope, receive, send, None)
                return
            if method == "PUT" and path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                # As the route's {server_id}: one non-empty path segment.
                server_id = path[len(_PREFIX):-len(_SUFFIX)]
                if server_id and "/" not in server_id:
                    await self._serve(scope, receive, send, server_id)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send,
                     server_id: str | None) -> None:
        started = False  # once an answer is on its way, a failure can only be logged
        try:
            answer = await self._answer(scope, receive, server_id)
            if answer is None:  # the client went away while sending the body
                return
            started = True
            if isinstance(answer, Response):
                await answer(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(len(answer)).encode()), _JSON]})
            await send({"type": "http.response.body", "body": answer})
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("redis error on %s %s: %s", scope["method"], scope["path"], exc)
            if not started:
                await store_unavailable_problem()(scope, receive, send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await internal_problem()(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive,
                      server_id: str | None) -> bytes | Response | None:
        """The answer's JSON on success, a problem response, or None (client gone)."""
        mm = self.mm
        limit = body_limit(scope["method"], scope["path"])
        authorization = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"content-length" and length is None:
                length = int(value) if value.isdigit() else -1
        if length is not None and length > limit:
            return too_large_problem(limit)
        try:
            node = await authenticate_node(
                mm, authorization.decode("latin-1") if authorization is not None else "")
        except MatchmakerError as exc:
            return error_problem(exc)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                return None
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    return too_large_problem(limit)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if server_id is None:
                batch = HeartbeatBatch.model_validate_json(body)
            else:
                beat = Heartbeat.model_validate_json(body)
        except ValidationError as exc:
            return validation_problem({**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors(include_url=False))
        try:
            if server_id is None:
                return await apply_heartbeats(mm, node, batch)
            return await apply_heartbeat(mm, node, server_id, beat)
        except MatchmakerError as exc:
            return error_problem(exc)
