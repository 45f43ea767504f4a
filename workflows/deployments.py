"""The one way to deploy a game server: its records, then its `GameServerWorkflow` (DESIGN §3).

Client-side code, never imported by a workflow: `POST /api/v1/servers` and a game version's
deploy (`api/routes/servers.py`, `api/routes/games.py`) call `deploy`, and the control worker
hands a `Deployments` to the fleet activities (`activities/fleet.py`, as a `core.deploy.Deployer`).
Idempotent for a given server id, so an activity that retries after a timeout neither duplicates
the records nor the workflow.
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

from core.contracts import GameServerInput, ServerStatus, StopServerInput, StopServerResult
from core.db.models import FleetServer, GameServer, ServerEvent
from core.deploy import Deployment
from core.errors import Unavailable
from core.queues import gameserver_workflow_id
from core.settings import Settings
from core.temporal import SA_OWNER, SA_SERVER_ID, SA_STATUS
from workflows.gameserver import GameServerWorkflow


def gameserver_input(d: Deployment, settings: Settings) -> GameServerInput:
    """The workflow's input: the deployment, with the installation's timeouts and restart policy."""
    return GameServerInput(server_id=d.server_id, owner_id=d.owner_id, name=d.name, game=d.game,
                           source_sha256=d.source_sha256, filename=d.filename, max_players=d.max_players,
                           max_rooms=d.max_rooms, labels=d.labels, node_selector=d.node_selector, limits=d.limits,
                           allow_rules=list(d.allow_rules), restart_limit=settings.restart_limit,
                           restart_window_seconds=settings.restart_window_seconds,
                           ready_timeout_seconds=settings.ready_timeout_seconds,
                           control_queue=settings.control_queue,
                           node_schedule_to_start_seconds=settings.node_schedule_to_start_seconds,
                           idle_timeout_seconds=d.idle_timeout)


def server_limits(d: Deployment) -> dict[str, object]:
    """The server row's `limits`: the container's, its plan, and the rooms the deployment asked
    for (absent: the module's `maxRooms`, else one; `api/routes/servers.py` shows the result)."""
    limits: dict[str, object] = {**d.limits.model_dump(), "plan": d.plan}
    if d.max_rooms > 0:
        limits["max_rooms"] = d.max_rooms
    return limits


async def deploy(session: AsyncSession, temporal: Client, settings: Settings, d: Deployment) -> GameServer:
    """Write the server's records (once) and start its workflow (once); the server as recorded.
    `Unavailable` (the server recorded as failed) when Temporal refuses the start."""
    server = await session.get(GameServer, d.server_id)
    if server is None:
        server = GameServer(id=d.server_id, owner_id=d.owner_id, name=d.name, game=d.game,
                            source_sha256=d.source_sha256, source_size=d.source_size, max_players=d.max_players,
                            labels=d.labels, node_selector=d.node_selector,
                            limits=server_limits(d), allow_rules=list(d.allow_rules),
                            status=ServerStatus.PENDING.value, workflow_id=gameserver_workflow_id(d.server_id))
        session.add(server)
        session.add(ServerEvent(server_id=d.server_id, seq=0, status="pending", message=d.message))
        if d.fleet_id is not None:
            await session.flush()  # the server row first: the fleet's row points at it
            session.add(FleetServer(server_id=d.server_id, fleet_id=d.fleet_id, version=d.fleet_version))
        await session.commit()
    try:
        handle = await temporal.start_workflow(
            GameServerWorkflow.run, gameserver_input(d, settings),
            id=server.workflow_id, task_queue=settings.control_queue,
            # A retried start finds the running workflow, or refuses to run an ended one again.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SERVER_ID, d.server_id), SearchAttributePair(SA_OWNER, d.owner_id),
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


class Deployments:
    """`deploy` and the workflow's `stop` update for one Temporal client: a `core.deploy.Deployer`."""

    def __init__(self, temporal: Client, settings: Settings) -> None:
        self.temporal = temporal
        self.settings = settings

    async def deploy(self, session: AsyncSession, deployment: Deployment) -> GameServer:
        return await deploy(session, self.temporal, self.settings, deployment)

    async def stop(self, server_id: str, input: StopServerInput) -> StopServerResult:
        handle = self.temporal.get_workflow_handle_for(GameServerWorkflow.run, gameserver_workflow_id(server_id))
        return await handle.execute_update(GameServerWorkflow.stop, input)
