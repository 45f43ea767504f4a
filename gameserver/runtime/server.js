'use strict';
// Game Server Factory runtime: hosts one untrusted game module (one room) behind Express + ws.
//
// The game module contract is DESIGN.md §4. Environment:
//   GSF_GAME_FILE          the game module (.js/.cjs through require, .mjs through import())
//   PORT                   listen port (default 8080; 0: a free one, logged); GSF_BIND_HOST (default 0.0.0.0)
//   GSF_LISTEN_FD          a listening socket the parent bound and passed (gsf dev: the port survives reloads)
//   GSF_SERVER_ID          this server's id; seat tokens must name it
//   GSF_MAX_PLAYERS        overrides the module's maxPlayers when set
//   GSF_SECRETS_STDIN      "1": read the secrets below as one JSON object
//                          {"seat_secret": ..., "agent_key": ...} from stdin (until EOF) before
//                          loading the game; how the platform hands them over, so they are never
//                          in the environment (/proc/<pid>/environ) at all
//   GSF_SEAT_SECRET        HMAC key of seat tokens (used as UTF-8 text); local runs only
//   GSF_AGENT_KEY          bearer key of GET /status; local runs only
//   GSF_REQUIRE_TOKEN      "0" accepts WebSocket connections without a seat token (local dev)
//   GSF_MAX_MESSAGE_BYTES  largest inbound frame (default 65536)
//   GSF_WATCHDOG_MS        exit when the event loop is blocked this long (default 5000; 0 = off)
//   GSF_LOG_STREAM         "stdout": write failures to stdout as well, so that one pipe keeps every
//                          line in the order it was written (the platform sets it: Docker reads
//                          stdout and stderr apart and can record lines of the two out of order)
//   GSF_SERVER_MESSAGE_RATE     inbound frames per second per connection (token bucket refill;
//                               default 100; 0 = no limit); an over-limit frame is dropped and
//                               answered with an `error` frame of code `rate_limited`
//   GSF_SERVER_MESSAGE_BURST    frames one connection may send in a burst (bucket size; default 200)
//   GSF_SERVER_MESSAGE_DROP_LIMIT  dropped frames within GSF_SERVER_MESSAGE_DROP_WINDOW_MS
//                               (default 200 within 10000) that close the connection with 1008
//
// Exit codes: 0 after SIGTERM/SIGINT, 3 when the game module cannot be loaded or created,
// 2 on a bad configuration, 1 when the port cannot be bound, 4 when the watchdog finds the
// event loop blocked (an endless synchronous loop in game code).

const fs = require('node:fs');
const http = require('node:http');
const crypto = require('node:crypto');
const path = require('node:path');
const util = require('node:util');
const { performance } = require('node:perf_hooks');
const { pathToFileURL } = require('node:url');

const express = require('express');
const { WebSocketServer, WebSocket } = require('ws');

const { SeatVerifier } = require('./seat-token');
const { startWatchdog } = require('./watchdog');
const { scrubEnviron } = require('./scrub-environ');

const EXIT_BAD_CONFIG = 2;
const EXIT_LOAD_FAILED = 3;

const DEFAULT_MAX_PLAYERS = 16;
const MAX_STATE_BYTES = 64 * 1024;
const MAX_METADATA_BYTES = 16 * 1024;
const MAX_LOG_CHARS = 4096;
const MAX_SEND_BUFFER_BYTES = 8 * 1024 * 1024;
const MAX_QUEUED_FRAMES = 256;
const PING_INTERVAL_MS = 20_000;
const CLOSE_POLICY_VIOLATION = 1008; // sustained flooding past the message rate limit
const ABUSE_TERMINATE_MS = 1000; // a flooder that does not answer the close frame is cut off
const LOG_LINES_PER_SECOND = 5; // stacks per kind of failure per second; the rest are counted
const SHUTDOWN_DEADLINE_MS = 1800;
const HOOKS = ['onCreate', 'onJoin', 'onMessage', 'onLeave', 'onTick', 'onDispose'];

// --- logging -----------------------------------------------------------------------------------
// One line per event on stdout (`join player=p1 players=2/4`); failures on stderr. Writes to
// pipes and files are synchronous on Linux, so nothing is lost at process.exit().

const stdoutWrite = process.stdout.write.bind(process.stdout);
const oneStream = process.env.GSF_LOG_STREAM === 'stdout';
const stderrWrite = oneStream ? stdoutWrite : process.stderr.write.bind(process.stderr);
if (oneStream) process.stderr.write = stdoutWrite; // game code that writes to process.stderr itself

function fmtValue(value) {
  const text = String(value);
  return /^[^\s"=\\\p{C}]+$/u.test(text) ? text : JSON.stringify(text);
}

function logEvent(event, fields = {}) {
  let line = event;
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) line += ` ${key}=${fmtValue(value)}`;
  }
  stdoutWrite(line + '\n');
}

/** The stack without the runtime's own frames: what a game author needs is where their code threw. */
function gameStack(err) {
  if (!(err instanceof Error)) return util.inspect(err);
  const lines = String(err.stack || err).split('\n');
  const cut = lines.findIndex((line, i) => i > 0
    && (line.includes(__dirname) || line.includes('(node:internal/')));
  return (cut > 0 ? lines.slice(0, cut) : lines).join('\n');
}

function logError(message, err, { gameOnly = false } = {}) {
  const detail = gameOnly ? gameStack(err)
    : err instanceof Error ? (err.stack || String(err)) : util.inspect(err);
  stderrWrite(`${message}: ${detail}\n`);
}

function gameLines(write, args) {
  let text = util.formatWithOptions({ depth: 4, breakLength: Infinity, colors: false }, ...args);
  if (text.length > MAX_LOG_CHARS) text = text.slice(0, MAX_LOG_CHARS) + ' …[truncated]';
  write(text.split('\n').map((line) => `[game] ${line}\n`).join(''));
}

// The game's own console output is tagged like room.log(); the runtime never uses console.*.
console.log = console.info = console.debug = (...args) => gameLines(stdoutWrite, args);
console.warn = console.error = (...args) => gameLines(stderrWrite, args);

// --- configuration -----------------------------------------------------------------------------

function intFromEnv(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function numberFromEnv(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a number in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function readConfig(env) {
  return {
    gameFile: env.GSF_GAME_FILE || '',
    host: env.GSF_BIND_HOST || '0.0.0.0',
    port: intFromEnv(env, 'PORT', 8080, 0, 65535),
    listenFd: intFromEnv(env, 'GSF_LISTEN_FD', null, 3, 65535),
    serverId: env.GSF_SERVER_ID || 'local',
    maxPlayers: intFromEnv(env, 'GSF_MAX_PLAYERS', null, 1, 100_000),
    seatSecret: env.GSF_SEAT_SECRET || '',
    agentKey: env.GSF_AGENT_KEY || '',
    requireToken: (env.GSF_REQUIRE_TOKEN ?? '1') !== '0',
    maxMessageBytes: intFromEnv(env, 'GSF_MAX_MESSAGE_BYTES', 65536, 16, 16 * 1024 * 1024),
    watchdogMs: intFromEnv(env, 'GSF_WATCHDOG_MS', 5000, 0, 3_600_000),
    messageRate: numberFromEnv(env, 'GSF_SERVER_MESSAGE_RATE', 100, 0, 1_000_000),
    messageBurst: intFromEnv(env, 'GSF_SERVER_MESSAGE_BURST', 200, 1, 1_000_000),
    dropLimit: intFromEnv(env, 'GSF_SERVER_MESSAGE_DROP_LIMIT', 200, 1, 100_000_000),
    dropWindowMs: intFromEnv(env, 'GSF_SERVER_MESSAGE_DROP_WINDOW_MS', 10_000, 1, 3_600_000),
  };
}

let cfg;
try {
  cfg = readConfig(process.env);
} catch (err) {
  stderrWrite(`gsf runtime: bad configuration: ${err.message}\n`);
  process.exit(EXIT_BAD_CONFIG);
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
  // the original bytes.
  delete process.env.GSF_SEAT_SECRET;
  delete process.env.GSF_AGENT_KEY;
  for (const failure of scrubEnviron(['GSF_SEAT_SECRET', 'GSF_AGENT_KEY'])) {
    stderrWrite(`gsf runtime: could not scrub the environment of pid ${failure}\n`);
  }
}
// Before any game code runs: an endless loop at load time is caught too.
startWatchdog(cfg.watchdogMs, { logFd: oneStream ? 1 : 2 });

// --- runtime state -----------------------------------------------------------------------------

const startedAt = performance.now();
/** This process's id in /status: a restarted server is another instance, whose seats start over. */
const instance = crypto.randomBytes(8).toString('hex');
const stats = { ticks: 0, messagesIn: 0, messagesOut: 0, messagesDropped: 0 };
/** @type {Map<string, Conn>} player id -> connection, in join order (joining ones included). */
const players = new Map();
/** Player ids between an accepted upgrade request and the WebSocket handshake's end. */
const upgrading = new Set();
const seats = new SeatVerifier({ secret: cfg.seatSecret, serverId: cfg.serverId });

let game = null;
let room = null;
let maxPlayers = cfg.maxPlayers ?? DEFAULT_MAX_PLAYERS;
let tickRate = 0;
let locked = false;
let metadata = {};
let ready = false;
let shuttingDown = false;
let tickTimer = null;
let pingTimer = null;

// --- frames --------------------------------------------------------------------------------------

function encodeFrame(type, data) {
  if (typeof type !== 'string' || type === '') {
    throw new TypeError('frame type must be a non-empty string');
  }
  return JSON.stringify({ type, data: data === undefined ? null : data });
}

function errorFrame(code, message, hook) {
  return JSON.stringify({ type: 'error', data: { code, message, hook } });
}

function errorMessage(err) {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 500 ? text.slice(0, 500) + '…' : text;
}

/**
 * A player's connection.
 * @typedef {{ws: WebSocket, player: object, joined: boolean, closed: boolean, alive: boolean,
 *            outbox: string[] | null, inbox: Array<[Buffer, boolean]>, bucket: TokenBucket | null,
 *            drops: number, dropWindowStart: number, kicked: boolean}} Conn
 */

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

const RATE_LIMITED_FRAME = errorFrame('rate_limited',
  `too many frames: at most ${cfg.messageRate} per second (bursts of ${cfg.messageBurst}); this one was dropped`);

/** Send one encoded frame; frames for a player still in onJoin wait until after `welcome`. */
function deliver(conn, text) {
  if (!conn.joined) {
    if (conn.outbox && conn.outbox.length < MAX_QUEUED_FRAMES) conn.outbox.push(text);
    return conn.outbox !== null;
  }
  const ws = conn.ws;
  if (ws.readyState !== WebSocket.OPEN) return false;
  if (ws.bufferedAmount > MAX_SEND_BUFFER_BYTES) {
    // A client that stops reading must not make the room hold its frames forever.
    logEvent('drop', { player: conn.player.id, reason: 'send_buffer_full' });
    ws.terminate();
    return false;
  }
  ws.send(text);
  stats.messagesOut += 1;
  return true;
}

function targetId(target) {
  if (typeof target === 'string') return target;
  if (target && typeof target === 'object' && typeof target.id === 'string') return target.id;
  return null;
}

// --- the room handed to the game -----------------------------------------------------------------

class Room {
  constructor() {
    /** Whatever the game wants; starts as `{}` so `room.state.x = …` works in onCreate. /status reports it as JSON. */
    this.state = {};
  }

  get players() {
    return Array.from(players.values(), (conn) => conn.player);
  }

  get maxPlayers() {
    return maxPlayers;
  }

  get locked() {
    return locked;
  }

  get serverId() {
    return cfg.serverId;
  }

  /** Send to every player; `options.except` is a player id, a player, or an array of them. */
  broadcast(type, data, options) {
    const text = encodeFrame(type, data);
    const except = new Set();
    const raw = options?.except;
    for (const item of Array.isArray(raw) ? raw : [raw]) {
      const id = targetId(item);
      if (id !== null) except.add(id);
    }
    let sent = 0;
    for (const conn of players.values()) {
      if (!except.has(conn.player.id) && deliver(conn, text)) sent += 1;
    }
    return sent;
  }

  /** Send to one player (id or player object); false when that player is not here. */
  send(target, type, data) {
    const text = encodeFrame(type, data);
    const conn = players.get(targetId(target));
    return conn ? deliver(conn, text) : false;
  }

  /** Merge into the metadata shown in the room list (JSON, at most 16 KB). */
  setMetadata(obj) {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new TypeError('setMetadata expects a plain object');
    }
    const text = JSON.stringify({ ...metadata, ...obj });
    if (Buffer.byteLength(text) > MAX_METADATA_BYTES) {
      throw new RangeError(`metadata is larger than ${MAX_METADATA_BYTES} bytes`);
    }
    metadata = JSON.parse(text);
  }

  /** Stop new players from joining (they get 409); players already here stay. */
  lock() {
    if (!locked) logEvent('lock', { players: `${players.size}/${maxPlayers}` });
    locked = true;
  }

  unlock() {
    if (locked) logEvent('unlock', { players: `${players.size}/${maxPlayers}` });
    locked = false;
  }

  log(...args) {
    gameLines(stdoutWrite, args);
  }
}

// --- hooks ---------------------------------------------------------------------------------------

/**
 * At most LOG_LINES_PER_SECOND lines per kind of failure (a hook, unhandled rejections, uncaught
 * exceptions) per second; the rest are counted and summed up in one line when the second is over,
 * so a game failing in a tight timer loop cannot flood the node's logs (and its neighbours' CPU).
 */
class LogLimiter {
  constructor(perSecond) {
    this.perSecond = perSecond;
    /** @type {Map<string, {windowStart: number, logged: number, suppressed: number, timer: any}>} */
    this.windows = new Map();
  }

  /** True when a line of this kind may be written now; false when it is counted instead. */
  allow(kind) {
    const now = Date.now();
    let window = this.windows.get(kind);
    if (window && now - window.windowStart >= 1000) {
      this.flush(kind);
      window = undefined;
    }
    if (!window) {
      window = { windowStart: now, logged: 0, suppressed: 0, timer: null };
      this.windows.set(kind, window);
    }
    if (window.logged < this.perSecond) {
      window.logged += 1;
      return true;
    }
    window.suppressed += 1;
    if (window.timer === null) {
      // The summary comes when the second ends, even if the failures stop.
      window.timer = setTimeout(() => this.flush(kind), Math.max(0, window.windowStart + 1000 - now));
      window.timer.unref();
    }
    return false;
  }

  /** Write the summary of a kind's window (if anything was suppressed) and close the window. */
  flush(kind) {
    const window = this.windows.get(kind);
    if (!window) return;
    this.windows.delete(kind);
    clearTimeout(window.timer);
    if (window.suppressed > 0) {
      stderrWrite(`${kind}: ${window.suppressed} similar lines suppressed\n`);
    }
  }

  flushAll() {
    for (const kind of Array.from(this.windows.keys())) this.flush(kind);
  }
}

const logLimiter = new LogLimiter(LOG_LINES_PER_SECOND);

/** logError() through the limiter: `kind` names the failure the summary line counts. */
function logLimited(kind, message, err, options) {
  if (logLimiter.allow(kind)) logError(message, err, options);
}

function reportHookError(hook, err, conn) {
  logLimited(`hook ${hook} failed`,
    `hook ${hook} failed${conn ? ` player=${fmtValue(conn.player.id)}` : ''}`, err, { gameOnly: true });
  if (conn) deliver(conn, errorFrame('hook_failed', errorMessage(err), hook));
}

/**
 * Run a game hook; never throws. The synchronous part runs before this returns, so hooks see
 * frames in arrival order; a returned promise is awaited and its rejection caught.
 * @returns {Promise<{ok: boolean, error?: unknown}>}
 */
async function runHook(hook, args, conn) {
  const fn = game?.[hook];
  if (typeof fn !== 'function') return { ok: true };
  try {
    await fn.apply(game, args);
    return { ok: true };
  } catch (error) {
    reportHookError(hook, error, conn);
    return { ok: false, error };
  }
}

// --- players -------------------------------------------------------------------------------------

function makePlayer(id, name) {
  const player = { name, data: {} };
  Object.defineProperty(player, 'id', { value: id, enumerable: true, writable: false });
  return player;
}

function occupancy() {
  return `${players.size}/${maxPlayers}`;
}

function cleanName(raw, fallback) {
  if (typeof raw !== 'string') return fallback;
  const name = raw.replace(/\p{C}/gu, '').trim().slice(0, 32);
  return name || fallback;
}

/** Take a player out of the room; onLeave runs unless the server is going down. */
function removePlayer(conn, reason, code) {
  if (players.get(conn.player.id) !== conn) return;
  players.delete(conn.player.id);
  logEvent('leave', { player: conn.player.id, reason, code, players: occupancy() });
  if (!shuttingDown) runHook('onLeave', [room, conn.player], null);
}

async function onConnection(ws, playerId, name) {
  const conn = { ws, player: makePlayer(playerId, name), joined: false, closed: false, alive: true,
    outbox: [], inbox: [],
    bucket: cfg.messageRate > 0 ? new TokenBucket(cfg.messageRate, cfg.messageBurst) : null,
    drops: 0, dropWindowStart: 0, kicked: false };
  const previous = players.get(playerId);
  if (previous) {
    // The same seat holder connected again (page reload): the new connection wins.
    removePlayer(previous, 'replaced', 4000);
    previous.ws.close(4000, 'replaced by a new connection');
  }
  players.set(playerId, conn);
  upgrading.delete(playerId);

  ws.on('message', (raw, isBinary) => onFrame(conn, raw, isBinary));
  ws.on('pong', () => { conn.alive = true; });
  ws.on('error', (err) => {
    logEvent('ws_error', { player: playerId, error: err.code || err.message });
  });
  ws.on('close', (code) => {
    conn.closed = true;
    if (conn.joined) removePlayer(conn, 'closed', code);
  });

  // A throwing onJoin is how a game refuses a player: logged like any hook failure, then 4003.
  const joined = await runHook('onJoin', [room, conn.player], null);
  if (!joined.ok) {
    conn.outbox = null;
    if (players.get(playerId) === conn) players.delete(playerId);
    logEvent('refuse', { player: playerId, reason: 'onJoin', code: 4003, error: errorMessage(joined.error) });
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(errorFrame('join_refused', errorMessage(joined.error), 'onJoin'));
      stats.messagesOut += 1;
      ws.close(4003, 'join refused');
    }
    return;
  }
  if (players.get(playerId) !== conn) return; // replaced while onJoin was running
  conn.joined = true;
  if (conn.closed || shuttingDown) {
    removePlayer(conn, 'closed_during_join', ws.readyState === WebSocket.OPEN ? 1001 : undefined);
    if (ws.readyState === WebSocket.OPEN) ws.close(1001, 'server shutting down');
    return;
  }
  const queued = conn.outbox;
  conn.outbox = null;
  deliver(conn, JSON.stringify({
    type: 'welcome',
    data: { playerId, name: conn.player.name, serverId: cfg.serverId, maxPlayers,
      players: Array.from(players.keys()) },
  }));
  for (const text of queued) deliver(conn, text);
  logEvent('join', { player: playerId, name: name === playerId ? undefined : name, players: occupancy() });
  const inbox = conn.inbox;
  conn.inbox = null;
  for (const [raw, isBinary] of inbox) handleFrame(conn, raw, isBinary);
}

function onFrame(conn, raw, isBinary) {
  stats.messagesIn += 1;
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
  stats.messagesDropped += 1;
  const now = performance.now();
  if (now - conn.dropWindowStart >= cfg.dropWindowMs) {
    conn.dropWindowStart = now;
    conn.drops = 0;
  }
  conn.drops += 1;
  if (conn.drops <= cfg.dropLimit) {
    deliver(conn, RATE_LIMITED_FRAME);
    return;
  }
  conn.kicked = true;
  conn.inbox = conn.inbox && [];
  logEvent('drop', { player: conn.player.id, reason: 'rate_limited', code: CLOSE_POLICY_VIOLATION,
    dropped: conn.drops - 1 });
  const ws = conn.ws;
  if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_POLICY_VIOLATION, 'message rate limit exceeded');
  // A flooder need not answer the close frame; the room does not wait the ws default of 30 s.
  setTimeout(() => ws.terminate(), ABUSE_TERMINATE_MS).unref();
}

function handleFrame(conn, raw, isBinary) {
  if (conn.kicked || players.get(conn.player.id) !== conn) return;
  if (isBinary) {
    deliver(conn, errorFrame('bad_frame', 'binary frames are not supported: send JSON text'));
    return;
  }
  let msg;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    deliver(conn, errorFrame('bad_frame', 'invalid JSON: send {"type": string, "data": any}'));
    return;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)
      || typeof msg.type !== 'string' || msg.type === '') {
    deliver(conn, errorFrame('bad_frame', 'a frame needs a non-empty string "type"'));
    return;
  }
  runHook('onMessage', [room, conn.player, msg.type, msg.data === undefined ? null : msg.data], conn);
}

// --- HTTP ----------------------------------------------------------------------------------------

const PROBLEM_BASE = 'https://gsf.dev/problems/';

function problemBody(status, slug, detail) {
  return JSON.stringify({ type: PROBLEM_BASE + slug, title: http.STATUS_CODES[status], status, detail });
}

function sendProblem(res, status, slug, detail) {
  res.status(status).type('application/problem+json').send(problemBody(status, slug, detail));
}

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}

function agentAuthorized(req) {
  if (!cfg.agentKey) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') || '');
  return match !== null && crypto.timingSafeEqual(sha256(match[1]), sha256(cfg.agentKey));
}

function statusBody() {
  const body = {
    server_id: cfg.serverId,
    instance,
    ready,
    players: players.size,
    player_ids: Array.from(players.keys()),
    max_players: maxPlayers,
    locked,
    metadata,
    tick_rate: tickRate,
    uptime_ms: Math.round(performance.now() - startedAt),
    ticks: stats.ticks,
    messages_in: stats.messagesIn,
    messages_out: stats.messagesOut,
    messages_dropped: stats.messagesDropped,
    state_truncated: false,
  };
  let state = 'null';
  try {
    const text = JSON.stringify(room?.state ?? null);
    if (text === undefined) {
      body.state_error = 'state is not JSON-serializable';
    } else if (Buffer.byteLength(text) > MAX_STATE_BYTES) {
      body.state_truncated = true;
    } else {
      state = text;
    }
  } catch (err) {
    body.state_error = `state is not JSON-serializable: ${errorMessage(err)}`;
  }
  // The state is already JSON: splice it in instead of parsing it back.
  return `${JSON.stringify(body).slice(0, -1)},"state":${state}}`;
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/health', (req, res) => {
  res.status(ready && !shuttingDown ? 200 : 503).json({ ok: ready && !shuttingDown });
});

app.get('/status', (req, res) => {
  if (!agentAuthorized(req)) {
    res.set('WWW-Authenticate', 'Bearer');
    sendProblem(res, 401, 'unauthorized', 'GET /status needs Authorization: Bearer <agent key>');
    return;
  }
  res.type('application/json').send(statusBody());
});

app.use((req, res) => sendProblem(res, 404, 'not-found', `no route ${req.method} ${req.path}`));
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  logError('http error', err);
  sendProblem(res, 500, 'internal', 'internal error');
});

const server = http.createServer(app);
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: cfg.maxMessageBytes,
  perMessageDeflate: false,
  clientTracking: false,
});

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

server.on('upgrade', (req, socket, head) => {
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
  if (!ready || shuttingDown) {
    refuseUpgrade(socket, 503, 'not-ready', 'the room is not open');
    return;
  }
  const token = url.searchParams.get('token');
  let playerId;
  let seat = null;
  if (token || cfg.requireToken) {
    seat = seats.check(token);
    if (!seat.ok) {
      logEvent('refuse', { reason: seat.reason, status: 401 });
      refuseUpgrade(socket, 401, 'seat-token', `seat token refused: ${seat.reason}`);
      return;
    }
    playerId = seat.playerId;
  } else {
    playerId = 'p-' + crypto.randomBytes(6).toString('hex');
  }
  const current = players.get(playerId);
  if (upgrading.has(playerId) || (current && !current.joined)) {
    logEvent('refuse', { player: playerId, reason: 'already_joining', status: 409 });
    refuseUpgrade(socket, 409, 'already-joining', 'this player is already joining');
    return;
  }
  const taken = players.size + upgrading.size - (current ? 1 : 0);
  if (taken >= maxPlayers) {
    logEvent('refuse', { player: playerId, reason: 'full', status: 409, players: occupancy() });
    refuseUpgrade(socket, 409, 'room-full', `the room is full (${maxPlayers} players)`);
    return;
  }
  if (locked && !current) {
    logEvent('refuse', { player: playerId, reason: 'locked', status: 409 });
    refuseUpgrade(socket, 409, 'room-locked', 'the room is locked');
    return;
  }
  if (seat) seats.consume(seat);
  const name = cleanName(url.searchParams.get('name'), playerId);
  upgrading.add(playerId);
  let upgraded = false;
  socket.once('close', () => {
    if (!upgraded) upgrading.delete(playerId); // the handshake failed (ws answered 400)
  });
  wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded = true;
    onConnection(ws, playerId, name).catch((err) => logError('join failed', err));
  });
});

wss.on('wsClientError', (err, socket) => {
  logEvent('ws_error', { error: err.code || err.message });
  socket.destroy();
});

// --- ticks and keepalive -------------------------------------------------------------------------

function startTicks(rate) {
  const interval = 1000 / rate;
  let last = performance.now();
  let next = last + interval;
  let running = false;
  const step = () => {
    if (shuttingDown) return;
    const now = performance.now();
    if (!running) { // an async onTick still running makes this tick wait; dt keeps growing
      const dt = now - last;
      last = now;
      stats.ticks += 1;
      running = true;
      runHook('onTick', [room, dt], null).then(() => { running = false; });
    }
    next += interval;
    if (next < now) next = now + interval; // fell behind: skip, do not burst
    tickTimer = setTimeout(step, Math.max(0, next - performance.now()));
  };
  tickTimer = setTimeout(step, interval);
}

function startKeepalive() {
  pingTimer = setInterval(() => {
    for (const conn of players.values()) {
      if (!conn.alive) {
        logEvent('drop', { player: conn.player.id, reason: 'no_pong' });
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
    }
  }, PING_INTERVAL_MS);
  pingTimer.unref();
}

// --- lifecycle -----------------------------------------------------------------------------------

async function loadGame(file) {
  if (!file) throw new Error('GSF_GAME_FILE is not set');
  const abs = path.resolve(file);
  let mod;
  if (path.extname(abs).toLowerCase() === '.mjs') {
    const ns = await import(pathToFileURL(abs).href);
    mod = ns.default !== undefined ? ns.default : ns;
  } else {
    mod = require(abs);
    if (mod && mod.__esModule && mod.default !== undefined) mod = mod.default;
  }
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) {
    throw new TypeError('the game module must export an object of hooks, e.g. module.exports = { onJoin(room, player) {} }');
  }
  for (const hook of HOOKS) {
    if (mod[hook] !== undefined && typeof mod[hook] !== 'function') {
      throw new TypeError(`${hook} must be a function, got ${typeof mod[hook]}`);
    }
  }
  if (mod.maxPlayers !== undefined && cfg.maxPlayers === null) {
    if (!Number.isInteger(mod.maxPlayers) || mod.maxPlayers < 1) {
      throw new TypeError(`maxPlayers must be a positive integer, got ${util.inspect(mod.maxPlayers)}`);
    }
  }
  if (mod.tickRate !== undefined && (typeof mod.tickRate !== 'number' || Number.isNaN(mod.tickRate))) {
    throw new TypeError(`tickRate must be a number of ticks per second, got ${util.inspect(mod.tickRate)}`);
  }
  return mod;
}

function fail(message, err) {
  logError(`gsf runtime: ${message}`, err, { gameOnly: true });
  process.exit(EXIT_LOAD_FAILED);
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  logEvent('shutdown', { signal, players: occupancy() });
  // Whatever a hook does, the process is gone before the platform's stop timeout.
  setTimeout(() => {
    stderrWrite('gsf runtime: shutdown deadline passed, exiting\n');
    process.exit(0);
  }, SHUTDOWN_DEADLINE_MS);
  clearTimeout(tickTimer);
  clearInterval(pingTimer);
  server.close();
  if (room) await Promise.race([runHook('onDispose', [room], null), delay(1000)]);
  const closing = [];
  for (const conn of Array.from(players.values())) {
    const ws = conn.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      closing.push(new Promise((resolve) => ws.once('close', resolve)));
      ws.close(1001, 'server shutting down');
    }
    removePlayer(conn, 'shutdown', 1001);
  }
  await Promise.race([Promise.all(closing), delay(400)]);
  for (const conn of players.values()) conn.ws.terminate();
  server.closeAllConnections();
  logLimiter.flushAll();
  logEvent('stopped');
  process.exit(0);
}

process.on('SIGTERM', () => { shutdown('SIGTERM'); });
process.on('SIGINT', () => { shutdown('SIGINT'); });
// Timers and promises the game starts itself can fail outside any hook; the room stays up.
// A game failing in a loop (a timer rejecting every millisecond) is rate-limited like hooks are.
process.on('uncaughtException', (err) => {
  logLimited('uncaught exception', 'uncaught exception (game code?)', err);
});
process.on('unhandledRejection', (reason) => {
  logLimited('unhandled rejection', 'unhandled rejection (game code?)', reason);
});

async function main() {
  server.on('error', (err) => {
    logError(`gsf runtime: cannot listen on ${cfg.host}:${cfg.port}`, err);
    process.exit(1);
  });
  await new Promise((resolve) => (cfg.listenFd === null
    ? server.listen(cfg.port, cfg.host, resolve)
    : server.listen({ fd: cfg.listenFd }, resolve)));
  const address = server.address();
  logEvent('listening', { host: address.address, port: address.port, server: cfg.serverId });
  if (cfg.requireToken && !cfg.seatSecret) {
    stderrWrite('gsf runtime: GSF_SEAT_SECRET is not set: every WebSocket connection will be refused\n');
  }

  try {
    game = await loadGame(cfg.gameFile);
  } catch (err) {
    fail(`the game module ${cfg.gameFile || '(none)'} failed to load`, err);
    return;
  }
  if (cfg.maxPlayers === null && game.maxPlayers !== undefined) maxPlayers = game.maxPlayers;
  if (typeof game.tickRate === 'number' && game.tickRate > 0) {
    tickRate = Math.min(60, Math.max(1, game.tickRate));
  }
  room = new Room();
  try {
    if (typeof game.onCreate === 'function') await game.onCreate(room);
  } catch (err) {
    // A room whose onCreate failed has no usable state: crash so the platform reports it.
    fail('onCreate failed', err);
    return;
  }
  if (shuttingDown) return;
  ready = true;
  logEvent('ready', {
    server: cfg.serverId, game: path.basename(cfg.gameFile), max_players: maxPlayers,
    tick_rate: tickRate || undefined, tokens: cfg.requireToken ? 'required' : 'optional',
  });
  if (tickRate > 0 && typeof game.onTick === 'function') startTicks(tickRate);
  startKeepalive();
}

main().catch((err) => fail('startup failed', err));
