'use strict';
// The text a room writes: frames to players (protocol v1, docs/writing-a-game.md "The wire
// protocol"), error messages, and the state as GET /status shows it.
// Part of the room core (room-core.js), which game repositories copy for their tests: Node built-ins only.

const PROTOCOL_VERSION = 1;
/** Frames kept for a player still in onJoin; past this, more are dropped. */
const MAX_QUEUED_FRAMES = 256;
const MAX_STATE_BYTES = 64 * 1024;

function encodeFrame(type, data) {
  if (typeof type !== 'string' || type === '') {
    throw new TypeError('frame type must be a non-empty string');
  }
  return JSON.stringify({ type, data: data === undefined ? null : data });
}

/** `encodeFrame(type, JSON.parse(json))` without parsing the JSON text back. */
function rawFrame(type, json) {
  return `{"type":${JSON.stringify(type)},"data":${json}}`;
}

function errorFrame(code, message, hook) {
  return JSON.stringify({ type: 'error', data: { code, message, hook } });
}

function errorMessage(err) {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 500 ? text.slice(0, 500) + '…' : text;
}

/** `{text, truncated, error}`: the state as JSON when it is serializable and within 64 KiB. */
function stateJson(state) {
  let text;
  try {
    text = JSON.stringify(state ?? null);
  } catch (err) {
    return { text: null, truncated: false, error: `state is not JSON-serializable: ${errorMessage(err)}` };
  }
  if (text === undefined) return { text: null, truncated: false, error: 'state is not JSON-serializable' };
  if (Buffer.byteLength(text) > MAX_STATE_BYTES) return { text: null, truncated: true, error: null };
  return { text, truncated: false, error: null };
}

module.exports = {
  PROTOCOL_VERSION, MAX_QUEUED_FRAMES, MAX_STATE_BYTES, encodeFrame, rawFrame, errorFrame, errorMessage, stateJson,
};
