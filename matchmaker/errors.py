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
429 rate-limited has no class: matchmaker.ratelimit answers it before /join runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://gsf.dev/problems/"
PROBLEM_JSON = "application/problem+json"


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """The one shape of every error answer of the matchmaker."""
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


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
