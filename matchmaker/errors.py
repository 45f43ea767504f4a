"""Matchmaker errors; the app maps each class to one application/problem+json answer.

    MatchmakerError
     ├── RoomNotFound        404 room-not-found     unknown, expired, deregistered or not-ready room
     ├── RoomFull            409 room-full          join by id: no free seat left
     ├── RoomLocked          409 room-locked        join by id: the game called room.lock()
     ├── NoRoomAvailable     409 no-room-available  quick join: no ready, unlocked room with a free seat
     ├── StaleHeartbeat      409 stale-heartbeat    heartbeat of an older generation than the registered one
     ├── Unauthorized        401 unauthorized       missing or invalid node token
     ├── Forbidden           403 forbidden          a node touching another node's server
     ├── InvalidRequest      422 validation-error   bad query parameter or cursor
     └── StoreUnavailable    503 store-unavailable  the registry (Redis) cannot be reached

no-room-available is a 409, not a 404: the target resource (/join) exists; what blocks the
request is the current state of the registry (every matching room is full, locked or absent).
429 rate-limited has no class: matchmaker.ratelimit answers it before /join runs. Neither has
413 request-too-large: matchmaker.edge (and the heartbeat fast path) answer it for a body over
the size limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://gsf.dev/problems/"
PROBLEM_JSON = "application/problem+json"


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """The one shape of every error answer of the matchmaker."""
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


# The answers below are shared by the app's exception handlers and the heartbeat fast path
# (matchmaker.fastpath), so that both spell every error the same way.


def error_problem(exc: MatchmakerError) -> JSONResponse:
    """A MatchmakerError's answer."""
    if isinstance(exc, StaleHeartbeat):
        return problem(exc.status, exc.slug, exc.title, exc.detail,
                       current_generation=exc.current_generation)
    return problem(exc.status, exc.slug, exc.title, exc.detail)


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """422 for pydantic/FastAPI validation errors: every error's loc, msg and type; the first
    one in the detail."""
    listed = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in errors]
    first = listed[0] if listed else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(x) for x in first["loc"])
    return problem(422, "validation-error", "Validation error",
                   f"{where}: {first['msg']}" if where else str(first["msg"]), errors=listed)


def internal_problem() -> JSONResponse:
    """500 for an unhandled exception: no stack trace, no message (it is logged instead)."""
    return problem(500, "internal-error", "Internal error",
                   "the matchmaker failed to handle this request")


def store_unavailable_problem() -> JSONResponse:
    """503 for a Redis connection or timeout error (any other Redis error is a 500)."""
    return error_problem(StoreUnavailable("the room registry cannot be reached; try again shortly"))


def too_large_problem(limit: int) -> JSONResponse:
    """413 for a request body over the size limit."""
    return problem(413, "request-too-large", "Request too large",
                   f"the request body is larger than {limit} bytes")


class MatchmakerError(Exception):
    """Base class; `status`, `slug` and `title` become the problem's fields, the message its detail."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class RoomNotFound(MatchmakerError):
    """Raised for an id the registry does not list: never registered, expired, gone or not ready."""

    status = 404
    slug = "room-not-found"
    title = "Room not found"


class RoomFull(MatchmakerError):
    """Raised by a join by id when players plus live reservations already fill the room."""

    status = 409
    slug = "room-full"
    title = "Room full"


class RoomLocked(MatchmakerError):
    """Raised by a join by id when the game locked the room (same slug as the runtime uses)."""

    status = 409
    slug = "room-locked"
    title = "Room locked"


class NoRoomAvailable(MatchmakerError):
    """Raised by a quick join when no ready, unlocked, matching room has a free seat."""

    status = 409
    slug = "no-room-available"
    title = "No room available"


class StaleHeartbeat(MatchmakerError):
    """Raised when a heartbeat carries an older generation than the current registration."""

    status = 409
    slug = "stale-heartbeat"
    title = "Stale heartbeat"

    def __init__(self, detail: str = "", current_generation: int = 0) -> None:
        super().__init__(detail)
        self.current_generation = current_generation


class Unauthorized(MatchmakerError):
    """Raised when a node endpoint is called without a valid node token."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(MatchmakerError):
    """Raised when a node registers, heartbeats or deregisters a server of another node."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class InvalidRequest(MatchmakerError):
    """Raised for query parameters FastAPI cannot check itself (filters, sort, cursor)."""

    status = 422
    slug = "validation-error"
    title = "Validation error"


class StoreUnavailable(MatchmakerError):
    """Raised (or mapped from Redis errors) when the registry cannot be reached."""

    status = 503
    slug = "store-unavailable"
    title = "Store unavailable"
