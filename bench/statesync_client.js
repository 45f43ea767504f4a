'use strict';
// The players of bench/statesync.py: N connections into one arena room, counting what each receives.
//
//   node statesync_client.js gsf <ws url>           ours: `ws` (the runtime's node_modules), ?v=1, no token
//                                                   (the url may carry enc=c1: the compact encoding)
//   node statesync_client.js colyseus <http url>    Colyseus 0.17 through its own SDK (@colyseus/sdk)
//
// Per connection: WebSocket payload bytes (what a message event delivers, after any inflate), wire
// bytes (the TCP bytes read: frame headers + payload as sent, compressed when permessage-deflate is
// on), messages, state updates (ours: `$patch`, or the broadcast `state` frame; Colyseus:
// ROOM_STATE_PATCH), and an estimate of the permessage-deflate wire bytes: every payload run through
// a per-connection raw deflate stream with ws's server defaults (context takeover, zlib level 6,
// windowBits 15, memLevel 8, Z_SYNC_FLUSH less its 4-byte tail, no compression under 1024 bytes),
// plus the frame header. Ours applies every `$state`/`$patch` to its copy of the state, Colyseus's SDK
// decodes its schema: both clients do the work a real client does; the bench checks the entity count.
//
// Commands arrive on stdin, one JSON object a line ({id, op, ...}); each is answered on stdout with
// one line {id, ok, result} or {id, ok: false, error} (bench/ws_client_common.js). Modules come from NODE_PATH.

const zlib = require('node:zlib');
const { serve, targetArgs } = require('./ws_client_common.js');

const [target, url] = targetArgs('statesync_client.js gsf <ws url> | colyseus <http url>');

const DEFLATE_THRESHOLD = 1024; // ws's perMessageDeflate.threshold default
const ROOM_STATE_PATCH = 15; // @colyseus/shared-types Protocol
const conns = [];

const headerBytes = (n) => (n < 126 ? 2 : n < 65536 ? 4 : 10); // server frames are not masked

/** What permessage-deflate (ws server defaults) would put on the wire for these payloads, in order. */
class DeflateEstimate {
  constructor() {
    this.bytes = 0;
    this.chain = Promise.resolve();
    this.stream = zlib.createDeflateRaw({ level: zlib.constants.Z_DEFAULT_COMPRESSION, memLevel: 8, windowBits: 15 });
    this.chunks = [];
    this.stream.on('data', (chunk) => this.chunks.push(chunk));
  }

  add(buf) {
    if (buf.length < DEFLATE_THRESHOLD) {
      this.bytes += headerBytes(buf.length) + buf.length;
      return;
    }
    this.chain = this.chain.then(() => new Promise((resolve) => {
      this.stream.write(buf);
      this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const n = this.chunks.reduce((sum, c) => sum + c.length, 0) - 4; // the 00 00 ff ff tail is not sent
        this.chunks = [];
        this.bytes += headerBytes(n) + n;
        resolve();
      });
    }));
  }

  close() { this.stream.close(); }
}

class Counter {
  constructor(estimate) {
    this.payload = 0;
    this.messages = 0;
    this.updates = 0;
    this.estimate = estimate ? new DeflateEstimate() : null;
    this.socket = null; // the TCP socket, for the wire bytes
    this.closed = false;
  }

  got(buf, update) {
    this.payload += buf.length;
    this.messages += 1;
    if (update) this.updates += 1;
    if (this.estimate) this.estimate.add(buf);
  }

  async snapshot() {
    if (this.estimate) await this.estimate.chain;
    return { payload: this.payload, wire: this.socket ? this.socket.bytesRead : 0, messages: this.messages,
      updates: this.updates, deflate_estimate: this.estimate ? this.estimate.bytes : null, closed: this.closed };
  }
}

// --- ours: RFC 6902 on a plain object -------------------------------------------------------------

function unpointer(part) {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Apply add/remove/replace ops (what the runtime sends) in place; returns the (maybe new) root. */
function applyPatch(root, ops) {
  for (const { op, path, value } of ops) {
    if (path === '') { root = op === 'remove' ? null : value; continue; }
    const parts = path.slice(1).split('/').map(unpointer);
    const last = parts.pop();
    let at = root;
    for (const p of parts) at = at[p];
    if (Array.isArray(at)) {
      const i = last === '-' ? at.length : Number(last);
      if (op === 'add') at.splice(i, 0, value);
      else if (op === 'remove') at.splice(i, 1);
      else at[i] = value;
    } else if (op === 'remove') {
      delete at[last];
    } else {
      at[last] = value;
    }
  }
  return root;
}

/** c1 (`enc=c1`, gameserver/runtime/room-core.js): a flat list of numbered paths, applied in place. */
function applyCompact(root, ops, table) {
  const resolve = (ref) => {
    if (typeof ref === 'number') return table[ref];
    const parts = ref === '' ? [] : ref.slice(1).split('/').map(unpointer);
    table.push(parts);
    return parts;
  };
  const parentOf = (parts) => {
    let at = root;
    for (let i = 0; i < parts.length - 1; i += 1) at = at[parts[i]];
    return at;
  };
  for (let i = 0; i < ops.length;) {
    const item = ops[i];
    if (item === null) { table.length = 0; i += 1; continue; }
    if (Array.isArray(item)) {
      const parts = resolve(item[0]);
      if (item.length === 1) {
        const at = parentOf(parts);
        if (Array.isArray(at)) at.splice(Number(parts.at(-1)), 1);
        else delete at[parts.at(-1)];
      } else if (parts.length === 0) {
        root.length = item[1];
      } else {
        parentOf(parts)[parts.at(-1)].length = item[1];
      }
      i += 1;
      continue;
    }
    const parts = resolve(item);
    if (parts.length === 0) root = ops[i + 1];
    else parentOf(parts)[parts.at(-1)] = ops[i + 1];
    i += 2;
  }
  return root;
}

async function joinGsf(estimate) {
  const { WebSocket } = require('ws');
  const counter = new Counter(estimate);
  const conn = { counter, state: null, table: [], close: null, entities: () => 0 };
  const sep = url.includes('?') ? '&' : '?';
  const ws = new WebSocket(`${url}${sep}v=1&name=bench${conns.length}`);
  await new Promise((resolve, reject) => {
    ws.on('message', (raw) => {
      const text = raw.toString();
      const update = text.startsWith('{"type":"$patch"') || text.startsWith('{"type":"$p"')
        || text.startsWith('{"type":"state"');
      counter.got(raw, update);
      const frame = JSON.parse(text);
      if (frame.type === '$state') { conn.state = frame.data; conn.table = []; }
      else if (frame.type === '$paths') conn.table = frame.data.map((p) => (p === '' ? [] : p.slice(1).split('/').map(unpointer)));
      else if (frame.type === '$p') conn.state = applyCompact(conn.state, frame.data, conn.table);
      else if (frame.type === '$patch') conn.state = applyPatch(conn.state, frame.data);
      else if (frame.type === 'state') conn.state = frame.data;
      else if (frame.type === 'welcome') resolve();
    });
    ws.on('open', () => { counter.socket = ws._socket; });
    ws.on('close', () => { counter.closed = true; reject(new Error('closed before welcome')); });
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => { reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)); res.resume(); });
  });
  conn.entities = () => Object.keys(conn.state?.entities ?? {}).length;
  conn.close = () => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(); return; }
    ws.once('close', resolve);
    ws.close(1000);
    setTimeout(resolve, 3000);
  });
  return conn;
}

let client = null;
async function joinColyseus(estimate) {
  const { Client } = require('@colyseus/sdk');
  if (!client) client = new Client(url);
  const counter = new Counter(estimate);
  const room = await client.joinOrCreate('arena');
  const events = room.connection.events;
  const decode = events.onmessage;
  events.onmessage = (event) => {
    const buf = Buffer.from(event.data);
    counter.got(buf, buf[0] === ROOM_STATE_PATCH);
    decode(event);
  };
  counter.socket = room.connection.transport.ws._socket;
  room.onLeave(() => { counter.closed = true; });
  room.onError(() => {});
  return { counter, room: room.roomId, entities: () => room.state?.entities?.size ?? 0,
    close: () => room.leave(true).catch(() => {}) };
}

// --- operations ----------------------------------------------------------------------------------

/** `n` players, one after the other (so Colyseus's joinOrCreate seats them all in one room). */
async function join({ n, estimate = true }) {
  for (let i = 0; i < n; i += 1) conns.push(await (target === 'gsf' ? joinGsf(estimate) : joinColyseus(estimate)));
  return { joined: conns.length, rooms: new Set(conns.map((c) => c.room ?? 'gsf')).size };
}

async function mark() {
  return { t: performance.now(), conns: await Promise.all(conns.map((c) => c.counter.snapshot())) };
}

function entities() {
  return conns.map((c) => c.entities());
}

async function close() {
  await Promise.all(conns.map((c) => c.close()));
  for (const c of conns) c.counter.estimate?.close();
  return { closed: conns.length, rss: process.memoryUsage().rss };
}

serve({ join, mark, entities, close }, target);
