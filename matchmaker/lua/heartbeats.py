"""Scripts that apply a server's heartbeats, one or a node's batch: seats, fields, events, and
the reconciliation of its other rooms with the heartbeat's list."""

from __future__ import annotations

from matchmaker.lua.prelude import PRELUDE

# One heartbeat as a decoded JSON array: [id, gen|"", players, max, locked "0"|"1",
# ready "0"|"1", meta_json, state_json, [meta k, v, ...]|null, [player ids]|null,
# instance|null, first room status "open"|"failed"|"disposed"|"absent", its failure reason,
# max_rooms|null, [other rooms]|null (see `reconcile`), rooms delta "0"|"1"]; the last six are
# absent from older clients. `players` and `player ids` are the first room's (store.base.first_room_report).
# Reply, one string: "ok,gen,ready,reserved,free,lag" | "nf,expired" | "fb" | "stale,gen" |
# "meta". The metadata's filter fields (`m:<k>` values) are needed only when the metadata
# changed, which is rare: the client leaves them out (null), and a heartbeat whose metadata
# changed is then not applied but answered "meta", to be sent again with them. Later
# heartbeats of that room in the same call wait too, so a room's heartbeats stay in order.
# Batches travel as one JSON argument and come back as one string: packing a dozen arguments
# and parsing a reply array per heartbeat costs the client more than the script costs Redis.
_HEARTBEAT_FN = r"""
local WAITING = {}

-- The seats left in room `rid` (`rn` stored) as its heartbeat reports it: lapsed ones dropped,
-- then those of the players who arrived, exactly `pids` (a list, or cjson.null) or else as many
-- of the oldest as the count rose (`rise`); all of them when the game process `restarted`.
-- The memory store's `Seats.arrive` is the same rule.
local function arrive(rid, rn, now_s, pids, rise, restarted)
  if rn <= 0 then return 0 end
  local resk = reskey(rid)
  redis.call("ZREMRANGEBYSCORE", resk, "-inf", now_s)
  if restarted then
    redis.call("DEL", resk)
  elseif pids ~= cjson.null then
    for _, pid in ipairs(pids) do redis.call("ZREM", resk, pid) end
  elseif rise > 0 then
    redis.call("ZPOPMIN", resk, rise)
  end
  return redis.call("ZCARD", resk)
end

-- A room's metadata changed: drop the old one's filter fields (`m:<k>`) from hash `key`, and
-- queue the new ones (`metas`: k, v, ...) on the field list `w` of the HSET to come.
local function replace_meta(key, old_meta, metas, w)
  local dels = {}
  for k, _ in pairs(cjson.decode(old_meta)) do dels[#dels + 1] = "m:" .. k end
  if #dels > 0 then redis.call("HDEL", key, unpack(dels)) end
  for j = 1, #metas, 2 do
    w[#w + 1] = "m:" .. metas[j]
    w[#w + 1] = metas[j + 1]
  end
end

-- A heartbeat's list of the server's other rooms (issue #22): each entry [room, players, max,
-- locked, meta_json, [meta k, v, ...], [player ids]|null, options_json, status, reason].
-- New open rooms are added, listed ones updated (a pending one becomes open), failed or disposed
-- ones removed, and so are absent ones, except a pending room while one of its seats lives. A
-- delta (`delta`) lists only the rooms that changed since the relay's last accepted heartbeat:
-- absent ones stay as they are (the relay names those that ended), and the server's thousands of
-- unchanged rooms cost nothing (the global sweep still expires pending rooms whose seats lapsed).
local function reconcile(id, rooms, now_s, delta)
  local sv = redis.call("HMGET", rkey(id), "id", "name", "game", "owner", "node", "ws", "labels",
    "spub", "gen", "ready", "hb", "max")
  local sm = {id = sv[1], name = sv[2], game = sv[3], owner = sv[4], node = sv[5], ws = sv[6],
    labels = sv[7], spub = sv[8], gen = sv[9], ready = sv[10], hb = sv[11]}
  local listed = {}
  for _, e in ipairs(rooms) do
    local rid, pl, mx, lk, meta, metas, pids = e[1], e[2], e[3], e[4], e[5], e[6], e[7]
    local opt, st, reason = e[8], e[9], e[10]
    local xk = xkey(rid)
    local x = redis.call("HMGET", xk, "sid", "players", "max", "locked", "meta", "rn", "pend",
      "created", "opt")
    local known = x[1] == id
    if st ~= "open" then
      if known then
        if st == "failed" then
          if reason == "" then reason = "failed" end
          drop_extra(rid, id, "failed", reason, sm.ready, sm.game, sm.labels)
        else
          drop_extra(rid, id, "disposed", nil, sm.ready, sm.game, sm.labels)
        end
      end
    elseif known or (not x[1] and redis.call("EXISTS", rkey(rid)) == 0) then
      listed[rid] = true
      local new = not known
      local old_players, old_max, old_rn, old_meta = 0, tonumber(sv[12]), 0, "{}"
      local created, old_opt = now_s, opt
      if known then
        old_players, old_max, old_rn, old_meta = tonumber(x[2]), tonumber(x[3]), tonumber(x[6] or "0"), x[5]
        created, old_opt = x[8], x[9]
      else
        redis.call("SADD", xskey(id), rid)
      end
      local reserved = arrive(rid, old_rn, now_s, pids, pl - old_players, false)
      local maxp = mx
      if maxp == 0 then maxp = old_max end
      local changed = new or pl ~= old_players or maxp ~= old_max or lk ~= x[4] or meta ~= old_meta
        or reserved ~= old_rn or x[7] == "1"
      -- A room as it was is not written again: with thousands of rooms on a server, rewriting
      -- every one each second was most of the script's time (and Redis is blocked meanwhile).
      if changed then
        local w = {"id", rid, "sid", id, "players", pl, "max", maxp, "locked", lk, "rn", reserved,
          "pend", "0", "created", created, "opt", old_opt}
        if meta ~= old_meta then replace_meta(xk, old_meta, metas, w) end
        w[#w + 1] = "meta"
        w[#w + 1] = meta
        redis.call("HSET", xk, unpack(w))
      end
      if x[7] == "1" then
        redis.call("ZREM", P .. "pend", rid)
        if reserved > 0 then  -- open now: the sweep shows its seats lapsing (see SWEEP)
          local last = redis.call("ZRANGE", reskey(rid), -1, -1, "WITHSCORES")
          redis.call("ZADD", P .. "resv", last[2], rid)
        end
      end
      if sm.ready == "1" and changed then
        local kind = "updated"
        if new then kind = "added" end
        publish_extra(kind, rid, reserved, sm, {players = pl, max = maxp, locked = lk, meta = meta,
          opt = old_opt, created = created, pend = "0"})
      end
    end
  end
  if delta then return end
  for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
    if not listed[rid] then
      local x = redis.call("HMGET", xkey(rid), "pend", "rn")
      if x[1] ~= "1" then
        drop_extra(rid, id, "disposed", nil, sm.ready, sm.game, sm.labels)
      elseif live_reserved(rid, x[2], now_s) == 0 then
        drop_extra(rid, id, "expired", nil, sm.ready, sm.game, sm.labels)
      end
    end
  end
end

local function heartbeat(node, now_s, exp, hb)
  local id, gen_arg, players, max_arg = hb[1], hb[2], hb[3], hb[4]
  local locked, ready, meta, state, metas, pids = hb[5], hb[6], hb[7], hb[8], hb[9], hb[10]
  local inst, fst, freason, maxr, rooms, delta = hb[11], hb[12], hb[13], hb[14], hb[15], hb[16]
  if inst == cjson.null then inst = nil end
  if fst == nil then fst = "open" end
  if maxr == cjson.null then maxr = nil end
  if WAITING[id] then return "meta" end
  local now = tonumber(now_s)
  local rk = rkey(id)
  local f = redis.call("HMGET", rk, "node", "gen", "exp", "ready", "players", "max", "locked",
    "meta", "hb", "rn", "spub", "inst", "gone", "created")
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

  -- Seats: drop expired reservations, then release the ones whose players arrived; all of them,
  -- in every room of the server, when the game process died ("") or another one runs
  -- (store.restarted is the same rule).
  local old_inst = f[12] or ""
  local restarted = inst ~= nil and (inst == "" or (old_inst ~= "" and inst ~= old_inst))
  if restarted then
    for _, rid in ipairs(redis.call("SMEMBERS", xskey(id))) do
      redis.call("DEL", reskey(rid))
      redis.call("HSET", xkey(rid), "rn", "0")
    end
  end
  local old_rn = tonumber(f[10] or "0")
  local reserved = arrive(id, old_rn, now_s, pids, players - old_players, restarted)

  -- One HSET of what changed, besides the times and the state (which is not read back: it
  -- may be large, and writing it costs less than comparing it).
  local w = {"hb", now_s, "exp", exp, "state", state}
  local changed = false
  local function put(name, value)
    w[#w + 1] = name
    w[#w + 1] = value
  end
  local gone = "0"
  if fst ~= "open" then gone = "1" end
  local old_gone = f[13] or "0"
  if players ~= old_players then put("players", players); changed = true end
  if maxp ~= old_max then put("max", maxp); changed = true end
  if locked ~= f[7] then put("locked", locked); changed = true end
  if ready ~= f[4] then put("ready", ready) end
  if inst ~= nil and inst ~= old_inst then put("inst", inst) end
  if reserved ~= old_rn then put("rn", reserved); changed = true end
  if gone ~= old_gone then put("gone", gone); changed = true end
  if maxr ~= nil then put("maxr", maxr) end
  if meta ~= f[8] then
    replace_meta(rk, f[8], metas, w)
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
      publish(room_event(kind, f[11], id, f[14], f[2], players, maxp, reserved, locked, ready, meta,
        now_s, "{}", first_status(gone)))
    else  -- registered before servers kept `spub`
      publish_room(kind, id, reserved, redis.call("HGETALL", rk))
    end
  elseif was and not is then
    local g = redis.call("HMGET", rk, "game", "labels")
    publish_removed(id, "not-ready", g[1], g[2])
  end
  if is and fst == "failed" and old_gone ~= "1" then
    local g = redis.call("HMGET", rk, "game", "labels")
    publish_failed(id, freason, g[1], g[2], id)
  end
  if rooms ~= nil and rooms ~= cjson.null then reconcile(id, rooms, now_s, delta == "1") end

  local pl = math.min(players, maxp)
  local shown = math.min(reserved, maxp - pl)
  return "ok," .. f[2] .. "," .. ready .. "," .. shown .. "," .. (maxp - pl - shown) .. "," .. lag
end
"""

# ARGV: P, node, now, exp, heartbeat JSON (see _HEARTBEAT_FN). Reply: its reply string.
HEARTBEAT = PRELUDE + _HEARTBEAT_FN + r"""
return heartbeat(ARGV[2], ARGV[3], ARGV[4], cjson.decode(ARGV[5]))
"""

# ARGV: P, node, now, exp, JSON array of heartbeats. Reply: their replies joined by ";".
# One script call for a node's whole batch; each heartbeat is checked and applied on its own.
HEARTBEAT_MANY = PRELUDE + _HEARTBEAT_FN + r"""
local replies = {}
BATCH = {}
for i, hb in ipairs(cjson.decode(ARGV[5])) do
  replies[i] = heartbeat(ARGV[2], ARGV[3], ARGV[4], hb)
end
flush()
return table.concat(replies, ";")
"""
