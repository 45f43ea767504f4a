"""The smallest resource limits a game server runs with, and the one check of a set of limits.

Measured on the game runtime image (Node.js 20, hardened as `start_container` runs it, the
`chat` example loaded), each at the point where the runtime still reaches `/health`:

- memory: it rests at about 24 MiB; at 22 MiB and below the kernel kills it (137) during
  start. The floor keeps a margin for the V8 heap a game's state and its players grow.
- pids: it rests at 9 (tini, node's main thread, V8's platform workers, libuv's I/O threads);
  at 8 it fails in worker initialisation. libuv's thread pool adds 4 on first use.
- cpus: the kernel's CFS quota takes no less than 1 ms per 100 ms period (0.01 CPU), but at
  that share node needs over 20 s to start; at 0.05 it is ready in about 5 s, inside
  `GSF_READY_TIMEOUT_SECONDS`. A share below the floor would also count as almost nothing
  against a node's capacity.
"""

from __future__ import annotations

import math

MIN_CPUS = 0.05
MIN_MEMORY_MB = 64
MIN_PIDS = 32
FLOORS: dict[str, float] = {"memory_mb": MIN_MEMORY_MB, "cpus": MIN_CPUS, "pids": MIN_PIDS}


def below_floors(limits: dict[str, float]) -> list[str]:
    """What in `limits` (memory_mb, cpus, pids) is missing, not a finite number, or below its floor."""
    problems = []
    for name, floor in FLOORS.items():
        value = limits.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name} is missing")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name} is not a finite number")
        elif value < floor:
            problems.append(f"{name} below {floor:g}")
    return problems
