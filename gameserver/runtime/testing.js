'use strict';
// Unit-test a game module's hooks without a server: `node --test`, this file and the room core
// (room-core.js and the modules it names: the runtime's own room, which this drives), nothing else.
//
//   const { createRoom } = require('./testing.js');
//   const room = await createRoom(require('./game.js'));
//   const ada = await room.join('ada');            // onJoin; ada.frames starts with `welcome`
//   await ada.send('move', { cell: 4 });           // onMessage; a throw becomes an `error` frame
//   await room.tick(50);                           // onTick(room, 50)
//   await room.leave(ada);                         // onLeave
//   await room.drop(ada); await room.reconnect(ada); // onDrop, then welcome (+ buffered frames), onReconnect
//   ada.state                                      // with stateSync: the state rebuilt from $state/$patch
//
// The room handed to the hooks behaves like the runtime's (server.js, docs/writing-a-game.md):
// the same methods, limits and error frames, and frames are JSON round-tripped, so a test sees what
// a client would receive. What it leaves out is the network: no seat tokens, no sockets, and hooks
// run one at a time, each awaited before the test goes on.

const {
  RoomCore, checkModule, effectiveTickRate, stateJson, errorFrame, errorMessage: errorText, targetId,
} = require('./room-core.js');

const MAX_MESSAGE_BYTES = 65536;

function unescapePointer(part) {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * Apply RFC 6902 operations (add, remove, replace: what the runtime sends in `$patch`) to a JSON
 * document; returns the new document (the root may be replaced). What a client SDK does.
 */
function applyPatch(doc, ops) {
  for (const { op, path, value } of ops) {
    if (path === '') {
      if (op === 'remove') throw new Error('cannot remove the root');
      doc = structuredClone(value);
      continue;
    }
    const parts = path.slice(1).split('/').map(unescapePointer);
    const last = parts.pop();
    let parent = doc;
    for (const part of parts) parent = parent[Array.isArray(parent) ? Number(part) : part];
    if (parent === null || typeof parent !== 'object') throw new Error(`no parent for ${path}`);
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (op === 'add') parent.splice(index, 0, structuredClone(value));
      else if (op === 'remove') parent.splice(index, 1);
      else parent[index] = structuredClone(value);
    } else if (op === 'remove') {
      delete parent[last];
    } else {
      parent[last] = structuredClone(value);
    }
  }
  return doc;
}

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

/** One connected player as a test sees it: what the client received, and how to talk. */
class TestPlayer {
  constructor(harness, player) {
    this._harness = harness;
    /** The player object the hooks get (`id`, `name`, `data`). */
    this.player = player;
    /** Every frame this player received, parsed: `{type, data}`, in order. */
    this.frames = [];
    /** Set when the connection ends: 1000 after leave(), 1001 at dispose(), 1009 for a too large frame,
     *  1006 after drop() (null again after reconnect()). */
    this.closeCode = null;
    /** With stateSync: this player's view of the state, rebuilt from `$state` and `$patch` frames. */
    this.state = undefined;
    /** True between drop() and reconnect(). */
    this.dropped = false;
    this._buffer = [];
  }

  _receive(frame) {
    if (this.dropped) {
      this._buffer.push(frame); // the runtime keeps them for the reconnection
      return;
    }
    if (frame.type === '$state') this.state = frame.data;
    else if (frame.type === '$patch') this.state = applyPatch(this.state, frame.data);
    this.frames.push(frame);
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
    this.tickRate = effectiveTickRate(game);
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    /** Lines the game logged through room.log(), without the `[game] ` prefix. */
    this.logs = [];
    /** Hook failures the runtime would only log (onLeave, onTick, onDispose): `{hook, error}`. */
    this.errors = [];
    this._echo = Boolean(options.echo);
    this._tests = new Map(); // player id -> TestPlayer
    this._disposed = false;
    this._seq = 0;
    const h = this;
    // The runtime's own room (room-core.js), with frames landing in the test players' `frames`.
    this._core = new RoomCore({
      game, id: options.roomId ?? this.serverId, serverId: this.serverId, options: options.roomOptions ?? {},
      maxPlayers: options.maxPlayers, first: options.roomId === undefined,
      events: {
        out(pids, text) {
          for (const pid of pids) h._tests.get(pid)?._receive(JSON.parse(text));
        },
        joined(member, frames, reconnected = false) {
          const test = h._tests.get(member.player.id);
          if (!test) return;
          for (const text of frames) test._receive(JSON.parse(text));
          if (reconnected) {
            for (const frame of test._buffer.splice(0)) test._receive(frame);
          }
        },
        log(lines) {
          for (const line of lines) {
            h.logs.push(line);
            if (h._echo) process.stdout.write(`[game] ${line}\n`);
          }
        },
        hookError(hook, error, pid) {
          // onMessage failures are answered to the player; a throwing onJoin is a refusal.
          if (pid === null && hook !== 'onJoin' && hook !== 'onCreate') h.errors.push({ hook, error });
        },
      },
    });
    this.maxPlayers = this._core.maxPlayers;
    this.room = this._core.room;
  }

  // --- shortcuts to the room's state ---------------------------------------------------------

  get state() {
    return this.room.state;
  }

  get metadata() {
    return this._core.metadata;
  }

  get locked() {
    return this._core.locked;
  }

  /** The players in the room, as TestPlayers, in join order. */
  get players() {
    return Array.from(this._core.members.keys(), (id) => this._tests.get(id));
  }

  /** What the runtime's GET /status would answer (the agent relays part of it to the matchmaker). */
  status() {
    const body = {
      server_id: this.serverId, ready: !this._disposed, players: this._core.members.size,
      player_ids: Array.from(this._core.members.keys()), max_players: this.maxPlayers,
      locked: this.locked, metadata: this.metadata, tick_rate: this.tickRate,
      state_truncated: false, state: null,
    };
    const { text, truncated, error } = stateJson(this.room.state);
    if (error) body.state_error = error;
    body.state_truncated = truncated;
    if (text !== null) body.state = JSON.parse(text);
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
    if (this._core.members.has(playerId)) throw new Error(`player ${playerId} is already in the room`);
    if (this._core.members.size >= this.maxPlayers) {
      throw new JoinRefused('room-full', `the room is full (${this.maxPlayers} players)`);
    }
    if (this.locked) throw new JoinRefused('room-locked', 'the room is locked');
    const test = new TestPlayer(this, null);
    this._tests.set(playerId, test);
    const joining = this._core.join(playerId, options.name, null, { reconnect: `test-reconnect-${playerId}` });
    test.player = this._core.members.get(playerId).player;
    const joined = await joining;
    if (!joined.ok) {
      this._tests.delete(playerId);
      const frame = JSON.parse(errorFrame('join_refused', errorText(joined.error), 'onJoin'));
      test.frames.push(frame);
      test.closeCode = 4003;
      throw new JoinRefused('join_refused', frame.data.message, test.frames);
    }
    this.sync();
    return test;
  }

  async _frame(test, text) {
    if (this._tests.get(test.id) !== test || !this._core.members.has(test.id)) {
      throw new Error(`player ${test.id} is not in the room`);
    }
    if (test.dropped) throw new Error(`player ${test.id} is dropped: reconnect() first`);
    if (Buffer.byteLength(text) > this.maxMessageBytes) {
      // The runtime's WebSocket server closes such a connection with 1009 (message too big).
      await this._remove(test, 1009);
      return;
    }
    await this._core.frame(test.id, text);
    this.sync();
  }

  async _remove(test, code) {
    if (this._tests.get(test.id) !== test) return;
    this._tests.delete(test.id);
    if (!test.dropped) test.closeCode = code;
    test.dropped = false;
    await this._core.leave(test.id);
    this.sync();
  }

  /**
   * The player's connection is lost (not a leave): onDrop(room, player, reason) runs, the player
   * keeps its seat (`player.connected` is false) and frames to it wait for reconnect(). End the
   * window with leave(player) (onLeave, as when reconnectSeconds pass).
   */
  async drop(target, reason = 'connection_lost') {
    const test = this._tests.get(targetId(target));
    if (!test || test.dropped) throw new Error(`player ${targetId(target)} is not connected`);
    test.dropped = true;
    test.closeCode = 1006;
    await this._core.drop(test.id, reason);
    this.sync();
  }

  /** A dropped player is back: `welcome` (`reconnected: true`), `$state`, the frames sent meanwhile, then onReconnect. */
  async reconnect(target) {
    const test = this._tests.get(targetId(target));
    if (!test || !test.dropped) throw new Error(`player ${targetId(target)} is not dropped`);
    test.dropped = false;
    test.closeCode = null;
    await this._core.reconnect(test.id, null, { reconnect: `test-reconnect-${test.id}` });
    this.sync();
  }

  /** One patch round of state sync now (the runtime's runs every patchRateMs; the kit's after every step). */
  sync() {
    this._core.sync();
  }

  /** The player's connection closes (code 1000); onLeave runs after the player left room.players. */
  async leave(target) {
    const test = this._tests.get(targetId(target));
    if (!test) throw new Error(`player ${targetId(target)} is not in the room`);
    await this._remove(test, 1000);
  }

  /** One tick: onTick(room, dtMs). dtMs defaults to one period (1000 / tickRate). */
  async tick(dtMs) {
    if (this.tickRate === 0 || typeof this.game.onTick !== 'function') {
      throw new Error('this game does not tick: the runtime calls onTick only with a tickRate above 0');
    }
    await this._core.tick(dtMs ?? 1000 / this.tickRate);
    this.sync();
  }

  /** `count` ticks of one period each (e.g. ticks(20 * 10) is ten seconds at tickRate 20). */
  async ticks(count, dtMs) {
    for (let i = 0; i < count; i += 1) await this.tick(dtMs);
  }

  /** The server stops: onDispose runs, then every player is closed with 1001 (no onLeave). */
  async dispose() {
    if (this._disposed) return;
    this._disposed = true;
    await this._core.dispose();
    for (const test of this._tests.values()) test.closeCode = 1001;
    this._tests.clear();
    this._core.members.clear();
  }
}

/**
 * Load a game module object into a fresh room and run its onCreate.
 * @param {object} game  the module's exports (`require('./game.js')`)
 * @param {{maxPlayers?: number, serverId?: string, maxMessageBytes?: number, echo?: boolean,
 *          roomId?: string, roomOptions?: object}} [options]
 *   `maxPlayers` plays the upload's `max_players` (it wins over the module's); `echo` prints room.log lines;
 *   `roomId` and `roomOptions` play a room created by the matchmaker (`room.id`, `room.options`;
 *   default: the server's first room, whose id is the server id and whose options are `{}`).
 * @returns {Promise<TestRoom>}
 */
async function createRoom(game, options = {}) {
  const checked = checkModule(game, options.maxPlayers !== undefined);
  const harness = new TestRoom(checked, options);
  if (typeof checked.onCreate === 'function') await checked.onCreate(harness.room);
  return harness;
}

module.exports = { createRoom, applyPatch, JoinRefused, TestRoom, TestPlayer };
