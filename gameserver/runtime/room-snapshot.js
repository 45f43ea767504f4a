'use strict';
// A durable room's snapshot, as RoomCore methods (room-core.js composes them): what of the room a
// snapshot holds, and the room brought back from one (onMigrate on a rolling update, then
// onRestore; docs/writing-a-game.md "Durable rooms"). Taking snapshots on a timer and shipping them
// is the runtime's (room-host.js, durable.js). Part of the room core, which game repositories copy
// for their tests: Node built-ins only.

/** The snapshot part of RoomCore, over a base with `room`, `members`, `newMember` and `runHook`. */
const withSnapshots = (Base) => class RoomSnapshots extends Base {
  /**
   * What a durable room's snapshot holds of the room (besides what the main thread adds: ids,
   * reconnection nonces), as JSON text; the runtime compares it with the last one to skip
   * unchanged rooms. Throws when the state is not JSON.
   */
  snapshotJson() {
    const players = [];
    for (const member of this.members.values()) {
      if (!member.joined) continue; // still in onJoin: not seated yet
      players.push({ id: member.player.id, name: member.player.name, data: member.player.data,
        connected: !member.dropped });
    }
    return JSON.stringify({ state: this.room.state ?? null, players, metadata: this.metadata, locked: this.locked });
  }

  /**
   * Bring the room back from a snapshot body (`snapshotJson`'s object): its state, metadata and
   * lock, its players as dropped (they come back with their reconnection tokens), then onRestore.
   * A rolling update (`info.from` 'migrate') runs the module's onMigrate first; when it fails the
   * room is left as it was and the result says `migrateFailed` (the room stays on the old version).
   */
  async restore(body, info) {
    const before = { state: this.room.state, metadata: this.metadata, locked: this.locked, members: [...this.members] };
    this.room.state = body.state ?? {};
    this.metadata = body.metadata && typeof body.metadata === 'object' ? body.metadata : {};
    this.locked = Boolean(body.locked);
    this.members.clear();
    for (const saved of Array.isArray(body.players) ? body.players : []) {
      if (!saved || typeof saved.id !== 'string') continue;
      const member = this.newMember(saved.id, saved.name, null);
      member.joined = true;
      member.outbox = null;
      member.dropped = true;
      if (saved.data && typeof saved.data === 'object') member.player.data = saved.data;
      this.members.set(saved.id, member);
    }
    this.shared = undefined;
    if (info?.from === 'migrate') {
      // onMigrate(room, oldState, fromVersion) sees room.state === oldState; what it returns (not
      // undefined) becomes room.state, else room.state stays as the hook left it.
      const migrated = await this.runHook('onMigrate', [this.room, this.room.state, info.fromVersion ?? null], null);
      if (!migrated.ok) {
        Object.assign(this, { metadata: before.metadata, locked: before.locked, members: new Map(before.members) });
        this.room.state = before.state;
        return { ok: false, error: migrated.error, migrateFailed: true };
      }
      if (migrated.value !== undefined) this.room.state = migrated.value;
    }
    return this.runHook('onRestore', [this.room, info], null);
  }
};

module.exports = { withSnapshots };
