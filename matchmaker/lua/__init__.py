"""Lua scripts of the Redis store; each runs atomically, which is what makes seats un-overbookable.

Every script takes the key prefix as ARGV[1]. Times travel as decimal strings (Python repr),
so a value written by one script reads back as the same double in the next. Replies use
strings only: Redis would truncate Lua numbers to integers.

Each script is the shared `prelude` (key names, events, removing rooms, fleet slots, filters)
followed by its body, in one module per concern: `rooms` (register, deregister, get, list),
`joins` (reserve, joinOrCreate), `heartbeats`, `fleets` (allocation) and `sweep` (expiry, stats).
"""

from __future__ import annotations

from matchmaker.lua.fleets import ALLOCATE, FLEET_ADD, FLEET_DROP, FLEET_SYNC, RELEASE, RETIRE
from matchmaker.lua.heartbeats import HEARTBEAT, HEARTBEAT_MANY
from matchmaker.lua.joins import QUICK_JOIN, RESERVE
from matchmaker.lua.rooms import DEREGISTER, GET, LIST, REGISTER
from matchmaker.lua.sweep import STATS, SWEEP

__all__ = [
    "ALLOCATE", "DEREGISTER", "FLEET_ADD", "FLEET_DROP", "FLEET_SYNC", "GET", "HEARTBEAT", "HEARTBEAT_MANY",
    "LIST", "QUICK_JOIN", "REGISTER", "RELEASE", "RESERVE", "RETIRE", "STATS", "SWEEP",
]
