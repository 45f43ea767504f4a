// Play: reserve a seat through the matchmaker, connect to the room over WebSocket with the seat
// token, and hand the frames to a small client for the game (chat, tic-tac-toe, arena, or raw).

import { ApiError, api, eventStream } from '../api.js';
import { playerName } from '../players.js';
import { clear, clock, h, pageHeading, problemText } from '../ui.js';
import * as chat from '../games/chat.js';
import * as tictactoe from '../games/tictactoe.js';
import * as arena from '../games/arena.js';
import * as raw from '../games/raw.js';

const CLIENTS = { tictactoe, chat, arena, raw };
const OPEN_TIMEOUT_MS = 10000;

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

  let socket = null;
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
      if (data?.server_id !== room.server_id) return;
      if (name === 'removed') drawOccupancy(true);
      else { room = { ...room, ...data }; drawOccupancy(false); }
    },
  });

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
    joinButton.hidden = state === 'open' || state === 'connecting';
    leaveButton.hidden = !(state === 'open' || state === 'connecting');
    joinButton.textContent = state === 'closed' ? 'Join again' : 'Join';
    // Name and client apply to the next join; locked while connected so they never disagree.
    nameInput.disabled = clientSelect.disabled = state === 'open' || state === 'connecting';
  }

  function showError(text) {
    gameErrors.textContent = text;
    gameErrors.hidden = !text;
  }

  function leave() {
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'left');
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
    let seat;
    try {
      const body = { server_id: room.server_id };
      if (nameInput.value.trim()) body.player_name = nameInput.value.trim();
      seat = await api('/api/v1/rooms/join', { method: 'POST', json: body, signal, idempotent: true, retries: 3 });
    } catch (error) {
      if (error?.name === 'AbortError') return;
      setConnection('closed', 'Not connected.');
      showError(error instanceof ApiError && error.status === 409
        ? `No seat: ${problemText(error)}` : `Could not reserve a seat: ${problemText(error)}`);
      return;
    }
    connect(seat);
  });

  function connect(seat) {
    const url = new URL(seat.ws_url);
    if (nameInput.value.trim()) url.searchParams.set('name', nameInput.value.trim());
    setConnection('connecting', 'Connecting to the room…');
    const ws = new WebSocket(url);
    socket = ws;
    const openTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) {
        showError('The room did not answer within 10 s.');
        ws.close();
      }
    }, OPEN_TIMEOUT_MS);
    const send = (type, data) => {
      if (ws.readyState !== WebSocket.OPEN) { showError('Not connected.'); return; }
      ws.send(JSON.stringify(data === undefined ? { type } : { type, data }));
    };
    ws.addEventListener('open', () => setConnection('connecting', 'Connected; joining the room…'));
    ws.addEventListener('message', (message) => {
      let frame;
      try { frame = JSON.parse(message.data); } catch { return; }
      if (frame.type === 'welcome') {
        clearTimeout(openTimer);
        const me = frame.data;
        setConnection('open', `Connected as ${playerName(me.playerId, me.name)}.`);
        game?.destroy?.();
        const kind = clientSelect.value;
        game = CLIENTS[kind].mount(clear(stage), { send, me, room, showError });
        game?.onFrame?.(frame.type, frame.data); // every frame reaches the client, `welcome` too (the raw client shows it)
      } else if (frame.type === 'error') {
        showError(`${frame.data?.message ?? 'error'}${frame.data?.code ? ` (${frame.data.code})` : ''}`);
        game?.onFrame?.(frame.type, frame.data);
      } else {
        showError(''); // the game moved on: an earlier refusal is stale
        game?.onFrame?.(frame.type, frame.data);
      }
    });
    ws.addEventListener('close', (e) => {
      clearTimeout(openTimer);
      if (socket !== ws) return;
      game?.onClose?.();
      const why = e.reason ? `: ${e.reason}` : '';
      const clean = e.code === 1000 || e.code === 1001;
      setConnection('closed', clean ? `Disconnected${why}.` : `Connection closed (code ${e.code}${why}).`);
      if (!clean && !gameErrors.textContent) showError(`Connection lost (code ${e.code}${why}). Join again for a new seat.`);
    });
  }

  return () => {
    if (socket) { const s = socket; socket = null; s.close(1000, 'left'); }
    game?.destroy?.();
  };
}
