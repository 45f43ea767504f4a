'use strict';
// A room worker: a worker thread that loads the game module and runs some of the server's rooms
// (room-host.js). It has its own heap (capped by resourceLimits) and event loop, so a room that
// spins or balloons takes down this worker only; the main thread's watchdog (room-pool.js) reads
// `marker` to name the room. Messages both ways are batched: one postMessage per turn of the loop.

const fs = require('node:fs');
const util = require('node:util');
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');

const { createLogger, gameStack } = require('./log');
const { RoomHost, loadGame, moduleInfo, M_BEAT, M_RUNNING, M_LAST } = require('./room-host');

const BEAT_MS = 50;

/** Synchronous writes straight to the process's fd (not through the main thread's streams). */
function fdWriter(fd) {
  return (text) => {
    const buf = Buffer.from(text);
    let off = 0;
    for (let tries = 0; off < buf.length && tries < 1000; tries += 1) {
      try {
        off += fs.writeSync(fd, buf, off);
      } catch (err) {
        if (err.code !== 'EAGAIN') return;
      }
    }
  };
}

const { gameFile, serverId, maxPlayers, maxPlayersGiven, logFd, buffer } = workerData;
const marker = new Float64Array(buffer);
const writeOut = fdWriter(1);
const log = createLogger(writeOut, fdWriter(logFd));
const now = () => performance.timeOrigin + performance.now();

// The runtime's own timers, before game code can wrap or replace them.
const { setInterval: rtSetInterval } = globalThis;
marker[M_BEAT] = now();
rtSetInterval(() => { marker[M_BEAT] = now(); }, BEAT_MS);

let host = null;
const tag = () => (host ? host.currentTag() : '');
console.log = console.info = console.debug = (...args) => log.game(args, tag());
console.warn = console.error = (...args) => log.game(args, tag(), true);
process.on('uncaughtException', (err) => {
  log.limited('uncaught exception', `uncaught exception (game code?)${tag() ? ' ' + tag().trim() : ''}`, err);
});
process.on('unhandledRejection', (reason) => {
  log.limited('unhandled rejection', `unhandled rejection (game code?)${tag() ? ' ' + tag().trim() : ''}`, reason);
});

/** Game timers carry the room that scheduled them, so a spin inside one is blamed on that room. */
function wrapTimers() {
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    const original = globalThis[name];
    globalThis[name] = function scheduled(fn, ...rest) {
      if (typeof fn !== 'function' || host === null) return original(fn, ...rest);
      const seq = marker[M_RUNNING] || marker[M_LAST];
      const args = name === 'setImmediate' ? rest : rest.slice(1);
      const wrapped = () => host.runAs(seq, fn, args);
      return name === 'setImmediate' ? original(wrapped) : original(wrapped, rest[0]);
    };
    // util.promisify(setTimeout) keeps working.
    if (original[util.promisify.custom]) globalThis[name][util.promisify.custom] = original[util.promisify.custom];
  }
}

let outbox = [];
let flushing = false;
function flush() {
  flushing = false;
  const batch = outbox;
  outbox = [];
  parentPort.postMessage(batch);
}
function emit(msg) {
  outbox.push(msg);
  if (!flushing) {
    flushing = true;
    queueMicrotask(flush);
  }
}

(async () => {
  let game;
  try {
    game = await loadGame(gameFile, maxPlayersGiven);
  } catch (err) {
    parentPort.postMessage([{ t: 'loadFailed', stack: gameStack(err) }]);
    return;
  }
  host = new RoomHost({ game, serverId, maxPlayers: maxPlayersGiven ? maxPlayers : (game.maxPlayers ?? maxPlayers),
    logger: log, emit, marker });
  wrapTimers();
  parentPort.on('message', (batch) => {
    for (const msg of batch) host.handle(msg);
  });
  parentPort.postMessage([{ t: 'loaded', info: moduleInfo(game) }]);
})();
