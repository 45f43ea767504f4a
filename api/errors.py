"""The one place where errors become application/problem+json (RFC 7807)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import PROBLEM_BASE, GsfError

log = logging.getLogger("gsf.api")
PROBLEM = "application/problem+json"

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
        slug = _HTTP_SLUGS.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, slug.replace("-", " ").capitalize(), str(exc.detail),
                       request.url.path, request_id=_request_id(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path,
                      _request_id(request))
        return problem(500, "internal-error", "Internal error",
                       "the server failed to handle this request; it has been logged", request.url.path,
                       request_id=_request_id(request))
