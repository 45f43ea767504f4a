"""Start the deployment of a stored game build: a server from a game version, and every fleet server.

The same records and the same `GameServerWorkflow` as `POST /api/v1/servers`, for a source that
is already in the artifact store. Idempotent for a given server id, so an activity that retries
after a timeout neither duplicates the records nor the workflow.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from core.contracts import GameServerInput, Limits, ServerStatus
from core.db.models import FleetServer, GameServer, ServerEvent
from core.errors import Unavailable
from core.fleets import FleetBuild
from core.queues import gameserver_workflow_id
from core.settings import Settings
from core.temporal import SA_OWNER, SA_SERVER_ID, SA_STATUS


async def start_build(session: AsyncSession, temporal: Client, settings: Settings, *, server_id: str, owner_id: str,
                      name: str, game: str, build: FleetBuild, labels: dict[str, str],
                      node_selector: dict[str, str], limits: Limits, plan: str, idle_timeout: float,
                      fleet_id: str | None = None) -> GameServer:
    """Write the server's records (once) and start its workflow (once); the server as recorded."""
    server = await session.get(GameServer, server_id)
    if server is None:
        server = GameServer(id=server_id, owner_id=owner_id, name=name, game=game,
                            source_sha256=build.source_sha256, source_size=0, max_players=build.max_players,
                            labels=labels, node_selector=node_selector,
                            limits={**limits.model_dump(), "plan": plan}, allow_rules=list(build.allow_rules),
                            status=ServerStatus.PENDING.value, workflow_id=gameserver_workflow_id(server_id))
        session.add(server)
        session.add(ServerEvent(server_id=server_id, seq=0, status="pending",
                                message=f"version {build.version} of {game}" + (" for a fleet" if fleet_id else "")))
        if fleet_id is not None:
            await session.flush()  # the server row first: the fleet's row points at it
            session.add(FleetServer(server_id=server_id, fleet_id=fleet_id, version=build.version))
        await session.commit()
    try:
        handle = await temporal.start_workflow(
            "GameServerWorkflow",
            GameServerInput(server_id=server_id, owner_id=owner_id, name=name, game=game,
                            source_sha256=build.source_sha256, filename=build.filename,
                            max_players=build.max_players, labels=labels, node_selector=node_selector,
                            limits=limits, allow_rules=list(build.allow_rules), restart_limit=settings.restart_limit,
                            restart_window_seconds=settings.restart_window_seconds,
                            ready_timeout_seconds=settings.ready_timeout_seconds,
                            control_queue=settings.control_queue,
                            node_schedule_to_start_seconds=settings.node_schedule_to_start_seconds,
                            idle_timeout_seconds=idle_timeout),
            id=server.workflow_id, task_queue=settings.control_queue,
            # A retried start finds the running workflow, or refuses to run an ended one again.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SERVER_ID, server_id), SearchAttributePair(SA_OWNER, owner_id),
                SearchAttributePair(SA_STATUS, "pending")]),
        )
    except WorkflowAlreadyStartedError:
        return server  # it ran and ended already: nothing to start
    except RPCError as exc:
        server.status, server.error = ServerStatus.FAILED.value, f"could not start its workflow: {exc.message}"
        await session.commit()
        raise Unavailable(f"Temporal refused the deployment: {exc.message}") from None
    if server.run_id is None:
        server.run_id = handle.first_execution_run_id or handle.result_run_id
        await session.commit()
    return server
