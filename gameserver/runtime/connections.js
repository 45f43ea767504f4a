'use strict';
// A player's WebSocket connection in the main thread: frames out (one write of a shared frame per
// socket, a send-buffer cap) and in (rate limit, `$leave`, the rest to the room's host), the
// `welcome` from the host, and the keepalive pings of every connection.

const { performance } = require('node:perf_hooks');
const { WebSocket } = require('ws');

const { errorFrame, MAX_QUEUED_FRAMES } = require('./room-core');
const sharedDeflate = require('./shared-deflate');
const { rt, CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, CLOSE_REPLACED, CLOSE_ROOM_FAILED, CLOSE_ROOM_RESET } = require('./runtime-state');
const players = require('./players');
const router = require('./room-router');

const MAX_SEND_BUFFER_BYTES = 8 * 1024 * 1024;
const PING_INTERVAL_MS = 20_000;
const ABUSE_TERMINATE_MS = 1000; // a flooder that does not answer the close frame is cut off

let connSeq = 0;
let pingTimer = null;
let rateLimitedFrame = null;

/** Inbound frames of one connection: `rate` tokens per second refill a bucket of `burst`. */
class TokenBucket {
  constructor(rate, burst) {
    this.perMs = rate / 1000;
    this.burst = burst;
    this.tokens = burst;
    this.last = performance.now();
  }

  take() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Write one encoded frame to the socket, unless it is closing or its client stopped reading.
 * `shared`: a broadcast's SharedFrame, framed (and, with permessage-deflate, compressed) once for
 * all its players, so each socket costs one write of the same buffer.
 */
function sendText(conn, text, shared = null) {
  const ws = conn.ws;
  if (ws.readyState !== WebSocket.OPEN) return false;
  if (ws.bufferedAmount > MAX_SEND_BUFFER_BYTES) {
    // A client that stops reading must not make the room hold its frames forever.
    rt.logEvent('drop', { room: players.roomField(conn.room), player: conn.id, reason: 'send_buffer_full' });
    conn.dropReason = 'send_buffer_full';
    ws.terminate();
    return false;
  }
  if (shared) {
    if (rt.directFrames) sharedDeflate.sendShared(ws, shared);
    else ws.send(shared.text);
  } else if (rt.cfg.wsDeflate) sharedDeflate.sendShared(ws, new sharedDeflate.SharedFrame(text));
  else ws.send(text);
  rt.stats.messagesOut += 1;
  return true;
}

/** A frame of the runtime's own (rate limits, bad frames); before `welcome` it waits. */
function deliver(conn, text) {
  if (!conn.joined) {
    if (conn.outbox && conn.outbox.length < MAX_QUEUED_FRAMES) conn.outbox.push(text);
    return;
  }
  sendText(conn, text);
}

/** A player's new connection in its room, listened to; not joined until its `welcome`. */
function openConn(ws, rec, playerId, name) {
  connSeq += 1;
  const conn = { ws, id: playerId, name, room: rec, cid: connSeq, joined: false, closed: false, alive: true,
    outbox: [], inbox: [],
    bucket: rt.cfg.messageRate > 0 ? new TokenBucket(rt.cfg.messageRate, rt.cfg.messageBurst) : null,
    drops: 0, dropWindowStart: 0, kicked: false, leaving: false, dropReason: null, closeCode: undefined,
    nonce: null, pendingNonce: null, resuming: null };
  rec.conns.set(playerId, conn);
  ws.on('message', (raw, isBinary) => onFrame(conn, raw, isBinary));
  ws.on('pong', () => { conn.alive = true; });
  ws.on('error', (err) => {
    rt.logEvent('ws_error', { room: players.roomField(rec), player: playerId, error: err.code || err.message });
  });
  ws.on('close', (code) => {
    conn.closed = true;
    conn.closeCode = code;
    if (conn.joined) players.connectionEnded(conn, code);
  });
  return conn;
}

function onConnection(ws, rec, playerId, name, enc) {
  rec.upgrading.delete(playerId);
  if (!router.isLive(rec)) {
    // The room ended during the handshake.
    ws.close(rec.status === 'failed' ? CLOSE_ROOM_FAILED : CLOSE_ROOM_RESET, 'room ended');
    return;
  }
  const previous = rec.conns.get(playerId);
  if (previous) {
    // The same seat holder connected again (page reload): the new connection wins.
    players.removePlayer(previous, 'replaced', CLOSE_REPLACED);
    previous.ws.close(4000, 'replaced by a new connection');
  }
  const conn = openConn(ws, rec, playerId, name);
  const minted = rt.reconnectSeconds > 0 ? rt.rejoins.mintReconnect(rec.id, playerId) : null;
  conn.pendingNonce = minted?.nonce ?? null;
  // A throwing onJoin is how a game refuses a player: logged like any hook failure, then 4003.
  rec.link.post({ t: 'join', seq: rec.seq, pid: playerId, name, cid: conn.cid, welcome: { reconnect: minted?.token, enc } });
}

/** The room's host ran onJoin: welcome (and what onJoin sent) or the refusal. */
function onJoined(rec, msg) {
  const conn = rec.conns.get(msg.pid);
  if (!conn || conn.cid !== msg.cid) return; // replaced or gone while onJoin was running
  const ws = conn.ws;
  if (!msg.ok) {
    conn.outbox = null;
    rec.conns.delete(msg.pid);
    rt.logEvent('refuse', { room: players.roomField(rec), player: msg.pid, reason: 'onJoin', code: 4003, error: msg.error });
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(errorFrame('join_refused', msg.error, 'onJoin'));
      rt.stats.messagesOut += 1;
      ws.close(4003, 'join refused');
    }
    router.checkEmpty(rec);
    return;
  }
  const drop = conn.resuming;
  conn.resuming = null;
  if (drop && (conn.closed || rt.shuttingDown)) {
    // The new socket died before its welcome: the client has no new token, its old one stays good.
    rec.conns.delete(conn.id);
    players.resumeFailed(rec, conn.id, drop, true);
    return;
  }
  conn.joined = true;
  if (conn.closed || rt.shuttingDown) {
    players.removePlayer(conn, 'closed_during_join', ws.readyState === WebSocket.OPEN ? 1001 : undefined);
    if (ws.readyState === WebSocket.OPEN) ws.close(1001, 'server shutting down');
    return;
  }
  conn.nonce = conn.pendingNonce;
  // The player's newest token is the one that must survive a crash: the snapshot names it.
  if (rec.hostSnap) rt.book.compose(rec, (pid) => players.nonceOf(rec, pid));
  const queued = conn.outbox;
  conn.outbox = null;
  for (const text of msg.frames) sendText(conn, text);
  if (drop) {
    clearTimeout(drop.timer);
    if (rec.dropped.get(conn.id) === drop) rec.dropped.delete(conn.id);
    // Frames sent during the drop, in order; when too many were lost: a full `$state` came with
    // the welcome (state sync), else the client is told.
    if (drop.lost && !rt.stateSync) sendText(conn, errorFrame('frames_lost', 'frames sent while you were away were lost: more than 256 frames or 1 MiB'));
    for (const text of drop.frames) sendText(conn, text);
  }
  for (const text of queued) sendText(conn, text);
  rt.logEvent(drop ? 'reconnect' : 'join', { room: players.roomField(rec), player: conn.id,
    name: conn.name === conn.id || drop ? undefined : conn.name, frames: drop ? drop.frames.length : undefined,
    players: players.occupancy(rec) });
  const inbox = conn.inbox;
  conn.inbox = null;
  for (const [raw, isBinary] of inbox) handleFrame(conn, raw, isBinary);
}

function onFrame(conn, raw, isBinary) {
  rt.stats.messagesIn += 1;
  if (conn.kicked) return;
  if (conn.bucket !== null && !conn.bucket.take()) {
    dropFrame(conn);
    return;
  }
  if (!conn.joined) {
    if (conn.inbox && conn.inbox.length < MAX_QUEUED_FRAMES) conn.inbox.push([raw, isBinary]);
    return;
  }
  handleFrame(conn, raw, isBinary);
}

/**
 * An over-limit frame: dropped, answered with a `rate_limited` error; more than dropLimit of them
 * within dropWindowMs is sustained abuse, and the connection is closed with 1008.
 */
function dropFrame(conn) {
  rt.stats.messagesDropped += 1;
  const now = performance.now();
  if (now - conn.dropWindowStart >= rt.cfg.dropWindowMs) {
    conn.dropWindowStart = now;
    conn.drops = 0;
  }
  conn.drops += 1;
  if (conn.drops <= rt.cfg.dropLimit) {
    rateLimitedFrame ??= errorFrame('rate_limited', `too many frames: at most ${rt.cfg.messageRate} per second (bursts of ${rt.cfg.messageBurst}); this one was dropped`);
    deliver(conn, rateLimitedFrame);
    return;
  }
  conn.kicked = true;
  conn.inbox = conn.inbox && [];
  rt.logEvent('drop', { room: players.roomField(conn.room), player: conn.id, reason: 'rate_limited', code: CLOSE_POLICY_VIOLATION,
    dropped: conn.drops - 1 });
  const ws = conn.ws;
  if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_POLICY_VIOLATION, 'message rate limit exceeded');
  // A flooder need not answer the close frame; the room does not wait the ws default of 30 s.
  setTimeout(() => ws.terminate(), ABUSE_TERMINATE_MS).unref();
}

function isLeaveFrame(text) {
  try {
    return JSON.parse(text)?.type === '$leave';
  } catch {
    return false;
  }
}

function handleFrame(conn, raw, isBinary) {
  const rec = conn.room;
  if (conn.kicked || rec.conns.get(conn.id) !== conn) return;
  if (isBinary) {
    deliver(conn, errorFrame('bad_frame', 'binary frames are not supported: send JSON text'));
    return;
  }
  const text = raw.toString('utf8');
  if (text.length <= 64 && text.includes('"$leave"') && isLeaveFrame(text)) {
    // Leaving on purpose: onLeave at once, no reconnection window.
    conn.leaving = true;
    players.removePlayer(conn, 'left', CLOSE_NORMAL);
    conn.ws.close(CLOSE_NORMAL, 'left');
    return;
  }
  // The room's host checks the JSON (room-core.js) and runs onMessage.
  rec.link.post({ t: 'frame', seq: rec.seq, pid: conn.id, text });
}

/** One timer for every connection of every room: an idle room costs no timer of its own. */
function startKeepalive() {
  pingTimer = setInterval(() => {
    for (const rec of rt.liveRooms) {
      for (const conn of rec.conns.values()) {
        if (!conn.alive) {
          rt.logEvent('drop', { room: players.roomField(rec), player: conn.id, reason: 'no_pong' });
          conn.dropReason = 'no_pong';
          conn.ws.terminate();
          continue;
        }
        conn.alive = false;
        if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
      }
    }
  }, PING_INTERVAL_MS);
  pingTimer.unref();
}

function stopKeepalive() {
  clearInterval(pingTimer);
}

Object.assign(module.exports, {
  sendText, deliver, openConn, onConnection, onJoined, startKeepalive, stopKeepalive,
});
