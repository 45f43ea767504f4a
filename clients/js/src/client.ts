// The matchmaker side of a player: the room list (and its live changes), and seats by
// joinOrCreate, create or room id, each turned into a connected Room.

import { GSFError, MatchmakerError, ReconnectTokenError, RoomNotFoundError, matchmakerError, type Problem } from './errors.js';
import { Room, type Reconnection, type RoomConnectOptions, type StateEncoding } from './room.js';
import { SseParser } from './sse.js';
import { joinOrder, measure, type MeasureOptions, type RegionInfo, type RegionLatency } from './regions.js';
import type {
  FetchLike, Filters, ReconnectOptions, RoomEvent, RoomInfo, Seat, WebSocketConstructor,
} from './types.js';

export interface ClientOptions {
  /** Defaults to the global fetch. */
  fetch?: FetchLike;
  /** Defaults to the global WebSocket; Node 20 has none: pass `(await import('ws')).WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Automatic reconnection after a drop (on by default), or false. */
  reconnect?: ReconnectOptions | false;
  /** How long a connection may take to reach `welcome` (default 10 s). */
  joinTimeoutMs?: number;
  /** Sent as X-Player-Id on joins: the matchmaker then rate-limits per player, not only per address. */
  playerId?: string;
  /** State patches: 'c1' (compact, the default) or 'json-patch' (RFC 6902). Both give the same `room.state`. */
  stateEncoding?: StateEncoding;
}

export interface JoinOptions {
  /** Room-list filters: `label.<key>` and `metadata.<key>` equality. */
  filters?: Filters;
  /** Options of a room this join creates (the game reads them as `room.options`). */
  options?: Record<string, unknown>;
  /** The display name the room sees (`player.name`). */
  name?: string;
  /**
   * joinOrCreate only: a region name (`label.region`), or 'auto': the nearest region that can take
   * the player (`measureRegions`, at most a minute old), else any region.
   */
  region?: string;
}

export interface ListOptions {
  /** Only rooms with a free seat, unlocked (default true). */
  free?: boolean;
  sort?: 'players' | '-players' | 'created' | '-created';
  /** At most this many rooms (default 200, one page). */
  limit?: number;
}

/** A live room list: `rooms` is current; `close()` ends the stream. */
export interface RoomWatch {
  readonly rooms: Map<string, RoomInfo>;
  close(): void;
}

/** How long a measureRegions() serves joinOrCreate({ region: 'auto' }). */
const MEASURE_MAX_AGE_MS = 60_000;

const DEFAULT_RECONNECT: Required<ReconnectOptions> = { enabled: true, minDelayMs: 50, maxDelayMs: 2000, factor: 2 };

function filterParams(params: URLSearchParams, filters: Filters | undefined): void {
  for (const [k, v] of Object.entries(filters ?? {})) params.set(k, v);
}

export class Client {
  readonly url: string;
  private readonly fetchFn: FetchLike;
  private readonly WebSocketCtor: WebSocketConstructor | undefined;
  private readonly reconnectOptions: Required<ReconnectOptions>;
  private readonly joinTimeoutMs: number;
  private readonly stateEncoding: StateEncoding;
  private readonly playerId: string | undefined;
  /** The last measureRegions(): region -> median round trip in ms (null: unreachable), for a UI. */
  latencies: Record<string, number | null> = {};
  /** The last measureRegions(), nearest first. */
  measured: RegionLatency[] = [];
  /** The region the last joinOrCreate with `region` landed in (null: any region, or none). */
  lastRegion: string | null = null;
  private measuredAt = 0;

  /** `matchmakerUrl`: the matchmaker's base address, e.g. `http://127.0.0.1:8100`. */
  constructor(matchmakerUrl: string, options: ClientOptions = {}) {
    this.url = matchmakerUrl.replace(/\/+$/, '');
    const fetchFn = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!fetchFn) throw new GSFError('no fetch: pass options.fetch');
    this.fetchFn = fetchFn.bind(globalThis) as FetchLike;
    this.WebSocketCtor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.reconnectOptions = options.reconnect === false
      ? { ...DEFAULT_RECONNECT, enabled: false }
      : { ...DEFAULT_RECONNECT, ...(options.reconnect ?? {}) };
    this.joinTimeoutMs = options.joinTimeoutMs ?? 10_000;
    this.stateEncoding = options.stateEncoding ?? 'c1';
    this.playerId = options.playerId;
  }

  // --- the room list ---------------------------------------------------------------------------

  /** Rooms of `game` (all games when null) matching `filters`: open ones with a free seat by default. */
  async getAvailableRooms(game: string | null = null, filters?: Filters, options: ListOptions = {}): Promise<RoomInfo[]> {
    const params = new URLSearchParams();
    if (game) params.set('game', game);
    if (options.free ?? true) params.set('free', 'true');
    if (options.sort) params.set('sort', options.sort);
    params.set('limit', String(options.limit ?? 200));
    filterParams(params, filters);
    const body = await this.request<{ items: RoomInfo[] }>('GET', `/rooms?${params}`);
    return body.items;
  }

  /**
   * The room list of `game`, kept current from the matchmaker's event stream; `cb` runs with the
   * whole list after every change (and once at the start). Label filters only (the stream's).
   * A broken stream is opened again and the list read afresh, so missed events cannot linger.
   */
  watchRooms(game: string | null, cb: (rooms: RoomInfo[], event: RoomEvent | null) => void,
    filters?: Filters, onError?: (err: unknown) => void): RoomWatch {
    const rooms = new Map<string, RoomInfo>();
    const abort = new AbortController();
    let retryMs = 2000;
    const params = new URLSearchParams();
    if (game) params.set('game', game);
    filterParams(params, filters);
    const report = (err: unknown): void => { if (!abort.signal.aborted) onError?.(err); };
    const list = (): RoomInfo[] => Array.from(rooms.values());

    const apply = (type: string, raw: string): void => {
      const data = JSON.parse(raw) as RoomInfo & { reason?: string };
      const event: RoomEvent = { type: type as RoomEvent['type'], room_id: data.room_id ?? data.server_id, server_id: data.server_id };
      if (type === 'added' || type === 'updated') {
        event.room = data;
        rooms.set(event.room_id, data);
      } else if (type === 'removed' || type === 'failed') {
        event.reason = data.reason ?? '';
        rooms.delete(event.room_id);
      } else {
        return;
      }
      cb(list(), event);
    };

    const run = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          const resp = await this.fetchFn(`${this.url}/rooms/stream?${params}`, {
            headers: { accept: 'text/event-stream' }, signal: abort.signal,
          });
          if (!resp.ok || !resp.body) throw await this.failure(resp);
          // Listed after the stream is open: a change made meanwhile comes as an event.
          const listing = await this.request<{ items: RoomInfo[] }>('GET', `/rooms?${params}&limit=200`);
          rooms.clear();
          for (const room of listing.items) rooms.set(room.room_id, room);
          cb(list(), null);
          const parser = new SseParser((ev) => {
            try {
              apply(ev.event, ev.data);
            } catch (err) {
              report(err);
            }
          }, (ms) => { retryMs = ms; });
          const reader = resp.body.getReader();
          const decoder = new TextDecoder();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.push(decoder.decode(value, { stream: true }));
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          report(err);
        }
        if (!abort.signal.aborted) await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    };
    void run();
    return { rooms, close: () => abort.abort() };
  }

  // --- seats -----------------------------------------------------------------------------------

  /** A seat in the fullest matching room of `game` with one free, else in a new room; connected. */
  async joinOrCreate<S = any>(game: string, options: JoinOptions = {}): Promise<Room<S>> {
    const filters = options.filters ?? {};
    const body = { game, filters, options: options.options ?? {}, player_name: options.name };
    if (options.region === undefined) return this.consumeSeat<S>(await this.reserve('/join', body));
    this.lastRegion = null;
    const order = options.region === 'auto' ? joinOrder(await this.freshMeasure(game)) : [options.region];
    for (const region of order) {
      let seat: Seat;
      try {
        seat = await this.reserve('/join', { ...body, filters: { ...filters, 'label.region': region } });
      } catch (err) {
        // Full there (or its fleet busy): the next region.
        if (options.region === 'auto' && err instanceof MatchmakerError && (err.status === 409 || err.status === 503)) continue;
        throw err;
      }
      this.lastRegion = region;
      return this.consumeSeat<S>(seat);
    }
    return this.consumeSeat<S>(await this.reserve('/join', body)); // no region could: any server of the game
  }

  /** A seat in a new room of `game` created with `options.options`; connected. */
  async create<S = any>(game: string, options: JoinOptions = {}): Promise<Room<S>> {
    const seat = await this.reserve('/create', { game, filters: options.filters ?? {}, options: options.options ?? {}, player_name: options.name });
    return this.consumeSeat<S>(seat);
  }

  /** A seat in the room `roomId` (a server id: that server's first room); connected. */
  async joinById<S = any>(roomId: string, options: { name?: string } = {}): Promise<Room<S>> {
    const seat = await this.reserve('/join', { room_id: roomId, player_name: options.name });
    return this.consumeSeat<S>(seat);
  }

  /** Connect with a seat reserved elsewhere (the API's /api/v1/rooms/join, a fleet allocation). */
  consumeSeat<S = any>(seat: Seat): Promise<Room<S>> {
    return Room.join<S>(seat.ws_url, seat.room_id, seat.server_id, this.roomOptions());
  }

  /** Back to a seat after a reload, with `room.reconnection` saved before (within the window). */
  reconnect<S = any>(reconnection: Reconnection): Promise<Room<S>> {
    return Room.rejoin<S>(reconnection, this.roomOptions());
  }

  // --- regions ---------------------------------------------------------------------------------

  /** The matchmaker's regions (`GET /regions`): ping URLs, and free seats of `game`. */
  async getRegions(game: string | null = null): Promise<RegionInfo[]> {
    const params = new URLSearchParams();
    if (game) params.set('game', game);
    const body = await this.request<{ regions: RegionInfo[] }>('GET', `/regions?${params}`);
    return body.regions;
  }

  /** Time every region (`samples` pings each, the median), nearest first; kept in `latencies`. */
  async measureRegions(game: string | null = null, options: MeasureOptions = {}): Promise<RegionLatency[]> {
    const measured = await measure(this.fetchFn, await this.getRegions(game), options);
    this.measured = measured;
    this.latencies = Object.fromEntries(measured.map((r) => [r.region, r.latencyMs]));
    this.measuredAt = Date.now();
    return measured;
  }

  /** Latencies change slowly, the regions' seats do not: seats read again, latencies of the last minute kept. */
  private async freshMeasure(game: string): Promise<RegionLatency[]> {
    if (!this.measured.length || Date.now() - this.measuredAt > MEASURE_MAX_AGE_MS) return this.measureRegions(game);
    return (await this.getRegions(game)).map((info) => ({
      ...info, latencyMs: this.latencies[info.region] ?? null, samplesMs: [],
    }));
  }

  // --- plumbing --------------------------------------------------------------------------------

  private roomOptions(): RoomConnectOptions {
    if (!this.WebSocketCtor) {
      throw new GSFError('no WebSocket: pass options.WebSocket (in Node 20: the `ws` package\'s WebSocket)');
    }
    return { WebSocket: this.WebSocketCtor, reconnect: this.reconnectOptions, joinTimeoutMs: this.joinTimeoutMs,
      stateEncoding: this.stateEncoding, locate: (roomId, token) => this.locate(roomId, token) };
  }

  /**
   * Where a room is now (`POST /reconnect`) and the token to present there: the matchmaker re-signs
   * it when the room moved to another server (a drain, a rolling update). Null while it is not listed.
   */
  private async locate(roomId: string, token: string): Promise<{ url: string; token: string } | null> {
    let answer: { ws_url: string; ready: boolean; token?: string };
    try {
      answer = await this.request('POST', '/reconnect', { room_id: roomId, token });
    } catch (err) {
      if (err instanceof RoomNotFoundError) return null;
      if (err instanceof MatchmakerError && err.status === 401) {
        throw new ReconnectTokenError('the matchmaker refused the reconnection token', 401);
      }
      throw err;
    }
    return answer.ready ? { url: answer.ws_url, token: answer.token || token } : null;
  }

  private reserve(path: string, body: Record<string, unknown>): Promise<Seat> {
    if (body.player_name === undefined) delete body.player_name;
    return this.request<Seat>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.playerId && method === 'POST') headers['x-player-id'] = this.playerId;
    const resp = await this.fetchFn(`${this.url}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!resp.ok) throw await this.failure(resp);
    return await resp.json() as T;
  }

  private async failure(resp: Response): Promise<GSFError> {
    let problem: Problem = {};
    try {
      problem = await resp.json() as Problem;
    } catch {
      problem = { title: resp.statusText };
    }
    return matchmakerError(resp.status, problem, resp.headers.get('retry-after'));
  }
}
