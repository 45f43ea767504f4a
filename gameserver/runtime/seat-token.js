'use strict';
// Seat tokens: the Node.js side of core/security.py (sign_seat_token / verify_seat_token).
//
//   token   = base64url(payload JSON) + "." + base64url(HMAC-SHA256(key = secret as UTF-8, msg = payload_b64))
//   payload = {"sid": server id, "pid": player id, "exp": unix seconds (float), "n": nonce,
//              "rid"?: room id (absent: the server's first room), "new"?: {"opt": room options}}
//
// `new` says the matchmaker reserved the room and this server has not created it yet: the runtime
// creates it (id `rid`, options `opt`) on this connection. The claims pin the room: a token for
// one room never seats its holder in another.
//
// base64url without padding on both sides. A token is good for one connection: its nonce is
// remembered until the token expires.
//
// Reconnection tokens (protocol v1, issue #23) have the same form, signed with the same secret,
// and carry `"rc": 1`; `rid` always names the room. The runtime mints one for every `welcome`;
// whether it is still good (the player is dropped, the nonce is the one of its last welcome, the
// window is open) is the runtime's state, not the token's: `exp` only bounds its life. A seat
// token is never a reconnection token and the reverse (`rc` tells them apart).

const crypto = require('node:crypto');

const MAX_TOKEN_LENGTH = 4096;
const MAX_PLAYER_ID_LENGTH = 128;
const MAX_ROOM_ID_LENGTH = 128;
/** How long a reconnection token lives at most; the reconnection window is enforced by the runtime. */
const RECONNECT_TOKEN_LIFETIME_S = 24 * 3600;

class SeatVerifier {
  /**
   * @param {{secret: string, serverId: string, now?: () => number}} options
   *   `now` returns unix seconds (injectable for tests).
   */
  constructor({ secret, serverId, now = () => Date.now() / 1000 }) {
    this.secret = secret;
    this.serverId = serverId;
    this.now = now;
    /** @type {Map<string, number>} nonce -> exp */
    this.used = new Map();
    this.purgedAt = 0;
  }

  /**
   * Check a token without consuming it.
   * @returns {{ok: true, playerId: string, nonce: string, exp: number, roomId: string | null,
   *            newRoom: {options: object} | null} | {ok: false, reason: string}}
   */
  check(token) {
    const claims = this.verify(token);
    if (!claims.ok) return claims;
    if (claims.rc !== undefined) return { ok: false, reason: 'reconnect_token' };
    return this.seatClaims(claims);
  }

  /** The signed claims of a token, or the reason it is refused (signature, server, expiry). */
  verify(token) {
    if (typeof token !== 'string' || token === '') return { ok: false, reason: 'missing' };
    if (!this.secret) return { ok: false, reason: 'no_secret' };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    const dot = token.indexOf('.');
    if (dot <= 0) return { ok: false, reason: 'malformed' };
    const payloadB64 = token.slice(0, dot);
    const sig = Buffer.from(token.slice(dot + 1), 'latin1');
    const expected = Buffer.from(
      crypto.createHmac('sha256', Buffer.from(this.secret, 'utf8'))
        .update(payloadB64, 'latin1')
        .digest('base64url'),
      'latin1',
    );
    if (sig.length !== expected.length || !crypto.timingSafeEqual(sig, expected)) {
      return { ok: false, reason: 'bad_signature' };
    }
    let claims;
    try {
      claims = JSON.parse(Buffer.from(payloadB64, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      return { ok: false, reason: 'malformed' };
    }
    const { sid, pid, exp, n, rid } = claims;
    if (sid !== this.serverId) return { ok: false, reason: 'wrong_server' };
    if (typeof pid !== 'string' || pid === '' || pid.length > MAX_PLAYER_ID_LENGTH) {
      return { ok: false, reason: 'malformed' };
    }
    if (typeof n !== 'string' || n === '') return { ok: false, reason: 'malformed' };
    // Same comparison as the Python side: expired when exp < now.
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp < this.now()) {
      return { ok: false, reason: 'expired' };
    }
    if (rid !== undefined && (typeof rid !== 'string' || rid === '' || rid.length > MAX_ROOM_ID_LENGTH)) {
      return { ok: false, reason: 'malformed' };
    }
    return { ok: true, ...claims };
  }

  seatClaims(claims) {
    const { pid, exp, n, rid } = claims;
    let newRoom = null;
    if (claims.new !== undefined) {
      const opt = claims.new?.opt ?? {};
      if (rid === undefined || claims.new === null || typeof claims.new !== 'object'
          || opt === null || typeof opt !== 'object' || Array.isArray(opt)) {
        return { ok: false, reason: 'malformed' };
      }
      newRoom = { options: opt };
    }
    this.purge();
    if (this.used.has(n)) return { ok: false, reason: 'reused' };
    return { ok: true, playerId: pid, nonce: n, exp, roomId: rid ?? null, newRoom };
  }

  /**
   * A reconnection token for player `pid` in room `rid`; `nonce` is what the runtime remembers as
   * this player's one good token.
   */
  mintReconnect(roomId, playerId) {
    const nonce = crypto.randomBytes(12).toString('base64url');
    const claims = { sid: this.serverId, rid: roomId, pid: playerId, n: nonce,
      exp: this.now() + RECONNECT_TOKEN_LIFETIME_S, rc: 1 };
    const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
    const sig = crypto.createHmac('sha256', Buffer.from(this.secret, 'utf8')).update(payload, 'latin1').digest('base64url');
    return { token: `${payload}.${sig}`, nonce };
  }

  /**
   * Check a reconnection token's signature and claims: `{ok, playerId, roomId, nonce}` or the
   * reason (`missing`, `malformed`, `bad_signature`, `wrong_server`, `expired`, `not_reconnect`).
   */
  checkReconnect(token) {
    const claims = this.verify(token);
    if (!claims.ok) return claims;
    if (claims.rc !== 1) return { ok: false, reason: 'not_reconnect' };
    if (claims.rid === undefined) return { ok: false, reason: 'malformed' };
    return { ok: true, playerId: claims.pid, roomId: claims.rid, nonce: claims.n };
  }

  /** Mark a checked token as used; it is refused from now until it expires anyway. */
  consume(result) {
    this.used.set(result.nonce, result.exp);
  }

  /**
   * Forget nonces whose tokens have expired (they are refused as expired from now on). At most once
   * a second: every seat check walked every remembered nonce (5,000 joins: 5,000 entries a join).
   */
  purge() {
    const now = this.now();
    if (now - this.purgedAt < 1 && now >= this.purgedAt) return;
    this.purgedAt = now;
    for (const [nonce, exp] of this.used) {
      if (exp < now) this.used.delete(nonce);
    }
  }
}

module.exports = { SeatVerifier };
