'use strict';
// The main thread's shared state: one object every part of the server (server.js, config.js,
// http-routes.js, upgrade.js, connections.js, players.js, room-router.js) reads and server.js fills
// in at start-up, plus the close codes they share. One process hosts one server, so one object.

const CLOSE_NORMAL = 1000; // the client closed on purpose: a leave, not a drop
const CLOSE_POLICY_VIOLATION = 1008; // sustained flooding past the message rate limit
const CLOSE_TOO_BIG = 1009;
const CLOSE_REPLACED = 4000;
const CLOSE_ROOM_FAILED = 4410; // the room's own code spun or ballooned: it ended `failed`
const CLOSE_ROOM_RESET = 4503; // the room shared a worker with a failed room: it ended, state lost

/**
 * A room as the main thread sees it: routing, seats and the room-list fields; its game state
 * lives with its host (`link`).
 * @typedef {{id: string, seq: number, first: boolean, link: any, options: object, status: string,
 *            reason?: string, createdAt: number, conns: Map<string, Conn>, upgrading: Set<string>,
 *            locked: boolean, metadata: object, emptyTimer: any, onCreated: ((ok: boolean, msg: object) => void) | null,
 *            dropped: Map<string, Drop>, gone: Map<string, string>}} RoomRec
 */
/**
 * A dropped player: its seat and id are kept for `reconnectSeconds`; frames to it are buffered.
 * `nonce` is the one reconnection token still good; `resuming` while a reconnection is under way.
 * @typedef {{nonce: string | null, name: string, frames: string[], bytes: number, lost: boolean,
 *            resuming: boolean, expired: boolean, timer: any}} Drop
 */
/**
 * A player's connection.
 * @typedef {{ws: WebSocket, id: string, name: string, room: RoomRec, cid: number, joined: boolean,
 *            closed: boolean, alive: boolean, outbox: string[] | null, inbox: Array<[Buffer, boolean]> | null,
 *            bucket: TokenBucket | null, drops: number, dropWindowStart: number, kicked: boolean}} Conn
 */

const rt = {
  // set once by server.js before anything listens
  cfg: null, log: null, logEvent: null, startedAt: 0, instance: '', seats: null, rejoins: null, book: null,
  server: null, wss: null, directFrames: false,
  /** Failures go here (stderr, or stdout with GSF_LOG_STREAM=stdout). */
  stderrWrite: null, oneStream: false,
  stats: { messagesIn: 0, messagesOut: 0, messagesDropped: 0 },
  /** @type {Map<string, RoomRec>} room id -> room (open ones, and ended ones for a minute) */
  rooms: new Map(),
  /** @type {Map<number, RoomRec>} the rooms' numbers in messages with their hosts */
  roomsBySeq: new Map(),
  /** Rooms creating or open: what maxRooms limits. */
  liveRooms: new Set(),
  firstRoom: null,
  /** Where rooms run: a RoomPool of workers, or the main thread's ThreadLink. */
  pool: null,
  threadLink: null,
  // what the game module says (loaded in main())
  maxPlayers: 0,
  maxRooms: 1,
  emptyRoomSeconds: 0,
  reconnectSeconds: 0,
  stateSync: false,
  durableModule: false,
  tickRate: 0,
  ready: false,
  shuttingDown: false,
};

module.exports = {
  rt, CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG, CLOSE_REPLACED, CLOSE_ROOM_FAILED, CLOSE_ROOM_RESET,
};
