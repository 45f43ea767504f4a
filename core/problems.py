"""What both HTTP services (the API and the matchmaker) share about their problem+json answers:
the Allow header of a 405, and the OpenAPI document of every operation's problems (RFC 7807).
How each service turns its errors into answers stays with it (api/errors.py, matchmaker/errors.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import fastapi.routing
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException

PROBLEM = "application/problem+json"


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
