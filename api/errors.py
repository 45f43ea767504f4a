"""The one place where the API's errors become application/problem+json (RFC 7807); what the
API shares with the matchmaker (the OpenAPI document of problems, a 405's Allow) is core/problems.py."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException

from core.asgi import BodyTooLarge
from core.errors import PROBLEM_BASE, GsfError
from core.problems import PROBLEM, http_error_headers

log = logging.getLogger("gsf.api")

_HTTP_SLUGS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 413: "upload-too-large", 415: "unsupported-media-type",
               429: "rate-limited", 503: "unavailable"}


def problem(status: int, slug: str, title: str, detail: str, instance: str = "", **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    body = {k: v for k, v in body.items() if v is not None}
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def _refused_value(exc: DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22), however the driver's adapter classified it."""
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
    return isinstance(exc, DataError) or sqlstate.startswith("22")


def install(app: FastAPI) -> None:
    @app.exception_handler(GsfError)
    async def _gsf(request: Request, exc: GsfError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        resp = problem(exc.status, exc.slug, exc.title, exc.detail, request.url.path,
                       request_id=_request_id(request), **exc.extra)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return problem(422, "validation-error", "Invalid request", "the request does not match the schema",
                       request.url.path, request_id=_request_id(request), errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):  # a body sent without a length, read past the limit
            return problem(413, "request-too-large", "Request too large", str(exc.detail), request.url.path,
                           request_id=_request_id(request))
        slug = _HTTP_SLUGS.get(exc.status_code, "http-error")
        resp = problem(exc.status_code, slug, slug.replace("-", " ").capitalize(), str(exc.detail),
                       request.url.path, request_id=_request_id(request))
        resp.headers.update(http_error_headers(request, exc))
        return resp

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not _refused_value(exc):
            return await _unexpected(request, exc)
        # The database refused a value the schema let through: a NUL character or an integer out
        # of range on PostgreSQL, text longer than its column. The client's input, not a bug.
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path,
                    type(exc.orig).__name__, extra={"request_id": _request_id(request)})
        return problem(422, "validation-error", "Invalid request",
                       "a value in the request cannot be stored (a NUL character, a number out of range, "
                       "or text longer than allowed)", request.url.path, request_id=_request_id(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Runs outside the middleware that binds the request id for logging: pass it along.
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path,
                      _request_id(request), extra={"request_id": _request_id(request)})
        resp = problem(500, "internal-error", "Internal error",
                       "the server failed to handle this request; it has been logged", request.url.path,
                       request_id=_request_id(request))
        # Starlette answers this one outside every middleware, EdgeMiddleware's headers included.
        from core.asgi import SECURITY_HEADERS

        resp.headers.update({k.decode(): v.decode() for k, v in SECURITY_HEADERS})
        if _request_id(request):
            resp.headers["x-request-id"] = str(_request_id(request))
        return resp
