"""Every failure the SDK reports is one of these classes; branch on the class (or `slug`/`code`),
never on the message.

    GSFError
     ├── MatchmakerError          an HTTP problem from the matchmaker (status + problem slug)
     │    ├── RoomNotFoundError        404 room-not-found
     │    ├── RoomFullError            409 room-full
     │    ├── RoomLockedError          409 room-locked
     │    ├── NoRoomAvailableError     409 no-room-available
     │    ├── RateLimitedError         429 rate-limited (retry_after seconds)
     │    └── ValidationError          422 validation-error
     ├── ConnectError             the WebSocket could not be opened, or closed before `welcome`
     │    ├── SeatRefusedError         the runtime refused the upgrade (status + slug)
     │    ├── ProtocolVersionError     426 protocol-version
     │    └── JoinRefusedError         the game's onJoin refused the player (close 4003)
     ├── RoomClosedError          the runtime ended the connection for good (close code)
     │    ├── ReplacedError            4000   ├── RoomFailedError      4410
     │    ├── RoomResetError           4503   ├── ServerStoppingError  1001
     │    └── RateLimitCloseError      1008
     ├── ReconnectError           reconnection failed; the seat is lost
     │    ├── ReconnectTokenError      401 reconnect-token
     │    └── ReconnectExpiredError    410 reconnect-expired, 404, or the window passed
     └── ServerError              an `error` frame (hook_failed, bad_frame, rate_limited, frames_lost)
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://gsf.dev/problems/"


class GSFError(Exception):
    """Base class of the SDK's errors."""


class MatchmakerError(GSFError):
    """A matchmaker answer that was not 2xx."""

    def __init__(self, status: int, slug: str, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or f"matchmaker answered {status} {slug}")
        self.status = status
        self.slug = slug
        self.problem = problem


class RoomNotFoundError(MatchmakerError): ...
class RoomFullError(MatchmakerError): ...
class RoomLockedError(MatchmakerError): ...
class NoRoomAvailableError(MatchmakerError): ...
class ValidationError(MatchmakerError): ...


class RateLimitedError(MatchmakerError):
    def __init__(self, status: int, slug: str, problem: dict[str, Any], retry_after: float | None) -> None:
        super().__init__(status, slug, problem)
        self.retry_after = retry_after


_BY_SLUG: dict[str, type[MatchmakerError]] = {
    "room-not-found": RoomNotFoundError, "room-full": RoomFullError, "room-locked": RoomLockedError,
    "no-room-available": NoRoomAvailableError, "validation-error": ValidationError,
}


def problem_slug(problem: dict[str, Any]) -> str:
    kind = problem.get("type")
    kind = kind if isinstance(kind, str) else ""
    return kind.removeprefix(PROBLEM_BASE)


def matchmaker_error(status: int, problem: dict[str, Any], retry_after: str | None = None) -> MatchmakerError:
    slug = problem_slug(problem) or f"http-{status}"
    if status == 429 or slug == "rate-limited":
        try:
            seconds: float | None = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return RateLimitedError(status, slug, problem, seconds)
    return _BY_SLUG.get(slug, MatchmakerError)(status, slug, problem)


class ConnectError(GSFError):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SeatRefusedError(ConnectError):
    def __init__(self, message: str, status: int, slug: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


class ProtocolVersionError(SeatRefusedError): ...


class JoinRefusedError(ConnectError): ...


class RoomClosedError(GSFError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"the connection closed with {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason


class ReplacedError(RoomClosedError): ...
class RoomFailedError(RoomClosedError): ...
class RoomResetError(RoomClosedError): ...
class ServerStoppingError(RoomClosedError): ...
class RateLimitCloseError(RoomClosedError): ...


FINAL_CLOSE_CODES: dict[int, type[RoomClosedError]] = {
    1001: ServerStoppingError, 1008: RateLimitCloseError, 4000: ReplacedError, 4003: RoomClosedError,
    4410: RoomFailedError, 4503: RoomResetError,
}


def close_error(code: int, reason: str) -> RoomClosedError | None:
    """The error of a close the client did not ask for; None for 1000 (a normal end)."""
    if code == 1000:
        return None
    return FINAL_CLOSE_CODES.get(code, RoomClosedError)(code, reason)


class ReconnectError(GSFError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReconnectTokenError(ReconnectError): ...
class ReconnectExpiredError(ReconnectError): ...


class ServerError(GSFError):
    """An `error` frame; the connection stays open."""

    def __init__(self, code: str, message: str, hook: str | None) -> None:
        super().__init__(message or code)
        self.code = code
        self.hook = hook
