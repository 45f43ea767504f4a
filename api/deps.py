"""Annotated dependencies: settings, DB session, Temporal client, the calling user or node agent.

Every dependency is an `async def`, even one that never awaits: FastAPI runs a plain `def` in a
worker thread, a thread hop per request on every route that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.errors import declares
from core import logging as log_context
from core import security
from core.artifacts import LocalArtifactStore
from core.db.models import ApiKey, User
from core.errors import Forbidden, Unauthorized, Unavailable
from core.settings import Settings
from core.temporal import connect


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
    unknown, revoked or expired key."""
    found = (await session.execute(
        select(User, ApiKey).join(ApiKey, ApiKey.user_id == User.id)
        .where(ApiKey.prefix == security.key_prefix(key), ApiKey.key_hash == security.hash_api_key(key)))).first()
    if found is None or found[1].revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    user, row = found
    expires = row.expires_at
    if expires is not None and (expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires) < datetime.now(UTC):
        raise Unauthorized("API key expired")
    return user, row


@declares(401, security="apiKey")
async def get_current_user(request: Request, session: Annotated[AsyncSession, Depends(get_session)]) -> User:
    user, row = await check_api_key(session, _bearer(request))
    # For the audit log and scope checks further down.
    request.state.user_id, request.state.key_id, request.state.scopes = user.id, row.id, list(row.scopes or [])
    log_context.user.set(str(user.id))
    return user


async def bind_path_context(request: Request) -> None:
    """An app-wide dependency: lines logged for a route about one server carry its id."""
    server_id = request.path_params.get("server_id")
    if server_id:
        log_context.server_id.set(str(server_id)[:64])


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """A router dependency: the caller's key must carry `scope` (admin keys carry every scope)."""

    @declares(403)
    async def check(request: Request, user: Annotated[User, Depends(get_current_user)]) -> None:
        scopes = getattr(request.state, "scopes", [])
        if scope not in scopes and "admin" not in scopes:
            raise Forbidden(f"this key lacks the `{scope}` scope")

    return check


@declares(403)
async def require_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("this needs an admin key")
    return user


@declares(401, security="nodeToken")
async def get_agent_node(request: Request) -> str:
    node_id = security.verify_node_token(request.app.state.settings.secret_key, _bearer(request))
    if node_id is None:
        raise Unauthorized("unknown node token")
    return node_id


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ArtifactsDep = Annotated[LocalArtifactStore, Depends(get_artifacts)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
AgentNode = Annotated[str, Depends(get_agent_node)]
