'use strict';
// Game Server Factory runtime: hosts the rooms of one untrusted game module behind Express + ws.
//
// The game module contract is DESIGN.md §4; rooms are docs/writing-a-game.md "Rooms". The main
// thread owns HTTP (http-routes.js), WebSockets (this file: upgrades and their seat and reconnection
// checks; connections.js, players.js), seat tokens and routing (room-router.js); rooms run in
// room-host.js, either in the main thread (a one-room server: exactly the runtime before rooms) or in
// a small pool of room workers (room-pool.js) when the server may host more than one room. Start-up
// and shutdown are lifecycle.js; the state the parts share is runtime-state.js. Environment
// (read by config.js):
//   GSF_GAME_FILE          the game module (.js/.cjs through require, .mjs through import())
//   PORT                   listen port (default 8080; 0: a free one, logged); GSF_BIND_HOST (default 0.0.0.0)
//   GSF_LISTEN_FD          a listening socket the parent bound and passed (gsf dev: the port survives reloads)
//   GSF_SERVER_ID          this server's id; seat tokens must name it; also the id of its first room
//   GSF_MAX_PLAYERS        overrides the module's maxPlayers when set
//   GSF_MAX_ROOMS          rooms this server may host (overrides the module's maxRooms; default 1)
//   GSF_ROOM_WORKERS       room workers when more than one room is allowed (default 2; 0 = rooms run
//                          in the main thread, without containment)
//   GSF_ROOM_WORKER_MEMORY_MB  heap (old generation) cap of each room worker (default: the container's
//                              memory / (workers + 2), 16..128; 128 outside a container)
//   GSF_ROOM_HOOK_TIMEOUT_MS   a room's code running longer than this ends its worker (default 1000)
//   GSF_SECRETS_STDIN      "1": read the secrets below as one JSON object
//                          {"seat_secret": ..., "agent_key": ...} from stdin (until EOF) before
//                          loading the game; how the platform hands them over, so they are never
//                          in the environment (/proc/<pid>/environ) at all
//   GSF_SEAT_SECRET        HMAC key of seat tokens (used as UTF-8 text); local runs only
//   GSF_AGENT_KEY          bearer key of GET /status and GET /rooms/{id}; local runs only
//   GSF_REQUIRE_TOKEN      "0" accepts WebSocket connections without a seat token (local dev)
//   GSF_MAX_MESSAGE_BYTES  largest inbound frame (default 65536)
//   GSF_WATCHDOG_MS        exit when the main event loop is blocked this long (default 5000; 0 = off)
//   GSF_LOG_STREAM         "stdout": write failures to stdout as well, so that one pipe keeps every
//                          line in the order it was written (the platform sets it: Docker reads
//                          stdout and stderr apart and can record lines of the two out of order)
//   GSF_SERVER_MESSAGE_RATE     inbound frames per second per connection (token bucket refill;
//                               default 100; 0 = no limit); an over-limit frame is dropped and
//                               answered with an `error` frame of code `rate_limited`
//   GSF_SERVER_MESSAGE_BURST    frames one connection may send in a burst (bucket size; default 200)
//   GSF_SERVER_MESSAGE_DROP_LIMIT  dropped frames within GSF_SERVER_MESSAGE_DROP_WINDOW_MS
//                               (default 200 within 10000) that close the connection with 1008
//   GSF_SNAPSHOT_MAX_BYTES      largest snapshot of a durable room (default 262144; room-host.js)
//
// Exit codes: 0 after SIGTERM/SIGINT, 3 when the game module cannot be loaded or created,
// 2 on a bad configuration, 1 when the port cannot be bound, 4 when the watchdog finds the
// event loop blocked (an endless synchronous loop in game code).

const fs = require('node:fs');
const http = require('node:http');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');

const { WebSocketServer, WebSocket } = require('ws');

const { SeatVerifier } = require('./seat-token');
const { startWatchdog } = require('./watchdog');
const { scrubEnviron } = require('./scrub-environ');
const { createLogger } = require('./log');
const { cleanName, DEFAULT_MAX_PLAYERS, ENCODINGS, PROTOCOL_VERSION } = require('./room-core');
const { SnapshotBook } = require('./durable');
const sharedDeflate = require('./shared-deflate');
const { readConfig } = require('./config');
const { rt, CLOSE_REPLACED, CLOSE_ROOM_FAILED, CLOSE_ROOM_RESET } = require('./runtime-state');
const players = require('./players');
const router = require('./room-router');
const connections = require('./connections');
const { createApp, problemBody } = require('./http-routes');
const lifecycle = require('./lifecycle');

const EXIT_BAD_CONFIG = 2;

// --- logging -----------------------------------------------------------------------------------
// One line per event on stdout (`join player=p1 players=2/4`); failures on stderr. Writes to
// pipes and files are synchronous on Linux, so nothing is lost at process.exit().

const stdoutWrite = process.stdout.write.bind(process.stdout);
const oneStream = process.env.GSF_LOG_STREAM === 'stdout';
const stderrWrite = oneStream ? stdoutWrite : process.stderr.write.bind(process.stderr);
if (oneStream) process.stderr.write = stdoutWrite; // game code that writes to process.stderr itself
const log = createLogger(stdoutWrite, stderrWrite);
Object.assign(rt, { log, logEvent: (event, fields) => log.event(event, fields), stderrWrite, oneStream });

/** The in-thread room host, when rooms run in the main thread, names the room of console lines. */
const gameTag = () => (rt.threadLink ? rt.threadLink.currentTag() : '');

// The game's own console output is tagged like room.log(); the runtime never uses console.*.
console.log = console.info = console.debug = (...args) => log.game(args, gameTag());
console.warn = console.error = (...args) => log.game(args, gameTag(), true);

// --- configuration -----------------------------------------------------------------------------

let cfg;
try {
  cfg = readConfig(process.env);
} catch (err) {
  stderrWrite(`gsf runtime: bad configuration: ${err.message}\n`);
  process.exit(EXIT_BAD_CONFIG);
}
rt.cfg = cfg;
// Broadcast frames go to the sockets prebuilt, through ws internals that checkWsInternals knows.
rt.directFrames = sharedDeflate.checkWsInternals(WebSocket) === null;
if (cfg.wsDeflate) {
  // Fail loudly rather than write frames through ws internals that changed under us.
  const why = sharedDeflate.checkWsInternals(WebSocket);
  if (why) {
    stderrWrite(`gsf runtime: bad configuration: GSF_WS_DEFLATE=1 cannot run: ${why}\n`);
    process.exit(EXIT_BAD_CONFIG);
  }
}
if (process.env.GSF_SECRETS_STDIN === '1') {
  // Synchronous, before any game code exists: the platform writes the object and closes stdin
  // right after starting the container, so this returns at once.
  try {
    const secrets = JSON.parse(fs.readFileSync(0, 'utf8'));
    cfg.seatSecret = String(secrets.seat_secret || '');
    cfg.agentKey = String(secrets.agent_key || '');
  } catch (err) {
    stderrWrite(`gsf runtime: GSF_SECRETS_STDIN=1 but stdin held no secrets object: ${err.message}\n`);
    process.exit(EXIT_BAD_CONFIG);
  }
} else if (process.env.GSF_SEAT_SECRET || process.env.GSF_AGENT_KEY) {
  // Secrets from the environment (a local run by hand): keep them out of the game's reach
  // through process.env, and out of /proc/self/environ and /proc/1/environ, which still hold
  // the original bytes. (Room workers get a copy of process.env made after this.)
  delete process.env.GSF_SEAT_SECRET;
  delete process.env.GSF_AGENT_KEY;
  for (const failure of scrubEnviron(['GSF_SEAT_SECRET', 'GSF_AGENT_KEY'])) {
    stderrWrite(`gsf runtime: could not scrub the environment of pid ${failure}\n`);
  }
}
// Before any game code runs: an endless loop at load time is caught too.
startWatchdog(cfg.watchdogMs, { logFd: oneStream ? 1 : 2 });

// --- runtime state -----------------------------------------------------------------------------

rt.startedAt = performance.now();
/** This process's id in /status: a restarted server is another instance, whose seats start over. */
rt.instance = crypto.randomBytes(8).toString('hex');
rt.seats = new SeatVerifier({ secret: cfg.seatSecret, serverId: cfg.serverId });
/** Reconnection tokens: the seat secret; without one (local runs) a secret of this process only. */
rt.rejoins = cfg.seatSecret ? rt.seats
  : new SeatVerifier({ secret: crypto.randomBytes(32).toString('hex'), serverId: cfg.serverId });
rt.book = new SnapshotBook({ serverId: cfg.serverId, instance: rt.instance, maxPlayers: () => rt.maxPlayers });
rt.maxPlayers = cfg.maxPlayers ?? DEFAULT_MAX_PLAYERS;

rt.server = http.createServer(createApp());
rt.wss = new WebSocketServer({
  noServer: true,
  maxPayload: cfg.maxMessageBytes,
  perMessageDeflate: sharedDeflate.serverOptions(cfg.wsDeflate),
  clientTracking: false,
});

// --- upgrades: seat tokens and reconnection tokens ------------------------------------------------

function refuseUpgrade(socket, status, slug, detail) {
  const body = problemBody(status, slug, detail);
  if (socket.writable) {
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n`
      + 'Connection: close\r\n'
      + 'Content-Type: application/problem+json\r\n'
      + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}

/** The room a seat names: the first room, an existing room, or a new one the token asks for. */
function routeSeat(socket, seat, playerId) {
  const roomId = seat?.roomId ?? rt.cfg.serverId;
  let rec = rt.rooms.get(roomId);
  if (rec && !router.isLive(rec)) {
    rt.logEvent('refuse', { room: rec.id, player: playerId, reason: 'room_gone', status: 410 });
    refuseUpgrade(socket, 410, 'room-gone', `room ${roomId} has ended (${rec.status})`);
    return null;
  }
  if (!rec) {
    if (!seat?.newRoom) {
      rt.logEvent('refuse', { room: roomId, player: playerId, reason: 'room_not_found', status: 404 });
      refuseUpgrade(socket, 404, 'room-not-found', `no room ${roomId} on this server`);
      return null;
    }
    if (rt.liveRooms.size >= rt.maxRooms) {
      rt.logEvent('refuse', { room: roomId, player: playerId, reason: 'server_full', status: 503 });
      refuseUpgrade(socket, 503, 'server-full', `this server hosts its maximum of ${rt.maxRooms} rooms`);
      return null;
    }
    rec = router.createRoom(roomId, seat.newRoom.options, false);
  }
  return rec;
}

/**
 * Which dropped (or half-open) player a reconnection token names, or the refusal. A token is good
 * once: only the nonce of the player's last `welcome` is accepted.
 */
function resumeTarget(claims) {
  const rec = rt.rooms.get(claims.roomId);
  if (!rec) return { status: 404, slug: 'room-not-found', detail: `no room ${claims.roomId} on this server` };
  if (!router.isLive(rec)) return { status: 410, slug: 'room-gone', detail: `room ${rec.id} has ended (${rec.status})` };
  const pid = claims.playerId;
  const drop = rec.dropped.get(pid);
  const current = rec.conns.get(pid);
  if (drop && drop.nonce === claims.nonce) {
    return drop.resuming ? { status: 409, slug: 'already-joining', rec } : { rec, drop };
  }
  if (!drop && current && current.joined && current.nonce === claims.nonce) return { rec, current };
  if (!drop && ((current && !current.joined) || rec.upgrading.has(pid))) return { status: 409, slug: 'already-joining', rec };
  if (!drop && !current && rec.gone.get(pid) === claims.nonce) return { status: 410, slug: 'reconnect-expired', rec };
  return { status: 401, slug: 'reconnect-token', rec };
}

function upgradeReconnect(req, socket, head, token) {
  const claims = rt.rejoins.checkReconnect(token);
  if (!claims.ok) {
    const expired = claims.reason === 'expired';
    rt.logEvent('refuse', { reason: `reconnect_${claims.reason}`, status: expired ? 410 : 401 });
    if (expired) refuseUpgrade(socket, 410, 'reconnect-expired', 'the reconnection token has expired');
    else refuseUpgrade(socket, 401, 'reconnect-token', `reconnection token refused: ${claims.reason}`);
    return;
  }
  const target = resumeTarget(claims);
  const pid = claims.playerId;
  if (target.status) {
    rt.logEvent('refuse', { room: target.rec ? players.roomField(target.rec) : claims.roomId, player: pid,
      reason: target.slug.replaceAll('-', '_'), status: target.status });
    if (target.slug === 'room-not-found') refuseUpgrade(socket, 404, 'room-not-found', target.detail);
    else if (target.slug === 'room-gone') refuseUpgrade(socket, 410, 'room-gone', target.detail);
    else if (target.slug === 'already-joining') refuseUpgrade(socket, 409, 'already-joining', 'this player is already reconnecting');
    else if (target.slug === 'reconnect-expired') {
      refuseUpgrade(socket, 410, 'reconnect-expired', `player ${pid} has left room ${claims.roomId}: its reconnection window ended or it left`);
    } else refuseUpgrade(socket, 401, 'reconnect-token', 'reconnection token refused: spent (a token is good for one reconnection)');
    return;
  }
  const { rec } = target;
  let drop = target.drop;
  if (target.current) {
    // The client saw its connection die before the server did (half-open TCP): take the seat over.
    const old = target.current;
    rec.conns.delete(pid);
    drop = players.newDrop(old.nonce, old.name);
    players.dropPlayer(rec, pid, drop, 'replaced', CLOSE_REPLACED);
    old.ws.close(4000, 'replaced by a reconnection');
  }
  resumeUpgrade(req, socket, head, rec, pid, drop);
}

/** Upgrade a connection that takes a dropped player's seat back (reconnection token or seat token). */
function resumeUpgrade(req, socket, head, rec, pid, drop) {
  drop.resuming = true;
  let upgraded = false;
  socket.once('close', () => {
    if (!upgraded) players.resumeFailed(rec, pid, drop, false);
  });
  rt.wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded = true;
    if (!router.isLive(rec) || rec.dropped.get(pid) !== drop) {
      ws.close(rec.status === 'failed' ? CLOSE_ROOM_FAILED : CLOSE_ROOM_RESET, 'room ended');
      return;
    }
    const conn = connections.openConn(ws, rec, pid, drop.name);
    conn.resuming = drop;
    const minted = rt.rejoins.mintReconnect(rec.id, pid);
    conn.pendingNonce = minted.nonce;
    rec.link.post({ t: 'reconnect', seq: rec.seq, pid, cid: conn.cid, welcome: { reconnect: minted.token, enc: req.gsfEnc } });
  });
}

/** A WebSocket upgrade: refused with a problem, or a seat (new or taken back) in its room. */
function onUpgrade(req, socket, head) {
  socket.on('error', () => {}); // a client resetting mid-handshake is not our failure
  let url;
  try {
    url = new URL(req.url, 'http://runtime');
  } catch {
    refuseUpgrade(socket, 400, 'bad-request', 'bad request URL');
    return;
  }
  if (url.pathname !== '/ws') {
    refuseUpgrade(socket, 404, 'not-found', 'the WebSocket endpoint is /ws');
    return;
  }
  if (!rt.ready || rt.shuttingDown) {
    refuseUpgrade(socket, 503, 'not-ready', 'the room is not open');
    return;
  }
  const version = url.searchParams.get('v');
  if (version !== null && Number.parseInt(version, 10) !== PROTOCOL_VERSION) {
    rt.logEvent('refuse', { reason: 'protocol_version', version, status: 426 });
    refuseUpgrade(socket, 426, 'protocol-version',
      `this runtime speaks protocol major ${PROTOCOL_VERSION} (?v=${PROTOCOL_VERSION}); the client asked for ${JSON.stringify(version)}`);
    return;
  }
  const enc = url.searchParams.get('enc');
  if (enc !== null && !ENCODINGS.has(enc)) {
    rt.logEvent('refuse', { reason: 'state_encoding', enc, status: 400 });
    refuseUpgrade(socket, 400, 'state-encoding',
      `unknown state encoding ${JSON.stringify(enc)}: use one of ${[...ENCODINGS].join(', ')} (or leave enc out)`);
    return;
  }
  req.gsfEnc = enc ?? 'json-patch';
  const reconnectToken = url.searchParams.get('reconnect');
  if (reconnectToken !== null) {
    upgradeReconnect(req, socket, head, reconnectToken);
    return;
  }
  const token = url.searchParams.get('token');
  let playerId;
  let seat = null;
  if (token || rt.cfg.requireToken) {
    seat = rt.seats.check(token);
    if (!seat.ok) {
      rt.logEvent('refuse', { reason: seat.reason, status: 401 });
      refuseUpgrade(socket, 401, 'seat-token', `seat token refused: ${seat.reason}`);
      return;
    }
    playerId = seat.playerId;
  } else {
    playerId = 'p-' + crypto.randomBytes(6).toString('hex');
  }
  const rec = routeSeat(socket, seat, playerId);
  if (rec === null) return;
  const dropped = rec.dropped.get(playerId);
  if (dropped && !dropped.resuming) {
    // A new seat for a player still dropped here: it takes its seat back.
    if (seat) rt.seats.consume(seat);
    resumeUpgrade(req, socket, head, rec, playerId, dropped);
    return;
  }
  const current = rec.conns.get(playerId);
  if (rec.upgrading.has(playerId) || (current && !current.joined) || dropped) {
    rt.logEvent('refuse', { room: players.roomField(rec), player: playerId, reason: 'already_joining', status: 409 });
    refuseUpgrade(socket, 409, 'already-joining', 'this player is already joining');
    return;
  }
  const taken = players.seated(rec) + rec.upgrading.size - (current ? 1 : 0);
  if (taken >= rt.maxPlayers) {
    rt.logEvent('refuse', { room: players.roomField(rec), player: playerId, reason: 'full', status: 409, players: players.occupancy(rec) });
    refuseUpgrade(socket, 409, 'room-full', `the room is full (${rt.maxPlayers} players)`);
    return;
  }
  if (rec.locked && !current) {
    rt.logEvent('refuse', { room: players.roomField(rec), player: playerId, reason: 'locked', status: 409 });
    refuseUpgrade(socket, 409, 'room-locked', 'the room is locked');
    return;
  }
  if (seat) rt.seats.consume(seat);
  const name = cleanName(url.searchParams.get('name'), playerId);
  rec.upgrading.add(playerId);
  clearTimeout(rec.emptyTimer);
  rec.emptyTimer = null;
  let upgraded = false;
  socket.once('close', () => {
    if (upgraded) return;
    rec.upgrading.delete(playerId); // the handshake failed (ws answered 400)
    router.checkEmpty(rec);
  });
  rt.wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded = true;
    connections.onConnection(ws, rec, playerId, name, req.gsfEnc);
  });
}

rt.server.on('upgrade', onUpgrade);
rt.wss.on('wsClientError', (err, socket) => {
  rt.logEvent('ws_error', { error: err.code || err.message });
  socket.destroy();
});

process.on('SIGTERM', () => { lifecycle.shutdown('SIGTERM'); });
process.on('SIGINT', () => { lifecycle.shutdown('SIGINT'); });
process.on('SIGUSR2', () => { lifecycle.shutdown('SIGUSR2', { moving: true }); });
// Timers and promises the game starts itself can fail outside any hook; the room stays up.
// A game failing in a loop (a timer rejecting every millisecond) is rate-limited like hooks are.
process.on('uncaughtException', (err) => {
  const tag = gameTag();
  log.limited('uncaught exception', `uncaught exception (game code?)${tag ? ' ' + tag.trim() : ''}`, err);
});
process.on('unhandledRejection', (reason) => {
  const tag = gameTag();
  log.limited('unhandled rejection', `unhandled rejection (game code?)${tag ? ' ' + tag.trim() : ''}`, reason);
});

lifecycle.main().catch((err) => lifecycle.fail('startup failed', err));
