'use strict';
// The players of bench/rooms.py: one Node process that holds thousands of WebSocket connections
// with little client cost, and times joins and echo round trips the same way for both sides.
//
//   node rooms_client.js gsf <matchmaker url> <game>    the platform: POST /join|/create, then the
//                                                       seat's ws_url (`ws` of the runtime's node_modules)
//   node rooms_client.js colyseus <http url>            Colyseus 0.17 through its own SDK (@colyseus/sdk)
//
// Commands arrive on stdin, one JSON object a line ({id, op, ...}); each is answered on stdout with
// one line {id, ok, result} or {id, ok: false, error} (bench/ws_client_common.js). Modules come from NODE_PATH.

const { performance } = require('node:perf_hooks');
const { serve, targetArgs } = require('./ws_client_common.js');

const [target, url, game] = targetArgs('rooms_client.js gsf <matchmaker url> <game> | colyseus <http url>');

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const groups = new Map(); // name -> [conn]
let seq = 0;

function group(name) {
  if (!groups.has(name)) groups.set(name, []);
  return groups.get(name);
}

/** Players of ours connected in `room` now, across groups: a join into a room with none opened it. */
function occupied(room) {
  for (const conns of groups.values()) {
    if (conns.some((c) => c.room === room && !c.closed)) return true;
  }
  return false;
}

// --- one connection, both sides ---------------------------------------------------------------------

class Conn {
  constructor(room, server) {
    this.room = room;
    this.server = server;
    this.pending = new Map(); // seq -> [t0, resolve]
    this.closed = false;
    this.closeCode = null;
    this.closedAt = null;
    this.onClosed = [];
  }

  echoed(data) {
    const entry = data && this.pending.get(data.s);
    if (!entry) return;
    this.pending.delete(data.s);
    entry[1](now() - entry[0]);
  }

  ended(code) {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.closedAt = now();
    for (const [, [, resolve]] of this.pending) resolve(null);
    this.pending.clear();
    for (const fn of this.onClosed) fn();
  }

  /** One echo round trip in ms; null if the connection closed or nothing came back within timeoutMs. */
  ping(payload, timeoutMs) {
    if (this.closed) return Promise.resolve(null);
    seq += 1;
    const s = seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.pending.delete(s); resolve(null); }, timeoutMs);
      this.pending.set(s, [now(), (ms) => { clearTimeout(timer); resolve(ms); }]);
      this.send('echo', { s, p: payload });
    });
  }

  waitClosed(timeoutMs) {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onClosed.push(() => { clearTimeout(timer); resolve(); });
    });
  }
}

// --- the platform: matchmaker seat, then the runtime's WebSocket ---------------------------------

let gsf = null;
if (target === 'gsf') {
  const { WebSocket } = require('ws');

  class GsfConn extends Conn {
    constructor(ws, room, server) {
      super(room, server);
      this.ws = ws;
    }

    send(type, data) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, data }));
    }

    close() { this.ws.close(1000); }
  }

  function claims(token) {
    try {
      return JSON.parse(Buffer.from(String(token).split('.')[0], 'base64url').toString());
    } catch {
      return {};
    }
  }

  async function seat(path, body) {
    const resp = await fetch(url + path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const text = await resp.text();
    if (resp.status !== 200) throw new Error(`POST ${path} ${resp.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  /** Seat + WebSocket open + welcome frame, timed part by part. */
  async function join(path, body) {
    const t0 = now();
    const s = await seat(path, body);
    const t1 = now();
    const c = claims(s.token);
    const room = s.room_id || c.rid || s.server_id;
    const ws = new WebSocket(s.ws_url);
    const conn = new GsfConn(ws, room, s.server_id);
    let t2 = 0;
    await new Promise((resolve, reject) => {
      ws.on('open', () => { t2 = now(); });
      ws.on('message', (raw) => {
        let frame;
        try { frame = JSON.parse(raw.toString()); } catch { return; }
        if (frame.type === 'echo') conn.echoed(frame.data);
        else if (frame.type === 'welcome') resolve();
      });
      ws.on('close', (code) => { conn.ended(code); reject(new Error(`closed ${code} before welcome`)); });
      ws.on('error', (err) => reject(err));
      ws.on('unexpected-response', (req, res) => {
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
        res.resume();
      });
    });
    const t3 = now();
    return { conn, ms: t3 - t0, seat_ms: t1 - t0, open_ms: t2 - t1, welcome_ms: t3 - t2, claimed_new: 'new' in c };
  }

  gsf = {
    joinOrCreate: (opts) => join('/join', { game: opts.game || game }),
    create: (opts) => join('/create', { game: opts.game || game }),
    joinId: (id) => join('/join', { server_id: id }),
  };
}

// --- Colyseus: its SDK does the matchmaking request, the WebSocket and the join handshake ------------

let colyseus = null;
if (target === 'colyseus') {
  const { Client } = require('@colyseus/sdk');
  const clients = new Map(); // server url -> SDK client
  const clientFor = (at) => {
    if (!clients.has(at)) clients.set(at, new Client(at));
    return clients.get(at);
  };

  class ColyseusConn extends Conn {
    constructor(room) {
      super(room.roomId, 'colyseus');
      this.r = room;
    }

    send(type, data) { if (!this.closed) this.r.send(type, data); }

    close() { this.r.leave(true).catch(() => {}); }
  }

  async function join(how, opts) {
    const t0 = now();
    const room = await clientFor(opts.url || url)[how]('echo');
    const t1 = now();
    const conn = new ColyseusConn(room);
    room.onMessage('echo', (data) => conn.echoed(data));
    room.onLeave((code) => conn.ended(code));
    room.onError(() => {});
    return { conn, ms: t1 - t0 };
  }

  colyseus = { joinOrCreate: (opts) => join('joinOrCreate', opts), create: (opts) => join('create', opts) };
}

const side = gsf || colyseus;

// --- operations ------------------------------------------------------------------------------------

/** `n` rooms with one player each, `concurrency` at a time: how = create | ids (join these rooms). */
async function fill({ group: name, n, how = 'create', ids = [], concurrency = 16, game: g, url: u }) {
  const conns = group(name);
  const errors = [];
  let next = 0;
  let opened = 0;
  const t0 = now();
  async function worker() {
    while (next < n) {
      const i = next;
      next += 1;
      try {
        const got = how === 'ids' ? await side.joinId(ids[i % ids.length]) : await side.create({ game: g, url: u });
        conns.push(got.conn);
        opened += 1;
      } catch (err) {
        if (errors.length < 5) errors.push(String(err.message || err));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  return { opened, failed: n - opened, errors, seconds: (now() - t0) / 1000,
    rooms: new Set(conns.map((c) => c.room)).size };
}

/**
 * `n` WebSocket connections to `ws` with no matchmaker in between (the bench's floor figures: a raw
 * echo server, or a runtime that takes connections without seat tokens); `welcome`: wait for it.
 */
async function open({ group: name, n, ws: wsUrl, welcome = false }) {
  const { WebSocket } = require('ws');
  const conns = group(name);
  for (let i = 0; i < n; i += 1) {
    const ws = new WebSocket(wsUrl);
    const conn = new Conn(`${name}-${i}`, wsUrl);
    conn.send = (type, data) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type, data })); };
    conn.close = () => ws.close(1000);
    await new Promise((resolve, reject) => {
      ws.on('open', () => { if (!welcome) resolve(); });
      ws.on('message', (raw) => {
        let frame;
        try { frame = JSON.parse(raw.toString()); } catch { return; }
        if (frame.type === 'echo') conn.echoed(frame.data);
        else if (frame.type === 'welcome') resolve();
      });
      ws.on('close', (code) => { conn.ended(code); reject(new Error(`closed ${code}`)); });
      ws.on('error', reject);
    });
    conns.push(conn);
  }
  return { opened: conns.length };
}

/** `n` sequential joinOrCreate; whether each opened a room is known before it (we are the only players). */
async function joins({ group: name, n, game: g, url: u }) {
  const conns = group(name);
  const samples = [];
  const errors = [];
  for (let i = 0; i < n; i += 1) {
    try {
      const got = await side.joinOrCreate({ game: g, url: u });
      const fresh = !occupied(got.conn.room);
      conns.push(got.conn);
      const { conn, ...times } = got;
      samples.push({ ...times, new: fresh, room: conn.room, server: conn.server });
    } catch (err) {
      if (errors.length < 5) errors.push(String(err.message || err));
    }
  }
  return { samples, errors, rooms: new Set(conns.map((c) => c.room)).size };
}

function payloadOf(bytes) {
  return 'x'.repeat(Math.max(0, bytes));
}

/** Sequential echo round trips, round-robin over the group's open connections, `gapMs` apart. */
async function rtt({ group: name, pings, gap_ms: gapMs = 0, payload_bytes: bytes = 64, timeout_ms: timeoutMs = 5000 }) {
  const conns = group(name).filter((c) => !c.closed);
  if (!conns.length) throw new Error(`group ${name} has no open connection`);
  const payload = payloadOf(bytes);
  const samples = [];
  let lost = 0;
  for (let i = 0; i < pings; i += 1) {
    const ms = await conns[i % conns.length].ping(payload, timeoutMs);
    if (ms === null) lost += 1;
    else samples.push(ms);
    if (gapMs) await sleep(gapMs);
  }
  return { samples, lost };
}

/** Ping the group's connections in turn until `until` (performance.now ms); what came back, when. */
async function watch(conns, until, payload, gapMs, timeoutMs) {
  const out = { samples: [], lost: 0, stall_ms: 0 };
  let last = now();
  for (let i = 0; now() < until; i += 1) {
    const open = conns.filter((c) => !c.closed);
    if (!open.length) break;
    const ms = await open[i % open.length].ping(payload, timeoutMs);
    const t = now();
    if (ms === null) {
      out.lost += 1;
    } else {
      out.samples.push(ms);
      out.stall_ms = Math.max(out.stall_ms, t - last);
      last = t;
    }
    if (gapMs) await sleep(gapMs);
  }
  out.stall_ms = Math.max(out.stall_ms, Math.min(now(), until) - last);
  return out;
}

/**
 * The fault figure: every watched group pinged on its own (a frozen group does not hold the others
 * up) for before_s, then the offender's first connection sends `kind` (spin | balloon), then again for
 * during_s. Returns each group's samples before and during, and how each connection ended.
 */
async function fault({ offender, watched, kind, before_s: beforeS, during_s: duringS, gap_ms: gapMs = 2,
  payload_bytes: bytes = 64, spin_ms: spinMs = 5000, balloon_mb: balloonMb = 512, hold_ms: holdMs = 5000 }) {
  const payload = payloadOf(bytes);
  const timeoutMs = (beforeS + duringS) * 1000 + 5000;
  const run = async (until) => Object.fromEntries(await Promise.all(watched.map(
    async (name) => [name, await watch(group(name), until, payload, gapMs, timeoutMs)])));
  const before = await run(now() + beforeS * 1000);
  const bad = group(offender).find((c) => !c.closed);
  if (!bad) throw new Error(`offender group ${offender} has no open connection`);
  const t0 = now();
  if (kind === 'spin') bad.send('spin', { ms: spinMs });
  else bad.send('balloon', { mb: balloonMb, ms: holdMs });
  const during = await run(t0 + duringS * 1000);
  const closes = {};
  for (const name of [offender, ...watched]) {
    closes[name] = group(name).filter((c) => c.closed && c.closedAt >= t0)
      .map((c) => ({ code: c.closeCode, after_ms: c.closedAt - t0 }));
  }
  return { before, during, closes };
}

async function close({ group: name }) {
  const conns = group(name);
  for (const c of conns) if (!c.closed) c.close();
  await Promise.all(conns.map((c) => c.waitClosed(5000)));
  groups.delete(name);
  return { closed: conns.length, still_open: conns.filter((c) => !c.closed).length };
}

function stat() {
  let open = 0;
  for (const conns of groups.values()) open += conns.filter((c) => !c.closed).length;
  return { rss: process.memoryUsage().rss, open };
}

serve({ fill, joins, open, rtt, fault, close, stat }, target);
