"""Users (admin) and API keys (each user manages their own): keys are shown once and stored hashed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import AdminUser, CurrentUser, SessionDep
from api.errors import problems
from api.routes.allocations import settle_records
from core import security
from core.db.models import ApiKey, AuditEntry, User
from core.errors import Conflict, Forbidden, NotFound

router = APIRouter(prefix="/api/v1", tags=["users"])
Scope = Literal["servers", "models", "admin"]


def _default_scopes() -> list[Scope]:
    return ["servers", "models"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")
    name: str = Field(default="", max_length=200)
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


class UserCreated(UserPublic):
    key: KeyCreated


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
    if await session.scalar(select(User.id).where(User.email == body.email)) is not None:
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
async def create_key(body: KeyCreate, user: CurrentUser, session: SessionDep) -> KeyCreated:
    """A new key for the caller (shown once); only admins may give a key the `admin` scope."""
    if "admin" in body.scopes and not user.is_admin:
        raise Forbidden("only an admin may create a key with the `admin` scope")
    return await _new_key(session, user, body)


@router.get("/keys", response_model=list[KeyPublic])
async def list_keys(user: CurrentUser, session: SessionDep) -> list[KeyPublic]:
    """The caller's keys, without their secrets."""
    rows = (await session.scalars(select(ApiKey).where(ApiKey.user_id == user.id)
                                  .order_by(ApiKey.created_at))).all()
    return [KeyPublic.model_validate(r) for r in rows]


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Revoke one of the caller's keys; it stops working at once (for allocating, within 2 s)."""
    row = await session.get(ApiKey, key_id) if len(key_id) <= 32 else None
    if row is None or row.user_id != user.id:
        raise NotFound(f"no key {key_id!r}")
    row.revoked_at = row.revoked_at or datetime.now(UTC)
    await session.commit()
    return Response(status_code=204)


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
