"""Control activities that write platform records: status transitions and their events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from temporalio import activity

from core.contracts import RecordPipelineInput, RecordStatusInput, RecordStatusResult
from core.db.models import GameServer, PipelineRun, ServerEvent
from core.db.session import SessionFactory, shielded

if TYPE_CHECKING:
    from core.events import EventEmitter


class RecordActivities:
    def __init__(self, sessions: SessionFactory, events: EventEmitter | None = None) -> None:
        self.sessions = sessions
        self.events = events  # webhooks (issue #12); None: records only

    @activity.defn(name="record_status")
    async def record_status(self, input: RecordStatusInput) -> RecordStatusResult:
        """Apply a status transition; records are written off the critical path, so `seq` orders them."""
        result = await shielded(self._record(input))
        if self.events is not None:  # server.* webhooks; the event id comes from (server, seq): retries dedupe
            await shielded(self.events.server_transition(input))
        return result

    async def _record(self, input: RecordStatusInput) -> RecordStatusResult:
        async with self.sessions() as session:
            server = await session.get(GameServer, input.server_id)
            if server is None:
                return RecordStatusResult(applied=False)
            exists = await session.scalar(
                select(ServerEvent.id).where(ServerEvent.server_id == input.server_id,
                                             ServerEvent.seq == input.seq))
            if exists is None:
                session.add(ServerEvent(server_id=input.server_id, seq=input.seq, status=input.status.value,
                                        message=input.message, detail=input.detail, at=input.at))
            applied = input.seq > server.status_seq
            if applied:
                server.status = input.status.value
                server.status_seq = input.seq
                server.error = input.message if input.status.value in ("failed", "rejected") else None
            # Facts (node, image, address) are kept whatever the order they arrive in.
            for field in ("node_id", "image", "container_id", "ws_url", "host", "port", "max_players"):
                value = getattr(input, field)
                if value is not None:
                    setattr(server, field, value or None)
            if input.report is not None:
                server.analysis = input.report.model_dump(mode="json")
            server.updated_at = input.at if applied else server.updated_at
            try:
                await session.commit()
            except IntegrityError:
                # A retried activity raced its first attempt: the event is already there.
                await session.rollback()
            return RecordStatusResult(applied=applied)

    @activity.defn(name="record_pipeline")
    async def record_pipeline(self, input: RecordPipelineInput) -> RecordStatusResult:
        """Keep a pipeline run's latest state (steps, statuses, logs); older records are ignored."""
        result = await shielded(self._record_pipeline(input))
        if self.events is not None:  # pipeline.* webhooks, even for a record that arrived late
            await shielded(self.events.pipeline_transition(input))
        return result

    async def _record_pipeline(self, input: RecordPipelineInput) -> RecordStatusResult:
        async with self.sessions() as session:
            run = await session.get(PipelineRun, input.run_id)
            if run is None or input.seq <= run.state_seq:
                return RecordStatusResult(applied=False)
            run.state = input.state.model_dump(mode="json")
            run.state_seq = input.seq
            run.status = input.state.status.value
            run.error = input.state.error
            run.updated_at = input.at
            await session.commit()
            return RecordStatusResult(applied=True)

