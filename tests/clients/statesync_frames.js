'use strict';
// For tests/clients/test_statesync_codec.py: random state mutation sequences run through the runtime's
// RoomCore (its diff and both encodings), printed as JSON lines, one a patch round:
//   {"seed", "view", "frames": {pid: [frame text, ...]}, "expected": {pid: the player's view}}
// The Python test rebuilds each player's state from the frames with gsf_client and compares.
//   node statesync_frames.js <first seed> <sequences> <view: 0|1>
const path = require('node:path');

const { RoomCore } = require(path.join(__dirname, '..', '..', 'gameserver', 'runtime', 'room-core.js'));

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

const KEYS = ['a', 'b', 'x/y', 't~1', '', '0', 'hp'];

function value(next, depth) {
  const r = next();
  if (depth > 2 || r < 0.5) {
    const p = next();
    if (p < 0.4) return Math.round(next() * 2000 - 1000) / 10;
    if (p < 0.55) return `s${Math.floor(next() * 5)}"é`;
    if (p < 0.65) return next() < 0.5;
    if (p < 0.75) return null;
    if (p < 0.8) return undefined;
    return Math.floor(next() * 10);
  }
  if (r < 0.75) {
    const obj = {};
    for (let i = Math.floor(next() * 4); i > 0; i -= 1) obj[KEYS[Math.floor(next() * KEYS.length)]] = value(next, depth + 1);
    return obj;
  }
  return Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
}

function mutate(next, state) {
  let node = state;
  for (let d = 0; d < 4; d += 1) {
    const kids = Object.values(node).filter((v) => v !== null && typeof v === 'object');
    if (!kids.length || next() < 0.35) break;
    node = kids[Math.floor(next() * kids.length)];
  }
  const r = next();
  if (Array.isArray(node)) {
    if (r < 0.3) node.push(value(next, 1));
    else if (r < 0.5 && node.length) node.length = Math.floor(next() * node.length);
    else if (r < 0.6) node.unshift(value(next, 2));
    else if (node.length) node[Math.floor(next() * node.length)] = value(next, 1);
    return;
  }
  const key = KEYS[Math.floor(next() * KEYS.length)];
  if (r < 0.25) delete node[key];
  else node[key] = value(next, 1);
}

function view(room, player, state) {
  if (player.id === 'p1') return { ...state, b: undefined, me: player.id };
  return state;
}

async function sequence(seed, withView) {
  const next = rng(seed);
  const frames = {};
  const game = { stateSync: true, ...(withView ? { view } : {}) };
  const core = new RoomCore({ game, id: 'r', serverId: 's', maxPlayers: 8, events: {
    out(pids, text) { for (const pid of pids) (frames[pid] ??= []).push(text); },
    log() {}, hookError(hook, error) { throw error; },
  } });
  core.room.state = { a: 1, list: [1, 2, 3], nest: { deep: { v: 'x' } } };
  const encs = { p0: 'c1', p1: 'c1', p2: 'json-patch', p3: 'c1' };
  for (const pid of ['p0', 'p1', 'p2']) await core.join(pid, pid, pid, { enc: encs[pid] });
  for (let step = 0; step < 30; step += 1) {
    for (let i = 1 + Math.floor(next() * 4); i > 0; i -= 1) mutate(next, core.room.state);
    if (step === 10) await core.join('p3', 'p3', 'p3', { enc: 'c1' });
    core.sync();
    const expected = {};
    for (const [pid, member] of core.members) {
      const v = withView ? view(core.room, member.player, core.room.state) : core.room.state;
      expected[pid] = JSON.parse(JSON.stringify(v) ?? 'null');
    }
    process.stdout.write(`${JSON.stringify({ seed, view: withView, frames, expected })}\n`);
    for (const pid of Object.keys(frames)) frames[pid] = [];
  }
}

(async () => {
  const [first, count, withView] = process.argv.slice(2).map(Number);
  for (let seed = first; seed < first + count; seed += 1) await sequence(seed, withView === 1);
})();
