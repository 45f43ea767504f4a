"""Webhook events: their types and ids, the signed body a receiver gets, and the models Temporal carries.

Wire format of one delivery (docs/webhooks.md):
    POST <url>, Content-Type: application/json, body = the event as compact JSON
    X-GSF-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    X-GSF-Event: <type>, X-GSF-Event-Id: <event id>, X-GSF-Delivery: <delivery id>, X-GSF-Attempt: <n>
The event id stays the same across retries (receivers de-duplicate on it); the timestamp is the attempt's,
so a receiver can refuse replays of old deliveries.

At rest the signing secret is sealed (Fernet, with a key derived from `GSF_SECRET_KEY`); only the
attempt activity opens it, to sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, Field

SIGNATURE_HEADER = "X-GSF-Signature"
USER_AGENT = "gsf-webhooks/0.1"


class EventType(StrEnum):
    SERVER_RUNNING = "server.running"
    SERVER_REJECTED = "server.rejected"
    SERVER_FAILED = "server.failed"
    SERVER_STOPPED = "server.stopped"
    SERVER_DELETED = "server.deleted"
    PIPELINE_PAUSED = "pipeline.paused"
    PIPELINE_FAILED = "pipeline.failed"
    PIPELINE_SUCCEEDED = "pipeline.succeeded"
    MODEL_SUCCEEDED = "model.succeeded"
    MODEL_FAILED = "model.failed"
    NODE_OFFLINE = "node.offline"
    NODE_ONLINE = "node.online"
    # Rooms of a game server (issue #22), from the node agent's relay. `room.ended` is raised for every
    # end (its `status` says `disposed` or `failed`); `room.failed` only for a failed one, so an alert
    # can subscribe to failures without a delivery per finished match.
    ROOM_CREATED = "room.created"
    ROOM_ENDED = "room.ended"
    ROOM_FAILED = "room.failed"
    # Sent only by `POST /api/v1/webhooks/{id}/test`; nobody subscribes to it.
    WEBHOOK_TEST = "webhook.test"


SUBSCRIBABLE = frozenset(EventType) - {EventType.WEBHOOK_TEST}
# Node events concern the whole platform: only admins' webhooks may subscribe to them.
ADMIN_ONLY = frozenset({EventType.NODE_OFFLINE, EventType.NODE_ONLINE})

# Platform statuses that raise an event (others, such as `building`, do not).
SERVER_EVENTS = {"running": EventType.SERVER_RUNNING, "rejected": EventType.SERVER_REJECTED,
                 "failed": EventType.SERVER_FAILED, "stopped": EventType.SERVER_STOPPED,
                 "deleted": EventType.SERVER_DELETED}
PIPELINE_EVENTS = {"paused": EventType.PIPELINE_PAUSED, "failed": EventType.PIPELINE_FAILED,
                   "succeeded": EventType.PIPELINE_SUCCEEDED}
MODEL_EVENTS = {"success": EventType.MODEL_SUCCEEDED, "failed": EventType.MODEL_FAILED}
ROOM_EVENTS = frozenset({EventType.ROOM_CREATED, EventType.ROOM_ENDED, EventType.ROOM_FAILED})


def event_id(*parts: str) -> str:
    """A deterministic id for one fact (e.g. a server's status number 7): a retried record raises the same event."""
    return "evt_" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def delivery_workflow_id(webhook_id: str, event_id: str) -> str:
    """One delivery workflow per (webhook, event): Temporal refuses a second start, which de-duplicates."""
    return f"webhook-{webhook_id}-{event_id}"


def platform_sweep_workflow_id(control_queue: str) -> str:
    return f"platform-sweep-{control_queue}"


# --- the body and its signature -------------------------------------------------------


class WebhookEvent(BaseModel):
    """What a receiver gets: the event, the resource as it was, and links to it and to its workflow."""

    id: str
    type: EventType
    time: datetime
    resource: dict[str, Any]
    links: dict[str, str] = Field(default_factory=dict)


def body_bytes(event: WebhookEvent) -> bytes:
    """The exact bytes that are sent and signed (compact JSON, keys sorted)."""
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-GSF-Signature` value of `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class RoomTransition(BaseModel):
    """A room of a server was created, or ended (`status` `disposed` or `failed`, with its reason), as
    the node agent saw it between two rounds of its relay (agent_worker/room_events.py)."""

    server_id: str
    room_id: str
    event: str  # "created" | "ended"
    status: str  # the runtime's room status: "open" when created; "disposed", "failed", ... when ended
    reason: str | None = None
    players: int = 0  # seated when created; the last count seen while it was open when it ended
    at: datetime  # created: the runtime's `created_at`; ended: when the agent saw it ended


def room_event_types(transition: RoomTransition) -> list[EventType]:
    """The events one room transition raises: room.created; room.ended, and room.failed if it failed."""
    if transition.event == "created":
        return [EventType.ROOM_CREATED]
    if transition.status == "failed":
        return [EventType.ROOM_ENDED, EventType.ROOM_FAILED]
    return [EventType.ROOM_ENDED]


# --- the secret at rest -------------------------------------------------------------------

# A sealed secret is this prefix + a Fernet token. The version names the key derivation, so a later
# scheme can sit beside this one while rows are migrated.
SEALED_PREFIX = "fernet1:"
# HKDF `info`: the key sealing webhook secrets is of no use for anything else derived from GSF_SECRET_KEY.
SEALING_LABEL = b"gsf/webhook-secrets/v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be opened: not sealed (schema not migrated), or sealed under another GSF_SECRET_KEY."""


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEALING_LABEL).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret_key: str, secret: str) -> str:
    """The form a webhook's signing secret is stored in."""
    return SEALED_PREFIX + _fernet(secret_key).encrypt(secret.encode()).decode()


def open_secret(secret_key: str, sealed: str) -> str:
    """The signing secret of a stored value; `SecretUnreadable` if this key did not seal it."""
    if not sealed.startswith(SEALED_PREFIX):
        raise SecretUnreadable("the stored secret is not sealed; run `gsf db upgrade`")
    try:
        return _fernet(secret_key).decrypt(sealed[len(SEALED_PREFIX):].encode()).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise SecretUnreadable("the stored secret was sealed with another GSF_SECRET_KEY") from None


# --- Temporal inputs and results ----------------------------------------------------------


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # being delivered or waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # retries ran out, or the target was refused at delivery time
    SKIPPED = "skipped"  # the webhook was disabled or deleted before the event got through


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"  # try again later
    REFUSED = "refused"  # the target resolves to an address webhooks may not reach: do not retry
    GONE = "gone"  # the webhook was deleted or disabled: stop


class DeliverWebhookInput(BaseModel):
    """No secret travels here: the attempt activity reads it from the database."""

    webhook_id: str
    delivery_id: str
    event: WebhookEvent
    control_queue: str = "gsf-control"
    retry_seconds: float = 86_400.0
    backoff_initial_seconds: float = 10.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0


class DeliveryState(BaseModel):
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None


class DeliverWebhookResult(BaseModel):
    status: DeliveryStatus
    attempts: int
    error: str | None = None


class AttemptDeliveryInput(BaseModel):
    webhook_id: str
    delivery_id: str
    attempt: int
    event: WebhookEvent
    timeout_seconds: float = 10.0


class AttemptDeliveryResult(BaseModel):
    outcome: AttemptOutcome
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None


class FinishDeliveryInput(BaseModel):
    delivery_id: str
    status: DeliveryStatus
    error: str | None = None


class FinishDeliveryResult(BaseModel):
    applied: bool


class PlatformSweepInput(BaseModel):
    control_queue: str = "gsf-control"
    interval_seconds: float = 5.0
    prune_every_sweeps: int = 120  # the webhook log is pruned on every n-th sweep


class SweepNodeLivenessInput(BaseModel):
    pass


class SweepNodeLivenessResult(BaseModel):
    went_online: list[str] = Field(default_factory=list)
    went_offline: list[str] = Field(default_factory=list)


class PruneWebhookLogInput(BaseModel):
    pass


class PruneWebhookLogResult(BaseModel):
    deleted: int
