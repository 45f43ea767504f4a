"""Scripts of a server's life and the room reads: register, deregister, get one room, list them."""

from __future__ import annotations

from matchmaker.lua.prelude import PRELUDE

# ARGV: P, id, now, exp, name, game, owner, node, ws, max, labels_json, max_rooms, n_labels, (k, v)...,
# takeover ("1": the platform placed the server on this node, a live room of another node is stale).
# Reply: {gen, expired}, or "fb" when a live room of another node has the id (and no takeover).
REGISTER = PRELUDE + r"""
local id, now, exp = ARGV[2], ARGV[3], ARGV[4]
local rk = rkey(id)
local old = redis.call("HMGET", rk, "exp", "game", "node")
local expired = 0
local takeover = ARGV[14 + 2 * tonumber(ARGV[13])] == "1"
-- A live room of another node is not taken over (a hijack, or a move before it expired).
if old[2] and old[3] ~= ARGV[8] and tonumber(old[1]) > tonumber(now) and not takeover then return "fb" end
if old[2] then
  local reason = "reregistered"
  if tonumber(old[1]) <= tonumber(now) then reason = "expired"; expired = 1 end
  drop(id, reason)
end
local gen = redis.call("INCR", P .. "gen")
local fields = {"id", id, "name", ARGV[5], "game", ARGV[6], "owner", ARGV[7], "node", ARGV[8],
  "ws", ARGV[9], "max", ARGV[10], "labels", ARGV[11], "created", now, "gen", gen, "ready", "0",
  "players", "0", "locked", "0", "meta", "{}", "state", "null", "hb", "", "exp", exp, "rn", "0",
  "maxr", ARGV[12], "gone", "0",
  "spub", static_json(id, ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[11])}
local n = tonumber(ARGV[13])
for j = 14, 13 + 2 * n, 2 do
  fields[#fields + 1] = "l:" .. ARGV[j]
  fields[#fields + 1] = ARGV[j + 1]
end
local fleet = redis.call("HGET", P .. "flof", id)
if fleet then
  fields[#fields + 1] = "fleet"
  fields[#fields + 1] = fleet
end
redis.call("HSET", rk, unpack(fields))
redis.call("ZADD", P .. "exp", exp, id)
redis.call("SADD", P .. "game:" .. ARGV[6], id)
return {tostring(gen), tostring(expired)}
"""

# ARGV: P, id, node, now. Reply: "ok" | "gone" | "expired" | "fb"
DEREGISTER = PRELUDE + r"""
local f = redis.call("HMGET", rkey(ARGV[2]), "node", "exp")
if not f[1] then return "gone" end
if tonumber(f[2]) <= tonumber(ARGV[4]) then drop(ARGV[2], "expired"); return "expired" end
if f[1] ~= ARGV[3] then return "fb" end
drop(ARGV[2], "deregistered")
return "ok"
"""

# ARGV: P, room id, now. Reply: {"ok", reserved, server flat hash, room flat hash or {}} |
# {"nf", expired}. A server id is its first room.
GET = PRELUDE + r"""
local id, now = ARGV[2], ARGV[3]
local xsid = redis.call("HGET", xkey(id), "sid")
local sid = xsid or id
local h = redis.call("HGETALL", rkey(sid))
if #h == 0 then return {"nf", "0"} end
local m = hmap(h)
if tonumber(m.exp) <= tonumber(now) then drop(sid, "expired"); return {"nf", "1"} end
if m.ready ~= "1" then return {"nf", "0"} end
if xsid then
  local xh = redis.call("HGETALL", xkey(id))
  local xm = hmap(xh)
  local r = live_reserved(id, xm.rn, now)
  if xm.pend == "1" and r == 0 then return {"nf", "0"} end
  return {"ok", tostring(r), h, xh}
end
return {"ok", tostring(live_reserved(id, m.rn, now)), h, {}}
"""

# ARGV: P, game|"", now, free ""|"1"|"0", sort "players"|"created", desc "1"|"0", limit,
#       has_cursor, cursor_key, cursor_id, rooms "1"|"0", n_labels, (field, value)...,
#       n_metadata, (field, value)...
# Reply: {has_more, {reserved, server flat hash, room flat hash or {}}...}. Without `rooms` one
# row per server (its first room); with it every room (first rooms that are gone left out).
LIST = PRELUDE + r"""
local game, now_s, free, sort = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(now_s)
local sign = 1
if ARGV[6] == "1" then sign = -1 end
local limit = tonumber(ARGV[7])
local has_cursor = ARGV[8] == "1"
local ckey, cid = tonumber(ARGV[9]), ARGV[10]
local rooms = ARGV[11] == "1"
local names = {"ready", "exp", "players", "max", "locked", "rn", "created", "gone"}
local xnames = {"players", "max", "locked", "rn", "created", "pend"}
local flt = read_filter(12, names, xnames)
local ids
if game ~= "" then
  ids = redis.call("SMEMBERS", P .. "game:" .. game)
else
  ids = redis.call("ZRANGE", P .. "exp", 0, -1)
end
local matches = {}
local function row(sid, rid, players, maxp, locked, rn, created)
  players, maxp = tonumber(players), tonumber(maxp)
  if free ~= "" then
    local joinable = false
    if locked ~= "1" then joinable = maxp - players - live_reserved(rid, rn, now_s) > 0 end
    if (free == "1") ~= joinable then return end
  end
  local k
  if sort == "players" then k = sign * math.min(players, maxp) else k = sign * tonumber(created) end
  if not has_cursor or k > ckey or (k == ckey and rid > cid) then
    matches[#matches + 1] = {k, rid, sid}
  end
end
for _, id in ipairs(ids) do
  local f = redis.call("HMGET", rkey(id), unpack(names))
  if f[1] == "1" and tonumber(f[2]) > now and flt.labels(f) then
    if (not rooms or f[8] ~= "1") and flt.meta(f) then
      row(id, id, f[3], f[4], f[5], f[6], f[7])
    end
    if rooms then
      for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
        local x = redis.call("HMGET", xkey(rid), unpack(xnames))
        if extra_alive(rid, x[6], x[4], now_s) and flt.xmeta(x) then
          row(id, rid, x[1], x[2], x[3], x[4], x[5])
        end
      end
    end
  end
end
table.sort(matches, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {"0"}
if #matches > limit then out[1] = "1" end
for i = 1, math.min(limit, #matches) do
  local rid, sid = matches[i][2], matches[i][3]
  local h = redis.call("HGETALL", rkey(sid))
  if rid == sid then
    out[#out + 1] = {tostring(live_reserved(rid, hmap(h).rn, now_s)), h, {}}
  else
    local xh = redis.call("HGETALL", xkey(rid))
    out[#out + 1] = {tostring(live_reserved(rid, hmap(xh).rn, now_s)), h, xh}
  end
end
return out
"""
