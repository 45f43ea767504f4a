"""Webhooks: a user's receivers of platform events, their test ping and their delivery log."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, String, and_, cast, func, select, true
from temporalio.service import RPCError

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, held_scopes
from api.schemas import Offset
from core.db.models import User, Webhook, WebhookAttempt, WebhookDelivery
from core.errors import Conflict, Forbidden, NotFound, Unavailable
from core.events import EventEmitter
from core.problems import problems
from core.queues import workflow_ui_url
from core.settings import Settings
from core.webhooks import (
    ADMIN_ONLY,
    SUBSCRIBABLE,
    DeliveryStatus,
    EventType,
    WebhookEvent,
    seal_secret,
)
from core.webhooks_net import MAX_URL_LENGTH, AddressPolicy, resolve_target

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
# The scope an event family needs on the key that subscribes to it, reads it or changes it.
FAMILY_SCOPES = {"server": "servers", "room": "servers", "pipeline": "servers", "model": "models", "node": "admin"}
EVENT_FAMILY_SCOPES = {e.value: FAMILY_SCOPES[e.value.partition(".")[0]] for e in SUBSCRIBABLE}


# What `parse_url` checks before any lookup: http(s), a host, no credentials. Whether the host
# resolves to an address webhooks may reach is known only when the request arrives.
URL_SCHEMA: dict[str, Any] = {"pattern": r"^https?://(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])"
                                         r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"}
# Subscribable events only (`webhook.test` is sent by the test route, never subscribed to).
EVENTS_SCHEMA: dict[str, Any] = {"items": {"enum": sorted(e.value for e in SUBSCRIBABLE)}}


def _events(value: list[EventType]) -> list[EventType]:
    unknown = [e.value for e in value if e not in SUBSCRIBABLE]
    if unknown:
        raise ValueError(f"not a subscribable event: {', '.join(unknown)}")
    return sorted(set(value), key=lambda e: e.value)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL_LENGTH, description="an http(s) URL on a public address",
                     json_schema_extra=URL_SCHEMA)
    events: list[EventType] = Field(min_length=1, max_length=len(SUBSCRIBABLE), json_schema_extra=EVENTS_SCHEMA)
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="signs every delivery; generated (and shown once) if absent")
    description: str = Field(default="", max_length=200)

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[EventType]) -> list[EventType]:
        return _events(value)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(max_length=MAX_URL_LENGTH, json_schema_extra=URL_SCHEMA)] | None = None
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(SUBSCRIBABLE),
                                             json_schema_extra=EVENTS_SCHEMA)] | None = None
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(default=None, description="true re-enables an automatically disabled webhook")

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[EventType] | None) -> list[EventType] | None:
        return None if value is None else _events(value)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="shown only in this answer")


class WebhooksPublic(BaseModel):
    items: list[WebhookPublic]
    count: int


class AttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None


class DeliveryPublic(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    workflow_id: str
    workflow_url: str
    payload: dict[str, Any]
    attempts: list[AttemptPublic]


class DeliveriesPublic(BaseModel):
    items: list[DeliveryPublic]
    count: int


def _delivery_public(d: WebhookDelivery, attempts: list[WebhookAttempt], settings: Settings) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id, webhook_id=d.webhook_id, event_id=d.event_id, event_type=d.event_type, status=d.status,
        attempt_count=d.attempts, last_status_code=d.last_status_code, last_error=d.last_error,
        created_at=d.created_at, updated_at=d.updated_at, delivered_at=d.delivered_at, workflow_id=d.workflow_id,
        workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, d.workflow_id),
        payload=d.payload, attempts=[AttemptPublic.model_validate(a) for a in attempts])


def _needed_scopes(events: list[str]) -> frozenset[str]:
    """The scopes a key must hold, all of them, to subscribe to `events` or to read or change a
    webhook subscribed to them: each family's own scope, and `admin` for the node events."""
    needed: set[str] = set()
    for event in events:
        if event in ADMIN_ONLY:
            needed.add("admin")
        elif event in EVENT_FAMILY_SCOPES:
            needed.add(EVENT_FAMILY_SCOPES[event])
    return frozenset(needed)


def _held(request: Request, user: User) -> frozenset[str]:
    """The scopes the calling key holds (`admin` only for an admin user: a demoted user's old key
    keeps its row but loses the power)."""
    held = held_scopes(getattr(request.state, "scopes", []))
    return held if user.is_admin else held - {"admin"}


def _check_subscription(request: Request, user: User, events: list[EventType]) -> None:
    missing = _needed_scopes([e.value for e in events]) - _held(request, user)
    if missing:
        raise Forbidden(f"these events need a key with the {', '.join(f'`{s}`' for s in sorted(missing))} scope")


def _visible(request: Request, user: User) -> ColumnElement[bool]:
    """The webhooks the calling key may see: the user's own (any user's with the `admin` scope),
    and among them only those whose every event family is within the key's scopes. The events
    column holds a JSON list of event names, so a family shows in its text as `"<family>.`."""
    held = _held(request, user)
    clauses: list[ColumnElement[bool]] = []
    if "admin" not in held:
        clauses.append(Webhook.owner_id == user.id)
    events = cast(Webhook.events, String)
    for family, scope in FAMILY_SCOPES.items():
        if scope not in held:
            clauses.append(events.not_like(f'%"{family}.%'))
    return and_(true(), *clauses)


async def _owned(session: SessionDep, request: Request, user: User, webhook_id: str) -> Webhook:
    hook = await session.get(Webhook, webhook_id) if len(webhook_id) <= 32 else None
    held = _held(request, user)
    if hook is None or (hook.owner_id != user.id and "admin" not in held):
        raise NotFound(f"no webhook {webhook_id!r}")
    missing = _needed_scopes(list(hook.events or [])) - held
    if missing:
        raise Forbidden(f"this webhook's events need a key with the "
                        f"{', '.join(f'`{s}`' for s in sorted(missing))} scope")
    return hook


@router.post("", status_code=201, response_model=WebhookCreated, responses=problems(403))
async def create_webhook(body: WebhookCreate, request: Request, user: CurrentUser, session: SessionDep,
                         settings: SettingsDep) -> WebhookCreated:
    """Subscribe a URL to events; the answer carries the signing secret (shown once)."""
    _check_subscription(request, user, body.events)
    await resolve_target(body.url, AddressPolicy.from_settings(settings))
    now = datetime.now(UTC)
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(owner_id=user.id, url=body.url, events=[e.value for e in body.events],
                   description=body.description, secret=seal_secret(settings.secret_key, secret), enabled=True,
                   created_at=now, updated_at=now)
    session.add(hook)
    await session.commit()
    return WebhookCreated.model_validate({**WebhookPublic.model_validate(hook).model_dump(), "secret": secret})


@router.get("", response_model=WebhooksPublic)
async def list_webhooks(request: Request, user: CurrentUser, session: SessionDep,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        offset: Offset = 0) -> WebhooksPublic:
    """The caller's webhooks within the key's scopes, newest first (an admin key sees everyone's)."""
    query = select(Webhook).where(_visible(request, user))
    count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(Webhook.created_at.desc()).limit(limit).offset(offset))).all()
    return WebhooksPublic(items=[WebhookPublic.model_validate(r) for r in rows], count=count)


@router.get("/{webhook_id}", response_model=WebhookPublic)
async def get_webhook(webhook_id: str, request: Request, user: CurrentUser, session: SessionDep) -> WebhookPublic:
    """One webhook, with why it was disabled if it was."""
    return WebhookPublic.model_validate(await _owned(session, request, user, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookPublic, responses=problems(403))
async def update_webhook(webhook_id: str, body: WebhookUpdate, request: Request, user: CurrentUser,
                         session: SessionDep, settings: SettingsDep) -> WebhookPublic:
    """Change the URL, events or description, or enable/disable the webhook."""
    hook = await _owned(session, request, user, webhook_id)
    if body.url is not None:
        await resolve_target(body.url, AddressPolicy.from_settings(settings))
        hook.url = body.url
    if body.events is not None:
        _check_subscription(request, user, body.events)
        hook.events = [e.value for e in body.events]
    if body.description is not None:
        hook.description = body.description
    now = datetime.now(UTC)
    if body.enabled is True and not hook.enabled:
        hook.enabled, hook.disabled_at, hook.disabled_reason, hook.failing_since = True, None, None, None
    elif body.enabled is False and hook.enabled:
        hook.enabled, hook.disabled_at, hook.disabled_reason = False, now, "disabled by its owner"
    hook.updated_at = now
    await session.commit()
    return WebhookPublic.model_validate(hook)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, request: Request, user: CurrentUser, session: SessionDep,
                         temporal: TemporalDep) -> Response:
    """Remove the webhook and its log; deliveries still on their way are cancelled."""
    hook = await _owned(session, request, user, webhook_id)
    pending = (await session.scalars(select(WebhookDelivery.workflow_id).where(
        WebhookDelivery.webhook_id == hook.id, WebhookDelivery.status == DeliveryStatus.PENDING.value))).all()
    await session.delete(hook)
    await session.commit()

    async def cancel(workflow_id: str) -> None:
        # One that already ended, or never started, finds the webhook gone on its next attempt anyway.
        with contextlib.suppress(RPCError):
            await temporal.get_workflow_handle(workflow_id).cancel()

    await asyncio.gather(*(cancel(w) for w in pending))
    return Response(status_code=204)


@router.post("/{webhook_id}/test", status_code=202, response_model=DeliveryPublic, responses=problems(409))
async def test_webhook(webhook_id: str, request: Request, user: CurrentUser, session: SessionDep,
                       temporal: TemporalDep, settings: SettingsDep) -> DeliveryPublic:
    """Send a `webhook.test` event now, through the same signed, retried delivery as real events."""
    hook = await _owned(session, request, user, webhook_id)
    if not hook.enabled:
        raise Conflict("the webhook is disabled; enable it (PATCH enabled=true) before testing it")
    emitter = EventEmitter(request.app.state.sessions, temporal, settings)
    event_id = "evt_" + secrets.token_hex(16)
    event = WebhookEvent(id=event_id, type=EventType.WEBHOOK_TEST, time=datetime.now(UTC),
                         resource={"kind": "webhook", "id": hook.id, "url": hook.url, "events": hook.events},
                         links={"resource": f"{settings.public_api_url.rstrip('/')}/api/v1/webhooks/{hook.id}"})
    try:
        delivery = await emitter.send(hook, event)
    except RPCError as exc:
        raise Unavailable(f"Temporal refused the delivery: {exc.message}") from None
    return _delivery_public(delivery, [], settings)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic)
async def list_deliveries(webhook_id: str, request: Request, user: CurrentUser, session: SessionDep,
                          settings: SettingsDep,
                          status: Annotated[DeliveryStatus | None, Query()] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50,
                          offset: Offset = 0) -> DeliveriesPublic:
    """The delivery log, newest first: each event's status and every attempt's status code, latency and error."""
    hook = await _owned(session, request, user, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list((await session.scalars(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                                       .limit(limit).offset(offset))).all())
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in rows}
    if rows:
        for a in (await session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(attempts))
                                        .order_by(WebhookAttempt.attempt))).all():
            attempts[a.delivery_id].append(a)
    return DeliveriesPublic(items=[_delivery_public(d, attempts[d.id], settings) for d in rows], count=count)
