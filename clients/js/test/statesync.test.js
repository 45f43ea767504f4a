// Property-style check of state sync end to end in one process: the runtime's RoomCore (its diff
// and both encodings) against this SDK's decoders. Many random mutation sequences; after every
// patch round each player's rebuilt state must equal its view of the server's state, for players
// on json-patch and on c1, with and without per-player views, joining late and reconnecting.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';

import { PathTable, applyCompact, applyPatch } from '../dist/index.js';
import { REPO } from './helpers.js';

const require = createRequire(import.meta.url);
const { RoomCore } = require(path.join(REPO, 'gameserver/runtime/room-core.js'));

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'c', 'x/y', 't~1', '', '0', 'hp', 'pos'];

function randomValue(next, depth) {
  const r = next();
  if (depth > 2 || r < 0.45) {
    const p = next();
    if (p < 0.4) return Math.round(next() * 2000 - 1000) / 10;
    if (p < 0.55) return `s${Math.floor(next() * 5)}/~"é`;
    if (p < 0.65) return next() < 0.5;
    if (p < 0.72) return null;
    if (p < 0.78) return undefined; // JSON drops the member (an array keeps null)
    if (p < 0.82) return Number.NaN; // JSON writes null
    return Math.floor(next() * 10);
  }
  if (r < 0.75) {
    const obj = {};
    const n = Math.floor(next() * 4);
    for (let i = 0; i < n; i += 1) obj[KEYS[Math.floor(next() * KEYS.length)]] = randomValue(next, depth + 1);
    return obj;
  }
  return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
}

/** A random container inside `root` (objects and arrays), with its parent chain. */
function pickContainer(next, root) {
  let node = root;
  for (let depth = 0; depth < 4; depth += 1) {
    const kids = Object.values(node).filter((v) => v !== null && typeof v === 'object');
    if (!kids.length || next() < 0.35) break;
    node = kids[Math.floor(next() * kids.length)];
  }
  return node;
}

function mutate(next, state) {
  const node = pickContainer(next, state);
  const r = next();
  if (Array.isArray(node)) {
    if (r < 0.3) node.push(randomValue(next, 1));
    else if (r < 0.45 && node.length) node.length = Math.floor(next() * node.length);
    else if (r < 0.55 && node.length) node.splice(Math.floor(next() * node.length), 1);
    else if (r < 0.6) node.unshift(randomValue(next, 2));
    else if (node.length) node[Math.floor(next() * node.length)] = randomValue(next, 1);
    return;
  }
  const key = KEYS[Math.floor(next() * KEYS.length)];
  if (r < 0.25) delete node[key];
  else if (r < 0.45 && typeof node[key] === 'number') node[key] += 1;
  else node[key] = randomValue(next, 1);
}

/** A player's side: frames in, the state rebuilt with the SDK's decoders. */
class Player {
  constructor(enc) {
    this.enc = enc;
    this.state = undefined;
    this.table = new PathTable();
    this.frames = 0;
    this.kinds = new Set();
  }

  receive(text) {
    const frame = JSON.parse(text);
    this.frames += 1;
    this.kinds.add(frame.type);
    if (frame.type === '$state') {
      this.state = frame.data;
      this.table.reset();
    } else if (frame.type === '$paths') {
      this.table.reset(frame.data);
    } else if (frame.type === '$p') {
      assert.equal(this.enc, 'c1', 'a c1 frame to a json-patch player');
      this.state = applyCompact(this.state, frame.data, this.table);
    } else if (frame.type === '$patch') {
      assert.equal(this.enc, 'json-patch', 'an RFC 6902 frame to a c1 player');
      this.state = applyPatch(this.state, frame.data);
    }
  }
}

const plain = (value) => (value === undefined ? null : JSON.parse(JSON.stringify(value) ?? 'null'));

/** Player `p2`'s and `p3`'s view hides the `b` member; the others see everything (views differ per player). */
function viewOf(room, player, state) {
  if (player.id === 'p2' || player.id === 'p3') {
    const { b, ...rest } = state;
    return { ...rest, who: player.id };
  }
  return state;
}

async function runSequence(seed, withView, seen) {
  const next = rng(seed);
  const players = new Map();
  const game = { stateSync: true, reconnectSeconds: 20, ...(withView ? { view: viewOf } : {}) };
  const core = new RoomCore({
    game, id: 'r', serverId: 's', maxPlayers: 8,
    events: {
      out(pids, text) { for (const pid of pids) players.get(pid)?.receive(text); },
      log() {}, hookError(hook, error) { throw error; },
    },
  });
  core.room.state = { a: 1, list: [1, 2, 3], nest: { deep: { v: 'x' } } };
  const encs = ['json-patch', 'c1', 'c1', 'json-patch', 'c1'];
  const joinPlayer = async (i) => {
    const pid = `p${i}`;
    players.set(pid, new Player(encs[i]));
    await core.join(pid, pid, i, { enc: encs[i] });
  };
  await joinPlayer(0);
  await joinPlayer(1);
  const check = () => {
    for (const [pid, player] of players) {
      const member = core.members.get(pid);
      if (!member || member.dropped) continue;
      const expected = plain(withView ? viewOf(core.room, member.player, core.room.state) : core.room.state);
      assert.deepEqual(player.state, expected, `seed ${seed} view ${withView} player ${pid} (${player.enc})`);
    }
  };
  for (let step = 0; step < 40; step += 1) {
    const n = 1 + Math.floor(next() * 4);
    for (let i = 0; i < n; i += 1) mutate(next, core.room.state);
    if (next() < 0.05) core.room.state.a = randomValue(next, 0); // whole subtrees change shape
    if (step === 5) await joinPlayer(2);
    if (step === 12) await joinPlayer(3);
    if (step === 20) await joinPlayer(4);
    if (step === 25) await core.drop('p1', 'test');
    if (step === 28) { // comes back, now asking for the other encoding
      players.set('p1', new Player('json-patch'));
      await core.reconnect('p1', 9, { enc: 'json-patch' });
    }
    core.sync();
    check();
  }
  for (const player of players.values()) for (const kind of player.kinds) seen.add(`${player.enc} ${kind}`);
  return players;
}

test('random mutations rebuild the same state on json-patch and c1 players (shared state)', async () => {
  const seen = new Set();
  for (let seed = 1; seed <= 150; seed += 1) await runSequence(seed, false, seen);
  assert.deepEqual([...seen].sort(), ['c1 $p', 'c1 $paths', 'c1 $state', 'c1 welcome', 'json-patch $patch', 'json-patch $state',
    'json-patch welcome']);
});

test('random mutations rebuild the same state with per-player views', async () => {
  const seen = new Set();
  for (let seed = 1001; seed <= 1150; seed += 1) await runSequence(seed, true, seen);
  assert.deepEqual([...seen].sort(), ['c1 $p', 'c1 $state', 'c1 welcome', 'json-patch $patch', 'json-patch $state',
    'json-patch welcome']);
});

test('c1 frames: numbered paths, definitions once, removals and truncation', () => {
  const table = new PathTable();
  let doc = { e: { a: { x: 1 } }, arr: [1, 2, 3] };
  doc = applyCompact(doc, ['/e/a/x', 2, '/e/b', { x: 5 }, ['/arr', 1], '/arr/1', 7], table);
  assert.deepEqual(doc, { e: { a: { x: 2 }, b: { x: 5 } }, arr: [1, 7] });
  assert.equal(table.size, 4);
  doc = applyCompact(doc, [0, 3, [1], null, '/arr/0', 0], table);
  assert.deepEqual(doc, { e: { a: { x: 3 } }, arr: [0, 7] });
  assert.equal(table.size, 1);
  const before = doc;
  assert.throws(() => applyCompact(before, [5, 1], table), /unknown path number 5/);
  assert.deepEqual(before, { e: { a: { x: 3 } }, arr: [0, 7] }); // untouched
  const after = applyCompact(before, [0, 1], table);
  assert.equal(after.e, before.e); // unchanged branches are shared
  assert.notEqual(after.arr, before.arr);
});
