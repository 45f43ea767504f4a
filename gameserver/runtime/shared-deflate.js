'use strict';

// Broadcast frames built once for all their sockets: one buffer (header and payload) written to each
// socket as is, instead of ws framing (and UTF-8 encoding) the same text per socket; and with
// permessage-deflate (GSF_WS_DEFLATE=1) one compression per room broadcast.
//
// The server negotiates `server_no_context_takeover`, so every message it sends is compressed on
// its own: the compressed frame of a text is the same bytes for every client (given the window
// size the client agreed to), and a broadcast to 16 players costs one deflate instead of 16.
// ws has no public API to send an already compressed frame, so this writes through two of its
// internals (`websocket._sender.sendFrame`, the negotiated `_extensions['permessage-deflate']`
// params). The ws version is pinned in package.json (exactly WS_VERSION) and `checkWsInternals`
// runs at start-up: with other internals the runtime refuses GSF_WS_DEFLATE=1 instead of sending
// corrupt frames (tests/gameserver/test_statesync_codec.py checks both).

const zlib = require('node:zlib');
const { Sender } = require('ws');

const WS_VERSION = '8.23.0';
const EXTENSION = 'permessage-deflate';
/** Below this many bytes a frame goes out uncompressed (ws's default threshold). */
const MIN_BYTES = 1024;
const LEVEL = 1; // level 1: most of the gain at a fraction of the CPU (bench/results/statesync.md)

/** What ws's WebSocketServer needs for the extension, or false when off. */
function serverOptions(enabled) {
  return enabled ? { serverNoContextTakeover: true, threshold: MIN_BYTES, zlibDeflateOptions: { level: LEVEL } } : false;
}

/** Why these ws internals cannot carry shared frames, or null when they can. */
function checkWsInternals(WebSocketClass) {
  let version = null;
  try {
    version = require('ws/package.json').version;
  } catch {
    return 'cannot read ws/package.json';
  }
  if (version !== WS_VERSION) return `ws ${version} is installed; shared deflate was written against ws ${WS_VERSION}`;
  if (typeof Sender.frame !== 'function' || typeof Sender.prototype.sendFrame !== 'function') {
    return 'ws Sender.frame / Sender.prototype.sendFrame are gone';
  }
  if (!('extensions' in WebSocketClass.prototype)) return 'ws WebSocket#extensions is gone';
  return null;
}

/** The negotiated server window bits of a socket, or 0 when it did not negotiate the extension. */
function windowBitsOf(ws) {
  const ext = ws._extensions?.[EXTENSION];
  if (!ext || !ext.params || !ext.params.server_no_context_takeover) return 0;
  const bits = ext.params.server_max_window_bits;
  return typeof bits === 'number' ? bits : 15;
}

/**
 * One text frame, framed once and compressed at most once per window size: `get(ws)` answers the
 * frame buffers for that socket (null: let ws send the text).
 */
class SharedFrame {
  constructor(text) {
    this.text = text;
    this.bytes = null;
    this.plain = null; // the uncompressed frame, header and payload in one buffer
    this.frames = null; // window bits -> [header, body]
  }

  get(ws) {
    const bits = windowBitsOf(ws);
    if (bits === 0) return this.plainFrame();
    if (bits < 9) return null; // a window zlib's raw deflate cannot make (ws handles it)
    if (this.bytes === null) this.bytes = Buffer.from(this.text);
    if (this.bytes.length < MIN_BYTES) return this.plainFrame();
    this.frames ??= new Map();
    let frame = this.frames.get(bits);
    if (!frame) {
      const out = zlib.deflateRawSync(this.bytes, { level: LEVEL, windowBits: bits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH });
      // RFC 7692 7.2.1: the sync flush's trailing 00 00 ff ff is left out.
      frame = Sender.frame(out.subarray(0, out.length - 4), { fin: true, rsv1: true, opcode: 1, mask: false, readOnly: false });
      this.frames.set(bits, frame);
    }
    return frame;
  }

  /** One buffer for every socket: a single write each, no header of its own per socket. */
  plainFrame() {
    if (this.plain === null) {
      const n = this.bytes === null ? Buffer.byteLength(this.text) : this.bytes.length;
      const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
      const out = Buffer.allocUnsafe(head + n);
      out[0] = 0x81; // FIN, text
      if (head === 2) {
        out[1] = n;
      } else if (head === 4) {
        out[1] = 126;
        out.writeUInt16BE(n, 2);
      } else {
        out[1] = 127;
        out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
        out.writeUInt32BE(n >>> 0, 6);
      }
      if (this.bytes === null) out.write(this.text, head, 'utf8');
      else this.bytes.copy(out, head);
      this.plain = [out];
    }
    return this.plain;
  }
}

/**
 * Send `shared` (a SharedFrame) on `ws`: the prebuilt frame straight to the socket when ws has
 * nothing queued or in flight (so frames keep their order), else through ws.send.
 */
function sendShared(ws, shared) {
  const sender = ws._sender;
  const frame = sender && sender._queue && sender._queue.length === 0 && sender._state === 0 ? shared.get(ws) : null;
  if (frame) sender.sendFrame(frame);
  else ws.send(shared.text);
}

module.exports = { SharedFrame, sendShared, serverOptions, checkWsInternals, windowBitsOf, WS_VERSION, MIN_BYTES };
