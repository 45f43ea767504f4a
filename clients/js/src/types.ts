// The shapes the matchmaker and the runtime send (protocol v1: docs/writing-a-game.md and
// notes of issue #23), as the SDK exposes them.

/** The protocol major this SDK speaks (`v=` on every connection). */
export const PROTOCOL_VERSION = 1;

/** A room as `GET /rooms` lists it. */
export interface RoomInfo {
  room_id: string;
  server_id: string;
  name: string;
  game: string;
  node_id: string;
  ws_url: string;
  labels: Record<string, string>;
  metadata: Record<string, unknown>;
  players: number;
  max_players: number;
  reserved: number;
  free_seats: number;
  locked: boolean;
  ready: boolean;
  created_at: number;
  options: Record<string, unknown>;
  status: 'open' | 'pending' | 'gone';
  [key: string]: unknown;
}

/** A reserved seat (`POST /join`, `POST /create`, or the API's /api/v1/rooms/join). */
export interface Seat {
  room_id: string;
  server_id: string;
  ws_url: string;
  token: string;
  player_id: string;
  expires_at: number;
}

/** The first frame of every connection. */
export interface Welcome {
  playerId: string;
  name?: string;
  serverId: string;
  roomId?: string;
  maxPlayers?: number;
  players?: string[];
  protocol?: number;
  /** The reconnection token (protocol v1; absent from older runtimes: no reconnection). */
  reconnect?: string;
  reconnectSeconds?: number;
  stateSync?: boolean;
  /** The state encoding of this connection: `c1` when the client asked for it and the runtime knows it. */
  stateEncoding?: string;
  reconnected?: boolean;
  [key: string]: unknown;
}

/** A change of the room list (`GET /rooms/stream`). */
export interface RoomEvent {
  type: 'added' | 'updated' | 'removed' | 'failed';
  room_id: string;
  server_id: string;
  /** The room, for added and updated. */
  room?: RoomInfo;
  /** Why, for removed and failed. */
  reason?: string;
}

/** Room-list filters: `label.<key>` / `metadata.<key>` equality, or plain keys read as labels. */
export type Filters = Record<string, string>;

/** How a client says it is going away, and what a lost connection may try. */
export interface ReconnectOptions {
  /** Off: a dropped connection ends the room at once (onLeave). Default true. */
  enabled?: boolean;
  /** First retry after at most this long (full jitter), default 50 ms. */
  minDelayMs?: number;
  /** The backoff grows by `factor` up to this, default 2000 ms. */
  maxDelayMs?: number;
  factor?: number;
}

/** The constructor of a WHATWG WebSocket (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type FetchLike = typeof fetch;
