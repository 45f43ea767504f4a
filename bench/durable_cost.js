'use strict';
// Snapshot cost of durable rooms (bench/durable.py runs it): N rooms of one room host (as in one
// room worker), each changing its state at 20 Hz, for a few seconds; once durable, once not. Prints
// one JSON line: CPU per room, snapshots per second, bytes per snapshot.
//   node bench/durable_cost.js <rooms> <seconds> <snapshotIntervalMs>

const path = require('node:path');

const runtime = path.join(__dirname, '..', 'gameserver', 'runtime');
const { RoomHost } = require(path.join(runtime, 'room-host.js'));
const { checkModule } = require(path.join(runtime, 'room-core.js'));

const [rooms, seconds, every] = process.argv.slice(2).map(Number);
const logger = { event() {}, writeOut() {}, limited() {}, error() {} };

function game(durable) {
  return checkModule({
    durable, snapshotIntervalMs: every, maxPlayers: 2,
    onCreate(room) { room.state = { board: Array(9).fill(null), moves: 0, score: { X: 0, O: 0 }, turn: 'X' }; },
    onJoin() {},
    onMessage(room, player, type, data) {
      room.state.board[data % 9] = room.state.turn;
      room.state.moves += 1;
      room.state.turn = room.state.turn === 'X' ? 'O' : 'X';
    },
  });
}

async function run(durable) {
  let snaps = 0;
  let bytes = 0;
  const host = new RoomHost({ game: game(durable), serverId: 's', maxPlayers: 2, logger,
    marker: new Float64Array(8), emit: (msg) => {
      if (msg.t === 'snap' && msg.body) { snaps += 1; bytes += msg.body.length; }
    } });
  for (let i = 1; i <= rooms; i += 1) {
    host.handle({ t: 'create', seq: i, id: `rm-${i}`, options: {}, first: false });
    host.handle({ t: 'join', seq: i, pid: `a${i}`, name: 'a', cid: 1, welcome: {} });
    host.handle({ t: 'join', seq: i, pid: `b${i}`, name: 'b', cid: 2, welcome: {} });
  }
  await new Promise((r) => setTimeout(r, 200));
  snaps = 0;
  bytes = 0;
  let n = 0;
  const change = setInterval(() => { // 20 Hz: every room changes
    n += 1;
    for (let i = 1; i <= rooms; i += 1) host.handle({ t: 'frame', seq: i, pid: `a${i}`, text: `{"type":"m","data":${n}}` });
  }, 50);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  clearInterval(change);
  host.shutdown();
  return { cpu_ms_per_s: (cpu.user + cpu.system) / 1000 / wall, snaps_per_s: snaps / wall,
    bytes_per_snap: snaps ? bytes / snaps : 0 };
}

(async () => {
  const plain = await run(false);
  const durable = await run(true);
  const extra = durable.cpu_ms_per_s - plain.cpu_ms_per_s;
  process.stdout.write(JSON.stringify({
    rooms, change_hz: 20, snapshot_interval_ms: every, plain, durable,
    snapshot_cpu_ms_per_room_per_s: extra / rooms,
    snapshot_cpu_share_of_one_core: extra / 1000,
  }) + '\n');
  process.exit(0);
})();
