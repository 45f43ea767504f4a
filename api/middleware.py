"""Every response: a request id, security headers, and a size limit on request bodies."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from core.asgi import SECURITY_HEADERS, BodyTooLarge, limited_receive
from core.db.models import AuditEntry

log = logging.getLogger("gsf.api")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Node agents call these every few seconds; they are not user actions.
QUIET_PREFIXES = ("/api/v1/agent/",)

# A route that writes its own audit entry (with its record, in one transaction) sets this in the
# request's state, so the call is not audited twice.
AUDITED = "audited"

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class EdgeMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so streaming responses stay streams."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode(errors="replace")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        content_type = headers.get(b"content-type", b"")
        limit = self.max_upload + 64 * 1024 if content_type.startswith(b"multipart/") else self.max_body

        status = [500]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()),
                                      *SECURITY_HEADERS]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            resp = problem(413, "request-too-large", "Request too large",
                           f"the request body is larger than {limit} bytes", scope.get("path", ""),
                           request_id=request_id)
            await resp(scope, receive, send_with_headers)
            return

        try:
            await self.app(scope, limited_receive(receive, limit), send_with_headers)
        except BodyTooLarge:  # read outside a route (a route's read is answered by api.errors)
            resp = problem(413, "request-too-large", "Request too large",
                           f"the request body is larger than {limit} bytes", scope.get("path", ""),
                           request_id=request_id)
            await resp(scope, receive, send_with_headers)
        finally:
            if scope["method"] in MUTATING and not scope.get("path", "").startswith(QUIET_PREFIXES):
                await self._audit(scope, status[0])

    async def _audit(self, scope: Scope, status: int) -> None:
        state = scope.get("state", {})
        sessions = getattr(scope["app"].state, "sessions", None)
        if sessions is None or state.get(AUDITED):
            return
        try:
            async with sessions() as session:
                session.add(AuditEntry(**audit_fields(scope, status)))
                await session.commit()
        except SQLAlchemyError:
            log.exception("audit entry for %s %s not written", scope["method"], scope.get("path"))


def audit_fields(scope: Scope, status: int) -> dict[str, Any]:
    """An audit entry's columns for a call: who (as auth left it in the state), what, how it ended."""
    state = scope.get("state", {})
    # As core.asgi.ClientAddressMiddleware settled it: X-Forwarded-For counts from trusted proxies only.
    client = scope.get("client") or ("", 0)
    return {"user_id": state.get("user_id"), "key_id": state.get("key_id"), "method": scope["method"],
            "path": scope.get("path", "")[:400], "status": status, "request_id": state.get("request_id", ""),
            "client": str(client[0])[:64]}


