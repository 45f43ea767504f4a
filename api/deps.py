"""Annotated dependencies: settings, DB session, Temporal client, the calling user or node agent.

Every dependency is an `async def`, even one that never awaits: FastAPI runs a plain `def` in a
worker thread, a thread hop per request on every route that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core import logging as log_context
from core import node_credentials, security
from core.artifacts import LocalArtifactStore
from core.db.models import ApiKey, User
from core.errors import Forbidden, Unauthorized, Unavailable
from core.problems import declares
from core.settings import Settings
from core.temporal import connect

Scope = Literal["servers", "models", "admin"]
SCOPES: tuple[Scope, ...] = ("servers", "models", "admin")


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


@declares(503)
async def get_temporal(request: Request) -> Client:
    state = request.app.state
    if state.temporal is None:
        # Temporal may start after the API; connect on first use instead of refusing to boot.
        try:
            state.temporal = await connect(state.settings)
        except (RuntimeError, OSError) as exc:
            raise Unavailable(f"Temporal at {state.settings.temporal_address} does not answer: {exc}") from None
    client: Client = state.temporal
    return client


async def get_artifacts(request: Request) -> LocalArtifactStore:
    store: LocalArtifactStore = request.app.state.artifacts
    return store


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    return token.strip()


async def check_api_key(session: AsyncSession, key: str) -> tuple[User, ApiKey]:
    """The user an API key belongs to and the key's row, in one query; Unauthorized for an
    unknown, revoked or expired key, or a key of a deleted user."""
    found = (await session.execute(
        select(User, ApiKey).join(ApiKey, ApiKey.user_id == User.id)
        .where(ApiKey.prefix == security.key_prefix(key), ApiKey.key_hash == security.hash_api_key(key)))).first()
    if found is None or found[1].revoked_at is not None or found[0].deleted_at is not None:
        raise Unauthorized("unknown or revoked API key")
    user, row = found
    expires = row.expires_at
    if expires is not None and (expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires) < datetime.now(UTC):
        raise Unauthorized("API key expired")
    return user, row


def held_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """What a key with `scopes` may do: its known scopes, and every scope if `admin` is one of them."""
    held = frozenset(s for s in scopes if s in SCOPES)
    return frozenset(SCOPES) if "admin" in held else held


# The scopes a key needs, any one of them, for the routes under each path prefix (the longest
# prefix wins); () lets any key in. A route under no prefix is refused to every key: a new router
# gets its row here (tests/security/test_ownership_matrix.py holds every route to this table).
ROUTE_SCOPES: dict[str, tuple[Scope, ...]] = {
    "/api/v1/servers": ("servers",),
    "/api/v1/events/servers": ("servers",),
    "/api/v1/analysis": ("servers",),
    "/api/v1/rooms": ("servers",),
    "/api/v1/pipelines": ("servers",),
    "/api/v1/games": ("servers",),
    "/api/v1/fleets": ("servers",),
    "/api/v1/allocations": ("servers",),
    # A webhook's events are checked against their own scopes (server.* `servers`, model.* `models`).
    "/api/v1/webhooks": ("servers", "models"),
    "/api/v1/models": ("models",),
    "/api/v1/nodes": ("admin",),
    "/api/v1/users": ("admin",),
    "/api/v1/audit": ("admin",),
    "/api/v1/keys": (),  # the caller's own keys; a new key holds no scope its creator lacks
    "/api/v1/config": (),  # the console's settings, nothing of anyone's
}


def route_scopes(path: str) -> tuple[Scope, ...] | None:
    """The scopes (any one of them) a key needs for the route `path`; None when no row covers it."""
    best: tuple[str, tuple[Scope, ...]] | None = None
    for prefix, scopes in ROUTE_SCOPES.items():
        if (path == prefix or path.startswith(prefix + "/")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, scopes)
    return None if best is None else best[1]


def authorize(user: User, scopes: Iterable[str], needed: tuple[Scope, ...] | None) -> None:
    """Forbidden unless the key holds one of `needed` (admin routes: and its user is an admin)."""
    if needed is None:
        raise Forbidden("no scope policy covers this route")
    if "admin" in needed and not user.is_admin:
        raise Forbidden("this needs an admin key")
    if needed and not held_scopes(scopes) & set(needed):
        raise Forbidden(f"this key lacks the {' or '.join(f'`{s}`' for s in needed)} scope")


@declares(401, 403, security="apiKey")
async def get_current_user(request: Request, session: Annotated[AsyncSession, Depends(get_session)]) -> User:
    """The key's user, once the key is found to hold a scope the route needs (`ROUTE_SCOPES`)."""
    user, row = await check_api_key(session, _bearer(request))
    scopes = list(row.scopes or [])
    # For the audit log and scope checks further down.
    request.state.user_id, request.state.key_id, request.state.scopes = user.id, row.id, scopes
    log_context.user.set(str(user.id))
    route = request.scope.get("route")
    authorize(user, scopes, route_scopes(getattr(route, "path_format", None) or request.scope["path"]))
    if user.is_admin and "admin" not in held_scopes(scopes):
        # An admin's key without the `admin` scope acts with the rights of an ordinary user: it sees
        # and touches only its user's own resources. Detached first, so this never reaches the database.
        session.expunge(user)
        user.is_admin = False
    return user


async def bind_path_context(request: Request) -> None:
    """An app-wide dependency: lines logged for a route about one server carry its id."""
    server_id = request.path_params.get("server_id")
    if server_id:
        log_context.server_id.set(str(server_id)[:64])


def require_scope(scope: Scope) -> Callable[..., Coroutine[Any, Any, None]]:
    """A router dependency: the caller's key must carry `scope` (admin keys carry every scope)."""

    @declares(403)
    async def check(request: Request, user: Annotated[User, Depends(get_current_user)]) -> None:
        if scope not in held_scopes(getattr(request.state, "scopes", [])):
            raise Forbidden(f"this key lacks the `{scope}` scope")

    return check


@declares(403)
async def require_admin(request: Request, user: Annotated[User, Depends(get_current_user)]) -> User:
    """An admin user calling with a key that holds the `admin` scope: both, not either."""
    authorize(user, getattr(request.state, "scopes", []), ("admin",))
    return user


@declares(401, security="nodeToken")
async def get_agent_node(request: Request, session: Annotated[AsyncSession, Depends(get_session)]) -> str:
    """The node a live node credential speaks for (core/node_credentials.py); revoked ones fail."""
    node_id = await node_credentials.verify(session, _bearer(request))
    if node_id is None:
        raise Unauthorized("unknown or revoked node token")
    return node_id


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ArtifactsDep = Annotated[LocalArtifactStore, Depends(get_artifacts)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
AgentNode = Annotated[str, Depends(get_agent_node)]
