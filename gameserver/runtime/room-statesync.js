'use strict';
// A room's state sync, as RoomCore methods (room-core.js composes them): the full `$state` for a
// player who joins or comes back, and the patch rounds the owner runs at the module's patch rate,
// one diff shared by every player who sees the same thing (docs/writing-a-game.md "State sync").
// The diff and the wire encodings are statesync-codec.js. Part of the room core, which game
// repositories copy for their tests: Node built-ins only.

const { rawFrame } = require('./frames');
const { patchRateOf } = require('./game-module');
const { OpLog, PathTable, diffInto, jsonPatchFrame, compactFrame } = require('./statesync-codec');

/** The state sync part of RoomCore, over a base with `game`, `room`, `members` and `events`. */
const withStateSync = (Base) => class RoomStateSync extends Base {
  constructor(init) {
    super(init);
    /** State sync: the patch period (0 = off), the default view's snapshot, a player being welcomed. */
    this.patchRate = patchRateOf(this.game);
    this.shared = undefined;
    this.joining = null;
  }

  /** Players who get patches: joined, connected. */
  syncTargets() {
    const targets = [];
    for (const member of this.members.values()) {
      if (member.joined && !member.dropped && member !== this.joining) targets.push(member);
    }
    return targets;
  }

  /** The full `$state` for a player who joins or comes back (none without state sync). */
  stateFrames(member) {
    if (this.patchRate === 0) return [];
    try {
      if (typeof this.game.view !== 'function') {
        // Bring everyone else up to date first, so one snapshot stays the base of every client.
        this.joining = member;
        this.patchShared(this.syncTargets());
        const state = rawFrame('$state', JSON.stringify(this.shared));
        return member.enc === 'c1' ? [state, this.sharedTable().frame()] : [state];
      }
      const json = this.viewJson(member);
      if (json === null) return [];
      member.snap = { json, value: JSON.parse(json) };
      member.table = null; // a `$state` starts the player's path numbers over
      return [rawFrame('$state', json)];
    } catch (error) {
      this.events.hookError('stateSync', error, null);
      return [];
    } finally {
      this.joining = null;
    }
  }

  /** One patch round (the owner calls it at the patch rate): `$patch` frames where a view changed. */
  sync() {
    if (this.patchRate === 0 || this.disposed) return;
    const targets = this.syncTargets();
    if (targets.length === 0) return;
    try {
      if (typeof this.game.view !== 'function') this.patchShared(targets);
      else this.patchViews(targets);
    } catch (error) {
      this.events.hookError('stateSync', error, null);
    }
  }

  /** One diff of the live state for everyone; one frame per encoding, shared by its players. */
  patchShared(targets) {
    const log = new OpLog();
    this.shared = diffInto(this.shared, this.room.state, '', log, true);
    if (log.length === 0 || targets.length === 0) return;
    let plain = null;
    let compact = null;
    for (const member of targets) {
      if (member.enc === 'c1') (compact ??= []).push(member.player.id);
      else (plain ??= []).push(member.player.id);
    }
    if (plain) this.events.out(plain, jsonPatchFrame(log));
    if (compact) this.events.out(compact, compactFrame(log, this.sharedTable()));
  }

  /** The c1 path numbers of the shared stream (rooms without `view`). */
  sharedTable() {
    this.table ??= new PathTable();
    return this.table;
  }

  /**
   * Per-player views: one diff per distinct (last view sent, current view) pair, shared by its
   * players: one json-patch frame for the group, one c1 frame per player (each has its own path
   * numbers, so no player learns the paths of another's view).
   */
  patchViews(targets) {
    const snaps = new Map(); // view JSON -> snapshot, so equal views share one object
    const groups = new Map(); // previous snapshot -> view JSON -> {members, from, to}
    for (const member of targets) {
      const json = this.viewJson(member);
      if (json === null || (member.snap && member.snap.json === json)) continue;
      let to = snaps.get(json);
      if (!to) snaps.set(json, (to = { json, value: JSON.parse(json) }));
      let byPrev = groups.get(member.snap);
      if (!byPrev) groups.set(member.snap, (byPrev = new Map()));
      let group = byPrev.get(json);
      if (!group) byPrev.set(json, (group = { members: [], from: member.snap, to }));
      group.members.push(member);
      member.snap = to;
    }
    for (const byPrev of groups.values()) {
      for (const { members, from, to } of byPrev.values()) {
        const log = new OpLog();
        diffInto(from === null ? undefined : from.value, to.value, '', log, false);
        if (log.length === 0) continue;
        const plain = [];
        for (const member of members) {
          if (member.enc === 'c1') this.events.out([member.player.id], compactFrame(log, member.table ??= new PathTable()));
          else plain.push(member.player.id);
        }
        if (plain.length) this.events.out(plain, jsonPatchFrame(log));
      }
    }
  }

  /** The player's view as JSON text, or null when the game's `view` threw (logged). */
  viewJson(member) {
    if (typeof this.game.view !== 'function') return JSON.stringify(this.room.state) ?? 'null';
    let view;
    try {
      this.events.enter?.(this, 'view');
      try {
        view = this.game.view(this.room, member.player, this.room.state);
      } finally {
        this.events.leave?.();
      }
      return JSON.stringify(view) ?? 'null';
    } catch (error) {
      this.events.hookError('view', error, null);
      return null;
    }
  }
};

module.exports = { withStateSync };
