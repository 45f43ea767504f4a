'use strict';
// Seats in the main thread: who sits in a room (connected or dropped), leaving, dropping and the
// drop buffers of frames kept for a dropped player until it reconnects (protocol v1).

const { rt, CLOSE_NORMAL, CLOSE_TOO_BIG } = require('./runtime-state');
const router = require('./room-router');

const MAX_DROP_FRAMES = 256; // frames kept for a dropped player (protocol v1)
const MAX_DROP_BYTES = 1024 * 1024;
const MAX_GONE = 1000; // per room: players whose window ended, so their last token gets 410, not 401

/** The `room=` field of a log line: absent for the first room (its lines read as before rooms). */
function roomField(rec) {
  return rec.first ? undefined : rec.id;
}

/** Seats taken: connected and dropped players (a dropped player's seat is kept for it). */
function seated(rec) {
  return rec.conns.size + rec.dropped.size;
}

function occupancy(rec) {
  return `${seated(rec)}/${rt.maxPlayers}`;
}

/** Take a player out of its room; onLeave runs (in the room's host) unless `silent` or shutting down. */
function removePlayer(conn, reason, code, { silent = false } = {}) {
  const rec = conn.room;
  if (rec.conns.get(conn.id) !== conn) return;
  rec.conns.delete(conn.id);
  rememberGone(rec, conn.id, conn.nonce);
  rt.logEvent('leave', { room: roomField(rec), player: conn.id, reason, code, players: occupancy(rec) });
  if (!silent && router.isLive(rec)) rec.link.post({ t: 'leave', seq: rec.seq, pid: conn.id, silent: rt.shuttingDown });
  router.checkEmpty(rec);
}

/** A player's last token stays known for a while after it left, so it is refused as 410, not 401. */
function rememberGone(rec, pid, nonce) {
  if (!nonce) return;
  rec.gone.delete(pid);
  rec.gone.set(pid, nonce);
  if (rec.gone.size > MAX_GONE) rec.gone.delete(rec.gone.keys().next().value);
}

/** Why a connection that was not closed on purpose ended, as onDrop's `reason`. */
function dropReasonOf(conn, code) {
  if (conn.dropReason) return conn.dropReason;
  if (code === 1006 || code === undefined) return 'connection_lost';
  if (code === 1001) return 'going_away';
  return `closed_${code}`;
}

/** A joined player's socket closed: a leave when on purpose (1000, `$leave`, kicked), else a drop. */
function connectionEnded(conn, code) {
  const rec = conn.room;
  if (rec.conns.get(conn.id) !== conn) return;
  const purposeful = code === CLOSE_NORMAL || code === CLOSE_TOO_BIG || conn.leaving || conn.kicked;
  if (purposeful || rt.reconnectSeconds === 0 || rt.shuttingDown || !router.isLive(rec) || !conn.nonce) {
    removePlayer(conn, conn.leaving ? 'left' : 'closed', code);
    return;
  }
  rec.conns.delete(conn.id);
  dropPlayer(rec, conn.id, newDrop(conn.nonce, conn.name), dropReasonOf(conn, code), code);
}

/** A dropped player's record (rooms.dropped): no frames kept yet, no reconnection under way. */
function newDrop(nonce, name) {
  return { nonce, name, frames: [], bytes: 0, lost: false, resuming: false, expired: false, timer: null };
}

function dropPlayer(rec, pid, drop, reason, code) {
  keepSeat(rec, pid, drop, rt.reconnectSeconds);
  rt.logEvent('drop', { room: roomField(rec), player: pid, reason, code, window: rt.reconnectSeconds, players: occupancy(rec) });
  rec.link.post({ t: 'drop', seq: rec.seq, pid, reason });
}

/** The player's seat is kept for `seconds` (its host knows it is dropped). */
function keepSeat(rec, pid, drop, seconds) {
  rec.dropped.set(pid, drop);
  drop.timer = setTimeout(() => expireDrop(rec, pid, drop), seconds * 1000);
  drop.timer.unref();
}

/** The one reconnection nonce still good for a player of the room (durable snapshots keep it). */
function nonceOf(rec, pid) {
  return rec.conns.get(pid)?.nonce ?? rec.dropped.get(pid)?.nonce ?? null;
}

/** The window ended: the seat is freed and onLeave runs. */
function expireDrop(rec, pid, drop) {
  if (rec.dropped.get(pid) !== drop) return;
  if (drop.resuming) {
    drop.expired = true; // the reconnection under way decides
    return;
  }
  clearTimeout(drop.timer);
  rec.dropped.delete(pid);
  rememberGone(rec, pid, drop.nonce);
  rt.logEvent('leave', { room: roomField(rec), player: pid, reason: 'reconnect_expired', players: occupancy(rec) });
  if (router.isLive(rec)) rec.link.post({ t: 'leave', seq: rec.seq, pid, silent: rt.shuttingDown });
  router.checkEmpty(rec);
}

/** A frame for a dropped player: kept in order, within 256 frames / 1 MiB, else all are lost. */
function keepFrame(drop, text) {
  if (drop.lost) return;
  drop.bytes += Buffer.byteLength(text);
  drop.frames.push(text);
  if (drop.frames.length > MAX_DROP_FRAMES || drop.bytes > MAX_DROP_BYTES) {
    drop.lost = true;
    drop.frames = [];
    drop.bytes = 0;
  }
}

/** A reconnection that did not get to `welcome`: the player is dropped again, its old token still good. */
function resumeFailed(rec, pid, drop, hostKnows) {
  drop.resuming = false;
  if (rec.dropped.get(pid) !== drop) return;
  if (hostKnows && router.isLive(rec)) rec.link.post({ t: 'drop', seq: rec.seq, pid, reason: 'connection_lost' });
  if (drop.expired) expireDrop(rec, pid, drop);
}

Object.assign(module.exports, {
  roomField, seated, occupancy, removePlayer, connectionEnded, dropPlayer, keepSeat, nonceOf, keepFrame, resumeFailed,
  newDrop,
});
