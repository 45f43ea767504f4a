// Shared by the SDK's node tests: the platform to test against, a WebSocket that the tests can
// cut (a TCP reset, not a close), and small waits.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { WebSocket } from 'ws';

export const REPO = path.resolve(fileURLToPath(import.meta.url), '../../../..');

let served = null;

/**
 * `{matchmaker, servers}`: from GSF_SDK_PLATFORM (JSON, set by tests/clients/test_js_sdk.py), else
 * a platform this process starts (`python -m tests.clients.platform`) and stops when it exits.
 */
export async function platform() {
  if (process.env.GSF_SDK_PLATFORM) return JSON.parse(process.env.GSF_SDK_PLATFORM);
  if (served) return served;
  const python = path.join(REPO, '.venv', 'bin', 'python');
  const child = spawn(python, ['-m', 'tests.clients.platform', 'tests/clients/games/counter.js:16'], {
    cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`the test platform exited with ${code}`); }),
  ]);
  served = JSON.parse(line);
  // Once read, the platform must not keep this process alive: it stops when our stdin pipe closes.
  lines.close();
  child.unref();
  child.stdout.unref?.();
  child.stdin.unref?.();
  return served;
}

/** The `ws` WebSocket, remembering every socket so a test can cut one. */
export class TrackedWebSocket extends WebSocket {
  static all = [];

  constructor(url, ...rest) {
    super(url, ...rest);
    TrackedWebSocket.all.push(this);
  }

  /** Cut the TCP connection under the socket: no close frame, as when the network goes away. */
  static cutLast() {
    const ws = TrackedWebSocket.all.at(-1);
    ws._socket.destroy();
    return ws;
  }
}

/** Resolves with the arguments of the first call of `subscribe(cb)` (rejects after `ms`). */
export function next(subscribe, ms = 5000, what = 'event') {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    const off = subscribe((...args) => {
      clearTimeout(timer);
      off?.();
      resolve(args);
    });
  });
}
