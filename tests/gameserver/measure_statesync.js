'use strict';
// What one state-sync patch costs (docs/writing-a-game.md "State sync"): a 100-entity arena state,
// 16 players, every entity moving each round; the runtime's own diff (room-core.js), timed per round.
//   node tests/gameserver/measure_statesync.js
const { performance } = require('node:perf_hooks');
const { RoomCore } = require('../../gameserver/runtime/room-core.js');

function measure(label, game) {
  let bytes = 0;
  let frames = 0;
  const core = new RoomCore({ game, id: 'm', serverId: 'm', maxPlayers: 16, events: {
    out(pids, text) { frames += pids.length; bytes += text.length * pids.length; }, log() {}, hookError(h, e) { throw e; },
  } });
  core.room.state = { tick: 0, entities: {} };
  for (let i = 0; i < 100; i += 1) core.room.state.entities[`e${i}`] = { x: i * 7.5, y: i * 3.1, hp: 100, kind: 'bot' };
  const joins = [];
  for (let p = 0; p < 16; p += 1) joins.push(core.join(`p${p}`, null));
  return Promise.all(joins).then(() => {
    const rounds = 2000;
    const times = [];
    bytes = 0;
    frames = 0;
    for (let r = 0; r < rounds; r += 1) {
      const s = core.room.state;
      s.tick += 1;
      for (const e of Object.values(s.entities)) { e.x = Math.round((e.x + 1.3) * 10) / 10; e.y = Math.round((e.y + 0.7) * 10) / 10; }
      const t = performance.now();
      core.sync();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / rounds;
    process.stdout.write(`${label}: per patch round (16 players) mean ${(mean * 1000).toFixed(0)} µs, `
      + `p50 ${(times[rounds >> 1] * 1000).toFixed(0)} µs, p99 ${(times[Math.floor(rounds * 0.99)] * 1000).toFixed(0)} µs; `
      + `${(bytes / frames).toFixed(0)} bytes per client per patch\n`);
  });
}

(async () => {
  await measure('shared view', { stateSync: true });
  await measure('per-player view (16 distinct)', {
    stateSync: true,
    view(room, player, state) { return { ...state, me: player.id }; },
  });
})();
