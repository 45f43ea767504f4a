"""Lua scripts of the Redis store; each runs atomically, which is what makes seats un-overbookable.

Every script takes the key prefix as ARGV[1]. Times travel as decimal strings (Python repr),
so a value written by one script reads back as the same double in the next. Replies use
strings only: Redis would truncate Lua numbers to integers.
"""

from __future__ import annotations

_PRELUDE = r"""
local P = ARGV[1]
local function rkey(id) return P .. "room:" .. id end
local function reskey(id) return P .. "res:" .. id end

-- Live reservations of a room; `rn` is the stored count (0 means none, skip the lookup).
local function live_reserved(id, rn, now)
  if not rn or tonumber(rn) == 0 then return 0 end
  return redis.call("ZCOUNT", reskey(id), "(" .. now, "+inf")
end

-- Every message on `P events` is a JSON array of events, each already JSON text. A batch
-- script sets BATCH to a table and publishes it once at the end: one message per call, not
-- one per room.
local BATCH = nil
local function publish(event)
  if BATCH then BATCH[#BATCH + 1] = event
  else redis.call("PUBLISH", P .. "events", "[" .. event .. "]") end
end

local function flush()
  if BATCH and #BATCH > 0 then
    redis.call("PUBLISH", P .. "events", "[" .. table.concat(BATCH, ",") .. "]")
  end
  BATCH = nil
end

-- The fields of a room that one registration never changes, as the members of a JSON object
-- (kept in the room hash as `pub`). Events are built from it by concatenation: encoding the
-- whole room for every changed heartbeat would cost Redis more than the heartbeat itself.
-- Times are stored as JSON-compatible decimal strings (see the module docstring).
local function static_json(id, name, game, owner, node, ws, labels, created)
  return '"server_id":' .. cjson.encode(id) .. ',"name":' .. cjson.encode(name) ..
    ',"game":' .. cjson.encode(game) .. ',"owner_id":' .. cjson.encode(owner) ..
    ',"node_id":' .. cjson.encode(node) .. ',"ws_url":' .. cjson.encode(ws) ..
    ',"labels":' .. labels .. ',"created_at":' .. created
end

local function bool_json(flag)
  if flag == "1" then return "true" end
  return "false"
end

-- An `added` / `updated` event: [kind, room as the room list shows it, seats reconciled].
local function room_event(kind, pub, gen, players, maxp, reserved, locked, ready, meta, hb)
  local pl = math.min(players, maxp)
  local shown = math.min(reserved, maxp - pl)
  if hb == "" then hb = "null" end
  return '["' .. kind .. '",{' .. pub .. ',"generation":' .. gen .. ',"players":' .. pl ..
    ',"max_players":' .. maxp .. ',"reserved":' .. shown .. ',"free_seats":' ..
    (maxp - pl - shown) .. ',"locked":' .. bool_json(locked) .. ',"ready":' ..
    bool_json(ready) .. ',"metadata":' .. meta .. ',"heartbeat_at":' .. hb .. '}]'
end

-- The same from a room hash as HGETALL returns it (flat field, value list).
local function publish_room(kind, id, reserved, h)
  local m = {}
  for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
  local pub = m.pub or static_json(id, m.name, m.game, m.owner, m.node, m.ws, m.labels, m.created)
  publish(room_event(kind, pub, m.gen, tonumber(m.players), tonumber(m.max), tonumber(reserved),
    m.locked, m.ready, m.meta, m.hb))
end

local function publish_removed(id, reason, game, labels)
  publish(cjson.encode({"removed", id, reason, game, labels}))
end

-- Fleets (issue #10): `P fl:<fleet>` hash of member id -> slot, `P flr:<fleet>` set of the
-- members whose slot is "r" (allocation looks there, not at the whole fleet), `P flof` hash of
-- id -> fleet, and the room hash's `fleet` field. A slot is "r" (ready), "x" (retiring) or
-- "a|<allocation>|<at>|<hold until>|<1 exclusive, 0 open>".
local function flkey(fleet) return P .. "fl:" .. fleet end
local function frkey(fleet) return P .. "flr:" .. fleet end
local function allocated_slot(aid, now_s, hold, excl)
  return "a|" .. aid .. "|" .. now_s .. "|" .. hold .. "|" .. excl
end
-- Every change of a slot goes through here, so the ready set never disagrees with the slots.
local function set_slot(fleet, id, slot)
  redis.call("HSET", flkey(fleet), id, slot)
  if slot == "r" then redis.call("SADD", frkey(fleet), id) else redis.call("SREM", frkey(fleet), id) end
end

-- Remove a room and everything that points at it; listed rooms announce their removal.
local function drop(id, reason)
  local f = redis.call("HMGET", rkey(id), "ready", "game", "labels")
  redis.call("DEL", rkey(id), reskey(id))
  redis.call("ZREM", P .. "exp", id)
  if f[2] then redis.call("SREM", P .. "game:" .. f[2], id) end
  if f[1] == "1" then publish_removed(id, reason, f[2], f[3]) end
end
"""

# ARGV: P, id, now, exp, name, game, owner, node, ws, max, labels_json, n_labels, (k, v)...
# Reply: {gen, expired}, or "fb" when a live room of another node has the id.
REGISTER = _PRELUDE + r"""
local id, now, exp = ARGV[2], ARGV[3], ARGV[4]
local rk = rkey(id)
local old = redis.call("HMGET", rk, "exp", "game", "node")
local expired = 0
-- A live room of another node is not taken over (a hijack, or a move before it expired).
if old[2] and old[3] ~= ARGV[8] and tonumber(old[1]) > tonumber(now) then return "fb" end
if old[2] then
  local reason = "reregistered"
  if tonumber(old[1]) <= tonumber(now) then reason = "expired"; expired = 1 end
  drop(id, reason)
end
local gen = redis.call("INCR", P .. "gen")
local fields = {"id", id, "name", ARGV[5], "game", ARGV[6], "owner", ARGV[7], "node", ARGV[8],
  "ws", ARGV[9], "max", ARGV[10], "labels", ARGV[11], "created", now, "gen", gen, "ready", "0",
  "players", "0", "locked", "0", "meta", "{}", "state", "null", "hb", "", "exp", exp, "rn", "0",
  "pub", static_json(id, ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[11], now)}
local n = tonumber(ARGV[12])
for j = 13, 12 + 2 * n, 2 do
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

# One heartbeat as a decoded JSON array: [id, gen|"", players, max, locked "0"|"1",
# ready "0"|"1", meta_json, state_json, [meta k, v, ...]|null, [player ids]|null,
# instance|null (absent from older clients)].
# Reply, one string: "ok,gen,ready,reserved,free,lag" | "nf,expired" | "fb" | "stale,gen" |
# "meta". The metadata's filter fields (`m:<k>` values) are needed only when the metadata
# changed, which is rare: the client leaves them out (null), and a heartbeat whose metadata
# changed is then not applied but answered "meta", to be sent again with them. Later
# heartbeats of that room in the same call wait too, so a room's heartbeats stay in order.
# Batches travel as one JSON argument and come back as one string: packing a dozen arguments
# and parsing a reply array per heartbeat costs the client more than the script costs Redis.
_HEARTBEAT_FN = r"""
local WAITING = {}
local function heartbeat(node, now_s, exp, hb)
  local id, gen_arg, players, max_arg = hb[1], hb[2], hb[3], hb[4]
  local locked, ready, meta, state, metas, pids = hb[5], hb[6], hb[7], hb[8], hb[9], hb[10]
  local inst = hb[11]
  if inst == cjson.null then inst = nil end
  if WAITING[id] then return "meta" end
  local now = tonumber(now_s)
  local rk = rkey(id)
  local f = redis.call("HMGET", rk, "node", "gen", "exp", "ready", "players", "max", "locked",
    "meta", "hb", "rn", "pub", "inst")
  if not f[1] then return "nf,0" end
  if tonumber(f[3]) <= now then drop(id, "expired"); return "nf,1" end
  if f[1] ~= node then return "fb" end
  local gen = tonumber(f[2])
  if gen_arg ~= "" then
    if gen_arg < gen then return "stale," .. f[2] end
    if gen_arg > gen then return "nf,0" end
  end
  if meta ~= f[8] and metas == cjson.null then
    WAITING[id] = true
    return "meta"
  end

  local old_players, old_max = tonumber(f[5]), tonumber(f[6])
  local maxp = max_arg
  if maxp == 0 then maxp = old_max end

  -- Seats: drop expired reservations, then release the ones whose players arrived; all of them
  -- when the game process died ("") or another one runs (store.restarted is the same rule).
  local old_inst = f[12] or ""
  local restarted = inst ~= nil and (inst == "" or (old_inst ~= "" and inst ~= old_inst))
  local old_rn = tonumber(f[10] or "0")
  local reserved = 0
  if old_rn > 0 then
    local resk = reskey(id)
    redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
    if restarted then
      redis.call("DEL", resk)
    elseif pids ~= cjson.null then
      for _, pid in ipairs(pids) do redis.call("ZREM", resk, pid) end
    else
      local rise = players - old_players
      if rise > 0 then redis.call("ZPOPMIN", resk, rise) end
    end
    reserved = redis.call("ZCARD", resk)
  end

  -- One HSET of what changed, besides the times and the state (which is not read back: it
  -- may be large, and writing it costs less than comparing it).
  local w = {"hb", now_s, "exp", exp, "state", state}
  local changed = false
  local function put(name, value)
    w[#w + 1] = name
    w[#w + 1] = value
  end
  if players ~= old_players then put("players", players); changed = true end
  if maxp ~= old_max then put("max", maxp); changed = true end
  if locked ~= f[7] then put("locked", locked); changed = true end
  if ready ~= f[4] then put("ready", ready) end
  if inst ~= nil and inst ~= old_inst then put("inst", inst) end
  if reserved ~= old_rn then put("rn", reserved); changed = true end
  if meta ~= f[8] then
    local dels = {}
    for k, _ in pairs(cjson.decode(f[8])) do dels[#dels + 1] = "m:" .. k end
    if #dels > 0 then redis.call("HDEL", rk, unpack(dels)) end
    for j = 1, #metas, 2 do put("m:" .. metas[j], metas[j + 1]) end
    put("meta", meta)
    changed = true
  end
  redis.call("HSET", rk, unpack(w))
  redis.call("ZADD", P .. "exp", exp, id)

  local lag = ""
  if f[9] and f[9] ~= "" then lag = now - tonumber(f[9]) end
  local was, is = f[4] == "1", ready == "1"
  if is and (changed or not was) then
    local kind = "added"
    if was then kind = "updated" end
    if f[11] then
      publish(room_event(kind, f[11], f[2], players, maxp, reserved, locked, ready, meta, now_s))
    else  -- registered before rooms kept `pub`
      publish_room(kind, id, reserved, redis.call("HGETALL", rk))
    end
  elseif was and not is then
    local g = redis.call("HMGET", rk, "game", "labels")
    publish_removed(id, "not-ready", g[1], g[2])
  end

  local pl = math.min(players, maxp)
  local shown = math.min(reserved, maxp - pl)
  return "ok," .. f[2] .. "," .. ready .. "," .. shown .. "," .. (maxp - pl - shown) .. "," .. lag
end
"""

# ARGV: P, node, now, exp, heartbeat JSON (see _HEARTBEAT_FN). Reply: its reply string.
HEARTBEAT = _PRELUDE + _HEARTBEAT_FN + r"""
return heartbeat(ARGV[2], ARGV[3], ARGV[4], cjson.decode(ARGV[5]))
"""

# ARGV: P, node, now, exp, JSON array of heartbeats. Reply: their replies joined by ";".
# One script call for a node's whole batch; each heartbeat is checked and applied on its own.
HEARTBEAT_MANY = _PRELUDE + _HEARTBEAT_FN + r"""
local replies = {}
BATCH = {}
for i, hb in ipairs(cjson.decode(ARGV[5])) do
  replies[i] = heartbeat(ARGV[2], ARGV[3], ARGV[4], hb)
end
flush()
return table.concat(replies, ";")
"""

# ARGV: P, id, node, now. Reply: "ok" | "gone" | "expired" | "fb"
DEREGISTER = _PRELUDE + r"""
local f = redis.call("HMGET", rkey(ARGV[2]), "node", "exp")
if not f[1] then return "gone" end
if tonumber(f[2]) <= tonumber(ARGV[4]) then drop(ARGV[2], "expired"); return "expired" end
if f[1] ~= ARGV[3] then return "fb" end
drop(ARGV[2], "deregistered")
return "ok"
"""

# ARGV: P, id, now. Reply: {"ok", reserved, flat hash} | {"nf", expired}
GET = _PRELUDE + r"""
local id, now = ARGV[2], ARGV[3]
local h = redis.call("HGETALL", rkey(id))
if #h == 0 then return {"nf", "0"} end
local m = {}
for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
if tonumber(m.exp) <= tonumber(now) then drop(id, "expired"); return {"nf", "1"} end
if m.ready ~= "1" then return {"nf", "0"} end
return {"ok", tostring(live_reserved(id, m.rn, now)), h}
"""

# ARGV: P, id, player, now, until.
# Reply: {"ok", reserved, flat hash} | {"nf", expired} | {"locked"} | {"full"}
RESERVE = _PRELUDE + r"""
local id, pid, now_s, till = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local rk = rkey(id)
local f = redis.call("HMGET", rk, "ready", "exp", "players", "max", "locked", "rn", "fleet")
if not f[2] then return {"nf", "0"} end
if tonumber(f[2]) <= tonumber(now_s) then drop(id, "expired"); return {"nf", "1"} end
if f[1] ~= "1" then return {"nf", "0"} end
if f[5] == "1" then return {"locked"} end
-- A fleet's server: a retiring one takes nobody, one allocated to a match only its own seats;
-- joining a ready one allocates it (open, so others may join it too).
local st = f[7] and redis.call("HGET", flkey(f[7]), id)
if st then
  local c = string.sub(st, 1, 1)
  if c == "x" then return {"nf", "0"} end
  if c == "a" and string.sub(st, -1) == "1" then return {"locked"} end
end
local resk = reskey(id)
local r = 0
if tonumber(f[6] or "0") > 0 then
  redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
  r = redis.call("ZCARD", resk)
end
if tonumber(f[4]) - tonumber(f[3]) - r <= 0 then
  redis.call("HSET", rk, "rn", r)
  return {"full"}
end
redis.call("ZADD", resk, till, pid)
redis.call("HSET", rk, "rn", r + 1)
if st == "r" then set_slot(f[7], id, allocated_slot("j-" .. pid, now_s, till, "0")) end
local h = redis.call("HGETALL", rk)
publish_room("updated", id, r + 1, h)
return {"ok", tostring(r + 1), h}
"""

# ARGV: P, game, player, now, until, n_filters, (field, value)...
# Reply: {"ok", reserved, flat hash} | {"none", "1" if the game has fleet servers else "0"}
# Best room: fewest free seats, then most occupied, then oldest, then lowest id.
QUICK_JOIN = _PRELUDE + r"""
local now_s = ARGV[4]
local now = tonumber(now_s)
local nf = tonumber(ARGV[6])
local names = {"ready", "exp", "players", "max", "locked", "rn", "created", "fleet"}
for j = 0, nf - 1 do names[#names + 1] = ARGV[7 + 2 * j] end
local best, bfree, bocc, bcreated = nil, 0, 0, 0
local spare, spare_fleet, fleet_game = nil, nil, "0"
for _, id in ipairs(redis.call("SMEMBERS", P .. "game:" .. ARGV[2])) do
  local f = redis.call("HMGET", rkey(id), unpack(names))
  if f[8] then fleet_game = "1" end
  if f[1] == "1" and f[5] ~= "1" and tonumber(f[2]) > now then
    local ok = true
    for j = 0, nf - 1 do
      if f[9 + j] ~= ARGV[8 + 2 * j] then ok = false; break end
    end
    if ok then
      local players = tonumber(f[3])
      local r = live_reserved(id, f[6], now_s)
      local free = tonumber(f[4]) - players - r
      -- A fleet's server joins the running only when openly allocated; a ready one is the
      -- spare taken (and allocated) when no room has a seat; retiring and exclusive: never.
      local c = nil
      if f[8] then
        local st = redis.call("HGET", flkey(f[8]), id)
        if st then
          c = string.sub(st, 1, 1)
          if c == "a" and string.sub(st, -1) == "1" then c = "x" end
        end
      end
      if c == "r" then
        if spare == nil and free > 0 and players == 0 and r == 0 then spare, spare_fleet = id, f[8] end
      elseif c ~= "x" and free > 0 then
        local occ, created = players + r, tonumber(f[7])
        if best == nil or free < bfree or (free == bfree and (occ > bocc or (occ == bocc and
            (created < bcreated or (created == bcreated and id < best))))) then
          best, bfree, bocc, bcreated = id, free, occ, created
        end
      end
    end
  end
end
if best == nil and spare ~= nil then
  best = spare
  set_slot(spare_fleet, spare, allocated_slot("q-" .. ARGV[3], now_s, ARGV[5], "0"))
end
if best == nil then return {"none", fleet_game} end
local resk = reskey(best)
redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
redis.call("ZADD", resk, ARGV[5], ARGV[3])
local r = redis.call("ZCARD", resk)
redis.call("HSET", rkey(best), "rn", r)
local h = redis.call("HGETALL", rkey(best))
publish_room("updated", best, r, h)
return {"ok", tostring(r), h}
"""

# ARGV: P, game|"", now, free ""|"1"|"0", sort "players"|"created", desc "1"|"0", limit,
#       has_cursor, cursor_key, cursor_id, n_filters, (field, value)...
# Reply: {has_more, {reserved, flat hash}...}
LIST = _PRELUDE + r"""
local game, now_s, free, sort = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(now_s)
local sign = 1
if ARGV[6] == "1" then sign = -1 end
local limit = tonumber(ARGV[7])
local has_cursor = ARGV[8] == "1"
local ckey, cid = tonumber(ARGV[9]), ARGV[10]
local nf = tonumber(ARGV[11])
local names = {"ready", "exp", "players", "max", "locked", "rn", "created"}
for j = 0, nf - 1 do names[#names + 1] = ARGV[12 + 2 * j] end
local ids
if game ~= "" then
  ids = redis.call("SMEMBERS", P .. "game:" .. game)
else
  ids = redis.call("ZRANGE", P .. "exp", 0, -1)
end
local matches = {}
for _, id in ipairs(ids) do
  local f = redis.call("HMGET", rkey(id), unpack(names))
  if f[1] == "1" and tonumber(f[2]) > now then
    local ok = true
    for j = 0, nf - 1 do
      if f[8 + j] ~= ARGV[13 + 2 * j] then ok = false; break end
    end
    local players, maxp = tonumber(f[3]), tonumber(f[4])
    if ok and free ~= "" then
      local joinable = false
      if f[5] ~= "1" then joinable = maxp - players - live_reserved(id, f[6], now_s) > 0 end
      ok = (free == "1") == joinable
    end
    if ok then
      local k
      if sort == "players" then k = sign * math.min(players, maxp) else k = sign * tonumber(f[7]) end
      if not has_cursor or k > ckey or (k == ckey and id > cid) then
        matches[#matches + 1] = {k, id}
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
  local id = matches[i][2]
  local h = redis.call("HGETALL", rkey(id))
  local m = {}
  for j = 1, #h, 2 do m[h[j]] = h[j + 1] end
  out[#out + 1] = {tostring(live_reserved(id, m.rn, now_s)), h}
end
return out
"""

# ARGV: P, now, batch. Reply: number of expired rooms removed.
SWEEP = _PRELUDE + r"""
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
flush()
return n
"""

# ARGV: P, now. Reply: {registered, listed, players, reserved, free}
STATS = _PRELUDE + r"""
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


# --- fleets and allocation (issue #10) -------------------------------------------------------

# ARGV: P, fleet, ids... Reply: "ok". New members are ready; a member already there keeps its slot.
FLEET_ADD = _PRELUDE + r"""
local fk = flkey(ARGV[2])
for j = 3, #ARGV do
  local id = ARGV[j]
  if redis.call("HSETNX", fk, id, "r") == 1 then redis.call("SADD", frkey(ARGV[2]), id) end
  redis.call("HSET", P .. "flof", id, ARGV[2])
  if redis.call("EXISTS", rkey(id)) == 1 then redis.call("HSET", rkey(id), "fleet", ARGV[2]) end
end
return "ok"
"""

# ARGV: P, now, until, alloc_id, exclusive "1"|"0", n_players, players..., n_fleets, fleets...,
#       n_filters, (field, value)...
# Reply: {"ok", fleet, reserved, flat hash} | {"none"}
# A ready member (fleets in the order given) whose room is listed, unlocked, empty (no players,
# no live seat), big enough and matching every label becomes allocated. A few ready members
# drawn at random are tried first, so a big fleet costs no more than a small one; only when
# none of them fits are all the ready ones looked at.
ALLOCATE = _PRELUDE + r"""
local now_s, till, aid, excl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(now_s)
local i = 6
local np = tonumber(ARGV[i]); i = i + 1
local pids = {}
for j = 1, np do pids[j] = ARGV[i]; i = i + 1 end
local nfl = tonumber(ARGV[i]); i = i + 1
local fleets = {}
for j = 1, nfl do fleets[j] = ARGV[i]; i = i + 1 end
local nf = tonumber(ARGV[i]); i = i + 1
local names = {"ready", "exp", "players", "max", "locked", "rn"}
local want = {}
for j = 0, nf - 1 do
  names[#names + 1] = ARGV[i + 2 * j]
  want[#want + 1] = ARGV[i + 2 * j + 1]
end

local function fits(id)
  local f = redis.call("HMGET", rkey(id), unpack(names))
  if not (f[1] == "1" and f[5] ~= "1" and tonumber(f[2]) > now and tonumber(f[3]) == 0
          and tonumber(f[4]) >= np and live_reserved(id, f[6], now_s) == 0) then
    return false
  end
  for j = 1, nf do
    if f[6 + j] ~= want[j] then return false end
  end
  return true
end

local function take(fleet, id)
  set_slot(fleet, id, allocated_slot(aid, now_s, till, excl))
  local resk = reskey(id)
  redis.call("DEL", resk)
  for j = 1, np do redis.call("ZADD", resk, till, pids[j]) end
  redis.call("HSET", rkey(id), "rn", np)
  local h = redis.call("HGETALL", rkey(id))
  publish_room("updated", id, np, h)
  return {"ok", fleet, tostring(np), h}
end

for _, fleet in ipairs(fleets) do
  local tried = {}
  for _, id in ipairs(redis.call("SRANDMEMBER", frkey(fleet), 8)) do
    tried[id] = true
    if fits(id) then return take(fleet, id) end
  end
  for _, id in ipairs(redis.call("SMEMBERS", frkey(fleet))) do
    if not tried[id] and fits(id) then return take(fleet, id) end
  end
end
return {"none"}
"""

# ARGV: P, fleet, id, alloc_id|"", to "r"|"x". Reply: "ok" | the slot letter | "gone".
# Ends an allocation (of `alloc_id`, or whichever it is); its seats go with it.
RELEASE = _PRELUDE + r"""
local fk = flkey(ARGV[2])
local id = ARGV[3]
local st = redis.call("HGET", fk, id)
if not st then return "gone" end
if string.sub(st, 1, 1) ~= "a" then return string.sub(st, 1, 1) end
if ARGV[4] ~= "" and string.match(st, "^a|([^|]*)|") ~= ARGV[4] then return "a" end
set_slot(ARGV[2], id, ARGV[5])
redis.call("DEL", reskey(id))
if redis.call("EXISTS", rkey(id)) == 1 then
  redis.call("HSET", rkey(id), "rn", "0")
  if redis.call("HGET", rkey(id), "ready") == "1" then
    publish_room("updated", id, 0, redis.call("HGETALL", rkey(id)))
  end
end
return "ok"
"""

# ARGV: P, fleet, ids... Reply: the ids now retiring (ready or already retiring ones).
RETIRE = _PRELUDE + r"""
local fk = flkey(ARGV[2])
local out = {}
for j = 3, #ARGV do
  local st = redis.call("HGET", fk, ARGV[j])
  if st == "r" or st == "x" then
    set_slot(ARGV[2], ARGV[j], "x")
    out[#out + 1] = ARGV[j]
  end
end
return out
"""

# ARGV: P, fleet, now, empty_to "r"|"x", n, (id, stale "1"|"0", open allocation id or "", hold)...
# A member the store lacks is added ready, or allocated (exclusively) to its open allocation.
# Reply: per member {id, slot letter, listed "1"|"0", players, reserved, allocation id}.
FLEET_SYNC = _PRELUDE + r"""
local fleet, now_s, empty_to = ARGV[2], ARGV[3], ARGV[4]
local fk = flkey(fleet)
local now = tonumber(now_s)
local n = tonumber(ARGV[5])
local keep, out = {}, {}
for j = 0, n - 1 do
  local id, stale, open_aid, open_hold = ARGV[6 + 4 * j], ARGV[7 + 4 * j], ARGV[8 + 4 * j], ARGV[9 + 4 * j]
  keep[id] = true
  local st = redis.call("HGET", fk, id)
  if not st then
    st = "r"
    if open_aid ~= "" then st = allocated_slot(open_aid, now_s, open_hold, "1") end
    redis.call("HSET", P .. "flof", id, fleet)
    if redis.call("EXISTS", rkey(id)) == 1 then redis.call("HSET", rkey(id), "fleet", fleet) end
  end
  local f = redis.call("HMGET", rkey(id), "ready", "exp", "players", "rn")
  local present = f[2] and tonumber(f[2]) > now
  local listed, players, r = "0", 0, 0
  if present then
    players = tonumber(f[3])
    r = live_reserved(id, f[4], now_s)
    if f[1] == "1" then listed = "1" end
  end
  local c, aid = string.sub(st, 1, 1), ""
  if c == "a" then
    local a, hold = string.match(st, "^a|([^|]*)|[^|]*|([^|]*)|")
    aid = a
    if present and tonumber(hold) <= now and players == 0 and r == 0 then
      c = empty_to
      if stale == "1" then c = "x" end
      st = c
      aid = ""
    end
  end
  set_slot(fleet, id, st)  -- also heals a ready set that lost a member
  out[#out + 1] = {id, c, listed, tostring(players), tostring(r), aid}
end
for _, id in ipairs(redis.call("HKEYS", fk)) do
  if not keep[id] then
    redis.call("HDEL", fk, id)
    redis.call("SREM", frkey(fleet), id)
    redis.call("HDEL", P .. "flof", id)
    redis.call("HDEL", rkey(id), "fleet")
  end
end
return out
"""

# ARGV: P, fleet. Reply: number of members forgotten.
FLEET_DROP = _PRELUDE + r"""
local fk = flkey(ARGV[2])
local ids = redis.call("HKEYS", fk)
for _, id in ipairs(ids) do
  redis.call("HDEL", P .. "flof", id)
  redis.call("HDEL", rkey(id), "fleet")
end
redis.call("DEL", fk, frkey(ARGV[2]))
return #ids
"""
