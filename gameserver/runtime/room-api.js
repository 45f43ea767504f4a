'use strict';
// The room the hooks get (`room`, docs/writing-a-game.md "The room"): its fields, sending to players,
// the room-list metadata, the lock and room.log. It holds no state of its own but `state`: the rest
// is read from and done through its RoomCore (room-core.js). Part of the room core, which game
// repositories copy for their tests: Node built-ins only.

const util = require('node:util');

const { encodeFrame } = require('./frames');

const MAX_METADATA_BYTES = 16 * 1024;
const MAX_LOG_CHARS = 4096;

/** The player id a hook named: an id, or a player object; null for anything else. */
function targetId(target) {
  if (typeof target === 'string') return target;
  if (target && typeof target === 'object' && typeof target.id === 'string') return target.id;
  return null;
}

/** console.log-style arguments as lines of text (at most MAX_LOG_CHARS per call). */
function formatLines(args) {
  let text = util.formatWithOptions({ depth: 4, breakLength: Infinity, colors: false }, ...args);
  if (text.length > MAX_LOG_CHARS) text = text.slice(0, MAX_LOG_CHARS) + ' …[truncated]';
  return text.split('\n');
}

/** What the hooks receive as `room`; everything but `state` goes through the owning RoomCore. */
class Room {
  #core;

  constructor(core) {
    this.#core = core;
    /** Whatever the game wants; starts as `{}` so `room.state.x = …` works in onCreate. */
    this.state = {};
  }

  get players() { return Array.from(this.#core.members.values(), (m) => m.player); }

  get maxPlayers() { return this.#core.maxPlayers; }

  get locked() { return this.#core.locked; }

  get serverId() { return this.#core.serverId; }

  /** This room's id: the server id for the server's first room, else the matchmaker's `rm-…`. */
  get id() { return this.#core.id; }

  /** The options the room was created with (`{}` for the first room). */
  get options() { return this.#core.options; }

  /** Send to every player; `options.except` is a player id, a player, or an array of them. */
  broadcast(type, data, options) {
    const text = encodeFrame(type, data);
    const except = new Set();
    const raw = options?.except;
    for (const item of Array.isArray(raw) ? raw : [raw]) {
      const id = targetId(item);
      if (id !== null) except.add(id);
    }
    return this.#core.deliverAll(text, except);
  }

  /** Send to one player (id or player object); false when that player is not here. */
  send(target, type, data) {
    const text = encodeFrame(type, data);
    const member = this.#core.members.get(targetId(target));
    return member ? this.#core.deliver(member, text) : false;
  }

  /** Merge into the metadata shown in the room list (JSON, at most 16 KB). */
  setMetadata(obj) {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new TypeError('setMetadata expects a plain object');
    }
    const text = JSON.stringify({ ...this.#core.metadata, ...obj });
    if (Buffer.byteLength(text) > MAX_METADATA_BYTES) {
      throw new RangeError(`metadata is larger than ${MAX_METADATA_BYTES} bytes`);
    }
    this.#core.metadata = JSON.parse(text);
    this.#core.events.metadata?.(this.#core);
  }

  /** Stop new players from joining (they get 409); players already here stay. */
  lock() { this.#core.setLocked(true); }

  unlock() { this.#core.setLocked(false); }

  log(...args) { this.#core.events.log(formatLines(args), this.#core); }
}

module.exports = { Room, targetId, formatLines, MAX_METADATA_BYTES };
