"""What deploying a game server takes, shared by every part that deploys (DESIGN §3).

A deployment is recorded (the server's rows) and started (its `GameServerWorkflow`) by one
function, `workflows/deployments.py` (`deploy`), which names the workflow by its class; the API
calls it, and the control worker hands it to the fleet activities as a `Deployer`, so that no
activity imports a workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.contracts import Limits, StopServerInput, StopServerResult
from core.db.models import GameServer


@dataclass(frozen=True)
class Deployment:
    """One server to deploy: an upload (`POST /api/v1/servers`), a game version, or a fleet member."""

    server_id: str
    owner_id: str
    name: str
    game: str
    source_sha256: str
    filename: str
    max_players: int
    limits: Limits
    plan: str
    idle_timeout: float
    message: str  # the first event's message: "uploaded", "version 3 of chess", ...
    source_size: int = 0
    max_rooms: int = 0  # rooms per server; 0: the module's `maxRooms`, else one (GameServerInput)
    labels: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    allow_rules: list[str] = field(default_factory=list)
    fleet_id: str | None = None  # a fleet's member: also its `FleetServer` row
    fleet_version: int = 0


class Deployer(Protocol):
    """Deploys and stops game servers; `workflows/deployments.py` (`Deployments`) is the one."""

    async def deploy(self, session: AsyncSession, deployment: Deployment) -> GameServer:
        """Write the server's records (once) and start its workflow (once); the server as recorded."""
        ...

    async def stop(self, server_id: str, input: StopServerInput) -> StopServerResult:
        """The workflow's `stop` update, answered once the server is stopped (deleted)."""
        ...
