'use strict';
// The runtime's log lines, shared by the main thread and the room workers so both write the same
// formats: `event key=value ...` on stdout, failures (with the game's part of the stack) on stderr,
// and `[game] ...` for the game's own output. Lines about a room other than the server's first one
// carry `room=<id>`; lines without it are about the first room (whose id is the server id), which
// keeps every line of a one-room server exactly as it was before rooms.

const util = require('node:util');

const MAX_LOG_CHARS = 4096;
const LOG_LINES_PER_SECOND = 5; // stacks per kind of failure per second; the rest are counted

function fmtValue(value) {
  const text = String(value);
  return /^[^\s"=\\\p{C}]+$/u.test(text) ? text : JSON.stringify(text);
}

function eventLine(event, fields = {}) {
  let line = event;
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) line += ` ${key}=${fmtValue(value)}`;
  }
  return line + '\n';
}

/** The stack without the runtime's own frames: what a game author needs is where their code threw. */
function gameStack(err) {
  if (!(err instanceof Error)) return util.inspect(err);
  const lines = String(err.stack || err).split('\n');
  const cut = lines.findIndex((line, i) => i > 0
    && (line.includes(__dirname) || line.includes('(node:internal/')));
  return (cut > 0 ? lines.slice(0, cut) : lines).join('\n');
}

function errorDetail(err, gameOnly) {
  if (gameOnly) return gameStack(err);
  return err instanceof Error ? (err.stack || String(err)) : util.inspect(err);
}

/** `[game] ` lines of console-style arguments; `tag` is `room=<id> ` or '' (first room). */
function gameText(args, tag = '') {
  let text = util.formatWithOptions({ depth: 4, breakLength: Infinity, colors: false }, ...args);
  if (text.length > MAX_LOG_CHARS) text = text.slice(0, MAX_LOG_CHARS) + ' …[truncated]';
  return text.split('\n').map((line) => `[game] ${tag}${line}\n`).join('');
}

/**
 * At most `perSecond` lines per kind of failure (a hook, unhandled rejections, uncaught
 * exceptions) per second; the rest are counted and summed up in one line when the second is over,
 * so a game failing in a tight timer loop cannot flood the node's logs (and its neighbours' CPU).
 */
class LogLimiter {
  constructor(perSecond, writeErr) {
    this.perSecond = perSecond;
    this.writeErr = writeErr;
    /** @type {Map<string, {windowStart: number, logged: number, suppressed: number, timer: any}>} */
    this.windows = new Map();
  }

  /** True when a line of this kind may be written now; false when it is counted instead. */
  allow(kind) {
    const now = Date.now();
    let window = this.windows.get(kind);
    if (window && now - window.windowStart >= 1000) {
      this.flush(kind);
      window = undefined;
    }
    if (!window) {
      window = { windowStart: now, logged: 0, suppressed: 0, timer: null };
      this.windows.set(kind, window);
    }
    if (window.logged < this.perSecond) {
      window.logged += 1;
      return true;
    }
    window.suppressed += 1;
    if (window.timer === null) {
      // The summary comes when the second ends, even if the failures stop.
      window.timer = setTimeout(() => this.flush(kind), Math.max(0, window.windowStart + 1000 - now));
      window.timer.unref();
    }
    return false;
  }

  /** Write the summary of a kind's window (if anything was suppressed) and close the window. */
  flush(kind) {
    const window = this.windows.get(kind);
    if (!window) return;
    this.windows.delete(kind);
    clearTimeout(window.timer);
    if (window.suppressed > 0) this.writeErr(`${kind}: ${window.suppressed} similar lines suppressed\n`);
  }

  flushAll() {
    for (const kind of Array.from(this.windows.keys())) this.flush(kind);
  }
}

/**
 * A logger over two write functions (stdout, stderr). The main thread passes the process streams'
 * synchronous writes; a worker passes fs.writeSync on fds 1 and 2, so its lines are not queued
 * behind the main thread (and are not lost when the worker is terminated).
 */
function createLogger(writeOut, writeErr) {
  const limiter = new LogLimiter(LOG_LINES_PER_SECOND, writeErr);
  return {
    writeOut,
    writeErr,
    limiter,
    event(event, fields) { writeOut(eventLine(event, fields)); },
    error(message, err, { gameOnly = false } = {}) { writeErr(`${message}: ${errorDetail(err, gameOnly)}\n`); },
    /** error() through the limiter: `kind` names the failure the summary line counts. */
    limited(kind, message, err, options) {
      if (limiter.allow(kind)) this.error(message, err, options);
    },
    game(args, tag, toErr = false) { (toErr ? writeErr : writeOut)(gameText(args, tag)); },
  };
}

module.exports = { createLogger, eventLine, fmtValue, gameStack, gameText, LogLimiter, MAX_LOG_CHARS };
