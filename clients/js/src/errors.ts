// Every failure the SDK reports is one of these classes, so a game branches on `instanceof` (or
// on `slug` / `code`), never on message text. The tree:
//
//   GSFError
//    ├── MatchmakerError          an HTTP problem from the matchmaker (status + problem slug)
//    │    ├── RoomNotFoundError        404 room-not-found
//    │    ├── RoomFullError            409 room-full
//    │    ├── RoomLockedError          409 room-locked
//    │    ├── NoRoomAvailableError     409 no-room-available (joinOrCreate/create found no room or server)
//    │    ├── RateLimitedError         429 rate-limited (retryAfter seconds)
//    │    └── ValidationError          422 validation-error
//    ├── ConnectError             the WebSocket could not be opened, or closed before `welcome`
//    │    ├── SeatRefusedError         the runtime refused the upgrade (status + slug when known)
//    │    ├── ProtocolVersionError     426 protocol-version: the runtime speaks another major
//    │    └── JoinRefusedError         the game's onJoin refused the player (close 4003)
//    ├── RoomClosedError          the runtime ended the connection for good (close code)
//    │    ├── ReplacedError            4000 the same player connected elsewhere
//    │    ├── RoomFailedError          4410 the room's code failed
//    │    ├── RoomResetError           4503 the room shared a worker with a failed room
//    │    ├── ServerStoppingError      1001 the server is shutting down
//    │    └── RateLimitCloseError      1008 too many frames over the rate limit
//    ├── ReconnectError           reconnection failed; the seat is lost
//    │    ├── ReconnectTokenError      401 reconnect-token (bad, spent, other server)
//    │    └── ReconnectExpiredError    410 reconnect-expired or the window passed
//    └── ServerError              an `error` frame (code hook_failed, bad_frame, rate_limited, frames_lost)

export const PROBLEM_BASE = 'https://gsf.dev/problems/';

/** An RFC 9457 problem document as the platform sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  [key: string]: unknown;
}

export class GSFError extends Error {
  override name = 'GSFError';
}

export class MatchmakerError extends GSFError {
  override name = 'MatchmakerError';

  constructor(readonly status: number, readonly slug: string, readonly problem: Problem) {
    super(problem.detail || problem.title || `matchmaker answered ${status} ${slug}`);
  }
}

export class RoomNotFoundError extends MatchmakerError { override name = 'RoomNotFoundError'; }
export class RoomFullError extends MatchmakerError { override name = 'RoomFullError'; }
export class RoomLockedError extends MatchmakerError { override name = 'RoomLockedError'; }
export class NoRoomAvailableError extends MatchmakerError { override name = 'NoRoomAvailableError'; }
export class ValidationError extends MatchmakerError { override name = 'ValidationError'; }

export class RateLimitedError extends MatchmakerError {
  override name = 'RateLimitedError';

  constructor(status: number, slug: string, problem: Problem,
    /** Seconds to wait (the Retry-After header), or null when the answer gave none. */
    readonly retryAfter: number | null) {
    super(status, slug, problem);
  }
}

const MATCHMAKER_ERRORS: Record<string, typeof MatchmakerError> = {
  'room-not-found': RoomNotFoundError,
  'room-full': RoomFullError,
  'room-locked': RoomLockedError,
  'no-room-available': NoRoomAvailableError,
  'validation-error': ValidationError,
};

/** The slug of a problem's `type` (`https://gsf.dev/problems/room-full` -> `room-full`). */
export function problemSlug(problem: Problem | null | undefined): string {
  const type = typeof problem?.type === 'string' ? problem.type : '';
  return type.startsWith(PROBLEM_BASE) ? type.slice(PROBLEM_BASE.length) : type;
}

/** The typed error of a matchmaker answer that was not 2xx. */
export function matchmakerError(status: number, problem: Problem, retryAfter: string | null = null): MatchmakerError {
  const slug = problemSlug(problem) || `http-${status}`;
  if (status === 429 || slug === 'rate-limited') {
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    return new RateLimitedError(status, slug, problem, Number.isFinite(seconds) ? seconds : null);
  }
  const Cls = MATCHMAKER_ERRORS[slug] ?? MatchmakerError;
  return new Cls(status, slug, problem);
}

export class ConnectError extends GSFError {
  override name = 'ConnectError';

  constructor(message: string,
    /** The close code seen, or null when the socket never opened. */
    readonly code: number | null = null) {
    super(message);
  }
}

export class SeatRefusedError extends ConnectError {
  override name = 'SeatRefusedError';

  constructor(message: string,
    /** The HTTP status of the refused upgrade (null in browsers, which do not show it). */
    readonly status: number | null,
    readonly slug: string | null) {
    super(message);
  }
}

export class ProtocolVersionError extends SeatRefusedError { override name = 'ProtocolVersionError'; }

export class JoinRefusedError extends ConnectError { override name = 'JoinRefusedError'; }

export class RoomClosedError extends GSFError {
  override name = 'RoomClosedError';

  constructor(readonly code: number, readonly reason: string) {
    super(`the connection closed with ${code}${reason ? ` (${reason})` : ''}`);
  }
}

export class ReplacedError extends RoomClosedError { override name = 'ReplacedError'; }
export class RoomFailedError extends RoomClosedError { override name = 'RoomFailedError'; }
export class RoomResetError extends RoomClosedError { override name = 'RoomResetError'; }
export class ServerStoppingError extends RoomClosedError { override name = 'ServerStoppingError'; }
export class RateLimitCloseError extends RoomClosedError { override name = 'RateLimitCloseError'; }

/** Close codes after which reconnecting cannot help: the connection ended for good. */
export const FINAL_CLOSE_CODES: ReadonlyMap<number, typeof RoomClosedError> = new Map([
  [1001, ServerStoppingError],
  [1008, RateLimitCloseError],
  [4000, ReplacedError],
  [4003, RoomClosedError],
  [4410, RoomFailedError],
  [4503, RoomResetError],
]);

/** The typed error of a close code the client did not ask for, or null for 1000 (a normal end). */
export function closeError(code: number, reason: string): RoomClosedError | null {
  if (code === 1000) return null;
  const Cls = FINAL_CLOSE_CODES.get(code) ?? RoomClosedError;
  return new Cls(code, reason);
}

export class ReconnectError extends GSFError {
  override name = 'ReconnectError';

  constructor(message: string, readonly status: number | null = null) {
    super(message);
  }
}

export class ReconnectTokenError extends ReconnectError { override name = 'ReconnectTokenError'; }
export class ReconnectExpiredError extends ReconnectError { override name = 'ReconnectExpiredError'; }

/** An `error` frame the room sent (the connection stays open). */
export class ServerError extends GSFError {
  override name = 'ServerError';

  constructor(readonly code: string, message: string, readonly hook: string | null) {
    super(message || code);
  }
}
