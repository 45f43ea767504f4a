"""Scripts that take a seat: `RESERVE` (by room id) and `QUICK_JOIN` (joinOrCreate, by filter)."""

from __future__ import annotations

from matchmaker.lua.prelude import PRELUDE

# Both joins end alike once they took a seat.
_SEATED = r"""
-- A join's answer once it took a seat in room `rid` of server `sid` (a room other than the first
-- with `is_extra`), `r` seats now taken: {"ok", reserved, server flat hash, room flat hash or {}},
-- the room's `updated` event published.
local function seated(sid, rid, is_extra, r)
  local h = redis.call("HGETALL", rkey(sid))
  if is_extra then
    local xh = redis.call("HGETALL", xkey(rid))
    publish_extra("updated", rid, r, hmap(h), hmap(xh))
    return {"ok", tostring(r), h, xh}
  end
  publish_room("updated", rid, r, h)
  return {"ok", tostring(r), h, {}}
end
"""

# ARGV: P, room id, player, now, until.
# Reply: {"ok", reserved, server flat hash, room flat hash or {}} | {"nf", expired} | {"locked"} |
# {"full"}
RESERVE = PRELUDE + _SEATED + r"""
local id, pid, now_s, till = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local xsid = redis.call("HGET", xkey(id), "sid")
local sid = xsid or id
local rk = rkey(sid)
local f = redis.call("HMGET", rk, "ready", "exp", "players", "max", "locked", "rn", "fleet", "gone", "maxr")
if not f[2] then return {"nf", "0"} end
if tonumber(f[2]) <= tonumber(now_s) then drop(sid, "expired"); return {"nf", "1"} end
if f[1] ~= "1" then return {"nf", "0"} end
local players, maxp, locked, rn, pend = f[3], f[4], f[5], f[6], nil
local hk = rk
if xsid then
  hk = xkey(id)
  local x = redis.call("HMGET", hk, "players", "max", "locked", "rn", "pend")
  if not extra_alive(id, x[5], x[4], now_s) then return {"nf", "0"} end
  players, maxp, locked, rn, pend = x[1], x[2], x[3], x[4], x[5]
elseif f[8] == "1" then
  return {"nf", "0"}
end
if locked == "1" then return {"locked"} end
-- A fleet's server: a retiring one takes nobody, one allocated to a match only its own seats;
-- joining a ready one allocates it (open, so others may join it too).
local st = f[7] and redis.call("HGET", flkey(f[7]), sid)
if st then
  local c = string.sub(st, 1, 1)
  if c == "x" then return {"nf", "0"} end
  if c == "a" and string.sub(st, -1) == "1" then return {"locked"} end
  if held(sid, id) then return {"locked"} end
end
local resk = reskey(id)
local r = 0
if tonumber(rn or "0") > 0 then
  redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
  r = redis.call("ZCARD", resk)
end
if tonumber(maxp) - tonumber(players) - r <= 0 then
  redis.call("HSET", hk, "rn", r)
  return {"full"}
end
redis.call("ZADD", resk, till, pid)
redis.call("HSET", hk, "rn", r + 1)
if pend == "1" then
  redis.call("ZADD", P .. "pend", till, id)
elseif xsid then
  redis.call("ZADD", P .. "resv", till, id)
end
if st == "r" and tonumber(f[9] or "1") <= 1 then
  set_slot(f[7], sid, allocated_slot("j-" .. pid, now_s, till, "0"))
end
return seated(sid, id, xsid, r + 1)
"""

# ARGV: P, game, player, now, until, new room id|"", options_json, create "1"|"0",
#       n_labels, (field, value)..., n_metadata, (field, value)...
# Reply: {"ok", reserved, server flat hash, room flat hash or {}} |
#        {"none", "1" if the game has fleet servers else "0"}
# joinOrCreate (matchmaker.store.base.Store.quick_join). Best room: fewest free seats, then most
# occupied, then oldest, then lowest id. Else a new pending room on the matching server with the
# fewest rooms below its max_rooms (then oldest, then lowest id).
QUICK_JOIN = PRELUDE + _SEATED + r"""
local pid, now_s, till = ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(now_s)
local new_room, opt, create = ARGV[6], ARGV[7], ARGV[8] == "1"
local names = {"ready", "exp", "players", "max", "locked", "rn", "created", "fleet", "gone", "maxr"}
local xnames = {"players", "max", "locked", "rn", "created", "pend"}
local flt = read_filter(9, names, xnames)

local best, bid, bx, bfree, bocc, bcreated = nil, nil, false, 0, 0, 0
local function consider(sid, rid, is_extra, free, occ, created)
  if bid == nil or free < bfree or (free == bfree and (occ > bocc or (occ == bocc and
      (created < bcreated or (created == bcreated and rid < bid))))) then
    best, bid, bx, bfree, bocc, bcreated = sid, rid, is_extra, free, occ, created
  end
end
local spare, spare_fleet, fleet_game = nil, nil, "0"
local host, hcount, hcreated = nil, 0, 0
for _, id in ipairs(redis.call("SMEMBERS", P .. "game:" .. ARGV[2])) do
  local f = redis.call("HMGET", rkey(id), unpack(names))
  if f[8] and tonumber(f[2]) > now then fleet_game = "1" end  -- as the memory store, which drops expired ones
  if f[1] == "1" and tonumber(f[2]) > now and flt.labels(f) then
    -- A fleet's ready server is the spare taken (and allocated) when no room has a seat;
    -- retiring ones and those allocated to a match: never joined, no new rooms.
    local c = nil
    if f[8] then
      local st = redis.call("HGET", flkey(f[8]), id)
      if st then
        c = string.sub(st, 1, 1)
        if c == "a" and string.sub(st, -1) == "1" then c = "x" end
      end
    end
    -- A ready member hosting rooms is joined like any server, except its rooms allocated to a match.
    local in_rooms = tonumber(f[10] or "1") > 1
    local shut = (c == "r" and not in_rooms) or c == "x"
    if not create and f[9] ~= "1" and f[5] ~= "1" and flt.meta(f) and not (f[8] and held(id, id)) then
      local players = tonumber(f[3])
      local r = live_reserved(id, f[6], now_s)
      local free = tonumber(f[4]) - players - r
      if free > 0 and c == "r" and not in_rooms then
        if spare == nil and players == 0 and r == 0 then spare, spare_fleet = id, f[8] end
      elseif free > 0 and not shut then
        consider(id, id, false, free, players + r, tonumber(f[7]))
      end
    end
    if not shut and (not create or new_room ~= "") then
      local count = 0
      if f[9] ~= "1" then count = 1 end
      for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
        local x = redis.call("HMGET", xkey(rid), unpack(xnames))
        local r = live_reserved(rid, x[4], now_s)
        if x[6] ~= "1" or r > 0 then
          count = count + 1
          if not create and x[3] ~= "1" and flt.xmeta(x) and not (f[8] and held(id, rid)) then
            local players = tonumber(x[1])
            local free = tonumber(x[2]) - players - r
            if free > 0 then consider(id, rid, true, free, players + r, tonumber(x[5])) end
          end
        end
      end
      local created = tonumber(f[7])
      if new_room ~= "" and count < tonumber(f[10] or "1") and (host == nil or count < hcount or
          (count == hcount and (created < hcreated or (created == hcreated and id < host)))) then
        host, hcount, hcreated = id, count, created
      end
    end
  end
end
if bid == nil and spare ~= nil then
  best, bid = spare, spare
  set_slot(spare_fleet, spare, allocated_slot("q-" .. pid, now_s, till, "0"))
end
if bid == nil and host ~= nil then
  local h, xh = add_pending(new_room, host, opt, now_s, till, {pid})
  return {"ok", "1", h, xh}
end
if bid == nil then return {"none", fleet_game} end
local resk = reskey(bid)
redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
redis.call("ZADD", resk, till, pid)
local r = redis.call("ZCARD", resk)
if bx then
  redis.call("HSET", xkey(bid), "rn", r)
  if redis.call("HGET", xkey(bid), "pend") == "1" then
    redis.call("ZADD", P .. "pend", till, bid)
  else
    redis.call("ZADD", P .. "resv", till, bid)
  end
else
  redis.call("HSET", rkey(best), "rn", r)
end
return seated(best, bid, bx, r)
"""
