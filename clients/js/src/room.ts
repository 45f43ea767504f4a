// One seat in one room: the WebSocket, the frames in and out, the synced state, and the automatic
// reconnection of protocol v1 (a dropped player keeps its seat for `reconnectSeconds`; the client
// presents the reconnection token of its last `welcome`). Against a runtime that sends no token
// the room simply ends when the connection does.

import {
  ConnectError, FINAL_CLOSE_CODES, GSFError, JoinRefusedError, ProtocolVersionError, ReconnectError,
  ReconnectExpiredError, ReconnectTokenError, SeatRefusedError, ServerError, closeError,
} from './errors.js';
import { PathTable, applyCompact } from './compact.js';
import { PatchError, applyPatch, deepEqual, getAt, parsePointer, type PatchOperation } from './patch.js';
import { PROTOCOL_VERSION, type ReconnectOptions, type WebSocketConstructor, type WebSocketLike, type Welcome } from './types.js';

/** Frames `send` keeps while the connection is being re-established (then sent in order). */
export const MAX_OUTBOX = 256;
const OPEN = 1;
const LEAVE_TIMEOUT_MS = 2000;

export interface RoomConnectOptions {
  WebSocket: WebSocketConstructor;
  reconnect: Required<ReconnectOptions>;
  joinTimeoutMs: number;
  /** The state patches this client asks for (`enc=`): 'c1' (compact) or 'json-patch' (RFC 6902). */
  stateEncoding?: StateEncoding;
  /**
   * Where a room is now (the matchmaker's `POST /reconnect`): its address and the token to present
   * there (re-signed when the room moved to another server); null while it is not listed.
   * Rejects with ReconnectTokenError when the matchmaker refuses the token.
   */
  locate?: (roomId: string, token: string) => Promise<{ url: string; token: string } | null>;
}

export type StateEncoding = 'c1' | 'json-patch';

/** What to keep to come back to this seat later (after a page reload): `client.reconnect(it)`. */
export interface Reconnection {
  url: string;
  token: string;
}

type Unsubscribe = () => void;

class Handlers<A extends unknown[]> {
  private readonly set = new Set<(...args: A) => void>();

  add(cb: (...args: A) => void): Unsubscribe {
    this.set.add(cb);
    return () => { this.set.delete(cb); };
  }

  emit(onError: (err: unknown) => void, ...args: A): void {
    for (const cb of Array.from(this.set)) {
      try {
        cb(...args);
      } catch (err) {
        onError(err);
      }
    }
  }

  get size(): number { return this.set.size; }
}

interface Waiter {
  resolve: (welcome: Welcome) => void;
  reject: (err: Error) => void;
  refusal: string | null;
  failure: string | null;
  timer: ReturnType<typeof setTimeout>;
}

/** `ws://h:p/ws?token=..&name=..` -> the same address without its seat token. */
function withoutSeat(url: string): string {
  const u = new URL(url);
  u.searchParams.delete('token');
  u.searchParams.delete('reconnect');
  u.searchParams.delete('v');
  u.searchParams.delete('enc');
  return u.toString();
}

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** The HTTP status of a refused upgrade, where the WebSocket implementation tells it (`ws` does). */
function refusedStatus(failure: string | null): number | null {
  const match = failure ? /Unexpected server response: (\d{3})/.exec(failure) : null;
  return match ? Number(match[1]) : null;
}

const UPGRADE_SLUGS: Record<number, string> = { 401: 'seat-token', 404: 'room-not-found', 410: 'room-gone', 426: 'protocol-version' };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A joined room. Get one from `Client.joinOrCreate`, `create`, `joinById`, `consumeSeat` or
 * `reconnect`. `State` is the shape of the synced state (modules with `stateSync`).
 */
export class Room<State = any> {
  /** This room's id (the server id for a server's first room). */
  id: string;
  serverId: string;
  playerId = '';
  name = '';
  /** The last `welcome` frame as sent. */
  welcome: Welcome | null = null;
  /** The synced state (`$state` then `$patch`es); undefined until the first `$state`. */
  state: State | undefined = undefined;
  /** True while the WebSocket is open and welcomed. */
  connected = false;

  private ws: WebSocketLike | null = null;
  /** c1 path numbers of this connection's state stream. */
  private readonly pathTable = new PathTable();
  private baseUrl: string;
  private reconnectToken: string | null = null;
  private reconnectSeconds = 0;
  private waiter: Waiter | null = null;
  private holding = false;
  private inbox: Array<{ type: string; data: unknown }> = [];
  private outbox: string[] = [];
  private leaving = false;
  private ended = false;
  private reconnecting = false;
  private leaveWaiters: Array<() => void> = [];
  private leaveTimer: ReturnType<typeof setTimeout> | null = null;

  private readonly messages = new Map<string, Handlers<[unknown, string]>>();
  private readonly stateChanges = new Handlers<[State, State | undefined]>();
  private readonly paths: Array<{ parts: string[]; cb: (value: unknown, previous: unknown) => void }> = [];
  private readonly drops = new Handlers<[number, string]>();
  private readonly reconnects = new Handlers<[]>();
  private readonly leaves = new Handlers<[number, GSFError | null]>();
  private readonly errors = new Handlers<[unknown]>();

  private constructor(url: string, roomId: string, serverId: string, private readonly opts: RoomConnectOptions) {
    this.baseUrl = withoutSeat(url);
    this.id = roomId;
    this.serverId = serverId;
  }

  /** Connect with a seat's `ws_url` (it carries the seat token); resolves after `welcome`. */
  static async join<S = any>(wsUrl: string, roomId: string, serverId: string, opts: RoomConnectOptions): Promise<Room<S>> {
    const room = new Room<S>(wsUrl, roomId, serverId, opts);
    await room.open(withParams(wsUrl, room.connectParams()), false);
    return room;
  }

  /** Come back to a seat kept by a reconnection token (after a reload, within the window). */
  static async rejoin<S = any>(reconnection: Reconnection, opts: RoomConnectOptions): Promise<Room<S>> {
    const room = new Room<S>(reconnection.url, '', '', opts);
    room.reconnectToken = reconnection.token;
    await room.open(room.reconnectUrl(), true);
    return room;
  }

  // --- public API ------------------------------------------------------------------------------

  /** Send a frame to the room; while reconnecting it waits (at most MAX_OUTBOX frames). */
  send(type: string, data?: unknown): void {
    if (typeof type !== 'string' || type === '') throw new TypeError('a frame type is a non-empty string');
    if (type.startsWith('$')) throw new TypeError('frame types starting with "$" are the runtime\'s own');
    const text = JSON.stringify({ type, data: data === undefined ? null : data });
    if (this.connected && this.ws && this.ws.readyState === OPEN) {
      this.ws.send(text);
    } else if (this.reconnecting && !this.ended) {
      if (this.outbox.length >= MAX_OUTBOX) throw new GSFError(`more than ${MAX_OUTBOX} frames waiting for the reconnection`);
      this.outbox.push(text);
    } else {
      throw new GSFError('the room is not connected');
    }
  }

  /** Frames of one type (`'*'`: every frame, the handler also gets the type). */
  onMessage<T = unknown>(type: string, cb: (data: T, type: string) => void): Unsubscribe {
    let set = this.messages.get(type);
    if (!set) {
      set = new Handlers();
      this.messages.set(type, set);
    }
    return set.add(cb as (data: unknown, type: string) => void);
  }

  /** The synced state changed (after a `$state` or a `$patch`). */
  onStateChange(cb: (state: State, previous: State | undefined) => void): Unsubscribe {
    return this.stateChanges.add(cb);
  }

  /**
   * The value at `path` changed: a JSON Pointer (`/players/p1/x`) or dotted (`players.p1.x`).
   * Values are compared by identity after patches (the state is copy-on-write) and deeply after
   * a full `$state`, so a resync that changes nothing calls nothing.
   */
  listen<T = unknown>(path: string, cb: (value: T | undefined, previous: T | undefined) => void): Unsubscribe {
    const parts = path === '' || path.startsWith('/') ? parsePointer(path) : path.split('.');
    const entry = { parts, cb: cb as (value: unknown, previous: unknown) => void };
    this.paths.push(entry);
    return () => {
      const at = this.paths.indexOf(entry);
      if (at >= 0) this.paths.splice(at, 1);
    };
  }

  /** The connection dropped (not a leave); the SDK is reconnecting. */
  onDrop(cb: (code: number, reason: string) => void): Unsubscribe { return this.drops.add(cb); }

  /** Back in the room after a drop, with the same player id. */
  onReconnect(cb: () => void): Unsubscribe { return this.reconnects.add(cb); }

  /** The room is over for this client: `error` null after leave() or a normal close. */
  onLeave(cb: (code: number, error: GSFError | null) => void): Unsubscribe { return this.leaves.add(cb); }

  /** `error` frames (ServerError), bad patches, and exceptions thrown by handlers. */
  onError(cb: (error: unknown) => void): Unsubscribe { return this.errors.add(cb); }

  /** The reconnection token and address, to come back after a reload (null: the runtime gives none). */
  get reconnection(): Reconnection | null {
    return this.reconnectToken ? { url: this.baseUrl, token: this.reconnectToken } : null;
  }

  /** Leave on purpose (close 1000): the seat is given up and the room runs onLeave. */
  leave(): Promise<void> {
    if (this.ended) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.leaveWaiters.push(resolve));
    this.leaving = true;
    if (this.ws && this.connected && this.ws.readyState === OPEN) {
      this.ws.close(1000, 'leave');
      // A server that never answers the close frame does not keep the caller waiting.
      this.leaveTimer = setTimeout(() => this.end(1000, null), LEAVE_TIMEOUT_MS);
    } else {
      this.ws?.close(1000, 'leave');
      this.end(1000, null);
    }
    return done;
  }

  // --- connection ------------------------------------------------------------------------------

  private reconnectUrl(): string {
    return withParams(this.baseUrl, { reconnect: this.reconnectToken ?? '', ...this.connectParams() });
  }

  /** `v=` and `enc=` of every connection. */
  private connectParams(): Record<string, string> {
    return { v: String(PROTOCOL_VERSION), enc: this.opts.stateEncoding ?? 'c1' };
  }

  /** Open a socket and wait for its `welcome` (the room takes the socket over at once). */
  private open(url: string, reconnect: boolean, timeoutMs = this.opts.joinTimeoutMs): Promise<Welcome> {
    return new Promise<Welcome>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.opts.WebSocket(url);
      } catch (err) {
        reject(new ConnectError(`cannot open ${withoutSeat(url)}: ${(err as Error).message}`));
        return;
      }
      const timer = setTimeout(() => {
        if (this.waiter !== waiter) return;
        this.waiter = null;
        ws.onclose = null;
        ws.close(1000, 'join timeout');
        reject(new ConnectError(`no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = { resolve, reject, refusal: null, failure: null, timer };
      this.ws = ws;
      this.waiter = waiter;
      ws.onmessage = (ev) => { if (this.ws === ws) this.onRaw(ev.data); };
      ws.onerror = (ev) => {
        if (this.waiter === waiter) waiter.failure = String(ev?.message ?? ev?.error?.message ?? '');
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        if (this.waiter === waiter) {
          clearTimeout(waiter.timer);
          this.waiter = null;
          reject(this.openError(ev.code, ev.reason, waiter, reconnect));
          return;
        }
        this.onClosed(ev.code, ev.reason);
      };
    });
  }

  private openError(code: number, reason: string, waiter: Waiter, reconnect: boolean): Error {
    if (code === 4003) return new JoinRefusedError(waiter.refusal ?? 'the game refused the player', code);
    const status = refusedStatus(waiter.failure);
    if (status === 426) return new ProtocolVersionError('the runtime does not speak this protocol version', 426, 'protocol-version');
    if (reconnect && status === 401) return new ReconnectTokenError('the reconnection token was refused', 401);
    if (reconnect && (status === 404 || status === 410)) {
      return new ReconnectExpiredError('the seat is gone: the reconnection window ended', status);
    }
    if (status !== null) {
      return new SeatRefusedError(`the runtime refused the connection (${status})`, status, UPGRADE_SLUGS[status] ?? null);
    }
    const final = FINAL_CLOSE_CODES.has(code) ? closeError(code, reason) : null;
    if (final) return final;
    return new ConnectError(`the connection closed before welcome (${code}${reason ? ` ${reason}` : ''})`, code);
  }

  private onRaw(raw: unknown): void {
    let frame: { type?: unknown; data?: unknown };
    try {
      frame = JSON.parse(String(raw));
    } catch {
      this.errors.emit(() => {}, new GSFError('the room sent a frame that is not JSON'));
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    const { type, data } = frame as { type: string; data: unknown };
    const waiter = this.waiter;
    if (waiter) {
      if (type === 'welcome') {
        clearTimeout(waiter.timer);
        this.waiter = null;
        this.onWelcome(data as Welcome);
        waiter.resolve(data as Welcome);
        return;
      }
      if (type === 'error' && (data as { code?: string })?.code === 'join_refused') {
        waiter.refusal = String((data as { message?: string }).message ?? 'join refused');
        return;
      }
    }
    if (this.holding) this.inbox.push({ type, data });
    else this.dispatch(type, data);
  }

  private onWelcome(welcome: Welcome): void {
    this.welcome = welcome;
    this.playerId = welcome.playerId;
    this.name = welcome.name ?? welcome.playerId;
    this.serverId = welcome.serverId ?? this.serverId;
    this.id = welcome.roomId ?? (this.id || welcome.serverId);
    this.reconnectToken = typeof welcome.reconnect === 'string' && welcome.reconnect ? welcome.reconnect : null;
    this.reconnectSeconds = typeof welcome.reconnectSeconds === 'number' ? welcome.reconnectSeconds : 0;
    this.connected = true;
    // Frames right behind `welcome` wait one macrotask: the caller's `await join…` continues first
    // and registers its handlers, so no frame reaches the room before anyone listens.
    this.holding = true;
    setTimeout(() => {
      this.holding = false;
      const queued = this.inbox;
      this.inbox = [];
      for (const frame of queued) this.dispatch(frame.type, frame.data);
    }, 0);
  }

  private dispatch(type: string, data: unknown): void {
    const fail = (err: unknown): void => this.errors.emit(() => {}, err);
    if (type === '$state') {
      this.pathTable.reset();
      this.setState(data as State, true);
      return;
    }
    if (type === '$paths') {
      this.pathTable.reset(Array.isArray(data) ? data.map(String) : []);
      return;
    }
    if (type === '$p') {
      try {
        this.setState(applyCompact(this.state as State, data, this.pathTable), false);
      } catch (err) {
        fail(err instanceof PatchError ? err : new PatchError(String(err)));
      }
      return;
    }
    if (type === '$patch') {
      try {
        this.setState(applyPatch(this.state as State, data as PatchOperation[]), false);
      } catch (err) {
        fail(err instanceof PatchError ? err : new PatchError(String(err)));
      }
      return;
    }
    if (type === 'error') {
      const d = (data ?? {}) as { code?: string; message?: string; hook?: string };
      this.errors.emit(() => {}, new ServerError(String(d.code ?? 'error'), String(d.message ?? ''), d.hook ?? null));
    }
    this.messages.get(type)?.emit(fail, data, type);
    this.messages.get('*')?.emit(fail, data, type);
  }

  private setState(next: State, full: boolean): void {
    const previous = this.state;
    this.state = next;
    const fail = (err: unknown): void => this.errors.emit(() => {}, err);
    for (const { parts, cb } of this.paths.slice()) {
      const before = getAt(previous, parts);
      const after = getAt(next, parts);
      if (full ? deepEqual(before, after) : before === after) continue;
      try {
        cb(after, before);
      } catch (err) {
        fail(err);
      }
    }
    this.stateChanges.emit(fail, next, previous);
  }

  private onClosed(code: number, reason: string): void {
    this.connected = false;
    if (this.leaving || this.ended) {
      this.end(code, null);
      return;
    }
    const canReconnect = this.opts.reconnect.enabled && this.reconnectToken !== null && this.reconnectSeconds > 0;
    if (code === 1000 || FINAL_CLOSE_CODES.has(code) || !canReconnect) {
      this.end(code, closeError(code, reason));
      return;
    }
    this.drops.emit((err) => this.errors.emit(() => {}, err), code, reason);
    void this.reconnectLoop(Date.now() + this.reconnectSeconds * 1000);
  }

  /**
   * Ask the matchmaker where the room is now (a restarted or drained server, a rolling update):
   * true when reconnecting should go on (a new address, or the room not listed for now), false
   * when there is nothing more to hope for (the room still where it was, unless `hereHopeful`).
   * `movedOnly`: true only for a new address.
   */
  private async relocate(movedOnly: boolean, hereHopeful = false): Promise<boolean> {
    if (!this.opts.locate || this.reconnectToken === null || !this.id) return false;
    let where: { url: string; token: string } | null;
    try {
      where = await this.opts.locate(this.id, this.reconnectToken);
    } catch (err) {
      if (err instanceof ReconnectError) return false;
      return !movedOnly; // the matchmaker unreachable or busy: keep trying the old address
    }
    if (where === null) return !movedOnly;
    const base = withoutSeat(where.url);
    if (base === this.baseUrl) return hereHopeful;
    this.baseUrl = base;
    this.reconnectToken = where.token || this.reconnectToken;
    return true;
  }

  private async reconnectLoop(deadline: number): Promise<void> {
    this.reconnecting = true;
    const { minDelayMs, maxDelayMs, factor } = this.opts.reconnect;
    let ceiling = minDelayMs;
    let lastError: Error | null = null;
    while (!this.leaving && !this.ended) {
      // Full jitter: many clients dropped by one network blip do not come back in lockstep.
      await sleep(Math.random() * ceiling);
      ceiling = Math.min(maxDelayMs, Math.max(ceiling * factor, 1));
      const left = deadline - Date.now();
      if (this.leaving || this.ended) return;
      if (left <= 0) break;
      try {
        await this.open(this.reconnectUrl(), true, Math.min(this.opts.joinTimeoutMs, left));
      } catch (err) {
        lastError = err as Error;
        if (err instanceof ReconnectError || err instanceof JoinRefusedError || err instanceof ProtocolVersionError) {
          // Another process at the old address may not know the room: it may be elsewhere now.
          // A room not found (404) where the matchmaker still places it is being restored there
          // (a restart, a migration the next version refused): keep trying meanwhile.
          if (err instanceof ReconnectError && await this.relocate(false, err.status === 404)) continue;
          this.end(1006, err);
          return;
        }
        if (err instanceof ConnectError && await this.relocate(true)) ceiling = minDelayMs; // a new address: at once
        continue;
      }
      if (this.leaving) {
        this.ws?.close(1000, 'leave');
        return;
      }
      this.reconnecting = false;
      const queued = this.outbox;
      this.outbox = [];
      for (const text of queued) this.ws?.send(text);
      this.reconnects.emit((e) => this.errors.emit(() => {}, e));
      return;
    }
    if (this.leaving || this.ended) return;
    this.end(1006, new ReconnectExpiredError(
      `could not reconnect within ${this.reconnectSeconds} s${lastError ? `: ${lastError.message}` : ''}`));
  }

  private end(code: number, error: GSFError | null): void {
    if (this.ended) return;
    this.ended = true;
    if (this.leaveTimer !== null) clearTimeout(this.leaveTimer);
    this.connected = false;
    this.reconnecting = false;
    this.outbox = [];
    this.leaves.emit((err) => this.errors.emit(() => {}, err), code, error);
    for (const resolve of this.leaveWaiters.splice(0)) resolve();
  }
}
