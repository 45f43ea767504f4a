"""The one place where errors become application/problem+json (RFC 7807)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException

from core.asgi import BodyTooLarge
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


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `path` takes. Starlette's 405 names only the first route that
    matched the path, but GET and POST of one path are often two routes."""
    matching = [r for r in operations(app) if getattr(r, "path_regex", None) is not None and r.path_regex.match(path)]
    # A literal path wins over a template that also matches it (/rooms/join over /rooms/{server_id}),
    # as the OpenAPI document lists them.
    literal = [r for r in matching if r.path_format == path]
    return sorted({m for r in (literal or matching) for m in (r.methods or ())})


def http_error_headers(request: Request, exc: HTTPException) -> dict[str, str]:
    """The headers an HTTPException carries, with a 405's Allow listing the path's methods (not
    those of whatever answered it: for the API's paths that can be the console's static files)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = allowed_methods(request.app, request.url.path)
        if methods:
            headers["Allow"] = ", ".join(methods)
    return headers


# --- OpenAPI: every route's problem+json answers ------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 7807 problem; `type` is a stable URL ending in the problem's slug.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"}, "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}
ERROR_DESCRIPTIONS = {
    400: "The request cannot be used as sent",
    401: "No credential, or an unknown, revoked or expired one",
    403: "The credential lacks the right (scope, admin, another node's resource)",
    404: "No such resource, or not the caller's",
    409: "The resource's current state forbids the request",
    413: "The request body is larger than allowed",
    415: "The body is of a media type this route does not take",
    422: "The request does not match the schema",
    429: "Too many requests; retry after the Retry-After header's seconds",
    500: "The server failed; the answer carries a request id to quote",
    503: "A dependency (Temporal, the matchmaker, the database) does not answer",
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own problem answers; `document` gives them their schema."""
    return {status: {"description": ERROR_DESCRIPTIONS[status]} for status in statuses}


F = TypeVar("F", bound=Callable[..., Any])


def declares(*statuses: int, security: str | None = None) -> Callable[[F], F]:
    """Mark a dependency with the problems it raises and, for a credential, its bearer scheme;
    `document` adds them to every operation that depends on it."""

    def mark(fn: F) -> F:
        fn.__dict__["__problems__"] = statuses
        if security:
            fn.__dict__["__security__"] = security
        return fn

    return mark


def operations(app: FastAPI) -> list[Any]:
    """The app's routes as FastAPI resolves them (routers included with their dependencies);
    FastAPI 0.165 keeps included routers nested, older versions flatten them into `app.routes`."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    return [r for r in routes if getattr(r, "dependant", None) is not None]


def _calls(route: Any) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            found.add(dep.call)
        stack.extend(dep.dependencies)
    return found


def _params(route: Any) -> tuple[bool, bool]:
    """(has path parameters, has any parameter or body), counting those of dependencies."""
    path = False
    other = False
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        path = path or bool(dep.path_params)
        other = other or bool(dep.path_params or dep.query_params or dep.header_params or dep.body_params
                              or dep.cookie_params)
        stack.extend(dep.dependencies)
    return path, other


def _statuses(route: Any, method: str, limited: Callable[[str, str], bool]) -> set[int]:
    statuses = set()
    path_params, any_params = _params(route)
    if limited(method, route.path_format):
        statuses.add(429)
    if method in _BODY_METHODS:
        statuses.update((400, 413))  # a body that cannot be parsed; one over the size limit
    if path_params:
        statuses.add(404)
    if any_params:
        statuses.add(422)
    for call in _calls(route):
        statuses.update(getattr(call, "__problems__", ()))
    return statuses


def _api_limited(method: str, path: str) -> bool:
    return path.startswith("/api/")


def document(app: FastAPI, limited: Callable[[str, str], bool] = _api_limited,
             always: Iterable[int] = (500,), per_operation: Mapping[tuple[str, str], Iterable[int]] | None = None,
             body_limit: bool = True,
             parameters: Mapping[tuple[str, str], list[dict[str, Any]]] | None = None) -> None:
    """Complete the app's OpenAPI document: each operation's summary is its docstring's first
    line; its error answers are problem+json: its own `responses=`, those its dependencies
    declare (`@declares`), 404 for path ids, 413 for bodies (`body_limit`), 422 for parameters,
    429 where `limited(method, path)`, `always`, and `per_operation[(METHOD, path)]`.
    Operations behind a credential dependency name its bearer scheme; `parameters` adds those a
    middleware reads (METHOD, path) → OpenAPI parameter objects."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        schemes = components.setdefault("securitySchemes", {})
        problem_content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for route in operations(app):
            if not getattr(route, "include_in_schema", True):
                continue
            calls = _calls(route)
            for method in route.methods or ():
                op = schema["paths"].get(route.path_format, {}).get(method.lower())
                if op is None:
                    continue
                if op.get("description"):
                    op["summary"] = op["description"].strip().splitlines()[0].strip().rstrip(".")
                op_parameters = (parameters or {}).get((method, route.path_format), [])
                if op_parameters:
                    op["parameters"] = [*op.get("parameters", []), *op_parameters]
                responses = op.setdefault("responses", {})
                wanted = _statuses(route, method, limited) | set(always)
                wanted |= set((per_operation or {}).get((method, route.path_format), ()))
                if not body_limit:
                    wanted.discard(413)
                wanted |= {int(code) for code in responses if code.isdigit() and int(code) >= 400}
                for status in sorted(wanted):
                    old = responses.get(str(status), {})
                    # A route's own content stays (/ready's 503 is its JSON report), except for
                    # FastAPI's generated 422 model: those answers are problems too.
                    content = old["content"] if old.get("content") and status != 422 else problem_content
                    entry: dict[str, Any] = {"description": old.get("description") or ERROR_DESCRIPTIONS.get(
                        status, "Error"), "content": content}
                    if status == 429:
                        entry["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                            "schema": {"type": "integer", "minimum": 1}}}
                    responses[str(status)] = entry
                names = sorted({str(c.__dict__["__security__"]) for c in calls
                                if "__security__" in getattr(c, "__dict__", {})})
                if names:
                    op["security"] = [{name: []} for name in names]
                    for name in names:
                        schemes[name] = {"type": "http", "scheme": "bearer"}
        # FastAPI's own 422 model is replaced everywhere by the Problem above.
        for unused in ("HTTPValidationError", "ValidationError"):
            if unused not in json.dumps(schema["paths"]):
                components["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
