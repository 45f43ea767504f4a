"""Scripts of fleets and allocation (issues #10 and #22): members, allocate, release, retire, sync, drop."""

from __future__ import annotations

from matchmaker.lua.prelude import PRELUDE

# What the fleet scripts share besides the prelude's slots (`set_slot`, `allocated_slot`, `held`).
_FLEET = r"""
-- Make `id` a member of `fleet` for the room side: the id -> fleet map and the room's `fleet` field.
local function join_fleet(id, fleet)
  redis.call("HSET", P .. "flof", id, fleet)
  if redis.call("EXISTS", rkey(id)) == 1 then redis.call("HSET", rkey(id), "fleet", fleet) end
end

-- Undo `join_fleet`, and forget the allocations of the member's rooms.
local function leave_fleet(id)
  redis.call("HDEL", P .. "flof", id)
  redis.call("HDEL", rkey(id), "fleet")
  redis.call("DEL", hkey(id))
end

-- How many of a server's rooms other than its first live (a pending one while one of its seats does).
local function live_extras(id, now_s)
  local count = 0
  for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
    local x = redis.call("HMGET", xkey(rid), "pend", "rn")
    if extra_alive(rid, x[1], x[2], now_s) then count = count + 1 end
  end
  return count
end
"""

# ARGV: P, fleet, ids... Reply: "ok". New members are ready; a member already there keeps its slot.
FLEET_ADD = PRELUDE + _FLEET + r"""
local fk = flkey(ARGV[2])
for j = 3, #ARGV do
  local id = ARGV[j]
  if redis.call("HSETNX", fk, id, "r") == 1 then redis.call("SADD", frkey(ARGV[2]), id) end
  join_fleet(id, ARGV[2])
end
return "ok"
"""

# ARGV: P, now, until, alloc_id, exclusive "1"|"0", n_players, players..., n_fleets, fleets...,
#       n_filters, (field, value)..., new room id|"", options_json
# Reply: {"ok", fleet, reserved, server flat hash, room flat hash or {}} | {"none"}
# Candidates (fleets in the order given): a ready member whose room is listed, big enough and
# matching every label, and either hosts one room that is unlocked and empty (no players, no
# live seat: it is allocated whole), or hosts rooms (`maxr` > 1), is not stale and has a free
# room slot (a new pending room `new room id` is made in it, as joinOrCreate makes one). Packed:
# the fewest free room slots, then the lowest id (a member hosting one room has one). A few
# ready members drawn at random are looked at first, so a big fleet of one-room servers costs
# no more than a small one; when none of them fits, or one hosts rooms (packing needs them all),
# every ready member is.
ALLOCATE = PRELUDE + _FLEET + r"""
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
local names = {"ready", "exp", "players", "max", "locked", "rn", "maxr", "gone"}
local want = {}
for j = 0, nf - 1 do
  names[#names + 1] = ARGV[i + 2 * j]
  want[#want + 1] = ARGV[i + 2 * j + 1]
end
local new_room, opt = ARGV[i + 2 * nf], ARGV[i + 2 * nf + 1]

-- (free room slots or nil, whether the member hosts rooms)
local function fit(fleet, id)
  local f = redis.call("HMGET", rkey(id), unpack(names))
  local rooms = tonumber(f[7] or "1") > 1
  if not (f[1] == "1" and tonumber(f[2]) > now and tonumber(f[4]) >= np) then return nil, rooms end
  for j = 1, nf do
    if f[8 + j] ~= want[j] then return nil, rooms end
  end
  if rooms then
    if new_room == "" or np == 0 or redis.call("SISMEMBER", stkey(fleet), id) == 1 then return nil, rooms end
    -- Rooms it hosts or has reserved: its live other rooms, and its first unless gone.
    local count = live_extras(id, now_s)
    if f[8] ~= "1" then count = count + 1 end
    local free = tonumber(f[7]) - count
    if free > 0 then return free, rooms end
    return nil, rooms
  end
  if f[5] == "1" or tonumber(f[3]) ~= 0 or live_reserved(id, f[6], now_s) ~= 0 then return nil, rooms end
  return 1, rooms
end

local function take(fleet, id)
  set_slot(fleet, id, allocated_slot(aid, now_s, till, excl))
  local resk = reskey(id)
  redis.call("DEL", resk)
  for j = 1, np do redis.call("ZADD", resk, till, pids[j]) end
  redis.call("HSET", rkey(id), "rn", np)
  local h = redis.call("HGETALL", rkey(id))
  publish_room("updated", id, np, h)
  return {"ok", fleet, tostring(np), h, {}}
end

local function take_room(fleet, id)
  redis.call("HSET", hkey(id), new_room, aid .. "|" .. till .. "|" .. excl)
  local h, xh = add_pending(new_room, id, opt, now_s, till, pids)
  return {"ok", fleet, tostring(np), h, xh}
end

for _, fleet in ipairs(fleets) do
  local best, bfree, brooms = nil, 0, false
  local scan = false
  local tried = {}
  local function try(id)
    tried[id] = true
    local free, rooms = fit(fleet, id)
    if rooms then scan = true end
    if free and (best == nil or free < bfree or (free == bfree and id < best)) then
      best, bfree, brooms = id, free, rooms
    end
  end
  for _, id in ipairs(redis.call("SRANDMEMBER", frkey(fleet), 8)) do try(id) end
  if best == nil or scan then
    for _, id in ipairs(redis.call("SMEMBERS", frkey(fleet))) do
      if not tried[id] then try(id) end
    end
  end
  if best ~= nil then
    if brooms then return take_room(fleet, best) end
    return take(fleet, best)
  end
end
return {"none"}
"""

# ARGV: P, fleet, id, alloc_id|"", to "r"|"x". Reply: "ok" | the slot letter | "gone" |
# "room:<slot letter>" (a room's allocation ended).
# Ends an allocation (of `alloc_id`, or whichever it is); its seats go with it. In a member
# hosting rooms, the room allocated to `alloc_id` is released instead (its slot is free once the
# room goes: a pending room nobody reached goes at once); the member's own state stays.
RELEASE = PRELUDE + _FLEET + r"""
-- The seats of server `id`'s first room go with its allocation.
local function clear_first(id)
  redis.call("DEL", reskey(id))
  if redis.call("EXISTS", rkey(id)) == 1 then
    redis.call("HSET", rkey(id), "rn", "0")
    if redis.call("HGET", rkey(id), "ready") == "1" then
      publish_room("updated", id, 0, redis.call("HGETALL", rkey(id)))
    end
  end
end

local fk = flkey(ARGV[2])
local id = ARGV[3]
local st = redis.call("HGET", fk, id)
if not st then return "gone" end
local c = string.sub(st, 1, 1)
if c ~= "a" and ARGV[4] ~= "" then
  local hk = hkey(id)
  local found = nil
  local holds = redis.call("HGETALL", hk)
  for j = 1, #holds, 2 do
    if string.match(holds[j + 1], "^([^|]*)|") == ARGV[4] then found = holds[j] end
  end
  if not found then return c end
  redis.call("HDEL", hk, found)
  if found == id then
    clear_first(id)
  else
    local x = redis.call("HMGET", xkey(found), "sid", "pend")
    if x[1] == id then
      redis.call("DEL", reskey(found))
      redis.call("HSET", xkey(found), "rn", "0")
      local f = redis.call("HMGET", rkey(id), "ready", "game", "labels")
      if x[2] == "1" then
        drop_extra(found, id, "released", nil, f[1], f[2], f[3])
      elseif f[1] == "1" then
        publish_extra("updated", found, 0, hmap(redis.call("HGETALL", rkey(id))),
          hmap(redis.call("HGETALL", xkey(found))))
      end
    end
  end
  return "room:" .. c
end
if c ~= "a" then return c end
if ARGV[4] ~= "" and string.match(st, "^a|([^|]*)|") ~= ARGV[4] then return "a" end
set_slot(ARGV[2], id, ARGV[5])
clear_first(id)
return "ok"
"""

# ARGV: P, fleet, now, ids... Reply: the ids now retiring (ready or already retiring ones).
# A ready member hosting rooms with anything going on (a room allocated, a room besides its
# first, somebody in or on the way to its first) stays (`now` 0: every seat handed out counts).
RETIRE = PRELUDE + _FLEET + r"""
local fk = flkey(ARGV[2])
local now_s = ARGV[3]
local function busy(id)
  if redis.call("HLEN", hkey(id)) > 0 then return true end
  local f = redis.call("HMGET", rkey(id), "maxr", "gone", "players", "rn")
  if not f[1] or tonumber(f[1]) <= 1 then return false end
  if live_extras(id, now_s) > 0 then return true end
  return f[2] ~= "1" and (tonumber(f[3]) > 0 or live_reserved(id, f[4], now_s) > 0)
end
local out = {}
for j = 4, #ARGV do
  local st = redis.call("HGET", fk, ARGV[j])
  if (st == "r" and not busy(ARGV[j])) or st == "x" then
    set_slot(ARGV[2], ARGV[j], "x")
    out[#out + 1] = ARGV[j]
  end
end
return out
"""

# ARGV: P, fleet, now, empty_to "r"|"x", n, (id, stale "1"|"0", open allocation id or "", hold)...
# A member the store lacks is added ready, or allocated (exclusively) to its open allocation.
# Rooms' allocations end once their room is gone, or empty past its hold.
# Reply: per member {id, slot letter, listed "1"|"0", players, reserved, allocation id,
# max_rooms, rooms, the allocations holding its rooms joined by ","}; players and reserved count
# every room of the member.
FLEET_SYNC = PRELUDE + _FLEET + r"""
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
    join_fleet(id, fleet)
  end
  if stale == "1" then redis.call("SADD", stkey(fleet), id) else redis.call("SREM", stkey(fleet), id) end
  local f = redis.call("HMGET", rkey(id), "ready", "exp", "players", "rn", "maxr", "gone")
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
      if tonumber(f[5] or "1") > 1 then c = "r" end  -- hosting rooms: others may have matches
      st = c
      aid = ""
    end
  end
  set_slot(fleet, id, st)  -- also heals a ready set that lost a member
  -- Its rooms: how many, who is in them, and the allocations holding them.
  local rooms, room_players, room_r, allocs = 0, {}, {}, {}
  if present then
    room_players[id], room_r[id] = players, r
    if f[6] ~= "1" then rooms = 1 end
    for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
      local x = redis.call("HMGET", xkey(rid), "players", "rn", "pend")
      local xr = live_reserved(rid, x[2], now_s)
      if x[3] ~= "1" or xr > 0 then
        rooms = rooms + 1
        room_players[rid], room_r[rid] = tonumber(x[1]), xr
        players, r = players + tonumber(x[1]), r + xr
      end
    end
  end
  local holds = redis.call("HGETALL", hkey(id))
  for k = 1, #holds, 2 do
    local rid, a, hold = holds[k], string.match(holds[k + 1], "^([^|]*)|([^|]*)|")
    if present and (room_players[rid] == nil or (tonumber(hold) <= now and room_players[rid] == 0
        and room_r[rid] == 0)) then
      redis.call("HDEL", hkey(id), rid)
    else
      allocs[#allocs + 1] = a
    end
  end
  table.sort(allocs)
  local maxr = "1"
  if present then maxr = f[5] or "1" end
  out[#out + 1] = {id, c, listed, tostring(players), tostring(r), aid, maxr, tostring(rooms),
    table.concat(allocs, ",")}
end
for _, id in ipairs(redis.call("HKEYS", fk)) do
  if not keep[id] then
    redis.call("HDEL", fk, id)
    redis.call("SREM", frkey(fleet), id)
    redis.call("SREM", stkey(fleet), id)
    leave_fleet(id)
  end
end
return out
"""

# ARGV: P, fleet. Reply: number of members forgotten.
FLEET_DROP = PRELUDE + _FLEET + r"""
local fk = flkey(ARGV[2])
local ids = redis.call("HKEYS", fk)
for _, id in ipairs(ids) do leave_fleet(id) end
redis.call("DEL", fk, frkey(ARGV[2]), stkey(ARGV[2]))
return #ids
"""
