'use strict';
// State sync encodings (docs/clients.md "State sync on the wire", notes/player-protocol.md).
//
// One diff walk per patch round records what changed into an OpLog (flat arrays of strings: no
// op object per change); each encoding then writes its frame text straight from the log:
//   - 'json-patch' (the default): `{"type":"$patch","data":[RFC 6902 ops]}`
//   - 'c1' (a client opts in with `&enc=c1`): `{"type":"$p","data":[...]}`, a flat list where
//     every path is a number once the stream has seen it:
//        k, v        set path #k to v (replace, add a member, or append at index == length)
//        "/p", v     define the next path number as "/p", then set it
//        [k]         remove path #k (an object member)            ["/p"] defines it first
//        [k, n]      truncate the array at path #k to length n    ["/p", n] defines it first
//        null        forget every path number (the table grew past MAX_PATHS)
//     A stream's table starts empty with each `$state`; `$paths` (["/p", ...]) right after a
//     `$state` sets it to the stream's table when the stream is shared (rooms without `view`).
//
// Values in, frame text out: no room, no players (room-statesync.js decides who gets what). Part of
// the room core (room-core.js), which game repositories copy for their tests: Node built-ins only.

const KIND_ADD = 0;
const KIND_REPLACE = 1;
const KIND_REMOVE = 2;
const KIND_TRUNCATE = 3; // value: the new length as text; `from`: the old length

/** Path numbers a stream may hold before it starts over (a `null` op), so churn cannot grow it forever. */
const MAX_PATHS = 16384;

const ENCODINGS = new Set(['json-patch', 'c1']);

class OpLog {
  constructor() {
    this.kinds = [];
    this.paths = [];
    this.values = []; // JSON text (or the new length for a truncate)
    this.froms = []; // truncate: the old length
  }

  get length() { return this.kinds.length; }

  push(kind, path, value, from = 0) {
    this.kinds.push(kind);
    this.paths.push(path);
    this.values.push(value);
    this.froms.push(from);
  }
}

function pointerPart(key) {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}

/** Whether an object member is written by JSON.stringify at all. */
function present(value) {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}

/** A primitive's JSON text (what JSON.stringify writes for it; non-finite numbers and undefined are null). */
function primitiveJson(value) {
  switch (typeof value) {
    case 'number': return Number.isFinite(value) ? String(value) : 'null';
    case 'string': return JSON.stringify(value);
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': return JSON.stringify(value); // throws like JSON.stringify does
    default: return 'null';
  }
}

function normalPrimitive(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  return present(value) ? value : null;
}

/**
 * Record in `log` what turns `prev` (a JSON value: what the clients hold) into `next`, and return
 * the new snapshot. `live`: `next` is the game's own value (toJSON, undefined members, class
 * instances) and `prev` is updated in place so the next diff starts from it (one walk per round, no
 * copy of the whole state); otherwise `next` is plain JSON and `prev` is left alone.
 * Arrays are compared index by index; a shorter array is one truncate.
 */
function diffInto(prev, next, path, log, live) {
  if (live && next !== null && typeof next === 'object' && typeof next.toJSON === 'function') {
    next = next.toJSON(path.slice(path.lastIndexOf('/') + 1));
  }
  if (next === null || typeof next !== 'object') {
    next = normalPrimitive(next);
    if (prev === next) return prev;
    log.push(KIND_REPLACE, path, primitiveJson(next));
    return next;
  }
  if (Array.isArray(next)) {
    if (!Array.isArray(prev)) return replaceWith(next, path, log, live, KIND_REPLACE);
    const shared = Math.min(prev.length, next.length);
    const out = live ? prev : null;
    for (let i = 0; i < shared; i += 1) {
      const item = next[i];
      const prevItem = prev[i];
      if (prevItem === item && (item === null || typeof item !== 'object')) continue;
      const value = diffInto(prevItem, present(item) ? item : null, `${path}/${i}`, log, live);
      if (live) out[i] = value;
    }
    if (prev.length > next.length) {
      log.push(KIND_TRUNCATE, path, String(next.length), prev.length);
      if (live) out.length = next.length;
    }
    for (let i = prev.length; i < next.length; i += 1) {
      const value = replaceWith(present(next[i]) ? next[i] : null, `${path}/${i}`, log, live, KIND_ADD);
      if (live) out.push(value);
    }
    return live ? out : next;
  }
  if (prev === null || typeof prev !== 'object' || Array.isArray(prev)) return replaceWith(next, path, log, live, KIND_REPLACE);
  for (const key in prev) {
    if (!Object.hasOwn(next, key) || !present(next[key])) {
      log.push(KIND_REMOVE, `${path}/${pointerPart(key)}`, '');
      if (live) delete prev[key];
    }
  }
  for (const key of Object.keys(next)) {
    const value = next[key];
    if (!present(value)) continue;
    if (Object.hasOwn(prev, key)) {
      const before = prev[key];
      // The common case (a number that did not change) without a path string or a call.
      if (before === value && (value === null || typeof value !== 'object')) continue;
      const updated = diffInto(before, value, `${path}/${pointerPart(key)}`, log, live);
      if (live) prev[key] = updated;
    } else {
      const copy = replaceWith(value, `${path}/${pointerPart(key)}`, log, live, KIND_ADD);
      if (live) prev[key] = copy;
    }
  }
  return live ? prev : next;
}

/** A whole value at `path`: its JSON text once, logged, and (live) parsed back as the snapshot's copy. */
function replaceWith(next, path, log, live, kind) {
  if (next === null || typeof next !== 'object') {
    const value = normalPrimitive(next);
    log.push(kind, path, primitiveJson(value));
    return value;
  }
  const text = JSON.stringify(next) ?? 'null';
  log.push(kind, path, text);
  return live ? JSON.parse(text) : next;
}

const OP_NAMES = ['add', 'replace'];

/** The RFC 6902 frame of a log (removes for a truncate, from the end). */
function jsonPatchFrame(log) {
  let out = '{"type":"$patch","data":[';
  const { kinds, paths, values, froms } = log;
  for (let i = 0; i < kinds.length; i += 1) {
    const kind = kinds[i];
    if (i > 0) out += ',';
    if (kind === KIND_REMOVE) {
      out += `{"op":"remove","path":${JSON.stringify(paths[i])}}`;
    } else if (kind === KIND_TRUNCATE) {
      const to = Number(values[i]);
      for (let at = froms[i] - 1; at >= to; at -= 1) {
        out += `${at === froms[i] - 1 ? '' : ','}{"op":"remove","path":${JSON.stringify(`${paths[i]}/${at}`)}}`;
      }
    } else {
      out += `{"op":"${OP_NAMES[kind]}","path":${JSON.stringify(paths[i])},"value":${values[i]}}`;
    }
  }
  return out + ']}';
}

/** One c1 stream's path numbers (a shared room stream, or one player's). */
class PathTable {
  constructor() {
    this.ids = new Map();
    this.list = [];
  }

  /** The `$paths` frame that gives a new client this table. */
  frame() {
    return `{"type":"$paths","data":${JSON.stringify(this.list)}}`;
  }
}

/** The c1 frame of a log against `table` (which it extends). */
function compactFrame(log, table) {
  let out = '{"type":"$p","data":[';
  if (table.list.length + log.length > MAX_PATHS) {
    table.ids.clear();
    table.list.length = 0;
    out += 'null,';
  }
  const { kinds, paths, values } = log;
  const ids = table.ids;
  for (let i = 0; i < kinds.length; i += 1) {
    const path = paths[i];
    let ref = ids.get(path);
    if (ref === undefined) {
      ids.set(path, table.list.length);
      table.list.push(path);
      ref = JSON.stringify(path);
    }
    if (i > 0) out += ',';
    const kind = kinds[i];
    if (kind === KIND_REMOVE) out += `[${ref}]`;
    else if (kind === KIND_TRUNCATE) out += `[${ref},${values[i]}]`;
    else out += `${ref},${values[i]}`;
  }
  return out + ']}';
}

/** The state encoding a connection asked for (`&enc=`; checked by the server): json-patch unless c1. */
function stateEncodingOf(extra) {
  return extra?.enc === 'c1' ? 'c1' : 'json-patch';
}

module.exports = { OpLog, PathTable, diffInto, jsonPatchFrame, compactFrame, stateEncodingOf, ENCODINGS, MAX_PATHS };
