"""Users (admin) and API keys (each user manages their own, admins anyone's): keys are shown once
and stored hashed, and a key only ever makes keys with scopes it holds itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    AdminUser,
    CurrentUser,
    Scope,
    SessionDep,
    SettingsDep,
    get_temporal,
    held_scopes,
)
from api.routes import fleets, pipelines, servers
from api.routes.allocations import settle_records
from core import security
from core.contracts import ServerStatus
from core.db.models import ApiKey, AuditEntry, Fleet, GameServer, PipelineRun, User, Webhook
from core.errors import Conflict, Forbidden, GsfError, NotFound, Unavailable
from core.fleets import FleetLifecycle
from core.problems import problems

router = APIRouter(prefix="/api/v1", tags=["users"])
TEARDOWN_CONCURRENCY = 4  # a deleted user's servers, fleets and runs stopped at once, at most


def _default_scopes() -> list[Scope]:
    return ["servers", "models"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # `\s` differs between Python's regex (which also takes U+001C-U+001F and U+0085) and the schema's
    # ECMA-262 one (which also takes U+FEFF): the class names those, so both refuse the same addresses;
    # and NUL, which PostgreSQL cannot store in text (SQLite can): refused on every database alike.
    email: str = Field(pattern=r"^[^@\s\x00\x1c-\x1f\x85\ufeff]{1,64}@[^@\s\x00\x1c-\x1f\x85\ufeff]{1,255}$")
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")
    is_admin: bool = False


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: _default_scopes())
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    is_admin: bool
    created_at: datetime
    deleted_at: datetime | None = None


class UserCreated(UserPublic):
    key: KeyCreated


class Unfinished(BaseModel):
    kind: str
    id: str
    detail: str


class UserDeleted(BaseModel):
    """What deleting a user did: all of it done once `unfinished` is empty (a DELETE again retries)."""

    user: UserPublic
    keys_revoked: int
    webhooks_disabled: int
    fleets: int
    pipelines: int
    servers: int


async def _new_key(session: SessionDep, user: User, body: KeyCreate) -> KeyCreated:
    key, prefix, digest = security.new_api_key()
    expires = datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row = ApiKey(user_id=user.id, name=body.name, prefix=prefix, key_hash=digest, scopes=list(body.scopes),
                 expires_at=expires)
    session.add(row)
    await session.commit()
    return KeyCreated.model_validate({**KeyPublic.model_validate(row).model_dump(), "key": key})


@router.post("/users", status_code=201, response_model=UserCreated, responses=problems(409))
async def create_user(body: UserCreate, admin: AdminUser, session: SessionDep) -> UserCreated:
    """Create a user with a first API key (shown once)."""
    existing = await session.scalar(select(User).where(User.email == body.email))
    if existing is not None and existing.deleted_at is not None:
        raise Conflict(f"the user with email {body.email!r} was deleted; their email stays theirs")
    if existing is not None:
        raise Conflict(f"a user with email {body.email!r} exists")
    user = User(email=body.email, name=body.name or body.email.split("@")[0], is_admin=body.is_admin)
    session.add(user)
    await session.flush()
    scopes: list[Scope] = ["servers", "models", "admin"] if body.is_admin else ["servers", "models"]
    key = await _new_key(session, user, KeyCreate(name="first", scopes=scopes))
    return UserCreated.model_validate({**UserPublic.model_validate(user).model_dump(), "key": key})


@router.get("/users", response_model=list[UserPublic])
async def list_users(admin: AdminUser, session: SessionDep) -> list[UserPublic]:
    """All users."""
    return [UserPublic.model_validate(u) for u in (await session.scalars(select(User).order_by(User.email))).all()]


@router.post("/keys", status_code=201, response_model=KeyCreated, responses=problems(403))
async def create_key(body: KeyCreate, request: Request, user: CurrentUser, session: SessionDep) -> KeyCreated:
    """A new key for the caller (shown once), with scopes the calling key holds; `admin` for admins only."""
    if "admin" in body.scopes and not user.is_admin:
        raise Forbidden("only an admin may create a key with the `admin` scope")
    beyond = sorted(set(body.scopes) - held_scopes(request.state.scopes))
    if beyond:
        raise Forbidden(f"this key cannot grant scopes it lacks: {', '.join(beyond)}")
    return await _new_key(session, user, body)


async def _keys_of(session: AsyncSession, user_id: str) -> list[KeyPublic]:
    rows = (await session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)
                                  .order_by(ApiKey.created_at))).all()
    return [KeyPublic.model_validate(r) for r in rows]


async def _revoke(session: AsyncSession, user_id: str, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id) if len(key_id) <= 32 else None
    if row is None or row.user_id != user_id:
        raise NotFound(f"no key {key_id!r}")
    row.revoked_at = row.revoked_at or datetime.now(UTC)
    return row


@router.get("/keys", response_model=list[KeyPublic])
async def list_keys(user: CurrentUser, session: SessionDep) -> list[KeyPublic]:
    """The caller's keys, without their secrets."""
    return await _keys_of(session, user.id)


@router.delete("/keys/{key_id}", status_code=204, responses=problems(403))
async def revoke_key(key_id: str, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    """Revoke one of the caller's keys, none with scopes the calling key lacks; it stops working at
    once (for allocating, within 2 s)."""
    row = await _revoke(session, user.id, key_id)
    if not held_scopes(row.scopes or []) <= held_scopes(request.state.scopes):
        raise Forbidden("this key cannot revoke a key with scopes it lacks")
    await session.commit()
    return Response(status_code=204)


async def _user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id) if len(user_id) <= 32 else None
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return user


@router.get("/users/{user_id}/keys", response_model=list[KeyPublic], responses=problems(404))
async def list_user_keys(user_id: str, admin: AdminUser, session: SessionDep) -> list[KeyPublic]:
    """A user's keys, without their secrets (admin)."""
    return await _keys_of(session, (await _user(session, user_id)).id)


@router.delete("/users/{user_id}/keys/{key_id}", status_code=204, responses=problems(404))
async def revoke_user_key(user_id: str, key_id: str, admin: AdminUser, session: SessionDep) -> Response:
    """Revoke any user's key (admin); it stops working at once (for allocating, within 2 s)."""
    await _revoke(session, (await _user(session, user_id)).id, key_id)
    await session.commit()
    return Response(status_code=204)


@router.delete("/users/{user_id}", response_model=UserDeleted, responses=problems(404, 409, 503))
async def delete_user(user_id: str, request: Request, admin: AdminUser, session: SessionDep,
                      settings: SettingsDep) -> UserDeleted:
    """Delete a user (admin): revoke their keys, delete their fleets and servers, cancel their
    pipeline runs; the user's row and the audit log stay. Idempotent: a DELETE again retries what
    did not finish."""
    user = await _user(session, user_id)
    if user.id == admin.id:
        raise Conflict("an admin cannot delete their own user")
    now = datetime.now(UTC)
    user.deleted_at = user.deleted_at or now
    # First nothing of theirs can act any more; then what they run is taken down.
    revoked = await session.execute(update(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                                    .values(revoked_at=now))
    disabled = await session.execute(update(Webhook).where(Webhook.owner_id == user.id, Webhook.enabled.is_(True))
                                     .values(enabled=False, disabled_at=now, disabled_reason="its owner was deleted"))
    await session.commit()
    fleet_ids = (await session.scalars(select(Fleet.id).where(
        Fleet.owner_id == user.id, Fleet.status != FleetLifecycle.DELETED.value))).all()
    run_ids = (await session.scalars(select(PipelineRun.id).where(
        PipelineRun.owner_id == user.id, PipelineRun.status.not_in(pipelines.DONE)))).all()
    unfinished: list[Unfinished] = []
    if fleet_ids or run_ids:
        temporal = await get_temporal(request)
        # The admin acts through the routes' own code: a forced fleet delete retires its servers.
        unfinished += await _each(request, "fleet", fleet_ids, lambda s, i: fleets.delete_fleet(
            i, admin, s, temporal, settings, force=True))
        unfinished += await _each(request, "pipeline", run_ids, lambda s, i: pipelines.cancel_pipeline(
            i, admin, s, temporal, settings))
    # Listed after the fleets' delete: a fleet cannot start another server for the list to miss.
    server_ids = (await session.scalars(select(GameServer.id).where(
        GameServer.owner_id == user.id, GameServer.status != ServerStatus.DELETED.value))).all()
    if server_ids:
        temporal = await get_temporal(request)
        unfinished += await _each(request, "server", server_ids, lambda s, i: servers.delete_server(
            i, admin, s, temporal, settings))
    if unfinished:
        raise Unavailable(f"{len(unfinished)} of the user's resources did not stop yet; DELETE again to retry",
                          unfinished=[u.model_dump() for u in unfinished])
    return UserDeleted(user=UserPublic.model_validate(user), keys_revoked=_count(revoked),
                       webhooks_disabled=_count(disabled), fleets=len(fleet_ids), pipelines=len(run_ids),
                       servers=len(server_ids))


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _each(request: Request, kind: str, ids: Sequence[str],
                act: Callable[[AsyncSession, str], Awaitable[object]]) -> list[Unfinished]:
    """`act` on every id, a few at once, each in a session of its own; the ones that failed."""
    gate = asyncio.Semaphore(TEARDOWN_CONCURRENCY)

    async def one(item: str) -> Unfinished | None:
        async with gate, request.app.state.sessions() as session:
            try:
                await act(session, item)
            except GsfError as exc:
                return Unfinished(kind=kind, id=item, detail=exc.detail)
        return None

    return [u for u in await asyncio.gather(*(one(i) for i in ids)) if u is not None]


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    user_id: str | None
    method: str
    path: str
    status: int
    request_id: str
    client: str


@router.get("/audit", response_model=list[AuditPublic])
async def audit(request: Request, admin: AdminUser, session: SessionDep,
                user_id: Annotated[str | None, Query(max_length=32)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditPublic]:
    """Mutating calls, newest first (admin)."""
    await settle_records(request.app)  # allocations' entries are written with their records, off their path
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if user_id:
        query = query.where(AuditEntry.user_id == user_id)
    return [AuditPublic.model_validate(a) for a in (await session.scalars(query)).all()]
