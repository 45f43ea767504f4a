'use strict';
// Plays a scenario against a game module with gameserver/runtime/testing.js and prints, as JSON,
// what each player had received after every step: the helper's half of the parity test in
// test_game_tests.py, whose other half plays the same scenario against the real runtime.
//   node scenario.js <game.js> <scenario.json> <server id> <max players>
const path = require('node:path');
const fs = require('node:fs');
const { createRoom } = require('../../gameserver/runtime/testing.js');

async function main() {
  const [gameFile, scenarioFile, serverId, maxPlayers] = process.argv.slice(2);
  const game = require(path.resolve(gameFile));
  const steps = JSON.parse(fs.readFileSync(scenarioFile, 'utf8'));
  const room = await createRoom(game, { serverId, maxPlayers: Number(maxPlayers) });
  const players = {};
  const snapshots = [];
  for (const step of steps) {
    let refused = null;
    if (step.join) {
      try {
        players[step.join] = await room.join(step.join);
      } catch (err) {
        refused = err.code;
      }
    } else if (step.send) {
      const [who, type, data] = step.send;
      await players[who].send(type, data);
    } else if (step.raw) {
      await players[step.raw[0]].sendRaw(step.raw[1]);
    } else if (step.leave) {
      await room.leave(players[step.leave]);
    }
    const frames = {};
    for (const [id, player] of Object.entries(players)) frames[id] = player.frames.slice();
    snapshots.push({ refused, frames, closed: Object.fromEntries(
      Object.entries(players).map(([id, p]) => [id, p.closeCode])) });
  }
  process.stdout.write(JSON.stringify(snapshots));
}

main().catch((err) => { process.stderr.write(String(err.stack || err)); process.exit(1); });
