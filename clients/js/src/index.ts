// @gsf/client: the player side of Game Server Factory (protocol v1).
export { Client } from './client.js';
export type { ClientOptions, JoinOptions, ListOptions, RoomWatch } from './client.js';
export { Room, MAX_OUTBOX } from './room.js';
export { measure, nearestFirst, joinOrder, timeRegion } from './regions.js';
export type { RegionInfo, RegionLatency, MeasureOptions } from './regions.js';
export type { Reconnection, StateEncoding } from './room.js';
export { applyCompact, PathTable } from './compact.js';
export * from './errors.js';
export { applyPatch, applyOperation, getAt, parsePointer, formatPointer, PatchError } from './patch.js';
export type { PatchOperation, JsonValue } from './patch.js';
export { PROTOCOL_VERSION } from './types.js';
export type {
  RoomInfo, Seat, Welcome, RoomEvent, Filters, ReconnectOptions, WebSocketLike, WebSocketConstructor, FetchLike,
} from './types.js';
