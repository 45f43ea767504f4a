'use strict';
// One room of a game module without any I/O: the `room` object handed to the hooks (DESIGN §4,
// docs/writing-a-game.md "The room"), its players and seat-side state, and the rules for running
// hooks (a throw becomes an `error` frame or a logged failure, never a crash). The runtime
// (room-host.js, in the main thread or a room worker) and the test kit (testing.js) both drive
// rooms through this class, so the two cannot drift apart.
//
// This file is the entry: RoomCore's own part (its fields, running hooks, delivering frames, the
// lock) composed with the parts in their own modules, and every name the runtime imports from them:
//   game-module.js      what a game module exports: its checks and settings
//   frames.js           frames to players, error messages, the state as /status shows it
//   room-api.js         Room, the `room` the hooks get
//   room-players.js     joins, frames, leaves, drops and reconnections
//   room-statesync.js   `$state` and the patch rounds; statesync-codec.js: the diff and its encodings
//   room-snapshot.js    a durable room's snapshot and its restore
// Node built-ins only: game repositories copy these files next to testing.js (docs/ci/gsf-game.yml).

const {
  PROTOCOL_VERSION, MAX_QUEUED_FRAMES, MAX_STATE_BYTES, encodeFrame, errorFrame, errorMessage, stateJson,
} = require('./frames');
const {
  HOOKS, DEFAULT_MAX_PLAYERS, checkModule, isDurable, snapshotIntervalOf, reconnectSecondsOf, patchRateOf,
  effectiveTickRate,
} = require('./game-module');
const { Room, targetId, formatLines, MAX_METADATA_BYTES } = require('./room-api');
const { withPlayers, cleanName } = require('./room-players');
const { withSnapshots } = require('./room-snapshot');
const { withStateSync } = require('./room-statesync');
const {
  OpLog, PathTable, diffInto, jsonPatchFrame, compactFrame, ENCODINGS, MAX_PATHS,
} = require('./statesync-codec');

/**
 * RoomCore's own part: the room's fields, its hooks run, its frames delivered, its lock.
 * `events` (RoomCore's constructor takes them) are the owner's callbacks:
 *   out(pids: string[], text)          frames to joined players (already in order, welcome first)
 *   log(lines: string[], core)         room.log() lines
 *   hookError(hook, error, pid|null)   a failed hook (the `hook_failed` frame is already sent)
 *   metadata(core), locked(core)       optional: the room-list fields changed
 *   enter(core, hook), leave()         optional: around the synchronous part of every hook
 *   joined(member, frames, reconnected) optional: a join (or a reconnection) succeeded; `frames`
 *                                      (welcome first) are the owner's to send, instead of through out()
 */
class RoomBase {
  constructor({ game, id, serverId, options = {}, maxPlayers, first = true, events }) {
    this.game = game;
    this.id = id;
    this.serverId = serverId;
    this.options = options;
    this.maxPlayers = maxPlayers ?? game.maxPlayers ?? DEFAULT_MAX_PLAYERS;
    this.first = first;
    this.events = events;
    this.locked = false;
    this.metadata = {};
    /** @type {Map<string, {player: object, cid: any, joined: boolean, outbox: string[] | null}>} */
    this.members = new Map();
    this.disposed = false;
    this.room = new Room(this);
  }

  deliver(member, text) {
    if (!member.joined) {
      if (member.outbox && member.outbox.length < MAX_QUEUED_FRAMES) member.outbox.push(text);
      return member.outbox !== null;
    }
    this.events.out([member.player.id], text);
    return true;
  }

  deliverAll(text, except) {
    const to = [];
    let sent = 0;
    for (const member of this.members.values()) {
      if (except.has(member.player.id)) continue;
      if (member.joined) to.push(member.player.id);
      else if (!this.deliver(member, text)) continue;
      sent += 1;
    }
    if (to.length) this.events.out(to, text);
    return sent;
  }

  setLocked(value) {
    if (this.locked === value) return;
    this.locked = value;
    this.events.locked?.(this);
  }

  /**
   * Run a hook; never throws. The synchronous part runs before this returns, so hooks see frames
   * in arrival order; a returned promise is awaited and its rejection caught. A failure is
   * answered to `pid` (a `hook_failed` frame) unless `quiet`, and reported to events.hookError.
   * @returns {Promise<{ok: boolean, error?: unknown, value?: unknown}>} `value`: what the hook returned
   */
  async runHook(hook, args, pid = null, { quiet = false } = {}) {
    const fn = this.game[hook];
    if (typeof fn !== 'function') return { ok: true };
    try {
      let result;
      this.events.enter?.(this, hook);
      try {
        result = fn.apply(this.game, args);
      } finally {
        this.events.leave?.();
      }
      const value = await result;
      return value === undefined ? { ok: true } : { ok: true, value };
    } catch (error) {
      this.events.hookError(hook, error, pid);
      const member = pid === null || quiet ? undefined : this.members.get(pid);
      if (member) this.deliver(member, errorFrame('hook_failed', errorMessage(error), hook));
      return { ok: false, error };
    }
  }

  create() {
    return this.runHook('onCreate', [this.room]);
  }

  tick(dt) {
    return this.runHook('onTick', [this.room, dt], null);
  }

  dispose() {
    if (this.disposed) return Promise.resolve({ ok: true });
    this.disposed = true;
    return this.runHook('onDispose', [this.room], null);
  }
}

/** The room: RoomBase with its players, its state sync and its snapshots. */
class RoomCore extends withSnapshots(withStateSync(withPlayers(RoomBase))) {}

module.exports = {
  RoomCore, Room, checkModule, effectiveTickRate, stateJson, encodeFrame, errorFrame, errorMessage,
  targetId, cleanName, formatLines, reconnectSecondsOf, patchRateOf, isDurable, snapshotIntervalOf,
  HOOKS, DEFAULT_MAX_PLAYERS, OpLog, PathTable, diffInto, jsonPatchFrame, compactFrame, ENCODINGS, MAX_PATHS,
  MAX_STATE_BYTES, MAX_METADATA_BYTES, MAX_QUEUED_FRAMES, PROTOCOL_VERSION,
};
