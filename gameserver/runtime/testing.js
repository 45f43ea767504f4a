'use strict';
// Unit-test a game module's hooks without a server: `node --test` and this file, nothing else.
//
//   const { createRoom } = require('./testing.js');
//   const room = await createRoom(require('./game.js'));
//   const ada = await room.join('ada');            // onJoin; ada.frames starts with `welcome`
//   await ada.send('move', { cell: 4 });           // onMessage; a throw becomes an `error` frame
//   await room.tick(50);                           // onTick(room, 50)
//   await room.leave(ada);                         // onLeave
//
// The room handed to the hooks behaves like the runtime's (server.js, docs/writing-a-game.md):
// the same methods, limits and error frames, and frames are JSON round-tripped, so a test sees what
// a client would receive. What it leaves out is the network: no seat tokens, no sockets, and hooks
// run one at a time, each awaited before the test goes on.

const util = require('node:util');

const HOOKS = ['onCreate', 'onJoin', 'onMessage', 'onLeave', 'onTick', 'onDispose'];
const DEFAULT_MAX_PLAYERS = 16;
const MAX_METADATA_BYTES = 16 * 1024;
const MAX_STATE_BYTES = 64 * 1024;
const MAX_MESSAGE_BYTES = 65536;
const MAX_QUEUED_FRAMES = 256;
const MAX_LOG_CHARS = 4096;

/** A join the runtime would refuse: `code` is `room-full`, `room-locked` (HTTP 409 before the
 *  WebSocket opens) or `join_refused` (onJoin threw: an error frame, then close code 4003). */
class JoinRefused extends Error {
  constructor(code, message, frames = []) {
    super(message);
    this.name = 'JoinRefused';
    this.code = code;
    this.frames = frames;
  }
}

function encodeFrame(type, data) {
  if (typeof type !== 'string' || type === '') {
    throw new TypeError('frame type must be a non-empty string');
  }
  return JSON.stringify({ type, data: data === undefined ? null : data });
}

function errorMessage(err) {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 500 ? text.slice(0, 500) + '…' : text;
}

function errorFrame(code, message, hook) {
  return JSON.stringify({ type: 'error', data: { code, message, hook } });
}

function targetId(target) {
  if (typeof target === 'string') return target;
  if (target && typeof target === 'object' && typeof target.id === 'string') return target.id;
  return null;
}

function cleanName(raw, fallback) {
  if (typeof raw !== 'string') return fallback;
  const name = raw.replace(/\p{C}/gu, '').trim().slice(0, 32);
  return name || fallback;
}

/** The same checks the runtime makes when it loads a module (it exits with 3 when one fails). */
function checkModule(mod, maxPlayersGiven) {
  if (mod && mod.__esModule && mod.default !== undefined) mod = mod.default;
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) {
    throw new TypeError('the game module must export an object of hooks, e.g. module.exports = { onJoin(room, player) {} }');
  }
  for (const hook of HOOKS) {
    if (mod[hook] !== undefined && typeof mod[hook] !== 'function') {
      throw new TypeError(`${hook} must be a function, got ${typeof mod[hook]}`);
    }
  }
  if (mod.maxPlayers !== undefined && !maxPlayersGiven) {
    if (!Number.isInteger(mod.maxPlayers) || mod.maxPlayers < 1) {
      throw new TypeError(`maxPlayers must be a positive integer, got ${util.inspect(mod.maxPlayers)}`);
    }
  }
  if (mod.tickRate !== undefined && (typeof mod.tickRate !== 'number' || Number.isNaN(mod.tickRate))) {
    throw new TypeError(`tickRate must be a number of ticks per second, got ${util.inspect(mod.tickRate)}`);
  }
  return mod;
}

/** One connected player as a test sees it: what the client received, and how to talk. */
class TestPlayer {
  constructor(harness, player) {
    this._harness = harness;
    /** The player object the hooks get (`id`, `name`, `data`). */
    this.player = player;
    /** Every frame this player received, parsed: `{type, data}`, in order. */
    this.frames = [];
    /** Set when the connection ends: 1000 after leave(), 1001 at dispose(), 1009 for a too large frame. */
    this.closeCode = null;
  }

  get id() {
    return this.player.id;
  }

  get name() {
    return this.player.name;
  }

  /** The data of every frame of this type, in order. */
  all(type) {
    return this.frames.filter((f) => f.type === type).map((f) => f.data);
  }

  /** The data of the last frame of this type, or undefined. */
  last(type) {
    const found = this.all(type);
    return found.length ? found[found.length - 1] : undefined;
  }

  /** Forget the frames received so far; returns them. */
  take() {
    const taken = this.frames;
    this.frames = [];
    return taken;
  }

  /** Send `{type, data}` as the client would: onMessage runs, a throw comes back as an error frame. */
  send(type, data) {
    return this.sendRaw(JSON.stringify({ type, data }));
  }

  /** Send a text frame as it is (to test what the runtime does with malformed frames). */
  sendRaw(text) {
    return this._harness._frame(this, String(text));
  }
}

/** Drives a game module the way the runtime does; `room` is what the hooks receive. */
class TestRoom {
  constructor(game, options) {
    this.game = game;
    this.serverId = options.serverId ?? 'test';
    this.maxPlayers = options.maxPlayers ?? game.maxPlayers ?? DEFAULT_MAX_PLAYERS;
    this.tickRate = typeof game.tickRate === 'number' && game.tickRate > 0
      ? Math.min(60, Math.max(1, game.tickRate)) : 0;
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    /** Lines the game logged through room.log(), without the `[game] ` prefix. */
    this.logs = [];
    /** Hook failures the runtime would only log (onLeave, onTick, onDispose): `{hook, error}`. */
    this.errors = [];
    this._echo = Boolean(options.echo);
    this._conns = new Map(); // player id -> {test: TestPlayer, joined, outbox}
    this._locked = false;
    this._metadata = {};
    this._disposed = false;
    this._seq = 0;
    this.room = this._makeRoom();
  }

  // --- what the runtime's room offers --------------------------------------------------------

  _makeRoom() {
    const h = this;
    return {
      state: {}, // as in the runtime: room.state.x = … works in onCreate
      get players() { return Array.from(h._conns.values(), (c) => c.test.player); },
      get maxPlayers() { return h.maxPlayers; },
      get locked() { return h._locked; },
      get serverId() { return h.serverId; },
      broadcast(type, data, options) {
        const text = encodeFrame(type, data);
        const except = new Set();
        const raw = options?.except;
        for (const item of Array.isArray(raw) ? raw : [raw]) {
          const id = targetId(item);
          if (id !== null) except.add(id);
        }
        let sent = 0;
        for (const conn of h._conns.values()) {
          if (!except.has(conn.test.id) && h._deliver(conn, text)) sent += 1;
        }
        return sent;
      },
      send(target, type, data) {
        const text = encodeFrame(type, data);
        const conn = h._conns.get(targetId(target));
        return conn ? h._deliver(conn, text) : false;
      },
      setMetadata(obj) {
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
          throw new TypeError('setMetadata expects a plain object');
        }
        const text = JSON.stringify({ ...h._metadata, ...obj });
        if (Buffer.byteLength(text) > MAX_METADATA_BYTES) {
          throw new RangeError(`metadata is larger than ${MAX_METADATA_BYTES} bytes`);
        }
        h._metadata = JSON.parse(text);
      },
      lock() { h._locked = true; },
      unlock() { h._locked = false; },
      log(...args) {
        let text = util.formatWithOptions({ depth: 4, breakLength: Infinity, colors: false }, ...args);
        if (text.length > MAX_LOG_CHARS) text = text.slice(0, MAX_LOG_CHARS) + ' …[truncated]';
        for (const line of text.split('\n')) {
          h.logs.push(line);
          if (h._echo) process.stdout.write(`[game] ${line}\n`);
        }
      },
    };
  }

  _deliver(conn, text) {
    if (!conn.joined) {
      if (conn.outbox && conn.outbox.length < MAX_QUEUED_FRAMES) conn.outbox.push(text);
      return conn.outbox !== null;
    }
    conn.test.frames.push(JSON.parse(text));
    return true;
  }

  /** Run a hook like the runtime: never throws; a failure is answered to `conn` or recorded. */
  async _hook(hook, args, conn, { record = true } = {}) {
    const fn = this.game[hook];
    if (typeof fn !== 'function') return { ok: true };
    try {
      await fn.apply(this.game, args);
      return { ok: true };
    } catch (error) {
      if (conn) this._deliver(conn, errorFrame('hook_failed', errorMessage(error), hook));
      else if (record) this.errors.push({ hook, error });
      return { ok: false, error };
    }
  }

  // --- shortcuts to the room's state ---------------------------------------------------------

  get state() {
    return this.room.state;
  }

  get metadata() {
    return this._metadata;
  }

  get locked() {
    return this._locked;
  }

  /** The players in the room, as TestPlayers, in join order. */
  get players() {
    return Array.from(this._conns.values(), (c) => c.test);
  }

  /** What the runtime's GET /status would answer (the agent relays part of it to the matchmaker). */
  status() {
    const body = {
      server_id: this.serverId, ready: !this._disposed, players: this._conns.size,
      player_ids: Array.from(this._conns.keys()), max_players: this.maxPlayers,
      locked: this._locked, metadata: this._metadata, tick_rate: this.tickRate,
      state_truncated: false, state: null,
    };
    let text;
    try {
      text = JSON.stringify(this.room.state ?? null);
    } catch (err) {
      body.state_error = `state is not JSON-serializable: ${errorMessage(err)}`;
      return body;
    }
    if (text === undefined) body.state_error = 'state is not JSON-serializable';
    else if (Buffer.byteLength(text) > MAX_STATE_BYTES) body.state_truncated = true;
    else body.state = JSON.parse(text);
    return body;
  }

  // --- driving the room ------------------------------------------------------------------------

  /**
   * A player connects and onJoin runs. Resolves with the TestPlayer (its first frame is `welcome`);
   * rejects with JoinRefused when the runtime would refuse the player.
   * @param {string} [id]  the player id (the seat token's); default `p1`, `p2`, ...
   * @param {{name?: string}} [options]  `name` is the `?name=` of the WebSocket URL
   */
  async join(id, options = {}) {
    if (this._disposed) throw new Error('the room is disposed');
    const playerId = id ?? `p${++this._seq}`;
    if (this._conns.has(playerId)) throw new Error(`player ${playerId} is already in the room`);
    if (this._conns.size >= this.maxPlayers) {
      throw new JoinRefused('room-full', `the room is full (${this.maxPlayers} players)`);
    }
    if (this._locked) throw new JoinRefused('room-locked', 'the room is locked');
    const player = { name: cleanName(options.name, playerId), data: {} };
    Object.defineProperty(player, 'id', { value: playerId, enumerable: true, writable: false });
    const test = new TestPlayer(this, player);
    const conn = { test, joined: false, outbox: [] };
    this._conns.set(playerId, conn);
    // A throwing onJoin is how a game refuses a player: the answer, not a failure to record.
    const joined = await this._hook('onJoin', [this.room, player], null, { record: false });
    if (!joined.ok) {
      conn.outbox = null;
      this._conns.delete(playerId);
      const frame = JSON.parse(errorFrame('join_refused', errorMessage(joined.error), 'onJoin'));
      test.frames.push(frame);
      test.closeCode = 4003;
      throw new JoinRefused('join_refused', frame.data.message, test.frames);
    }
    conn.joined = true;
    const queued = conn.outbox;
    conn.outbox = null;
    this._deliver(conn, JSON.stringify({
      type: 'welcome',
      data: { playerId, name: player.name, serverId: this.serverId, maxPlayers: this.maxPlayers,
        players: Array.from(this._conns.keys()) },
    }));
    for (const text of queued) this._deliver(conn, text);
    return test;
  }

  async _frame(test, text) {
    const conn = this._conns.get(test.id);
    if (!conn || conn.test !== test) throw new Error(`player ${test.id} is not in the room`);
    if (Buffer.byteLength(text) > this.maxMessageBytes) {
      // The runtime's WebSocket server closes such a connection with 1009 (message too big).
      await this._remove(conn, 1009);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this._deliver(conn, errorFrame('bad_frame', 'invalid JSON: send {"type": string, "data": any}'));
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)
        || typeof msg.type !== 'string' || msg.type === '') {
      this._deliver(conn, errorFrame('bad_frame', 'a frame needs a non-empty string "type"'));
      return;
    }
    await this._hook('onMessage', [this.room, test.player, msg.type, msg.data === undefined ? null : msg.data], conn);
  }

  async _remove(conn, code) {
    if (this._conns.get(conn.test.id) !== conn) return;
    this._conns.delete(conn.test.id);
    conn.test.closeCode = code;
    await this._hook('onLeave', [this.room, conn.test.player], null);
  }

  /** The player's connection closes (code 1000); onLeave runs after the player left room.players. */
  async leave(target) {
    const conn = this._conns.get(targetId(target));
    if (!conn) throw new Error(`player ${targetId(target)} is not in the room`);
    await this._remove(conn, 1000);
  }

  /** One tick: onTick(room, dtMs). dtMs defaults to one tick period (1000 / tickRate). */
  async tick(dtMs) {
    if (this.tickRate === 0 || typeof this.game.onTick !== 'function') {
      throw new Error('this game does not tick: the runtime calls onTick only with a tickRate above 0');
    }
    await this._hook('onTick', [this.room, dtMs ?? 1000 / this.tickRate], null);
  }

  /** `count` ticks of one period each (e.g. ticks(20 * 10) is ten seconds at tickRate 20). */
  async ticks(count, dtMs) {
    for (let i = 0; i < count; i += 1) await this.tick(dtMs);
  }

  /** The server stops: onDispose runs, then every player is closed with 1001 (no onLeave). */
  async dispose() {
    if (this._disposed) return;
    this._disposed = true;
    await this._hook('onDispose', [this.room], null);
    for (const conn of this._conns.values()) conn.test.closeCode = 1001;
    this._conns.clear();
  }
}

/**
 * Load a game module object into a fresh room and run its onCreate.
 * @param {object} game  the module's exports (`require('./game.js')`)
 * @param {{maxPlayers?: number, serverId?: string, maxMessageBytes?: number, echo?: boolean}} [options]
 *   `maxPlayers` plays the upload's `max_players` (it wins over the module's); `echo` prints room.log lines.
 * @returns {Promise<TestRoom>}
 */
async function createRoom(game, options = {}) {
  const checked = checkModule(game, options.maxPlayers !== undefined);
  const harness = new TestRoom(checked, options);
  if (typeof checked.onCreate === 'function') await checked.onCreate(harness.room);
  return harness;
}

module.exports = { createRoom, JoinRefused, TestRoom, TestPlayer };
