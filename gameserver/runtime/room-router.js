'use strict';
// The main thread's side of the rooms: their records, creating and ending them, the messages to and
// from their hosts (room-host.js, in this thread or a room worker), state queries, and durable rooms
// restored from their snapshots.

const { WebSocket } = require('ws');

const { cleanName } = require('./room-core');
const { fmtValue } = require('./log');
const sharedDeflate = require('./shared-deflate');
const { rt, CLOSE_ROOM_FAILED, CLOSE_ROOM_RESET } = require('./runtime-state');
const players = require('./players');
const connections = require('./connections');

const ENDED_ROOM_KEEP_MS = 60_000; // a failed or disposed room stays in /status this long
const QUERY_TIMEOUT_MS = 1000;
const RESTORE_TIMEOUT_MS = 5000; // a room's onRestore (and its host) answers within this
const RESTORE_WINDOW_MIN_S = 20; // restored players may come back for at least this long

let roomSeq = 0;
const queries = new Map();
let querySeq = 0;
const shutdownWaiters = new Set();

/** Ask a host to create a room (it runs onCreate); `onCreated` hears the answer. */
function createRoom(id, options, first) {
  const rec = newRoomRec(id, options, first);
  rec.link.post({ t: 'create', seq: rec.seq, id, options, first });
  return rec;
}

/** A room's record, live, on the least busy host; its host has not heard of it yet. */
function newRoomRec(id, options, first) {
  const link = rt.pool ? rt.pool.pick() : rt.threadLink;
  roomSeq += 1;
  const rec = {
    id, seq: roomSeq, first, link, options, status: 'open', createdAt: Date.now() / 1000,
    conns: new Map(), upgrading: new Set(), locked: false, metadata: {}, emptyTimer: null,
    creating: true, onCreated: null, dropped: new Map(), gone: new Map(),
    // durable rooms (durable.js): the host's last body, this room's snapshot seq and text
    durable: rt.durableModule || options?.durable === true, hostSnap: null, snapSeq: 0, snapText: null,
    snapCursor: 0, snapError: null, onRestored: null,
  };
  rt.rooms.set(id, rec);
  rt.roomsBySeq.set(rec.seq, rec);
  rt.liveRooms.add(rec);
  link.rooms.add(rec.seq);
  return rec;
}

function isLive(rec) {
  return rt.liveRooms.has(rec);
}

/** The room ended: out of the live set, its players closed, its record kept for a minute. */
function endRoom(rec, status, reason, code, closeReason) {
  if (!isLive(rec)) return;
  rt.liveRooms.delete(rec);
  rec.link.rooms.delete(rec.seq);
  clearTimeout(rec.emptyTimer);
  rec.status = status;
  rec.reason = reason;
  rec.creating = false;
  rt.book.ended(rec);
  rec.onRestored?.({ ok: false, error: reason });
  const event = status === 'failed' ? 'room_failed' : code === CLOSE_ROOM_RESET ? 'room_reset' : 'room_disposed';
  rt.logEvent(event, { room: rec.id, reason, code });
  for (const conn of Array.from(rec.conns.values())) {
    players.removePlayer(conn, event === 'room_disposed' ? 'disposed' : event.slice(5), code, { silent: true });
    if (code && conn.ws.readyState === WebSocket.OPEN) conn.ws.close(code, closeReason);
  }
  for (const drop of rec.dropped.values()) clearTimeout(drop.timer);
  rec.dropped.clear();
  setTimeout(() => {
    if (rt.rooms.get(rec.id) === rec) rt.rooms.delete(rec.id);
    rt.roomsBySeq.delete(rec.seq);
  }, ENDED_ROOM_KEEP_MS).unref();
}

/** A room other than the first is disposed once empty (after emptyRoomSeconds). */
function checkEmpty(rec) {
  if (rec.first || !isLive(rec) || rt.shuttingDown || rec.emptyTimer !== null) return;
  if (players.seated(rec) + rec.upgrading.size > 0) return;
  const dispose = () => {
    rec.emptyTimer = null;
    if (!isLive(rec) || players.seated(rec) + rec.upgrading.size > 0) return;
    endRoom(rec, 'disposed', 'empty');
    rec.link.post({ t: 'dispose', seq: rec.seq });
  };
  if (rt.emptyRoomSeconds > 0) {
    rec.emptyTimer = setTimeout(dispose, rt.emptyRoomSeconds * 1000);
    rec.emptyTimer.unref();
  } else {
    dispose();
  }
}

/** A room worker ended: the room it names fails (4410), the worker's other rooms reset (4503). */
function onWorkerEnded(link, culpritSeq, reason) {
  const culprit = rt.roomsBySeq.get(culpritSeq);
  rt.logEvent('room_worker_exit', { worker: link.index, room: culprit?.id, reason });
  for (const rec of Array.from(rt.liveRooms)) {
    if (rec.link !== link) continue;
    if (rec === culprit) {
      endRoom(rec, 'failed', reason, CLOSE_ROOM_FAILED, 'room failed');
    } else {
      const why = culprit ? `its room worker ended because room ${culprit.id} failed` : reason;
      endRoom(rec, 'disposed', `reset: ${why}`, CLOSE_ROOM_RESET, 'room reset');
    }
    rec.onCreated?.(false, { error: reason });
  }
}

/** The room's state as JSON text (from its host), or null with the reason. */
function queryState(rec) {
  if (!isLive(rec) || rec.creating) {
    return Promise.resolve({ text: null, truncated: false, error: isLive(rec) ? 'the room is being created' : null });
  }
  querySeq += 1;
  const qid = querySeq;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      queries.delete(qid);
      resolve({ text: null, truncated: false, error: 'the room did not answer in time' });
    }, QUERY_TIMEOUT_MS);
    queries.set(qid, (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    rec.link.post({ t: 'query', seq: rec.seq, qid });
  });
}

/** What a room host tells the main thread (room-host.js lists the messages). */
function onHostMessage(msg, link) {
  if (msg.t === 'state') {
    queries.get(msg.qid)?.(msg);
    queries.delete(msg.qid);
    return;
  }
  if (msg.t === 'shutdown_done') {
    for (const done of shutdownWaiters) done(link);
    return;
  }
  const rec = rt.roomsBySeq.get(msg.seq);
  if (!rec || rec.link !== link) return;
  switch (msg.t) {
    case 'out':
      if (!isLive(rec)) return;
      let shared = null;
      if (msg.pids.length > 1) shared = new sharedDeflate.SharedFrame(msg.text);
      for (const pid of msg.pids) {
        const conn = rec.conns.get(pid);
        if (conn && conn.joined) {
          connections.sendText(conn, msg.text, shared);
        } else {
          const drop = rec.dropped.get(pid);
          if (drop) players.keepFrame(drop, msg.text);
        }
      }
      break;
    case 'joined':
      connections.onJoined(rec, msg);
      break;
    case 'meta':
      rec.locked = msg.locked;
      rec.metadata = msg.metadata;
      break;
    case 'snap':
      if (!isLive(rec)) return;
      if (msg.error) {
        rec.snapError = msg.error;
        rt.log.limited('snapshot failed', `snapshot failed room=${fmtValue(rec.id)}`, msg.error);
        return;
      }
      rec.durable = true;
      rt.book.hostBody(rec, msg.body, msg.ticks);
      rt.book.compose(rec, (pid) => players.nonceOf(rec, pid));
      break;
    case 'restored':
      rec.creating = false;
      rec.onRestored?.(msg);
      rec.onRestored = null;
      break;
    case 'created':
      rec.creating = false;
      if (!msg.ok && isLive(rec) && !rec.first) {
        rt.log.error(`hook onCreate failed room=${fmtValue(rec.id)}`, msg.stack);
        endRoom(rec, 'failed', `onCreate failed: ${msg.error}`, CLOSE_ROOM_FAILED, 'room failed');
      } else if (msg.ok && !rec.first) {
        rt.logEvent('room_created', { room: rec.id, options: JSON.stringify(rec.options) });
      }
      rec.onCreated?.(msg.ok, msg);
      rec.onCreated = null;
      break;
    default:
      break;
  }
}

/** Every host runs onDispose for its rooms but those whose seq is in `keep`; resolves when all answered. */
function disposeAll(keep = []) {
  const links = rt.pool ? rt.pool.links.filter((link) => link.alive) : [rt.threadLink].filter(Boolean);
  if (!links.length) return Promise.resolve();
  const waiting = new Set(links);
  return new Promise((resolve) => {
    const done = (link) => {
      waiting.delete(link);
      if (waiting.size === 0) {
        shutdownWaiters.delete(done);
        resolve();
      }
    };
    shutdownWaiters.add(done);
    for (const link of links) link.post({ t: 'shutdown', keep });
  });
}

/**
 * One room back from its snapshot: into the first room when the snapshot is of it (created at
 * start, still empty), else a new room. Its players are dropped with their reconnection nonces:
 * each may come back once with the token it holds, within the reconnection window (restarted now).
 * `fromVersion` (a rolling update): the game version the snapshot comes from; onMigrate runs.
 */
function restoreRoom(snap, from, fromVersion = null) {
  const id = snap.room_id;
  let rec = rt.rooms.get(id);
  if (rec && (!isLive(rec) || !rec.first || players.seated(rec) + rec.upgrading.size > 0 || rec.creating)) {
    return Promise.resolve({ room_id: id, ok: false, reason: isLive(rec) ? 'exists' : 'ended' });
  }
  if (!rec && rt.liveRooms.size >= rt.maxRooms) return Promise.resolve({ room_id: id, ok: false, reason: 'server-full' });
  const options = snap.options && typeof snap.options === 'object' ? snap.options : {};
  if (!rec) {
    rec = newRoomRec(id, options, false);
    if (typeof snap.created_at === 'number') rec.createdAt = snap.created_at;
  }
  rec.durable = true;
  rec.snapSeq = Math.max(rec.snapSeq, snap.seq);
  rec.metadata = snap.body.metadata && typeof snap.body.metadata === 'object' ? snap.body.metadata : {};
  rec.locked = Boolean(snap.body.locked);
  rec.creating = true;
  const takenAt = typeof snap.taken_at === 'number' ? snap.taken_at : Date.now() / 1000;
  const info = { ageMs: Math.max(0, Math.round(Date.now() - takenAt * 1000)), seq: snap.seq, from, takenAt };
  const window = Math.max(rt.reconnectSeconds, RESTORE_WINDOW_MIN_S);
  const nonces = snap.nonces ?? {};
  const saved = (Array.isArray(snap.body.players) ? snap.body.players : []).filter((p) => p && typeof p.id === 'string');
  for (const p of saved) {
    const nonce = typeof nonces[p.id] === 'string' ? nonces[p.id] : null;
    players.keepSeat(rec, p.id, players.newDrop(nonce, cleanName(p.name, p.id)), window);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => settle({ ok: false, error: 'the room did not answer in time' }), RESTORE_TIMEOUT_MS);
    function settle(msg) {
      clearTimeout(timer);
      rec.onRestored = null;
      if (!msg.ok) {
        for (const p of saved) {
          const drop = rec.dropped.get(p.id);
          if (drop) clearTimeout(drop.timer);
          rec.dropped.delete(p.id);
        }
        rt.logEvent('restore_failed', { room: rec.id, reason: msg.error, from_version: fromVersion ?? undefined });
        // A room its new version refused stays on the old one: its stored snapshot is not forgotten.
        if (fromVersion !== null) rec.durable = false;
        if (!rec.first) {
          endRoom(rec, 'failed', `restore failed: ${msg.error}`);
          // Nor is it gone: a player who comes here meanwhile is told the room is not on this server
          // (404: the SDK asks the matchmaker where it is), not that it has ended (410: it gives up).
          if (fromVersion !== null) rt.rooms.delete(id);
        }
        resolve({ room_id: id, ok: false, reason: msg.error });
        return;
      }
      rt.logEvent('room_restored', { room: rec.id, seq: snap.seq, age_ms: info.ageMs, players: players.occupancy(rec), from,
        from_version: fromVersion ?? undefined, hook_error: msg.error ?? undefined });
      resolve({ room_id: id, ok: true, seq: snap.seq, age_ms: info.ageMs, players: saved.map((p) => p.id),
        hook_error: msg.error ?? null });
    }
    rec.onRestored = settle;
    rec.link.post({ t: 'restore', seq: rec.seq, id, options, first: rec.first, body: snap.body,
      ticks: snap.ticks, info: { ageMs: info.ageMs, seq: info.seq, from, takenAt, fromVersion } });
  });
}

Object.assign(module.exports, {
  createRoom, isLive, endRoom, checkEmpty, onWorkerEnded, queryState, onHostMessage, disposeAll, restoreRoom,
});
