"""The Lua every script of the Redis store starts with: key names, event publishing, removing
rooms, fleet slots, and the helpers more than one concern's scripts share (filters, pending rooms).

Each is a `local` of the script, so a script composed as `PRELUDE + body` calls them directly;
defining them once here is what keeps the Redis store's rules in one place.
"""

from __future__ import annotations

PRELUDE = r"""
local P = ARGV[1]
local function rkey(id) return P .. "room:" .. id end
local function reskey(id) return P .. "res:" .. id end
-- Rooms other than a server's first (issue #22): `P xr:<room>` hash (`sid` its server, `pend`
-- "1" while pending, metadata filter fields `m:<k>`), `P xrs:<server>` set of them, `P pend`
-- sorted set of pending rooms by their last seat's expiry (the sweep drops those whose seats
-- all lapsed), `P resv` the same of open ones with seats held (the sweep announces the lapsed
-- seats: a heartbeat delta does not list a room that did not change). Their seats are
-- `P res:<room>` like a first room's.
local function xkey(id) return P .. "xr:" .. id end
local function xskey(id) return P .. "xrs:" .. id end

local function hmap(h)
  local m = {}
  for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
  return m
end

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

-- The fields of a server that one registration never changes, as the members of a JSON object
-- (kept in the server hash as `spub`). Events are built from it by concatenation: encoding the
-- whole room for every changed heartbeat would cost Redis more than the heartbeat itself.
-- Times are stored as JSON-compatible decimal strings (see the module docstring).
local function static_json(id, name, game, owner, node, ws, labels)
  return '"server_id":' .. cjson.encode(id) .. ',"name":' .. cjson.encode(name) ..
    ',"game":' .. cjson.encode(game) .. ',"owner_id":' .. cjson.encode(owner) ..
    ',"node_id":' .. cjson.encode(node) .. ',"ws_url":' .. cjson.encode(ws) ..
    ',"labels":' .. labels
end

local function bool_json(flag)
  if flag == "1" then return "true" end
  return "false"
end

-- An `added` / `updated` event: [kind, room as the room list shows it, seats reconciled]
-- (matchmaker.models.RoomPublic; matchmaker.store.base.room_fields builds the same in Python).
local function room_event(kind, pub, rid, created, gen, players, maxp, reserved, locked, ready,
                          meta, hb, opt, status)
  local pl = math.min(players, maxp)
  local shown = math.min(reserved, maxp - pl)
  if hb == "" or hb == nil then hb = "null" end
  return '["' .. kind .. '",{' .. pub .. ',"room_id":' .. cjson.encode(rid) .. ',"created_at":' ..
    created .. ',"generation":' .. gen .. ',"players":' .. pl ..
    ',"max_players":' .. maxp .. ',"reserved":' .. shown .. ',"free_seats":' ..
    (maxp - pl - shown) .. ',"locked":' .. bool_json(locked) .. ',"ready":' ..
    bool_json(ready) .. ',"metadata":' .. meta .. ',"heartbeat_at":' .. hb ..
    ',"options":' .. opt .. ',"status":"' .. status .. '"}]'
end

local function first_status(gone)
  if gone == "1" then return "gone" end
  return "open"
end

local function server_pub(m)
  return m.spub or static_json(m.id, m.name, m.game, m.owner, m.node, m.ws, m.labels)
end

-- A server's first room from its hash as HGETALL returns it (flat field, value list).
local function publish_room(kind, id, reserved, h)
  local m = hmap(h)
  publish(room_event(kind, server_pub(m), id, m.created, m.gen, tonumber(m.players), tonumber(m.max),
    tonumber(reserved), m.locked, m.ready, m.meta, m.hb, "{}", first_status(m.gone)))
end

-- Another room, from its server's hash and its own (as maps).
local function publish_extra(kind, rid, reserved, sm, xm)
  local status = "open"
  if xm.pend == "1" then status = "pending" end
  publish(room_event(kind, server_pub(sm), rid, xm.created, sm.gen, tonumber(xm.players),
    tonumber(xm.max), tonumber(reserved), xm.locked, sm.ready, xm.meta, sm.hb, xm.opt, status))
end

local function publish_removed(id, reason, game, labels, rid)
  publish(cjson.encode({"removed", id, reason, game, labels, rid or id}))
end

local function publish_failed(id, reason, game, labels, rid)
  publish(cjson.encode({"failed", id, reason, game, labels, rid}))
end

-- Remove a room other than the first; a failed one (`failure`: its reason) says so first.
local function drop_extra(rid, sid, reason, failure, ready, game, labels)
  redis.call("DEL", xkey(rid), reskey(rid))
  redis.call("SREM", xskey(sid), rid)
  redis.call("ZREM", P .. "pend", rid)
  redis.call("ZREM", P .. "resv", rid)
  if ready == "1" then
    if failure then publish_failed(sid, failure, game, labels, rid) end
    publish_removed(sid, reason, game, labels, rid)
  end
end

-- Whether a room other than the first lives: a pending one as long as one of its seats.
local function extra_alive(rid, pend, rn, now_s)
  return pend ~= "1" or live_reserved(rid, rn, now_s) > 0
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
-- Fleets in rooms (issue #22): a member hosting rooms stays "r" while it has room slots; the
-- rooms allocated in it are `P flh:<server>` hash room -> "<allocation>|<hold until>|<1 exclusive,
-- 0 open>", and `P fls:<fleet>` is the set of its stale members (no new rooms go there).
local function hkey(id) return P .. "flh:" .. id end
local function stkey(fleet) return P .. "fls:" .. fleet end
-- Whether a room of fleet server `sid` is allocated to a match (the matchmaker's joins stay out).
local function held(sid, rid)
  local h = redis.call("HGET", hkey(sid), rid)
  return h ~= false and h ~= nil and string.sub(h, -1) == "1"
end
-- Every change of a slot goes through here, so the ready set never disagrees with the slots.
local function set_slot(fleet, id, slot)
  redis.call("HSET", flkey(fleet), id, slot)
  if slot == "r" then redis.call("SADD", frkey(fleet), id) else redis.call("SREM", frkey(fleet), id) end
end

-- Remove a server, its rooms and everything that points at them; listed rooms announce it.
local function drop(id, reason)
  local f = redis.call("HMGET", rkey(id), "ready", "game", "labels")
  for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
    drop_extra(rid, id, reason, nil, f[1], f[2], f[3])
  end
  redis.call("DEL", rkey(id), reskey(id), xskey(id))
  redis.call("ZREM", P .. "exp", id)
  if f[2] then redis.call("SREM", P .. "game:" .. f[2], id) end
  if f[1] == "1" then publish_removed(id, reason, f[2], f[3]) end
end

-- A filter as the scripts take it, from ARGV[at] on: n_labels, (field, value)..., n_metadata,
-- (field, value)... (store.redis_codec.filter_args). The filter's fields are appended to the
-- field names a script reads of a server (`names`: labels, then metadata) and of another room
-- (`xnames`: metadata); `labels(f)`, `meta(f)` (the server's first room) and `xmeta(x)` (another
-- room) check what HMGET read of them.
local function read_filter(at, names, xnames)
  local nl = tonumber(ARGV[at])
  local lbase = at + 1
  local nm = tonumber(ARGV[lbase + 2 * nl])
  local mbase = lbase + 2 * nl + 1
  local lat, xat = #names + 1, #xnames + 1
  for j = 0, nl - 1 do names[#names + 1] = ARGV[lbase + 2 * j] end
  for j = 0, nm - 1 do names[#names + 1] = ARGV[mbase + 2 * j] end
  for j = 0, nm - 1 do xnames[#xnames + 1] = ARGV[mbase + 2 * j] end
  local function meta_at(f, at_)
    for j = 0, nm - 1 do
      if f[at_ + j] ~= ARGV[mbase + 1 + 2 * j] then return false end
    end
    return true
  end
  return {
    labels = function(f)
      for j = 0, nl - 1 do
        if f[lat + j] ~= ARGV[lbase + 1 + 2 * j] then return false end
      end
      return true
    end,
    meta = function(f) return meta_at(f, lat + nl) end,
    xmeta = function(x) return meta_at(x, xat) end,
  }
end

-- A new pending room `rid` on server `sid`, with a seat until `till` for each of `pids`: a join
-- (joinOrCreate) or an allocation makes one, and the server's heartbeat lists it once the game
-- made it. Publishes `added`; returns the server's and the room's flat hashes.
local function add_pending(rid, sid, opt, now_s, till, pids)
  local xk = xkey(rid)
  redis.call("HSET", xk, "id", rid, "sid", sid, "players", "0",
    "max", redis.call("HGET", rkey(sid), "max"), "locked", "0", "meta", "{}", "opt", opt,
    "created", now_s, "rn", #pids, "pend", "1")
  redis.call("SADD", xskey(sid), rid)
  local resk = reskey(rid)
  for _, pid in ipairs(pids) do redis.call("ZADD", resk, till, pid) end
  redis.call("ZADD", P .. "pend", till, rid)
  local h, xh = redis.call("HGETALL", rkey(sid)), redis.call("HGETALL", xk)
  publish_extra("added", rid, #pids, hmap(h), hmap(xh))
  return h, xh
end
"""
