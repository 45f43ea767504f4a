"""Scripts over every room: `SWEEP` (remove the expired ones) and `STATS` (totals for /metrics)."""

from __future__ import annotations

from matchmaker.lua.prelude import PRELUDE

# ARGV: P, now, batch. Reply: number of expired servers removed. Pending rooms whose seats
# all lapsed go too, and open rooms other than a server's first whose seats lapsed unused show it
# (`updated`): heartbeats that carry only what changed do not list them.
SWEEP = PRELUDE + r"""
local now_s = ARGV[2]
local now = tonumber(now_s)
local n = 0
BATCH = {}
for _, id in ipairs(redis.call("ZRANGEBYSCORE", P .. "exp", "-inf", now_s, "LIMIT", 0,
                               tonumber(ARGV[3]))) do
  local e = redis.call("HGET", rkey(id), "exp")
  if not e then
    redis.call("ZREM", P .. "exp", id)
  elseif tonumber(e) <= now then
    drop(id, "expired")
    n = n + 1
  else
    redis.call("ZADD", P .. "exp", e, id)
  end
end
for _, rid in ipairs(redis.call("ZRANGEBYSCORE", P .. "pend", "-inf", now_s, "LIMIT", 0,
                                tonumber(ARGV[3]))) do
  local x = redis.call("HMGET", xkey(rid), "sid", "pend", "rn")
  if not x[1] or x[2] ~= "1" then
    redis.call("ZREM", P .. "pend", rid)
  elseif live_reserved(rid, x[3], now_s) == 0 then
    local f = redis.call("HMGET", rkey(x[1]), "ready", "game", "labels")
    drop_extra(rid, x[1], "expired", nil, f[1], f[2], f[3])
  else
    local last = redis.call("ZRANGE", reskey(rid), -1, -1, "WITHSCORES")
    redis.call("ZADD", P .. "pend", last[2], rid)
  end
end
for _, rid in ipairs(redis.call("ZRANGEBYSCORE", P .. "resv", "-inf", now_s, "LIMIT", 0,
                                tonumber(ARGV[3]))) do
  redis.call("ZREM", P .. "resv", rid)
  local xk = xkey(rid)
  local x = redis.call("HMGET", xk, "sid", "pend", "rn")
  if x[1] and x[2] ~= "1" then
    local resk = reskey(rid)
    redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
    local r = redis.call("ZCARD", resk)
    if tostring(r) ~= x[3] then
      redis.call("HSET", xk, "rn", r)
      local sm = hmap(redis.call("HGETALL", rkey(x[1])))
      if sm.ready == "1" then publish_extra("updated", rid, r, sm, hmap(redis.call("HGETALL", xk))) end
    end
    if r > 0 then
      local last = redis.call("ZRANGE", resk, -1, -1, "WITHSCORES")
      redis.call("ZADD", P .. "resv", last[2], rid)
    end
  end
end
flush()
return n
"""

# ARGV: P, now. Reply: {registered, listed, players, reserved, free}
STATS = PRELUDE + r"""
local now_s = ARGV[2]
local now = tonumber(now_s)
local registered, listed, players, reserved, free = 0, 0, 0, 0, 0
for _, id in ipairs(redis.call("ZRANGE", P .. "exp", 0, -1)) do
  local f = redis.call("HMGET", rkey(id), "ready", "exp", "players", "max", "rn")
  if f[2] and tonumber(f[2]) > now then
    registered = registered + 1
    if f[1] == "1" then
      local maxp = tonumber(f[4])
      local p = math.min(tonumber(f[3]), maxp)
      local r = math.min(live_reserved(id, f[5], now_s), maxp - p)
      listed = listed + 1
      players = players + p
      reserved = reserved + r
      free = free + maxp - p - r
    end
  end
end
return {tostring(registered), tostring(listed), tostring(players), tostring(reserved),
        tostring(free)}
"""
