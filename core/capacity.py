"""What a node may hold: its resources minus a reserve, times the overcommit ratio.

A node's agent reports its resources (CPUs, memory) from its fingerprint on every heartbeat;
an admin's overrides (`PUT /api/v1/nodes/{id}` with `capacity`) are kept apart so that the
next heartbeat does not undo them. The policy (reserve for the platform and the OS, overcommit
ratios) comes from settings, per node overridable the same way. Placement and the node API
both read capacity through `node_capacity`, so what the API shows is what placement applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.contracts import Limits
from core.settings import Settings

# Keys an admin may override per node.
OVERRIDES = ("cpus", "memory_mb", "max_servers", "reserve_cpus", "reserve_memory_mb",
             "cpu_overcommit", "memory_overcommit")


@dataclass(frozen=True)
class Policy:
    """Defaults for every node (settings); each may be overridden per node."""

    reserve_cpus: float = 0.0
    reserve_memory_mb: float = 0.0
    cpu_overcommit: float = 1.0
    memory_overcommit: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(reserve_cpus=settings.node_reserve_cpus,
                   reserve_memory_mb=settings.node_reserve_memory_mb,
                   cpu_overcommit=settings.node_cpu_overcommit,
                   memory_overcommit=settings.node_memory_overcommit)


@dataclass(frozen=True)
class Capacity:
    """Schedulable totals (0 = unknown, no limit) and what active servers already hold."""

    cpus: float
    memory_mb: float
    max_servers: int
    used_cpus: float = 0.0
    used_memory_mb: float = 0.0
    servers: int = 0

    def admits(self, limits: Limits) -> bool:
        if self.max_servers and self.servers + 1 > self.max_servers:
            return False
        if self.cpus and self.used_cpus + limits.cpus > self.cpus + 1e-9:
            return False
        return not (self.memory_mb and self.used_memory_mb + limits.memory_mb > self.memory_mb + 1e-9)

    def free_memory_mb(self) -> float:
        return self.memory_mb - self.used_memory_mb if self.memory_mb else float("inf")

    def public(self) -> dict[str, Any]:
        return {"cpus": round(self.cpus, 3), "memory_mb": round(self.memory_mb, 1),
                "max_servers": self.max_servers, "used_cpus": round(self.used_cpus, 3),
                "used_memory_mb": round(self.used_memory_mb, 1), "servers": self.servers}


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def node_capacity(resources: Mapping[str, Any], overrides: Mapping[str, Any], policy: Policy,
                  active: Iterable[Mapping[str, Any]] = ()) -> Capacity:
    """Capacity of a node from its reported resources, the admin's overrides and the policy;
    `active` are the limits of the servers placed on it (building, starting or running)."""
    eff = {**resources, **{k: v for k, v in overrides.items() if v is not None}}
    reserve_cpus = _num(eff.get("reserve_cpus", policy.reserve_cpus))
    reserve_mem = _num(eff.get("reserve_memory_mb", policy.reserve_memory_mb))
    cpu_ratio = _num(eff.get("cpu_overcommit", policy.cpu_overcommit)) or 1.0
    mem_ratio = _num(eff.get("memory_overcommit", policy.memory_overcommit)) or 1.0
    cpus, mem = _num(eff.get("cpus")), _num(eff.get("memory_mb"))
    held = list(active)
    defaults = Limits()
    return Capacity(
        # At least a sliver stays schedulable: a reserve larger than the node is a misconfiguration
        # that should show as "full", not as "unlimited".
        cpus=max((cpus - reserve_cpus) * cpu_ratio, 1e-6) if cpus else 0.0,
        memory_mb=max((mem - reserve_mem) * mem_ratio, 1e-6) if mem else 0.0,
        max_servers=int(_num(eff.get("max_servers"))),
        used_cpus=sum(_num(h.get("cpus", defaults.cpus)) for h in held),
        used_memory_mb=sum(_num(h.get("memory_mb", defaults.memory_mb)) for h in held),
        servers=len(held),
    )
