'use strict';
// The arena simulation of bench/statesync.py, one file for every server it measures: Colyseus's
// (bench/colyseus/arena.js requires it from here) and ours (statesync.py copies it next to the game
// module it writes). Entities on an 800 x 600 field: the same seeded start, speeds and bounces on
// all sides, moved by a fixed step; positions rounded to 0.1 unit where they are synced.

const WIDTH = 800;
const HEIGHT = 600;
const SEED = 23;

/** mulberry32: the same sequence on both sides, so both move the same entities the same way. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round1 = (v) => Math.round(v * 10) / 10;

/** `count` entities {id, x, y, vx, vy} at the seeded start. */
function spawn(count) {
  const next = rng(SEED);
  const motion = [];
  for (let i = 0; i < count; i += 1) {
    const speed = 30 + next() * 90; // units per second: at least 1.5 units a step, so every step moves
    const angle = next() * 2 * Math.PI;
    motion.push({ id: `e${i}`, x: next() * WIDTH, y: next() * HEIGHT,
      vx: Math.cos(angle) * speed, vy: Math.sin(angle) * speed });
  }
  return motion;
}

/** Every entity moved by `dt` seconds, bouncing off the edges. */
function step(motion, dt) {
  for (const m of motion) {
    m.x += m.vx * dt;
    m.y += m.vy * dt;
    if (m.x < 0 || m.x > WIDTH) { m.vx = -m.vx; m.x = Math.min(WIDTH, Math.max(0, m.x)); }
    if (m.y < 0 || m.y > HEIGHT) { m.vy = -m.vy; m.y = Math.min(HEIGHT, Math.max(0, m.y)); }
  }
}

module.exports = { round1, spawn, step };
