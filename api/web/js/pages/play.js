// Play: reserve a seat through the matchmaker (the API's /api/v1/rooms/join), connect to the room
// with the client SDK (@gsf/client, served from /sdk/), and hand the frames and the synced state to
// a small client for the game (chat, tic-tac-toe, arena, or raw). The SDK reconnects by itself
// after a dropped connection (same seat, same player id); the page says so while it does.

import { ApiError, api, eventStream } from '../api.js';
import { playerName } from '../players.js';
import { clear, clock, h, pageHeading, problemText } from '../ui.js';
import * as chat from '../games/chat.js';
import * as tictactoe from '../games/tictactoe.js';
import * as arena from '../games/arena.js';
import * as raw from '../games/raw.js';

const CLIENTS = { tictactoe, chat, arena, raw };
const OPEN_TIMEOUT_MS = 10000;
// The built SDK (clients/js/dist, which the API serves as /sdk/). Imported on demand: a console
// whose SDK was not built still works everywhere else, and this page says what is missing.
const SDK_URL = new URL('../../sdk/index.js', import.meta.url).href;
let sdk = null;

function loadSdk() {
  sdk ??= import(SDK_URL).catch((error) => { sdk = null; throw error; });
  return sdk;
}

/** What a typed SDK error means for the player (see clients/js/src/errors.ts). */
function sdkErrorText(error) {
  switch (error?.name) {
    case 'JoinRefusedError': return `The game refused you: ${error.message}`;
    case 'ProtocolVersionError': return 'The game server speaks another protocol version than this console.';
    case 'SeatRefusedError': return `The room refused the seat (${error.status ?? 'expired or already used'}). Join again for a new seat.`;
    case 'ReconnectTokenError':
    case 'ReconnectExpiredError': return 'Could not get back into the room in time: the seat is gone. Join again for a new seat.';
    case 'ReplacedError': return 'You joined this room again elsewhere (another tab or device): this page was disconnected.';
    case 'RoomFailedError': return 'The room\'s code failed and the room was closed.';
    case 'RoomResetError': return 'The room was reset because a room sharing its worker failed. Join again.';
    case 'ServerStoppingError': return 'The game server is stopping.';
    case 'RateLimitCloseError': return 'Disconnected: too many frames, over the room\'s rate limit.';
    case 'RoomClosedError': return `Connection closed (code ${error.code}${error.reason ? `: ${error.reason}` : ''}).`;
    case 'ConnectError': return `Could not connect to the room: ${error.message}.`;
    default: return error?.message ?? String(error);
  }
}

// Seats handed over by another page (an allocation on the fleet page), by server id. Kept in
// memory only: a seat token is good for one connection and a few seconds.
const offered = new Map();

/** Let the next Join on `#/play/<serverId>` use this seat ({ws_url, token, expires_at}) instead of reserving one. */
export function offerSeat(serverId, seat) {
  offered.set(serverId, seat);
}

export function guessClient(game) {
  const g = (game ?? '').toLowerCase().replace(/[^a-z]/g, '');
  if (g.includes('tictactoe')) return 'tictactoe';
  if (g.includes('chat')) return 'chat';
  if (g.includes('arena')) return 'arena';
  return 'raw';
}

export async function render(main, { signal, params: [serverId] }) {
  let room = null;
  try {
    room = await api(`/api/v1/rooms/${encodeURIComponent(serverId)}`, { signal });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    main.append(pageHeading('Play'), h('p', { class: 'error', role: 'alert' },
      error instanceof ApiError && error.status === 404
        ? 'This room is not in the room list: its server is not running (yet), or it was stopped.'
        : `The room could not be read: ${problemText(error)}`),
    h('p', {}, h('a', { href: '#/rooms' }, 'Back to the rooms')));
    return undefined;
  }

  let current = null; // the SDK's Room while joined (or reconnecting)
  let attempt = 0; // which connect() is the live one: Leave while connecting abandons it
  let game = null;
  let held = offered.get(serverId) ?? null;
  offered.delete(serverId);
  const heldNote = h('p', { class: 'hint', role: 'status', dataset: { testid: 'held-seat' } });
  const drawHeld = () => {
    if (held && held.expires_at * 1000 <= Date.now()) held = null;
    heldNote.textContent = held ? `You hold an allocated seat until ${clock(new Date(held.expires_at * 1000))}: Join uses it.` : '';
    heldNote.hidden = !held;
  };
  drawHeld();
  const clientSelect = h('select', { id: 'client-kind' },
    Object.entries({ tictactoe: 'Tic-tac-toe', chat: 'Chat room', arena: 'Arena', raw: 'Raw frames' })
      .map(([v, t]) => h('option', { value: v, selected: v === guessClient(room.game) }, t)));
  const nameInput = h('input', { type: 'text', id: 'player-name', maxlength: 32, autocomplete: 'nickname' });
  const joinButton = h('button', { type: 'submit', class: 'button button-primary' }, 'Join');
  const leaveButton = h('button', { type: 'button', class: 'button', hidden: true }, 'Leave');
  const connection = h('p', { class: 'connection', role: 'status', dataset: { state: 'idle' } }, 'Not connected.');
  const gameErrors = h('p', { class: 'game-error', role: 'alert', hidden: true });
  const stage = h('div', { class: 'stage' });
  const joinForm = h('form', { class: 'card form join-form', method: 'post', novalidate: true, 'aria-label': 'Join the room' },
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, h('label', { for: 'player-name' }, 'Your name (optional)'), nameInput),
      h('div', { class: 'field' }, h('label', { for: 'client-kind' }, 'Game client'), clientSelect)),
    heldNote, h('div', { class: 'actions' }, joinButton, leaveButton));

  const occupancy = h('p', { class: 'muted', dataset: { testid: 'occupancy' } });
  const drawOccupancy = (gone) => {
    occupancy.textContent = gone ? `${room.game} · the room left the room list.`
      : `${room.game} · ${room.players}/${room.max_players} players${room.locked ? ' · locked' : ''}`;
  };
  drawOccupancy(false);
  main.append(pageHeading(`Play ${room.name}`), occupancy, joinForm, connection, gameErrors, stage);
  // Live occupancy from the room list's event stream (only this game's rooms).
  eventStream(`/api/v1/rooms/stream?game=${encodeURIComponent(room.game)}`, {
    signal, label: 'Live player count',
    onEvent: (name, data) => {
      // One room of its server (issue #22): its own events, or its server's leaving the list.
      const about = data?.room_id ?? data?.server_id;
      if (about !== (room.room_id ?? room.server_id) && !(name === 'removed' && about === room.server_id)) return;
      if (name === 'removed') drawOccupancy(true);
      else if (name === 'failed') return;
      else { room = { ...room, ...data }; drawOccupancy(false); }
    },
  });

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
    const busy = state === 'open' || state === 'connecting' || state === 'reconnecting';
    joinButton.hidden = busy;
    leaveButton.hidden = !busy;
    joinButton.textContent = state === 'closed' ? 'Join again' : 'Join';
    // Name and client apply to the next join; locked while connected so they never disagree.
    nameInput.disabled = clientSelect.disabled = busy;
  }

  function showError(text) {
    gameErrors.textContent = text;
    gameErrors.hidden = !text;
  }

  function leave() {
    attempt += 1;
    if (current) current.leave();
    else if (connection.dataset.state === 'connecting') setConnection('closed', 'Not connected.');
  }
  leaveButton.addEventListener('click', leave);

  joinForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError('');
    drawHeld();
    if (held) {
      const seat = held;
      held = null;
      drawHeld();
      connect(seat);
      return;
    }
    setConnection('connecting', 'Reserving a seat…');
    const reserving = attempt;
    let seat;
    try {
      const body = room.room_id ? { room_id: room.room_id } : { server_id: room.server_id };
      if (nameInput.value.trim()) body.player_name = nameInput.value.trim();
      seat = await api('/api/v1/rooms/join', { method: 'POST', json: body, signal, idempotent: true, retries: 3 });
    } catch (error) {
      if (error?.name === 'AbortError') return;
      setConnection('closed', 'Not connected.');
      showError(error instanceof ApiError && error.status === 409
        ? `No seat: ${problemText(error)}` : `Could not reserve a seat: ${problemText(error)}`);
      return;
    }
    if (reserving === attempt) connect(seat); // else Leave was pressed meanwhile
  });

  async function connect(seat) {
    const mine = ++attempt;
    const abandoned = () => signal.aborted || mine !== attempt;
    setConnection('connecting', 'Connecting to the room…');
    let Client;
    try {
      ({ Client } = await loadSdk());
    } catch (error) {
      setConnection('closed', 'Not connected.');
      showError(`The client SDK (${SDK_URL}) could not be loaded: ${error?.message ?? error}. `
        + 'It is built by scripts/bootstrap.sh (clients/js); reload the page to try again.');
      return;
    }
    if (abandoned()) return;
    const url = new URL(seat.ws_url);
    if (nameInput.value.trim()) url.searchParams.set('name', nameInput.value.trim());
    // The console reserves seats through the API; the SDK only connects them (consumeSeat).
    const client = new Client(location.origin, { joinTimeoutMs: OPEN_TIMEOUT_MS });
    let joined;
    try {
      joined = await client.consumeSeat({ ...seat, ws_url: url.href });
    } catch (error) {
      if (abandoned()) return;
      setConnection('closed', 'Not connected.');
      showError(sdkErrorText(error));
      return;
    }
    if (abandoned()) { joined.leave(); return; }
    current = joined;
    const me = joined.welcome;
    const who = () => playerName(joined.playerId, me.name);
    setConnection('open', `Connected as ${who()}.`);
    game?.destroy?.();
    const send = (type, data) => {
      try {
        joined.send(type, data); // while reconnecting the SDK keeps it and sends it once back
      } catch (error) {
        showError(`Not sent: ${error.message}.`);
      }
    };
    game = CLIENTS[clientSelect.value].mount(clear(stage), { send, me, room, showError });
    game?.onFrame?.('welcome', me); // every frame reaches the client, `welcome` too (the raw client shows it)
    joined.onMessage('*', (data, type) => {
      if (type === 'error') showError(`${data?.message ?? 'error'}${data?.code ? ` (${data.code})` : ''}`);
      else showError(''); // the game moved on: an earlier refusal is stale
      game?.onFrame?.(type, data);
    });
    // Games with state sync: the SDK applies `$state` and `$patch`; the client draws the result.
    joined.onStateChange((state) => game?.onState?.(state));
    joined.onDrop((code) => {
      setConnection('reconnecting', `Connection lost (code ${code}); reconnecting…`);
      game?.onDrop?.();
    });
    joined.onReconnect(() => {
      setConnection('open', `Reconnected as ${who()}.`);
      game?.onReconnect?.();
    });
    joined.onLeave((code, error) => {
      if (current === joined) current = null;
      game?.onClose?.();
      setConnection('closed', error ? `Disconnected (code ${code}).` : 'Disconnected.');
      if (error) showError(sdkErrorText(error));
    });
  }

  return () => {
    if (current) { const r = current; current = null; r.leave(); }
    game?.destroy?.();
  };
}
