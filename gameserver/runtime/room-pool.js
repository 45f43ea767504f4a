'use strict';
// Where a server's rooms run, seen from the main thread. ThreadLink: in the main thread itself
// (one-room servers and GSF_ROOM_WORKERS=0: exactly the old runtime, the process watchdog covers
// spins). RoomPool: a few room workers (worker_threads with a capped heap); its hook watchdog ends
// a worker whose room code runs past the hook timeout, names the room from the worker's marker,
// and starts a fresh worker in its place at once.

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');

const { HOOKS } = require('./room-core');
const { RoomHost, MARKER_SLOTS, M_RUNNING, M_SINCE, M_LAST, M_BEAT, M_TICKS, M_HOOK } = require('./room-host');

const now = () => performance.timeOrigin + performance.now();
const WORKER_FILE = path.join(__dirname, 'room-worker.js');

class ThreadLink {
  constructor({ game, serverId, maxPlayers, logger, onMessage }) {
    this.kind = 'thread';
    this.index = 0;
    this.alive = true;
    this.rooms = new Set();
    this.marker = new Float64Array(MARKER_SLOTS);
    this.host = new RoomHost({ game, serverId, maxPlayers, logger, marker: this.marker,
      emit: (msg) => onMessage(msg, this) });
  }

  post(msg) {
    this.host.handle(msg);
  }

  currentTag() {
    return this.host.currentTag();
  }
}

/** The game module failed to load in a room worker (exit 3, like a load failure in the main thread). */
class LoadError extends Error {
  constructor(stack, blocked = false) {
    super(stack);
    this.gameStack = stack;
    this.blocked = blocked;
  }
}

class WorkerLink {
  constructor(pool, index) {
    this.kind = 'worker';
    this.pool = pool;
    this.index = index;
    this.alive = true;
    this.loaded = false;
    this.rooms = new Set();
    this.killed = null;
    this.oom = false;
    this.error = null;
    this.queue = [];
    this.scheduled = false;
    const buffer = new SharedArrayBuffer(MARKER_SLOTS * 8);
    this.marker = new Float64Array(buffer);
    this.marker[M_BEAT] = now();
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    const o = pool.options;
    this.worker = new Worker(WORKER_FILE, {
      workerData: { gameFile: o.gameFile, serverId: o.serverId, maxPlayers: o.maxPlayers,
        maxPlayersGiven: o.maxPlayersGiven, logFd: o.logFd, buffer },
      resourceLimits: { maxOldGenerationSizeMb: o.memoryMb },
      stdout: false,
      stderr: false,
    });
    this.worker.on('message', (batch) => {
      for (const msg of batch) {
        if (msg.t === 'loaded') {
          this.loaded = true;
          this.resolveReady(msg.info);
        } else if (msg.t === 'loadFailed') {
          this.rejectReady(new LoadError(msg.stack));
        } else {
          pool.options.onMessage(msg, this);
        }
      }
    });
    this.worker.on('error', (err) => {
      if (err && err.code === 'ERR_WORKER_OUT_OF_MEMORY') this.oom = true;
      else this.error = err;
    });
    this.worker.on('exit', (code) => pool.ended(this, code));
  }

  post(msg) {
    if (!this.alive) return;
    this.queue.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush() {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (this.alive && batch.length) this.worker.postMessage(batch);
  }

  currentTag() {
    return '';
  }
}

class RoomPool {
  /**
   * @param {{size: number, memoryMb: number, hookTimeoutMs: number, gameFile: string, serverId: string,
   *          maxPlayers: number, maxPlayersGiven: boolean, logFd: number,
   *          onMessage: (msg: object, link: WorkerLink) => void,
   *          onWorkerEnded: (link: WorkerLink, culpritSeq: number, reason: string, replacement: WorkerLink | null) => void
   *         }} options
   */
  constructor(options) {
    this.options = options;
    this.links = [];
    this.stopping = false;
    this.deadTicks = 0;
    this.timer = null;
  }

  /** Start the workers; resolves with the module's info, rejects with LoadError. */
  async start() {
    for (let i = 0; i < this.options.size; i += 1) this.links.push(new WorkerLink(this, i));
    const period = Math.max(10, Math.min(100, Math.floor(this.options.hookTimeoutMs / 4)));
    this.timer = setInterval(() => this.check(), period);
    this.timer.unref();
    const infos = await Promise.all(this.links.map((link) => link.ready));
    return infos[0];
  }

  /** The live worker with the fewest rooms. */
  pick() {
    let best = null;
    for (const link of this.links) {
      if (link.alive && (best === null || link.rooms.size < best.rooms.size)) best = link;
    }
    return best;
  }

  get ticks() {
    return this.links.reduce((sum, link) => sum + link.marker[M_TICKS], this.deadTicks);
  }

  /** The hook watchdog: one timer for all workers, reading their markers. */
  check() {
    const t = now();
    const limit = this.options.hookTimeoutMs;
    for (const link of this.links) {
      if (!link.alive || link.killed) continue;
      const running = link.marker[M_RUNNING];
      if (running && t - link.marker[M_SINCE] > limit) {
        const hook = HOOKS[link.marker[M_HOOK]];
        this.kill(link, running, `${hook ? `hook ${hook}` : 'a timer of the room'} ran longer than ${limit} ms`);
      } else if (t - link.marker[M_BEAT] > limit + 100) {
        const last = link.marker[M_LAST];
        this.kill(link, last, link.loaded ? `the room's code blocked its worker for more than ${limit} ms`
          : `the game module blocked its worker for more than ${limit} ms while loading`);
      }
    }
  }

  kill(link, seq, reason) {
    link.killed = { seq, reason };
    link.worker.terminate();
  }

  ended(link, code) {
    if (!link.alive && link.endedHandled) return;
    link.alive = false;
    link.endedHandled = true;
    this.deadTicks += link.marker[M_TICKS];
    let culprit = 0;
    let reason;
    if (link.killed) {
      culprit = link.killed.seq;
      reason = link.killed.reason;
    } else if (link.oom) {
      culprit = link.marker[M_RUNNING] || link.marker[M_LAST];
      reason = `out of memory: the room worker's heap limit (${this.options.memoryMb} MB) was reached`;
    } else {
      reason = `its room worker exited (${link.error ? link.error.message : `code ${code}`})`;
    }
    if (!link.loaded) {
      link.rejectReady(new LoadError(reason, Boolean(link.killed)));
      return;
    }
    let replacement = null;
    if (!this.stopping) {
      replacement = new WorkerLink(this, link.index);
      this.links[link.index] = replacement;
      replacement.ready.catch((err) => {
        this.options.onReplacementFailed?.(err);
      });
    }
    this.options.onWorkerEnded(link, culprit, reason, replacement);
  }

  stop() {
    this.stopping = true;
    clearInterval(this.timer);
  }
}

module.exports = { ThreadLink, RoomPool, LoadError };
