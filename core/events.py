"""Platform events to webhooks: each subscribed, enabled webhook gets one `WebhookDeliveryWorkflow` per event.

Emitting is cheap and never waits for a receiver: it writes the delivery rows and starts their workflows.
Event ids are derived from the fact they describe, so a retried record activity emits the same event
again and both the delivery row (unique per webhook and event) and the workflow id
(`webhook-<webhook>-<event>`, duplicates refused) keep it to one delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.contracts import RecordModelStatusInput, RecordPipelineInput, RecordStatusInput
from core.db.models import (
    GameServer,
    ModelJob,
    Node,
    PipelineRun,
    User,
    Webhook,
    WebhookDelivery,
)
from core.db.session import SessionFactory
from core.queues import WEBHOOK_DELIVERY_WORKFLOW, workflow_ui_url
from core.settings import Settings
from core.webhooks import (
    MODEL_EVENTS,
    PIPELINE_EVENTS,
    ROOM_EVENTS,
    SERVER_EVENTS,
    DeliverWebhookInput,
    DeliveryStatus,
    EventType,
    RoomTransition,
    WebhookEvent,
    delivery_workflow_id,
    event_id,
    platform_sweep_workflow_id,
    room_event_types,
)

ROOM_SENDS_AT_ONCE = 8  # deliveries of one batch of room transitions written and started concurrently


class EventEmitter:
    """Builds events from platform records and hands them to the webhooks that want them."""

    def __init__(self, sessions: SessionFactory, temporal: Client, settings: Settings) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.settings = settings

    # --- from records ---------------------------------------------------------------------

    async def server_transition(self, input: RecordStatusInput) -> list[WebhookDelivery]:
        """server.running / rejected / failed / stopped / deleted, one event per status number."""
        type_ = SERVER_EVENTS.get(input.status.value)
        if type_ is None:
            return []
        async with self.sessions() as session:
            server = await session.get(GameServer, input.server_id)
        if server is None:
            return []
        resource = {"kind": "server", "id": server.id, "name": server.name, "game": server.game,
                    "status": input.status.value, "seq": input.seq, "message": input.message,
                    "node_id": server.node_id, "ws_url": server.ws_url, "owner_id": server.owner_id}
        event = WebhookEvent(id=event_id("server", server.id, str(input.seq)), type=type_, time=input.at,
                             resource=resource, links=self._links("servers", server.id, server.workflow_id))
        return await self.emit(event, owner_id=server.owner_id)

    async def pipeline_transition(self, input: RecordPipelineInput) -> list[WebhookDelivery]:
        """pipeline.paused / failed / succeeded, one event per recorded state number."""
        type_ = PIPELINE_EVENTS.get(input.state.status.value)
        if type_ is None:
            return []
        async with self.sessions() as session:
            run = await session.get(PipelineRun, input.run_id)
        if run is None:
            return []
        failed = next((s for s in input.state.steps if s.status.value == "failed"), None)
        resource = {"kind": "pipeline", "id": run.id, "name": run.name, "node_id": run.node_id,
                    "status": input.state.status.value, "seq": input.seq, "error": input.state.error,
                    "failed_step": failed.name if failed else None, "owner_id": run.owner_id}
        event = WebhookEvent(id=event_id("pipeline", run.id, str(input.seq)), type=type_, time=input.at,
                             resource=resource, links=self._links("pipelines", run.id, run.workflow_id))
        return await self.emit(event, owner_id=run.owner_id)

    async def model_transition(self, input: RecordModelStatusInput) -> list[WebhookDelivery]:
        """model.succeeded / model.failed."""
        type_ = MODEL_EVENTS.get(input.status.value)
        if type_ is None:
            return []
        async with self.sessions() as session:
            job = await session.get(ModelJob, input.job_id)
        if job is None:
            return []
        resource = {"kind": "model", "id": job.id, "status": input.status.value, "seq": input.seq,
                    "error_code": input.error_code, "error_message": input.error_message,
                    "result_sha256": input.model_sha256 or job.result_sha256, "owner_id": job.owner_id}
        links = self._links("models", job.id, job.workflow_id)
        if type_ == EventType.MODEL_SUCCEEDED:
            links["result"] = links["resource"] + "/result"
        event = WebhookEvent(id=event_id("model", job.id, str(input.seq)), type=type_, time=input.at,
                             resource=resource, links=links)
        return await self.emit(event, owner_id=job.owner_id)

    async def node_transition(self, node: Node, online: bool, seq: int, at: datetime) -> list[WebhookDelivery]:
        """node.online / node.offline, to every admin's webhooks; `seq` numbers the node's changes."""
        type_ = EventType.NODE_ONLINE if online else EventType.NODE_OFFLINE
        resource = {"kind": "node", "id": node.id, "name": node.name, "status": node.status,
                    "online": online, "seq": seq, "labels": dict(node.labels or {}),
                    "last_online": node.last_online.isoformat() if node.last_online else None}
        links = self._links("nodes", node.id, platform_sweep_workflow_id(self.settings.control_queue))
        event = WebhookEvent(id=event_id("node", node.id, str(seq), type_.value), type=type_, time=at,
                             resource=resource, links=links)
        return await self.emit(event, owner_id=None)

    async def room_transitions(self, transitions: Sequence[RoomTransition]) -> list[WebhookDelivery]:
        """room.created / room.ended / room.failed, to the owners' webhooks of the rooms' servers.

        A batch costs one read of its servers and one of their owners' webhooks, and nothing more when
        no webhook of theirs wants room events (the common case, at thousands of rooms per node). The
        id of each event is derived from (room, transition), so a transition sent again is delivered once."""
        if not transitions:
            return []
        async with self.sessions() as session:
            servers = {s.id: s for s in (await session.scalars(
                select(GameServer).where(GameServer.id.in_({t.server_id for t in transitions})))).all()}
            owners = {s.owner_id for s in servers.values()}
            hooks = [h for h in (await session.scalars(select(Webhook).where(
                Webhook.enabled.is_(True), Webhook.owner_id.in_(owners)))).all()
                if {e.value for e in ROOM_EVENTS} & set(h.events or [])] if owners else []
        sends: list[tuple[Webhook, WebhookEvent]] = []
        for t in transitions:
            server = servers.get(t.server_id)
            if server is None:
                continue
            for type_ in room_event_types(t):
                targets = [h for h in hooks if h.owner_id == server.owner_id and type_.value in (h.events or [])]
                if targets:
                    event = self._room_event(t, type_, server)
                    sends.extend((hook, event) for hook in targets)
        gate = asyncio.Semaphore(ROOM_SENDS_AT_ONCE)

        async def send(hook: Webhook, event: WebhookEvent) -> WebhookDelivery:
            async with gate:
                return await self.send(hook, event)

        return list(await asyncio.gather(*(send(hook, event) for hook, event in sends)))

    def _room_event(self, t: RoomTransition, type_: EventType, server: GameServer) -> WebhookEvent:
        # room.ended and room.failed describe one fact (the room failed): the type keeps their ids apart.
        fact = "created" if t.event == "created" else t.status
        parts = ("room", t.room_id, fact) if type_ != EventType.ROOM_FAILED else ("room", t.room_id, fact, type_.value)
        resource = {"kind": "room", "id": t.room_id, "server_id": server.id, "server_name": server.name,
                    "game": server.game, "status": t.status, "reason": t.reason, "players": t.players,
                    "node_id": server.node_id, "owner_id": server.owner_id}
        links = self._links("rooms", t.room_id, server.workflow_id)
        links["server"] = self._links("servers", server.id, server.workflow_id)["resource"]
        return WebhookEvent(id=event_id(*parts), type=type_, time=t.at, resource=resource, links=links)

    def _links(self, collection: str, resource_id: str, workflow_id: str) -> dict[str, str]:
        s = self.settings
        return {"resource": f"{s.public_api_url.rstrip('/')}/api/v1/{collection}/{resource_id}",
                "workflow": workflow_ui_url(s.temporal_ui_url, s.temporal_namespace, workflow_id)}

    # --- to webhooks ------------------------------------------------------------------------

    async def emit(self, event: WebhookEvent, owner_id: str | None) -> list[WebhookDelivery]:
        """Deliver `event` to the owner's subscribed, enabled webhooks (`owner_id=None`: every admin's)."""
        async with self.sessions() as session:
            query = select(Webhook).where(Webhook.enabled.is_(True))
            if owner_id is None:
                query = query.join(User, User.id == Webhook.owner_id).where(User.is_admin.is_(True))
            else:
                query = query.where(Webhook.owner_id == owner_id)
            # `events` is a JSON list: filtered here, the same on SQLite and PostgreSQL.
            hooks = [h for h in (await session.scalars(query)).all() if event.type.value in (h.events or [])]
        return [await self.send(hook, event) for hook in hooks]

    async def send(self, hook: Webhook, event: WebhookEvent) -> WebhookDelivery:
        """The delivery of `event` to `hook` (created once), with its workflow started unless it has ended."""
        delivery = await self._delivery(hook, event)
        if delivery.status == DeliveryStatus.PENDING:
            await self._start(delivery, event)
        return delivery

    async def _delivery(self, hook: Webhook, event: WebhookEvent) -> WebhookDelivery:
        async with self.sessions() as session:
            existing = await _find_delivery(session, hook.id, event.id)
            if existing is not None:
                return existing
            now = datetime.now(UTC)
            delivery = WebhookDelivery(webhook_id=hook.id, event_id=event.id, event_type=event.type.value,
                                       payload=event.model_dump(mode="json"),
                                       workflow_id=delivery_workflow_id(hook.id, event.id),
                                       status=DeliveryStatus.PENDING.value, created_at=now, updated_at=now)
            session.add(delivery)
            try:
                await session.commit()
                return delivery
            except IntegrityError:
                # Emitted twice at once (a retried activity racing its first attempt): keep the first row.
                await session.rollback()
            raced = await _find_delivery(session, hook.id, event.id)
            if raced is None:
                raise RuntimeError(f"the delivery of {event.id} to webhook {hook.id} vanished")
            return raced

    async def _start(self, delivery: WebhookDelivery, event: WebhookEvent) -> None:
        s = self.settings
        with contextlib.suppress(WorkflowAlreadyStartedError):  # this event is already on its way to this webhook
            await self.temporal.start_workflow(
                WEBHOOK_DELIVERY_WORKFLOW,
                DeliverWebhookInput(webhook_id=delivery.webhook_id, delivery_id=delivery.id, event=event,
                                    control_queue=s.control_queue, retry_seconds=s.webhook_retry_seconds,
                                    backoff_initial_seconds=s.webhook_backoff_initial_seconds,
                                    backoff_max_seconds=s.webhook_backoff_max_seconds,
                                    timeout_seconds=s.webhook_timeout_seconds),
                id=delivery.workflow_id, task_queue=s.control_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


async def _find_delivery(session: AsyncSession, webhook_id: str, event_id: str) -> WebhookDelivery | None:
    delivery: WebhookDelivery | None = await session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id,
                                      WebhookDelivery.event_id == event_id))
    return delivery
