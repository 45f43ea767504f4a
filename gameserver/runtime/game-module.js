'use strict';
// What a game module exports: the hooks and settings the runtime reads (docs/writing-a-game.md),
// the checks made when it is loaded, and each setting's effective value (defaults, clamps).
// Part of the room core (room-core.js), which game repositories copy for their tests: Node built-ins only.

const util = require('node:util');

const HOOKS = ['onCreate', 'onJoin', 'onMessage', 'onLeave', 'onTick', 'onDispose', 'onDrop', 'onReconnect', 'view',
  'onRestore', 'onMigrate'];
const DEFAULT_MAX_PLAYERS = 16;
const DEFAULT_RECONNECT_SECONDS = 20;
const MAX_RECONNECT_SECONDS = 3600;
const DEFAULT_PATCH_RATE_MS = 50;
const PATCH_RATE_MS = [10, 1000];
const DEFAULT_SNAPSHOT_INTERVAL_MS = 250;
const SNAPSHOT_INTERVAL_MS = [50, 10_000];

/**
 * The checks the runtime makes when it loads a module (it exits with 3 when one fails); returns
 * the hooks object (an ES module's default export or a CommonJS `__esModule` default unwrapped).
 */
function checkModule(mod, maxPlayersGiven = false) {
  if (mod && mod.__esModule && mod.default !== undefined) mod = mod.default;
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) {
    throw new TypeError('the game module must export an object of hooks, e.g. module.exports = { onJoin(room, player) {} }');
  }
  for (const hook of HOOKS) {
    if (mod[hook] !== undefined && typeof mod[hook] !== 'function') {
      throw new TypeError(`${hook} must be a function, got ${typeof mod[hook]}`);
    }
  }
  if (mod.maxPlayers !== undefined && !maxPlayersGiven) {
    if (!Number.isInteger(mod.maxPlayers) || mod.maxPlayers < 1) {
      throw new TypeError(`maxPlayers must be a positive integer, got ${util.inspect(mod.maxPlayers)}`);
    }
  }
  if (mod.tickRate !== undefined && (typeof mod.tickRate !== 'number' || Number.isNaN(mod.tickRate))) {
    throw new TypeError(`tickRate must be a number of ticks per second, got ${util.inspect(mod.tickRate)}`);
  }
  if (mod.maxRooms !== undefined && (!Number.isInteger(mod.maxRooms) || mod.maxRooms < 1)) {
    throw new TypeError(`maxRooms must be a positive integer, got ${util.inspect(mod.maxRooms)}`);
  }
  if (mod.emptyRoomSeconds !== undefined
      && (typeof mod.emptyRoomSeconds !== 'number' || !(mod.emptyRoomSeconds >= 0))) {
    throw new TypeError(`emptyRoomSeconds must be a number of seconds >= 0, got ${util.inspect(mod.emptyRoomSeconds)}`);
  }
  if (mod.reconnectSeconds !== undefined && (typeof mod.reconnectSeconds !== 'number'
      || !(mod.reconnectSeconds >= 0 && mod.reconnectSeconds <= MAX_RECONNECT_SECONDS))) {
    throw new TypeError(`reconnectSeconds must be a number of seconds 0..${MAX_RECONNECT_SECONDS}, got ${util.inspect(mod.reconnectSeconds)}`);
  }
  const sync = mod.stateSync;
  if (sync !== undefined && typeof sync !== 'boolean') {
    const rate = sync?.patchRateMs;
    if (sync === null || typeof sync !== 'object' || Array.isArray(sync) || (rate !== undefined
        && (typeof rate !== 'number' || !(rate >= PATCH_RATE_MS[0] && rate <= PATCH_RATE_MS[1])))) {
      throw new TypeError(`stateSync must be true, false or {patchRateMs: ${PATCH_RATE_MS[0]}..${PATCH_RATE_MS[1]}}, got ${util.inspect(sync)}`);
    }
  }
  if (mod.durable !== undefined && typeof mod.durable !== 'boolean') {
    throw new TypeError(`durable must be true or false, got ${util.inspect(mod.durable)}`);
  }
  const every = mod.snapshotIntervalMs;
  if (every !== undefined && (typeof every !== 'number'
      || !(every >= SNAPSHOT_INTERVAL_MS[0] && every <= SNAPSHOT_INTERVAL_MS[1]))) {
    throw new TypeError(`snapshotIntervalMs must be a number of ms ${SNAPSHOT_INTERVAL_MS[0]}..${SNAPSHOT_INTERVAL_MS[1]}, got ${util.inspect(every)}`);
  }
  return mod;
}

/** Whether a room is durable: the module says so for all its rooms, or the room's options for it. */
function isDurable(game, options) {
  return game.durable === true || options?.durable === true;
}

/** How often a durable room's state is snapshotted at most (docs/writing-a-game.md "Durable rooms"). */
function snapshotIntervalOf(game) {
  return game.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
}

/** The reconnection window in seconds (0 = a lost connection is a leave, as before #23). */
function reconnectSecondsOf(game) {
  return game.reconnectSeconds ?? DEFAULT_RECONNECT_SECONDS;
}

/** The patch period in ms when the module syncs its state, else 0. */
function patchRateOf(game) {
  if (!game.stateSync) return 0;
  return game.stateSync === true ? DEFAULT_PATCH_RATE_MS : (game.stateSync.patchRateMs ?? DEFAULT_PATCH_RATE_MS);
}

/** The tick rate the runtime uses: 0 (no onTick calls) or 1..60 per second. */
function effectiveTickRate(game) {
  return typeof game.tickRate === 'number' && game.tickRate > 0 ? Math.min(60, Math.max(1, game.tickRate)) : 0;
}

module.exports = {
  HOOKS, DEFAULT_MAX_PLAYERS, checkModule, isDurable, snapshotIntervalOf, reconnectSecondsOf, patchRateOf,
  effectiveTickRate,
};
