'use strict';
// The server's life: load the game where its rooms will run, create the first room, become ready;
// and on SIGTERM/SIGINT, dispose the rooms and close every connection before the deadline. SIGUSR2
// is the platform's drain (a server stopped while its durable rooms move to another): those rooms
// are left as they are (no onDispose, their sockets cut without a close frame, so their players
// reconnect where the rooms go next); the others end as on SIGTERM.

const path = require('node:path');
const { WebSocket } = require('ws');

const { DEFAULT_MAX_PLAYERS } = require('./room-core');
const { loadGame, moduleInfo } = require('./room-host');
const { ThreadLink, RoomPool } = require('./room-pool');
const { rt } = require('./runtime-state');
const players = require('./players');
const router = require('./room-router');
const connections = require('./connections');

const EXIT_LOAD_FAILED = 3;
const EXIT_BLOCKED = 4;
const SHUTDOWN_DEADLINE_MS = 1800;

function fail(message, detail, code = EXIT_LOAD_FAILED) {
  if (typeof detail === 'string') rt.stderrWrite(`gsf runtime: ${message}: ${detail}\n`);
  else rt.log.error(`gsf runtime: ${message}`, detail, { gameOnly: true });
  process.exit(code);
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stop the server: `moving` (SIGUSR2), its durable rooms go on elsewhere and are left untouched. */
async function shutdown(signal, { moving = false } = {}) {
  if (rt.shuttingDown) return;
  rt.shuttingDown = true;
  let seatedCount = 0;
  const kept = new Set();
  for (const rec of rt.liveRooms) {
    seatedCount += players.seated(rec);
    for (const drop of rec.dropped.values()) clearTimeout(drop.timer);
    if (moving && rec.durable) kept.add(rec);
  }
  rt.logEvent('shutdown', { signal, players: `${seatedCount}/${rt.maxPlayers * Math.max(1, rt.liveRooms.size)}`,
    ...(moving ? { moving: kept.size } : {}) });
  // Whatever a hook does, the process is gone before the platform's stop timeout.
  setTimeout(() => {
    rt.stderrWrite('gsf runtime: shutdown deadline passed, exiting\n');
    process.exit(0);
  }, SHUTDOWN_DEADLINE_MS);
  connections.stopKeepalive();
  rt.pool?.stop();
  rt.server.close();
  await Promise.race([router.disposeAll([...kept].map((rec) => rec.seq)), delay(1000)]);
  const closing = [];
  const conns = [];
  for (const rec of rt.liveRooms) {
    if (!kept.has(rec)) {
      conns.push(...rec.conns.values());
      continue;
    }
    // A drop, as if the process had been killed: the client reconnects, and finds the room moved.
    for (const conn of rec.conns.values()) conn.ws.terminate();
  }
  for (const conn of conns) {
    const ws = conn.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      closing.push(new Promise((resolve) => ws.once('close', resolve)));
      ws.close(1001, 'server shutting down');
    }
    players.removePlayer(conn, 'shutdown', 1001, { silent: true });
  }
  await Promise.race([Promise.all(closing), delay(400)]);
  for (const conn of conns) conn.ws.terminate();
  rt.server.closeAllConnections();
  rt.log.limiter.flushAll();
  rt.logEvent('stopped');
  process.exit(0);
}

/**
 * Load the module where its rooms will run. One room (the default): in the main thread, as the
 * runtime always did. More: in the room workers; without GSF_MAX_ROOMS the module's own maxRooms
 * decides, which needs one load in the main thread first (the platform sets GSF_MAX_ROOMS).
 */
async function loadRooms() {
  let game = null;
  if (rt.cfg.maxRooms === null || rt.cfg.maxRooms === 1 || rt.cfg.roomWorkers === 0) {
    try {
      game = await loadGame(rt.cfg.gameFile, rt.cfg.maxPlayers !== null);
    } catch (err) {
      fail(`the game module ${rt.cfg.gameFile || '(none)'} failed to load`, err);
    }
  }
  rt.maxRooms = rt.cfg.maxRooms ?? game?.maxRooms ?? 1;
  if (rt.maxRooms === 1 || rt.cfg.roomWorkers === 0) {
    rt.maxPlayers = rt.cfg.maxPlayers ?? game.maxPlayers ?? DEFAULT_MAX_PLAYERS;
    rt.threadLink = new ThreadLink({ game, serverId: rt.cfg.serverId, maxPlayers: rt.maxPlayers, logger: rt.log, onMessage: router.onHostMessage });
    return moduleInfo(game);
  }
  rt.pool = new RoomPool({
    size: rt.cfg.roomWorkers, memoryMb: rt.cfg.workerMemoryMb, hookTimeoutMs: rt.cfg.hookTimeoutMs,
    gameFile: rt.cfg.gameFile, serverId: rt.cfg.serverId, maxPlayers: rt.maxPlayers, maxPlayersGiven: rt.cfg.maxPlayers !== null,
    logFd: rt.oneStream ? 1 : 2, onMessage: router.onHostMessage, onWorkerEnded: router.onWorkerEnded,
    onReplacementFailed: (err) => rt.log.error('gsf runtime: a replacement room worker failed to start', err.message),
  });
  let info;
  try {
    info = await rt.pool.start();
  } catch (err) {
    if (err.blocked) {
      rt.stderrWrite(`watchdog: event loop blocked for ${rt.cfg.hookTimeoutMs} ms\n`);
      process.exit(EXIT_BLOCKED);
    }
    fail(`the game module ${rt.cfg.gameFile || '(none)'} failed to load`, err.gameStack ?? err);
  }
  if (rt.cfg.maxPlayers === null && info.maxPlayers !== null) rt.maxPlayers = info.maxPlayers;
  return info;
}

async function main() {
  rt.server.on('error', (err) => {
    rt.log.error(`gsf runtime: cannot listen on ${rt.cfg.host}:${rt.cfg.port}`, err);
    process.exit(1);
  });
  await new Promise((resolve) => (rt.cfg.listenFd === null
    ? rt.server.listen(rt.cfg.port, rt.cfg.host, resolve)
    : rt.server.listen({ fd: rt.cfg.listenFd }, resolve)));
  const address = rt.server.address();
  rt.logEvent('listening', { host: address.address, port: address.port, server: rt.cfg.serverId });
  if (rt.cfg.requireToken && !rt.cfg.seatSecret) {
    rt.stderrWrite('gsf runtime: GSF_SEAT_SECRET is not set: every WebSocket connection will be refused\n');
  }

  const info = await loadRooms();
  rt.tickRate = info.tickRate;
  rt.emptyRoomSeconds = info.emptyRoomSeconds ?? 0;
  rt.reconnectSeconds = info.reconnectSeconds ?? 0;
  rt.stateSync = (info.patchRateMs ?? 0) > 0;
  rt.durableModule = info.durable === true;
  // The first room is created before the server is ready; its id is the server id.
  const created = await new Promise((resolve) => {
    rt.firstRoom = router.createRoom(rt.cfg.serverId, {}, true);
    if (!rt.firstRoom.creating) resolve({ ok: !rt.firstRoom.reason });
    else rt.firstRoom.onCreated = (ok, msg) => resolve({ ok, msg });
  });
  if (!created.ok) {
    // A room whose onCreate failed has no usable state: crash so the platform reports it.
    fail('onCreate failed', created.msg?.stack ?? created.msg?.error ?? 'unknown error');
    return;
  }
  if (rt.shuttingDown) return;
  rt.ready = true;
  rt.logEvent('ready', {
    server: rt.cfg.serverId, game: path.basename(rt.cfg.gameFile), max_players: rt.maxPlayers,
    tick_rate: rt.tickRate || undefined, tokens: rt.cfg.requireToken ? 'required' : 'optional',
    max_rooms: rt.maxRooms > 1 ? rt.maxRooms : undefined, room_workers: rt.pool ? rt.cfg.roomWorkers : undefined,
  });
  connections.startKeepalive();
}

module.exports = { main, shutdown, fail };
