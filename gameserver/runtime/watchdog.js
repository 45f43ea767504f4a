'use strict';
// Event-loop watchdog: a game that blocks the main thread (an endless synchronous loop in a hook or
// at load time) stops answering players, /health and SIGTERM alike. A worker thread watches a
// heartbeat the main loop writes to shared memory; when the beat is older than the limit it logs
// `watchdog: event loop blocked for N ms` and ends the process with exit code 4, so the platform's
// crash handling restarts or fails the server. The worker interrupts the busy main thread through
// the in-process inspector (no port is opened, no inspector flag is needed); should that fail, it
// kills the process outright.
//
// This is a liveness aid, not a security boundary: the container's CPU, memory and pids limits are.

const { Worker } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');

const EXIT_BLOCKED = 4;

const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const fs = require('node:fs');
const beat = new Float64Array(workerData.buffer, 0, 1);
const sleeper = new Int32Array(workerData.buffer, 8, 1);
const { limitMs, checkMs, exitCode, logFd } = workerData;
// Between checks the thread sleeps in Atomics.wait rather than in a timer: a wake-up then costs no
// turn of an event loop, which on a VM is most of what the watchdog cost (bench/statesync.py).
let blocked = 0;
for (;;) {
  Atomics.wait(sleeper, 0, 0, checkMs);
  blocked = performance.timeOrigin + performance.now() - beat[0];
  if (blocked > limitMs) break;
}
try { fs.writeSync(logFd, 'watchdog: event loop blocked for ' + Math.round(blocked) + ' ms\\n'); } catch {}
try {
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connectToMainThread();
  // Node prints "Waiting for the debugger to disconnect..." to stderr when the process exits
  // while this session is connected, and no answer comes back from a busy main thread, so the
  // session cannot be closed first. The process is ending: close stderr, then exit, so that the
  // line never reaches the server's logs or its failure reason. (\`require\` comes from the
  // command-line API, so the game's globals do not matter.)
  session.post('Runtime.evaluate', {
    includeCommandLineAPI: true,
    expression: 'try { require("node:fs").closeSync(2); } catch {} process.reallyExit(' + exitCode + ')',
  });
} catch {}
// The interrupt normally ends the process at once; this is the last resort.
setTimeout(() => process.kill(process.pid, 'SIGKILL'), 2000);
`;

/** Start the watchdog; `limitMs` <= 0 disables it; its line goes to `logFd` (stderr unless told).
 *  Returns the worker (unref'd) or null. */
function startWatchdog(limitMs, { logFd = 2 } = {}) {
  if (!(limitMs > 0)) return null;
  const buffer = new SharedArrayBuffer(16); // [0] the beat (Float64), [8] what the worker sleeps on
  const beat = new Float64Array(buffer, 0, 1);
  const now = () => performance.timeOrigin + performance.now();
  beat[0] = now();
  const checkMs = Math.max(10, Math.min(250, Math.floor(limitMs / 4)));
  setInterval(() => { beat[0] = now(); }, checkMs).unref();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { buffer, limitMs, checkMs, exitCode: EXIT_BLOCKED, logFd },
    // The watchdog needs little; keep its heap small so it costs the game almost nothing.
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
    stdout: false,
    stderr: false,
  });
  worker.on('error', (err) => {
    process.stderr.write(`watchdog: worker failed: ${err && err.message}\n`);
  });
  worker.unref();
  return worker;
}

module.exports = { startWatchdog, EXIT_BLOCKED };
