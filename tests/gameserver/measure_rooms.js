'use strict';
// Measures the room runtime's trade-offs (docs/writing-a-game.md "Rooms"); not a test:
//   node tests/gameserver/measure_rooms.js [rooms=2000]
// 1. memory per idle room: RSS of one server before and after `rooms` rooms with one connected
//    player each (rooms in 2 workers); 2. the per-frame cost of the hop to a room worker: echo
//    round trips in the main thread (GSF_ROOM_WORKERS=0) and in a worker; 3. memory per worker.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const RUNTIME = path.resolve(__dirname, '../../gameserver/runtime');
const WebSocket = require(path.join(RUNTIME, 'node_modules/ws'));

const GAME = `module.exports = {
  maxPlayers: 4,
  onJoin(room, player) { room.state.last = player.id; },
  onMessage(room, player, type, data) { room.send(player, type, data); },
};`;
const SECRET = crypto.randomBytes(32).toString('hex');

function token(serverId, pid, rid, opt) {
  const claims = { sid: serverId, pid, exp: Date.now() / 1000 + 600, n: crypto.randomBytes(9).toString('base64url') };
  if (rid) claims.rid = rid;
  if (opt) claims.new = { opt };
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = crypto.createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(payload).digest('base64url');
  return `${payload}.${sig}`;
}

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function start(env) {
  const file = path.join(os.tmpdir(), `gsf-measure-${process.pid}.js`);
  fs.writeFileSync(file, GAME);
  const child = spawn(process.execPath, [path.join(RUNTIME, 'server.js')], {
    env: { PATH: process.env.PATH, PORT: '0', GSF_BIND_HOST: '127.0.0.1', GSF_GAME_FILE: file,
      GSF_SERVER_ID: 'srv-measure', GSF_SEAT_SECRET: SECRET, GSF_AGENT_KEY: 'k', GSF_SERVER_MESSAGE_RATE: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening .*port=(\d+)/.exec(out);
      if (m && out.includes('\nready ')) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`runtime exited ${code}: ${out}`)));
  });
  child.stdout.resume();
  return { child, port, stop: () => child.kill('SIGKILL') };
}

function connect(port, tok) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${tok}`, { perMessageDeflate: false });
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function settledRss(pid) {
  await sleep(1500);
  return rssKb(pid);
}

async function echoRtts(ws, count) {
  const rtts = [];
  for (let i = 0; i < count; i += 1) {
    const t0 = process.hrtime.bigint();
    await new Promise((resolve) => {
      ws.once('message', resolve);
      ws.send(JSON.stringify({ type: 'echo', data: i }));
    });
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  rtts.sort((a, b) => a - b);
  return { p50: rtts[Math.floor(count * 0.5)], p99: rtts[Math.floor(count * 0.99)] };
}

async function main() {
  const rooms = Number(process.argv[2] || 2000);
  const results = {};

  for (const workers of [0, 2]) {
    const rt = await start({ GSF_MAX_ROOMS: '4', GSF_ROOM_WORKERS: String(workers) });
    const idle = await settledRss(rt.child.pid);
    const ws = await connect(rt.port, token('srv-measure', 'p1', 'rm-echo', {}));
    await echoRtts(ws, 500); // warm-up
    results[`echo_ms_workers_${workers}`] = await echoRtts(ws, 3000);
    results[`idle_rss_mb_workers_${workers}`] = +(idle / 1024).toFixed(1);
    ws.close();
    rt.stop();
  }

  const rt = await start({ GSF_MAX_ROOMS: String(rooms + 10), GSF_ROOM_WORKERS: '2' });
  const before = await settledRss(rt.child.pid);
  const sockets = [];
  const t0 = Date.now();
  for (let i = 0; i < rooms; i += 1) {
    sockets.push(await connect(rt.port, token('srv-measure', `p${i}`, `rm-${i.toString(16).padStart(16, '0')}`, {})));
  }
  const createMs = (Date.now() - t0) / rooms;
  const after = await settledRss(rt.child.pid);
  results.rooms = rooms;
  results.new_room_join_ms_mean = +createMs.toFixed(2);
  results.rss_mb_before = +(before / 1024).toFixed(1);
  results.rss_mb_after = +(after / 1024).toFixed(1);
  results.kb_per_idle_room = +((after - before) / rooms).toFixed(1);
  for (const ws of sockets) ws.terminate();
  rt.stop();
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
