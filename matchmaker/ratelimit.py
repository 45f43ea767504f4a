"""Rate limit of `POST /join`: a token bucket per client IP, and one per player when the caller
names one in the `X-Player-Id` header.

Each join holds a seat for `seat_reservation_seconds`, so without a limit one client could keep
every room full. On the in-process store the buckets live in this process; on Redis they live in
Redis (one Lua script checks and takes atomically), so every replica draws from the same ones.
Times come from the app's clock (unix seconds), so tests move them like the room TTLs.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from core.ratelimit import TokenBuckets, retry_after, take_all
from core.settings import Settings
from matchmaker.errors import problem
from matchmaker.store import RedisStore, Store

if TYPE_CHECKING:
    from matchmaker.deps import Matchmaker

log = logging.getLogger("gsf.matchmaker")
JOIN_PATH = "/join"
JOIN_PATHS = (JOIN_PATH, "/create")  # both take a seat, so both count against the buckets
PLAYER_HEADER = b"x-player-id"
MAX_PLAYER_ID = 128
# For the OpenAPI document: the route itself never sees the header.
JOIN_PLAYER_HEADER = {
    "name": "X-Player-Id", "in": "header", "required": False,
    "description": "The player joining, if the caller knows it: joins are also limited per player.",
    "schema": {"type": "string", "maxLength": MAX_PLAYER_ID},
}

# KEYS: the buckets; ARGV: now, then rate and burst of each bucket. All or nothing: a token from
# every bucket, or none taken and the seconds until every bucket has one (as a string: Lua
# numbers become integers on the way out).
TAKE_ALL = """
local now = tonumber(ARGV[1])
local levels, stamps = {}, {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil or ts == nil then tokens, ts = burst, now end
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate)
    ts = now
  end
  levels[i], stamps[i] = tokens, ts
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('HSET', key, 't', tostring(levels[i] - 1), 'ts', tostring(stamps[i]))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return '0'
"""


class JoinLimiter(ABC):
    """Per-IP and per-player buckets for joins."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.ip_rate, self.ip_burst = settings.join_rate_per_ip, settings.join_burst_per_ip
        self.player_rate, self.player_burst = settings.join_rate_per_player, settings.join_burst_per_player

    @abstractmethod
    async def take(self, ip: str, player: str | None, now: float) -> float:
        """0 if the join may go on (a token taken from each bucket), else seconds to wait."""

    @staticmethod
    def for_store(settings: Settings, store: Store) -> JoinLimiter:
        if isinstance(store, RedisStore):
            return RedisJoinLimiter(settings, store)
        return MemoryJoinLimiter(settings)


class MemoryJoinLimiter(JoinLimiter):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.per_ip = TokenBuckets(self.ip_rate, self.ip_burst, settings.rate_limit_max_buckets)
        self.per_player = TokenBuckets(self.player_rate, self.player_burst, settings.rate_limit_max_buckets)

    async def take(self, ip: str, player: str | None, now: float) -> float:
        pairs = [(self.per_ip, ip)] + ([(self.per_player, player)] if player else [])
        return take_all(pairs, now)


class RedisJoinLimiter(JoinLimiter):
    """Buckets as Redis hashes under the store's prefix (`<P>rl:join:ip:<ip>`), expiring once
    they would be full again."""

    def __init__(self, settings: Settings, store: RedisStore) -> None:
        super().__init__(settings)
        self.prefix = store.prefix + "rl:join:"
        self._take_all = store.redis.register_script(TAKE_ALL)

    async def take(self, ip: str, player: str | None, now: float) -> float:
        keys = [f"{self.prefix}ip:{ip}"]
        args: list[float] = [now, self.ip_rate, self.ip_burst]
        if player:
            keys.append(f"{self.prefix}player:{player}")
            args += [self.player_rate, self.player_burst]
        return float(await self._take_all(keys=keys, args=args))


class JoinRateLimitMiddleware:
    """Pure ASGI, in front of `POST /join` and `POST /create` only (the route module stays as it is). A limiter that
    fails (Redis down) lets the join through: the join itself then answers 503."""

    def __init__(self, app: ASGIApp, limiter: JoinLimiter, mm: Matchmaker) -> None:
        self.app = app
        self.limiter = limiter
        self.mm = mm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in JOIN_PATHS
                or not self.limiter.enabled):
            await self.app(scope, receive, send)
            return
        # The peer, or what a GSF_TRUSTED_PROXIES proxy says (core.asgi); never the caller's header.
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        raw = dict(scope["headers"]).get(PLAYER_HEADER, b"").decode("utf-8", "replace").strip()
        player = raw[:MAX_PLAYER_ID] or None
        try:
            wait = await self.limiter.take(ip, player, self.mm.clock())
        except (RedisError, OSError) as exc:
            log.warning("join rate limit not checked (%s); letting the join through", exc)
            wait = 0.0
        if wait == 0:
            await self.app(scope, receive, send)
            return
        self.mm.metrics.joins["rate-limited"] += 1
        seconds = retry_after(wait)
        response = problem(429, "rate-limited", "Too many requests",
                           f"too many joins from this client; retry in {seconds} s", retry_after=seconds)
        response.headers["Retry-After"] = str(seconds)
        await response(scope, receive, send)
