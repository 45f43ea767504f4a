'use strict';
// Seat tokens: the Node.js side of core/security.py (sign_seat_token / verify_seat_token).
//
//   token   = base64url(payload JSON) + "." + base64url(HMAC-SHA256(key = secret as UTF-8, msg = payload_b64))
//   payload = {"sid": server id, "pid": player id, "exp": unix seconds (float), "n": nonce}
//
// base64url without padding on both sides. A token is good for one connection: its nonce is
// remembered until the token expires.

const crypto = require('node:crypto');

const MAX_TOKEN_LENGTH = 4096;
const MAX_PLAYER_ID_LENGTH = 128;

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
  }

  /**
   * Check a token without consuming it.
   * @returns {{ok: true, playerId: string, nonce: string, exp: number} | {ok: false, reason: string}}
   */
  check(token) {
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
    const { sid, pid, exp, n } = claims;
    if (sid !== this.serverId) return { ok: false, reason: 'wrong_server' };
    if (typeof pid !== 'string' || pid === '' || pid.length > MAX_PLAYER_ID_LENGTH) {
      return { ok: false, reason: 'malformed' };
    }
    if (typeof n !== 'string' || n === '') return { ok: false, reason: 'malformed' };
    // Same comparison as the Python side: expired when exp < now.
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp < this.now()) {
      return { ok: false, reason: 'expired' };
    }
    this.purge();
    if (this.used.has(n)) return { ok: false, reason: 'reused' };
    return { ok: true, playerId: pid, nonce: n, exp };
  }

  /** Mark a checked token as used; it is refused from now until it expires anyway. */
  consume(result) {
    this.used.set(result.nonce, result.exp);
  }

  /** Forget nonces whose tokens have expired (they are refused as expired from now on). */
  purge() {
    const now = this.now();
    for (const [nonce, exp] of this.used) {
      if (exp < now) this.used.delete(nonce);
    }
  }
}

module.exports = { SeatVerifier };
