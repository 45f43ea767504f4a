"""Where a server goes: the least-loaded live, schedulable node whose labels match and that has
room for it. The control worker's `select_node` activity (activities/placement.py) and the API's
pipeline route (a run's node) both choose with this."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Self

from sqlalchemy import select

from core.capacity import Policy, node_capacity
from core.contracts import SelectNodeInput
from core.db.models import GameServer, Node
from core.db.session import SessionFactory, shielded
from core.settings import Settings

SCHEDULABLE = ("ready", "online")
ACTIVE = ("building", "starting", "running")


class Placement:
    def __init__(self, sessions: SessionFactory, liveness_factor: float = 3.0, cpu_overcommit: float = 4.0,
                 policy: Policy | None = None) -> None:
        self.sessions = sessions
        self.liveness_factor = liveness_factor
        # Without settings (tests, tools): no reserve, CPU overcommitted `cpu_overcommit` times.
        self.policy = policy or Policy(cpu_overcommit=cpu_overcommit)

    @classmethod
    def from_settings(cls, sessions: SessionFactory, settings: Settings) -> Self:
        return cls(sessions, policy=Policy.from_settings(settings))

    @property
    def cpu_overcommit(self) -> float:
        return self.policy.cpu_overcommit

    async def choose(self, input: SelectNodeInput) -> str | None:
        now = datetime.now(UTC)
        nodes, held = await shielded(self._load())
        candidates = []
        for node in nodes:
            if node.id in input.exclude or not node.online or node.last_online is None:
                continue
            last = node.last_online if node.last_online.tzinfo else node.last_online.replace(tzinfo=UTC)
            if now - last > timedelta(seconds=node.heartbeat_seconds * self.liveness_factor):
                continue
            if any(node.labels.get(k) != v for k, v in input.node_selector.items()):
                continue
            # Room for the server on top of what the servers placed there hold, each at its own size.
            cap = node_capacity(node.resources, node.capacity, self.policy, held.get(node.id, []))
            if not cap.admits(input.limits):
                continue
            candidates.append((cap.servers, -cap.free_memory_mb(), node.id))
        return min(candidates)[2] if candidates else None

    async def _load(self) -> tuple[list[Node], dict[str | None, list[dict[str, Any]]]]:
        async with self.sessions() as session:
            nodes = list((await session.scalars(select(Node).where(Node.status.in_(SCHEDULABLE)))).all())
            held: dict[str | None, list[dict[str, Any]]] = {}
            for node_id, limits in (await session.execute(
                    select(GameServer.node_id, GameServer.limits).where(GameServer.status.in_(ACTIVE)))).all():
                held.setdefault(node_id, []).append(dict(limits or {}))
        return nodes, held
