"""Control activity that places a server on a node."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts import SelectNodeInput, SelectNodeResult
from core.db.models import GameServer, Node
from core.db.session import SessionFactory, shielded

SCHEDULABLE = ("ready", "online")
ACTIVE = ("building", "starting", "running")


class PlacementActivities:
    def __init__(self, sessions: SessionFactory, liveness_factor: float = 3.0, cpu_overcommit: float = 4.0) -> None:
        self.sessions = sessions
        self.liveness_factor = liveness_factor
        # Idle game servers use little CPU: a node may promise more CPU than it has, up to this ratio.
        self.cpu_overcommit = cpu_overcommit

    @activity.defn(name="select_node")
    async def select_node(self, input: SelectNodeInput) -> SelectNodeResult:
        """Least-loaded live, schedulable node whose labels match; `NoCapacity` when none fits."""
        node_id = await self.choose(input)
        if node_id is None:
            raise ApplicationError(
                f"no online node matches {input.node_selector or 'any labels'} with room for the server",
                type="NoCapacity", non_retryable=True)
        return SelectNodeResult(node_id=node_id)

    async def choose(self, input: SelectNodeInput) -> str | None:
        now = datetime.now(UTC)
        nodes, counts = await shielded(self._load())
        candidates = []
        for node in nodes:
            if node.id in input.exclude or not node.online or node.last_online is None:
                continue
            last = node.last_online if node.last_online.tzinfo else node.last_online.replace(tzinfo=UTC)
            if now - last > timedelta(seconds=node.heartbeat_seconds * self.liveness_factor):
                continue
            if any(node.labels.get(k) != v for k, v in input.node_selector.items()):
                continue
            max_servers = int(node.resources.get("max_servers", 0) or 0)
            running = counts.get(node.id, 0)
            if max_servers and running >= max_servers:
                continue
            # Room for the server's CPU and memory on top of what runs there (each at its plan's size).
            free_mem = float(node.resources.get("memory_mb", 0) or 0) - (running + 1) * input.limits.memory_mb
            free_cpu = float(node.resources.get("cpus", 0) or 0) * self.cpu_overcommit - (running + 1) * input.limits.cpus
            if node.resources.get("memory_mb") and free_mem < 0 or node.resources.get("cpus") and free_cpu < 0:
                continue
            candidates.append((running, -free_mem, node.id))
        return min(candidates)[2] if candidates else None

    async def _load(self) -> tuple[list[Node], dict[str | None, int]]:
        async with self.sessions() as session:
            nodes = list((await session.scalars(select(Node).where(Node.status.in_(SCHEDULABLE)))).all())
            counts = {row[0]: row[1] for row in (await session.execute(
                select(GameServer.node_id, func.count()).where(GameServer.status.in_(ACTIVE))
                .group_by(GameServer.node_id))).all()}
        return nodes, counts
