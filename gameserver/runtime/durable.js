'use strict';
// Durable rooms, the main thread's side (docs/writing-a-game.md "Durable rooms"). A room host sends
// a durable room's body (state, players, metadata, lock) when it changed, at most every
// snapshotIntervalMs; this book adds what only the main thread knows (the players' reconnection
// nonces, the room's options), numbers the result (`seq` per room, monotonic across restores) and
// keeps the latest one per room for the node agent, which pulls them with `GET /snapshots?after=`
// (the runtime cannot reach any platform service). Only the latest snapshot of a room is kept, so
// a slow agent costs memory per room, never per change.

/** Bytes of snapshots one `GET /snapshots` answer carries at most (the rest: `more`, next page). */
const PAGE_BYTES = 4 * 1024 * 1024;
/** Ended durable rooms remembered for the agent (it deletes their stored snapshot). */
const MAX_TOMBSTONES = 10_000;
const MAX_RESTORE = 10_000;

class SnapshotBook {
  /** @param {{serverId: string, instance: string, maxPlayers: () => number}} options */
  constructor({ serverId, instance, maxPlayers }) {
    this.serverId = serverId;
    this.instance = instance;
    this.maxPlayers = maxPlayers;
    /** A counter over every snapshot and tombstone of this process: the `after` of the agent. */
    this.cursor = 0;
    /** @type {Set<object>} rooms with a snapshot to serve */
    this.rooms = new Set();
    /** @type {Array<{room_id: string, cursor: number}>} */
    this.tombstones = [];
  }

  /**
   * The room's snapshot from its host's last body and the nonces of its players now; a new `seq`.
   * `nonceOf(pid)`: the one reconnection token nonce still good for that player (or null).
   */
  compose(rec, nonceOf) {
    const host = rec.hostSnap;
    if (!host) return;
    const nonces = {};
    for (const pid of host.pids) nonces[pid] = nonceOf(pid);
    rec.snapSeq += 1;
    this.cursor += 1;
    const head = {
      room_id: rec.id, server_id: this.serverId, instance: this.instance, seq: rec.snapSeq, cursor: this.cursor,
      taken_at: host.takenAt, first: rec.first, options: rec.options, max_players: this.maxPlayers(),
      created_at: rec.createdAt, ticks: host.ticks, nonces, bytes: host.bytes,
    };
    rec.snapText = `${JSON.stringify(head).slice(0, -1)},"body":${host.body}}`;
    rec.snapCursor = this.cursor;
    this.rooms.add(rec);
  }

  /** What the host sent: kept as text (never parsed back but for the player ids). */
  hostBody(rec, body, ticks) {
    let pids = [];
    try {
      pids = JSON.parse(body).players.map((p) => p.id);
    } catch {
      // the host sends what snapshotJson wrote: always this shape
    }
    rec.hostSnap = { body, ticks, pids, bytes: Buffer.byteLength(body), takenAt: Date.now() / 1000 };
    rec.snapError = null;
  }

  /** The room ended (disposed, failed): the agent deletes what it stored of it. */
  ended(rec) {
    if (!rec.durable) return;
    this.rooms.delete(rec);
    rec.snapText = null;
    this.cursor += 1;
    this.tombstones.push({ room_id: rec.id, cursor: this.cursor });
    if (this.tombstones.length > MAX_TOMBSTONES) this.tombstones.splice(0, this.tombstones.length - MAX_TOMBSTONES);
  }

  /** `GET /snapshots?after=<cursor>` as JSON text: the snapshots and tombstones newer than `after`. */
  page(after) {
    const newer = [];
    for (const rec of this.rooms) {
      if (rec.snapText && rec.snapCursor > after) newer.push(rec);
    }
    newer.sort((a, b) => a.snapCursor - b.snapCursor);
    const texts = [];
    let bytes = 0;
    let upTo = this.cursor;
    let more = false;
    for (const rec of newer) {
      if (texts.length && bytes + rec.snapText.length > PAGE_BYTES) {
        upTo = rec.snapCursor - 1;
        more = true;
        break;
      }
      texts.push(rec.snapText);
      bytes += rec.snapText.length;
    }
    const ended = this.tombstones.filter((t) => t.cursor > after && t.cursor <= upTo);
    const head = JSON.stringify({ server_id: this.serverId, instance: this.instance, cursor: upTo, more, ended });
    return `${head.slice(0, -1)},"snapshots":[${texts.join(',')}]}`;
  }
}

/**
 * The snapshots of a `POST /rooms/restore` body, checked: `[{room_id, seq, taken_at, body, ...}]`,
 * or a string saying what is wrong.
 */
function restoreRequest(payload) {
  const list = payload?.snapshots;
  if (!Array.isArray(list) || list.length > MAX_RESTORE) return `snapshots must be a list of at most ${MAX_RESTORE}`;
  for (const snap of list) {
    if (!snap || typeof snap !== 'object' || typeof snap.room_id !== 'string' || snap.room_id === ''
        || snap.room_id.length > 128) return 'every snapshot needs a room_id';
    if (!Number.isInteger(snap.seq) || snap.seq < 0) return `snapshot of ${snap.room_id}: seq must be an integer >= 0`;
    if (!snap.body || typeof snap.body !== 'object' || Array.isArray(snap.body)) return `snapshot of ${snap.room_id}: no body`;
    if (snap.nonces !== undefined && (snap.nonces === null || typeof snap.nonces !== 'object')) {
      return `snapshot of ${snap.room_id}: nonces must be an object`;
    }
  }
  return list;
}

/** Longest game version name a rolling update may give (`migrate.from_version`). */
const MAX_VERSION_CHARS = 128;

/**
 * The game version a `POST /rooms/restore` body migrates the rooms from (`migrate.from_version`,
 * a rolling update: onMigrate runs), null when it is no migration, or a string saying what is wrong.
 * @returns {{fromVersion: string | null} | string}
 */
function migrateRequest(payload) {
  const migrate = payload?.migrate;
  if (migrate === undefined || migrate === null) return { fromVersion: null };
  const version = typeof migrate === 'object' && !Array.isArray(migrate) ? migrate.from_version : undefined;
  if (typeof version !== 'string' || version === '' || version.length > MAX_VERSION_CHARS) {
    return `migrate.from_version must be a string of 1 to ${MAX_VERSION_CHARS} characters`;
  }
  return { fromVersion: version };
}

module.exports = { SnapshotBook, restoreRequest, migrateRequest };
