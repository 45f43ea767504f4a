'use strict';
// The runtime's settings, read once from the environment (server.js lists every variable): each
// number is checked against its range, so a bad value stops the server at start (exit 2).

const fs = require('node:fs');

/** A number setting within min..max (`integer`: a whole one), or `fallback` when unset. */
function fromEnv(env, name, fallback, min, max, integer) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(integer ? Number.isInteger(value) : Number.isFinite(value)) || value < min || value > max) {
    throw new RangeError(`${name} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const intFromEnv = (env, name, fallback, min, max) => fromEnv(env, name, fallback, min, max, true);
const numberFromEnv = (env, name, fallback, min, max) => fromEnv(env, name, fallback, min, max, false);

/**
 * The room workers' default heap cap: a share of the container's memory (cgroup v2 memory.max)
 * that leaves room for the main thread, so a worker hits its own cap before the container's
 * out-of-memory kill ends every room; 128 MB without a limit.
 */
function defaultWorkerMemoryMb(workers) {
  try {
    const raw = fs.readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (raw !== 'max') return Math.max(16, Math.min(128, Math.floor(Number(raw) / 1048576 / (workers + 2))));
  } catch {
    // no cgroup v2 limit readable: not in a container
  }
  return 128;
}

function readConfig(env) {
  const roomWorkers = intFromEnv(env, 'GSF_ROOM_WORKERS', 2, 0, 64);
  return {
    gameFile: env.GSF_GAME_FILE || '',
    host: env.GSF_BIND_HOST || '0.0.0.0',
    port: intFromEnv(env, 'PORT', 8080, 0, 65535),
    listenFd: intFromEnv(env, 'GSF_LISTEN_FD', null, 3, 65535),
    serverId: env.GSF_SERVER_ID || 'local',
    maxPlayers: intFromEnv(env, 'GSF_MAX_PLAYERS', null, 1, 100_000),
    maxRooms: intFromEnv(env, 'GSF_MAX_ROOMS', null, 1, 1_000_000),
    roomWorkers,
    workerMemoryMb: intFromEnv(env, 'GSF_ROOM_WORKER_MEMORY_MB', null, 16, 65_536) ?? defaultWorkerMemoryMb(roomWorkers),
    hookTimeoutMs: intFromEnv(env, 'GSF_ROOM_HOOK_TIMEOUT_MS', 1000, 10, 3_600_000),
    seatSecret: env.GSF_SEAT_SECRET || '',
    agentKey: env.GSF_AGENT_KEY || '',
    requireToken: (env.GSF_REQUIRE_TOKEN ?? '1') !== '0',
    maxMessageBytes: intFromEnv(env, 'GSF_MAX_MESSAGE_BYTES', 65536, 16, 16 * 1024 * 1024),
    watchdogMs: intFromEnv(env, 'GSF_WATCHDOG_MS', 5000, 0, 3_600_000),
    messageRate: numberFromEnv(env, 'GSF_SERVER_MESSAGE_RATE', 100, 0, 1_000_000),
    messageBurst: intFromEnv(env, 'GSF_SERVER_MESSAGE_BURST', 200, 1, 1_000_000),
    dropLimit: intFromEnv(env, 'GSF_SERVER_MESSAGE_DROP_LIMIT', 200, 1, 100_000_000),
    dropWindowMs: intFromEnv(env, 'GSF_SERVER_MESSAGE_DROP_WINDOW_MS', 10_000, 1, 3_600_000),
    wsDeflate: intFromEnv(env, 'GSF_WS_DEFLATE', 0, 0, 1) === 1,
  };
}

module.exports = { readConfig, intFromEnv, numberFromEnv };
