'use strict';
// Runs the rooms of one game module in one thread: the main thread (one-room servers, or
// GSF_ROOM_WORKERS=0) or a room worker (room-worker.js). It speaks only messages with the main
// thread, which owns sockets, seat tokens and routing, so the same code serves both placements.
//
//   main -> host  create {seq, id, options, first} · join {seq, pid, name, cid, welcome} · frame {seq, pid, text}
//                 leave {seq, pid, silent} · drop {seq, pid, reason} · reconnect {seq, pid, cid, welcome}
//                 dispose {seq} · query {seq, qid} · shutdown {keep: [seq]}
//                 restore {seq, id, options, first, body, info}   (a durable room from its snapshot;
//                 info {ageMs, seq, from, takenAt, fromVersion}: from 'migrate' runs onMigrate first)
//   host -> main  created {seq, ok, error} · joined {seq, pid, cid, ok, error, frames, reconnected}
//                 out {seq, pids, text} · meta {seq, locked, metadata} · disposed {seq} · state {qid, ...}
//                 shutdown_done {} · snap {seq, body, ticks} | {seq, error} · restored {seq, ok, error}
// Durable rooms (docs/writing-a-game.md "Durable rooms"): one timer per thread, running only while
// the thread has a durable room, serializes each durable room at most every snapshotIntervalMs and
// sends the text when it changed; non-durable rooms are never looked at.
// `welcome` holds the fields only the main thread knows (the reconnection token it signed).
//
// `marker` (a Float64Array, shared with the main thread when in a worker) says which room's code
// runs and since when, so the main thread's hook watchdog can name the room that spun or ballooned:
// [0] room seq running now (0 = none), [1] since (ms, epoch), [2] room seq that ran last,
// [3] heartbeat of this thread's event loop, [4] ticks, [5] index of the hook (-1: a game timer).

const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { pathToFileURL } = require('node:url');

const {
  RoomCore, checkModule, effectiveTickRate, stateJson, errorMessage, reconnectSecondsOf, patchRateOf, HOOKS,
  isDurable, snapshotIntervalOf,
} = require('./room-core');
const { fmtValue, gameStack } = require('./log');

const M_RUNNING = 0;
const M_SINCE = 1;
const M_LAST = 2;
const M_BEAT = 3;
const M_TICKS = 4;
const M_HOOK = 5;
const MARKER_SLOTS = 8;
const DISPOSE_TIMEOUT_MS = 1000;
/** A durable room's snapshot body larger than this is not taken (the room's /status says why). */
const MAX_SNAPSHOT_BYTES = Number(process.env.GSF_SNAPSHOT_MAX_BYTES) > 0
  ? Number(process.env.GSF_SNAPSHOT_MAX_BYTES) : 256 * 1024;

const now = () => performance.timeOrigin + performance.now();
// The runtime's own timers, taken before a room worker wraps the globals for game code.
const { setTimeout: rtSetTimeout, clearTimeout: rtClearTimeout, setInterval: rtSetInterval,
  clearInterval: rtClearInterval } = globalThis;

/** Load the game module (.mjs through import(), else require) and check its exports. */
async function loadGame(file, maxPlayersGiven) {
  if (!file) throw new Error('GSF_GAME_FILE is not set');
  const abs = path.resolve(file);
  let mod;
  if (path.extname(abs).toLowerCase() === '.mjs') {
    const ns = await import(pathToFileURL(abs).href);
    mod = ns.default !== undefined ? ns.default : ns;
  } else {
    mod = require(abs);
  }
  return checkModule(mod, maxPlayersGiven);
}

/** What the main thread needs to know of a loaded module. */
function moduleInfo(game) {
  return {
    maxPlayers: game.maxPlayers ?? null,
    tickRate: effectiveTickRate(game),
    maxRooms: game.maxRooms ?? null,
    emptyRoomSeconds: game.emptyRoomSeconds ?? null,
    hasTick: typeof game.onTick === 'function',
    reconnectSeconds: reconnectSecondsOf(game),
    patchRateMs: patchRateOf(game),
    durable: game.durable === true,
    snapshotIntervalMs: snapshotIntervalOf(game),
  };
}

class RoomHost {
  /**
   * @param {{game: object, serverId: string, maxPlayers: number, logger: object, emit: (msg: object) => void,
   *          marker: Float64Array}} options
   */
  constructor({ game, serverId, maxPlayers, logger, emit, marker }) {
    this.game = game;
    this.serverId = serverId;
    this.maxPlayers = maxPlayers;
    this.log = logger;
    this.emit = emit;
    this.marker = marker;
    this.tickRate = effectiveTickRate(game);
    this.patchRate = patchRateOf(game);
    /** One patch timer for every room of this thread, running only while some room has players. */
    this.syncTimer = null;
    /**
     * Rooms that tick at least as often as they patch send their patches right after a tick (when
     * one is due) instead: one timer wake-up per tick instead of two, and the patch holds that tick.
     */
    this.syncOnTick = this.patchRate > 0 && this.tickRate > 0 && typeof game.onTick === 'function'
      && 1000 / this.tickRate <= this.patchRate;
    /** Durable rooms: their snapshot timer runs only while this thread has one. */
    this.snapshotEvery = snapshotIntervalOf(game);
    this.snapTimer = null;
    this.durable = new Set();
    this.shuttingDown = false;
    /** @type {Map<number, {core: RoomCore, seq: number, ready: Promise<boolean> | null, created: boolean, tickTimer: any}>} */
    this.rooms = new Map();
    const host = this;
    this.events = {
      out(pids, text) { host.emit({ t: 'out', seq: this.seq, pids, text }); },
      log(lines, core) {
        const tag = core.first ? '' : `room=${fmtValue(core.id)} `;
        host.log.writeOut(lines.map((line) => `[game] ${tag}${line}\n`).join(''));
      },
      hookError() {},
      metadata(core) { host.emitMeta(core); },
      locked(core) {
        host.log.event(core.locked ? 'lock' : 'unlock', { room: host.roomField(core),
          players: `${core.members.size}/${core.maxPlayers}` });
        host.emitMeta(core);
      },
      joined(member, frames, reconnected = false) {
        host.emit({ t: 'joined', seq: this.seq, pid: member.player.id, cid: member.cid, ok: true, frames, reconnected });
      },
      enter(core, hook) { host.enter(core.seq, HOOKS.indexOf(hook)); },
      leave() { host.leave(); },
    };
  }

  roomField(core) {
    return core.first ? undefined : core.id;
  }

  /** `room=<id> ` for lines about a room other than the first; '' otherwise. */
  tagOf(seq) {
    const entry = this.rooms.get(seq);
    return entry && !entry.core.first ? `room=${fmtValue(entry.core.id)} ` : '';
  }

  /** The room whose code runs now (or ran last): what console.* and uncaught failures belong to. */
  currentTag() {
    return this.tagOf(this.marker[M_RUNNING] || this.marker[M_LAST]);
  }

  enter(seq, hookIndex) {
    this.marker[M_SINCE] = now();
    this.marker[M_HOOK] = hookIndex;
    this.marker[M_LAST] = seq;
    this.marker[M_RUNNING] = seq;
  }

  leave() {
    this.marker[M_RUNNING] = 0;
  }

  /** Run `fn` as code of room `seq` (a game timer's callback), so the watchdog can name it. */
  runAs(seq, fn, args) {
    if (!seq) return fn(...args);
    const previous = this.marker[M_RUNNING];
    this.enter(seq, -1);
    try {
      return fn(...args);
    } finally {
      this.marker[M_RUNNING] = previous;
      if (previous) this.marker[M_SINCE] = now();
    }
  }

  emitMeta(core) {
    this.emit({ t: 'meta', seq: core.seq, locked: core.locked, metadata: core.metadata });
  }

  handle(msg) {
    switch (msg.t) {
      case 'create': this.create(msg); break;
      case 'join': this.whenReady(msg, (entry) => this.join(entry, msg)); break;
      case 'frame': this.whenReady(msg, (entry) => { entry.core.frame(msg.pid, msg.text); }); break;
      case 'leave': this.whenReady(msg, (entry) => {
        entry.core.leave(msg.pid, { silent: msg.silent || this.shuttingDown });
      }); break;
      case 'drop': this.whenReady(msg, (entry) => { entry.core.drop(msg.pid, msg.reason); }); break;
      case 'reconnect': this.whenReady(msg, (entry) => { entry.core.reconnect(msg.pid, msg.cid, msg.welcome); }); break;
      case 'dispose': this.dispose(msg.seq); break;
      case 'restore': this.restore(msg); break;
      case 'query': this.query(msg); break;
      case 'shutdown': this.shutdown(msg.keep); break;
      default: break;
    }
  }

  whenReady(msg, fn) {
    const entry = this.rooms.get(msg.seq);
    if (!entry) return;
    if (entry.created) fn(entry);
    else entry.ready.then((ok) => { if (ok && this.rooms.get(msg.seq) === entry) fn(entry); });
  }

  /** A new room of this thread (not created yet): its RoomCore, whose events carry its seq, and its entry. */
  addEntry({ seq, id, options, first }, fields) {
    const events = { ...this.events, seq };
    const core = new RoomCore({ game: this.game, id, serverId: this.serverId, options: options ?? {},
      maxPlayers: this.maxPlayers, first, events });
    core.seq = seq;
    events.hookError = (hook, error, pid) => this.reportHookError(core, hook, error, pid);
    const entry = { core, seq, ready: null, created: false, tickTimer: null, ticks: 0, nextSync: 0, lastSnap: null,
      durable: false, ...fields };
    this.rooms.set(seq, entry);
    return entry;
  }

  create(msg) {
    const entry = this.addEntry(msg, { durable: isDurable(this.game, msg.options) });
    const { core, seq } = entry;
    entry.ready = (async () => {
      const result = await core.create();
      if (!result.ok) {
        this.rooms.delete(seq);
        const error = result.error;
        this.emit({ t: 'created', seq, ok: false, error: errorMessage(error), stack: gameStack(error) });
        return false;
      }
      entry.created = true;
      this.emit({ t: 'created', seq, ok: true });
      if (core.locked || Object.keys(core.metadata).length) this.emitMeta(core);
      if (this.tickRate > 0 && typeof this.game.onTick === 'function' && !this.shuttingDown) this.startTicks(entry);
      if (entry.durable) this.addDurable(entry);
      return true;
    })();
    return entry;
  }

  /**
   * A durable room back from its snapshot: into the room of that seq when it exists (the first
   * room, created at start and still empty), else a new room without onCreate; then onMigrate (a
   * rolling update: a failure refuses the room) and onRestore.
   */
  restore(msg) {
    let entry = this.rooms.get(msg.seq);
    const run = async () => {
      if (entry.created && entry.core.members.size > 0) {
        this.emit({ t: 'restored', seq: msg.seq, ok: false, error: 'the room already has players' });
        return;
      }
      const result = await entry.core.restore(msg.body, msg.info);
      if (result.migrateFailed) { // the room stays on its old version: nothing of it is kept here
        if (!entry.created) this.rooms.delete(msg.seq);
        this.emit({ t: 'restored', seq: msg.seq, ok: false, error: `onMigrate failed: ${errorMessage(result.error)}` });
        return;
      }
      entry.durable = true;
      // The snapshot is the last one taken: no new one until the room changes. A migrated room's
      // is of the old version: the new version's state is stored at the next round.
      try {
        entry.lastSnap = msg.info?.from === 'migrate' ? null : entry.core.snapshotJson();
      } catch {
        entry.lastSnap = null;
      }
      entry.ticks = Number(msg.ticks) || 0;
      if (!entry.created) {
        entry.created = true;
        if (this.tickRate > 0 && typeof this.game.onTick === 'function' && !this.shuttingDown) this.startTicks(entry);
      }
      this.addDurable(entry);
      this.emitMeta(entry.core);
      this.emit({ t: 'restored', seq: msg.seq, ok: true, error: result.ok ? null : errorMessage(result.error) });
    };
    if (entry) {
      entry.ready.then((ok) => (ok ? run() : this.emit({ t: 'restored', seq: msg.seq, ok: false, error: 'onCreate failed' })));
      return;
    }
    entry = this.addEntry(msg, { ready: Promise.resolve(true), durable: true });
    run();
  }

  addDurable(entry) {
    this.durable.add(entry);
    if (this.snapTimer !== null || this.shuttingDown) return;
    this.snapTimer = rtSetInterval(() => this.snapshotRound(), this.snapshotEvery);
  }

  /** One round: each durable room serialized; sent to the main thread when it changed. */
  snapshotRound() {
    for (const entry of this.durable) {
      if (this.rooms.get(entry.seq) !== entry || entry.core.disposed) {
        this.durable.delete(entry);
        continue;
      }
      this.snapshot(entry);
    }
    if (this.durable.size === 0 || this.shuttingDown) {
      rtClearInterval(this.snapTimer);
      this.snapTimer = null;
    }
  }

  snapshot(entry) {
    let body;
    try {
      body = entry.core.snapshotJson();
    } catch (err) {
      if (entry.lastSnap !== 'error') this.emit({ t: 'snap', seq: entry.seq, error: `state is not JSON-serializable: ${errorMessage(err)}` });
      entry.lastSnap = 'error';
      return;
    }
    if (body === entry.lastSnap) return;
    if (body.length * 3 > MAX_SNAPSHOT_BYTES && Buffer.byteLength(body) > MAX_SNAPSHOT_BYTES) {
      if (entry.lastSnap !== 'too_big') {
        this.emit({ t: 'snap', seq: entry.seq, error: `the snapshot is larger than ${MAX_SNAPSHOT_BYTES} bytes` });
      }
      entry.lastSnap = 'too_big';
      return;
    }
    entry.lastSnap = body;
    this.emit({ t: 'snap', seq: entry.seq, body, ticks: entry.ticks });
  }

  async join(entry, { pid, name, cid, welcome }) {
    this.startSync();
    const result = await entry.core.join(pid, name, cid, welcome);
    // A success was told through events.joined, at the moment the player joined.
    if (!result.ok) this.emit({ t: 'joined', seq: entry.seq, pid, cid, ok: false, error: errorMessage(result.error) });
  }

  reportHookError(core, hook, err, pid) {
    if (hook === 'onCreate') return; // the room's failure, which the main thread reports
    const room = core.first ? '' : ` room=${fmtValue(core.id)}`;
    this.log.limited(`hook ${hook} failed`,
      `hook ${hook} failed${room}${pid !== null ? ` player=${fmtValue(pid)}` : ''}`, err, { gameOnly: true });
  }

  startTicks(entry) {
    const interval = 1000 / this.tickRate;
    let last = performance.now();
    let next = last + interval;
    let running = false;
    const step = () => {
      if (this.shuttingDown || this.rooms.get(entry.seq) !== entry) return;
      const t = performance.now();
      if (!running) { // an async onTick still running makes this tick wait; dt keeps growing
        const dt = t - last;
        last = t;
        this.marker[M_TICKS] += 1;
        entry.ticks += 1;
        running = true;
        entry.core.tick(dt).then(() => { running = false; });
      }
      if (this.syncOnTick && t >= entry.nextSync - interval / 2) {
        entry.nextSync = Math.max(entry.nextSync + this.patchRate, t);
        entry.core.sync();
      }
      next += interval;
      if (next < t) next = t + interval; // fell behind: skip, do not burst
      entry.tickTimer = rtSetTimeout(step, Math.max(0, next - performance.now()));
    };
    entry.tickTimer = rtSetTimeout(step, interval);
  }

  /** Patches at the module's patch rate; the timer stops by itself when no room has players. */
  startSync() {
    if (this.patchRate === 0 || this.syncOnTick || this.syncTimer !== null || this.shuttingDown) return;
    this.syncTimer = rtSetInterval(() => {
      let players = 0;
      for (const entry of this.rooms.values()) {
        if (!entry.created) continue;
        players += entry.core.members.size;
        entry.core.sync();
      }
      if (players === 0 || this.shuttingDown) {
        rtClearInterval(this.syncTimer);
        this.syncTimer = null;
      }
    }, this.patchRate);
  }

  async dispose(seq) {
    const entry = this.rooms.get(seq);
    if (!entry) {
      this.emit({ t: 'disposed', seq });
      return;
    }
    this.rooms.delete(seq);
    this.durable.delete(entry);
    rtClearTimeout(entry.tickTimer);
    if (entry.created) await entry.core.dispose();
    this.emit({ t: 'disposed', seq });
  }

  query({ seq, qid }) {
    const entry = this.rooms.get(seq);
    const state = entry ? stateJson(entry.core.room.state) : { text: null, truncated: false, error: 'no such room' };
    this.emit({ t: 'state', qid, ...state });
  }

  /** Dispose every room but those of `keep` (seqs: durable rooms moving elsewhere), then say so. */
  async shutdown(keep = []) {
    this.shuttingDown = true;
    rtClearInterval(this.syncTimer);
    rtClearInterval(this.snapTimer);
    const kept = new Set(keep);
    const disposing = [];
    for (const entry of this.rooms.values()) {
      rtClearTimeout(entry.tickTimer);
      if (entry.created && !kept.has(entry.seq)) disposing.push(entry.core.dispose());
    }
    await Promise.race([Promise.all(disposing),
      new Promise((resolve) => { rtSetTimeout(resolve, DISPOSE_TIMEOUT_MS).unref(); })]);
    this.emit({ t: 'shutdown_done' });
  }
}

module.exports = { RoomHost, loadGame, moduleInfo, MARKER_SLOTS, M_RUNNING, M_SINCE, M_LAST, M_BEAT, M_TICKS, M_HOOK };
