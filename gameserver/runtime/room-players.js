'use strict';
// A room's players, as RoomCore methods (room-core.js composes them): a join (onJoin, then
// `welcome`), a frame (onMessage), a leave, and the reconnection window: a dropped player keeps its
// seat until it comes back into it (onDrop, onReconnect; docs/writing-a-game.md "Reconnecting").
// The main thread's side of seats (sockets, reconnection windows, drop buffers) is players.js.
// Part of the room core, which game repositories copy for their tests: Node built-ins only.

const { PROTOCOL_VERSION, errorFrame } = require('./frames');
const { reconnectSecondsOf } = require('./game-module');
const { stateEncodingOf } = require('./statesync-codec');

/** A player's name as others see it: no control characters, at most 32 characters; `fallback` if empty. */
function cleanName(raw, fallback) {
  if (typeof raw !== 'string') return fallback;
  const name = raw.replace(/\p{C}/gu, '').trim().slice(0, 32);
  return name || fallback;
}

/** The players part of RoomCore, over a base with `members`, `runHook`, `deliver`, `stateFrames` and `patchRate`. */
const withPlayers = (Base) => class RoomPlayers extends Base {
  /**
   * A player connects: onJoin runs with the player already in room.players. On success the player
   * gets `welcome` then whatever was sent to it during onJoin; a throwing onJoin refuses it.
   * `cid` tells a player's connections apart (a reconnect replaces a joining one).
   * @returns {Promise<{ok: boolean, error?: unknown, current: boolean}>}
   */
  async join(pid, name, cid = null, extra = {}) {
    const member = this.newMember(pid, name, cid);
    member.enc = stateEncodingOf(extra);
    const player = member.player;
    this.members.set(pid, member);
    const result = await this.runHook('onJoin', [this.room, player], null);
    const current = this.members.get(pid) === member;
    if (!result.ok) {
      member.outbox = null;
      if (current) this.members.delete(pid);
      return { ok: false, error: result.error, current, player };
    }
    if (!current) return { ok: true, current, player }; // replaced or gone while onJoin was running
    member.joined = true;
    const queued = member.outbox;
    member.outbox = null;
    const frames = [this.welcome(member, extra), ...this.stateFrames(member), ...queued];
    // The owner may take the welcome and the queued frames as one message (before any later frame).
    if (this.events.joined) this.events.joined(member, frames);
    else for (const text of frames) this.deliver(member, text);
    return { ok: true, current, player };
  }

  /** A member record: `player` is what the hooks see (`id` read-only, `connected` not in JSON). */
  newMember(pid, name, cid) {
    const player = { name: cleanName(name, pid), data: {} };
    const member = { player, cid, joined: false, outbox: [], dropped: false, snap: null, enc: 'json-patch', table: null };
    Object.defineProperty(player, 'id', { value: pid, enumerable: true, writable: false });
    // false while the player is dropped and may come back (reconnectSeconds); not in JSON.
    Object.defineProperty(player, 'connected', { get: () => !member.dropped, enumerable: false });
    return member;
  }

  /** The `welcome` frame (protocol v1, docs/writing-a-game.md "The wire protocol"). */
  welcome(member, extra) {
    const data = { playerId: member.player.id, name: member.player.name, serverId: this.serverId,
      maxPlayers: this.maxPlayers, players: Array.from(this.members.keys()), roomId: this.id,
      protocol: PROTOCOL_VERSION, reconnect: extra.reconnect ?? null, reconnectSeconds: reconnectSecondsOf(this.game),
      stateSync: this.patchRate > 0, stateEncoding: member.enc };
    if (extra.reconnected) data.reconnected = true;
    return JSON.stringify({ type: 'welcome', data });
  }

  /**
   * The player's connection was lost without leaving on purpose: it keeps its seat (and stays in
   * room.players, `player.connected` false); frames to it are the owner's to buffer; onDrop runs.
   */
  drop(pid, reason) {
    const member = this.members.get(pid);
    if (!member || member.dropped) return Promise.resolve({ ok: false });
    member.dropped = true;
    member.snap = null;
    return this.runHook('onDrop', [this.room, member.player, reason], null);
  }

  /** A dropped player is back: `welcome` (+ `$state`) through events.joined, then onReconnect. */
  reconnect(pid, cid, extra = {}) {
    const member = this.members.get(pid);
    if (!member || !member.dropped) return Promise.resolve({ ok: false });
    member.dropped = false;
    member.cid = cid;
    member.enc = stateEncodingOf(extra);
    const frames = [this.welcome(member, { ...extra, reconnected: true }), ...this.stateFrames(member)];
    if (this.events.joined) this.events.joined(member, frames, true);
    else for (const text of frames) this.deliver(member, text);
    return this.runHook('onReconnect', [this.room, member.player], null);
  }

  /** A text frame from a joined player: checked like the runtime does, then onMessage. */
  frame(pid, text) {
    const member = this.members.get(pid);
    if (!member) return Promise.resolve({ ok: false });
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.deliver(member, errorFrame('bad_frame', 'invalid JSON: send {"type": string, "data": any}'));
      return Promise.resolve({ ok: false });
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)
        || typeof msg.type !== 'string' || msg.type === '') {
      this.deliver(member, errorFrame('bad_frame', 'a frame needs a non-empty string "type"'));
      return Promise.resolve({ ok: false });
    }
    return this.runHook('onMessage', [this.room, member.player, msg.type, msg.data === undefined ? null : msg.data], pid);
  }

  /** The player's connection ended; onLeave runs (after it left room.players) unless `silent`. */
  leave(pid, { silent = false } = {}) {
    const member = this.members.get(pid);
    if (!member) return Promise.resolve({ ok: true });
    this.members.delete(pid);
    member.outbox = null;
    return silent ? Promise.resolve({ ok: true }) : this.runHook('onLeave', [this.room, member.player], null);
  }
};

module.exports = { withPlayers, cleanName };
