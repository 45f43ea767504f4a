// Rooms: the matchmaker's room list with filters and live player counts; join a room.

import { api, eventStream } from '../api.js';
import { age, clear, h, labelsText, pageHeading } from '../ui.js';

const SORTS = [['created', 'Oldest first'], ['-created', 'Newest first'], ['-players', 'Most players'], ['players', 'Fewest players']];

export async function render(main, { signal }) {
  const rooms = new Map();
  let streamAbort = null;

  const game = h('input', { type: 'text', id: 'room-game', autocomplete: 'off', list: 'room-games', placeholder: 'any' });
  const games = h('datalist', { id: 'room-games' });
  const label = h('input', { type: 'text', id: 'room-label', autocomplete: 'off', placeholder: 'key=value' });
  const free = h('input', { type: 'checkbox', id: 'room-free' });
  const sort = h('select', { id: 'room-sort' }, SORTS.map(([v, t]) => h('option', { value: v }, t)));
  const labelError = h('p', { id: 'room-label-error', class: 'field-error', hidden: true });
  label.setAttribute('aria-describedby', 'room-label-error');
  const filters = h('form', { class: 'card filters', role: 'search', 'aria-label': 'Filter rooms' },
    h('div', { class: 'field' }, h('label', { for: 'room-game' }, 'Game'), game, games),
    h('div', { class: 'field' }, h('label', { for: 'room-label' }, 'Label'), label, labelError),
    h('div', { class: 'field' }, h('label', { for: 'room-sort' }, 'Sort'), sort),
    h('div', { class: 'field field-check' }, free, h('label', { for: 'room-free' }, 'Only rooms with free seats')));
  const live = h('p', { class: 'live', role: 'status' }, 'Connecting to live updates…');
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No rooms match. Rooms appear here once their server is running.');
  const table = h('table', { class: 'table responsive', id: 'rooms-table' },
    h('caption', { class: 'visually-hidden' }, 'Rooms, updated live'),
    h('thead', {}, h('tr', {}, ['Room', 'Game', 'Players', 'State', 'Labels', 'Open for'].map((t) => h('th', { scope: 'col' }, t)),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Join')))),
    tbody);
  main.append(pageHeading('Rooms'), filters, live, h('div', { class: 'table-wrap' }, table), empty);
  filters.addEventListener('submit', (e) => e.preventDefault());

  function query({ forStream }) {
    const params = new URLSearchParams();
    if (game.value.trim()) params.set('game', game.value.trim());
    const [k, ...rest] = label.value.split('=');
    if (label.value.trim()) params.set(`label.${k.trim()}`, rest.join('=').trim());
    if (!forStream) {
      params.set('sort', sort.value);
      params.set('limit', '200');
      if (free.checked) params.set('free', 'true');
    }
    return params.toString();
  }

  function visible(room) {
    return !free.checked || room.free_seats > 0;
  }

  function sorted() {
    const key = sort.value.replace('-', '');
    const dir = sort.value.startsWith('-') ? -1 : 1;
    return [...rooms.values()].filter(visible)
      .sort((a, b) => dir * ((key === 'players' ? a.players - b.players : a.created_at - b.created_at)
        || a.server_id.localeCompare(b.server_id)));
  }

  function row(room) {
    const full = room.free_seats <= 0;
    const state = room.locked ? 'locked' : room.metadata?.status ?? (room.ready ? 'open' : 'starting');
    const canJoin = !full && !room.locked && room.ready;
    return h('tr', { dataset: { serverId: room.server_id } },
      h('th', { scope: 'row', 'data-label': 'Room' }, room.name),
      h('td', { 'data-label': 'Game' }, room.game),
      h('td', { 'data-label': 'Players', class: 'num', dataset: { players: room.players } },
        `${room.players}/${room.max_players}`, room.reserved ? ` (+${room.reserved} joining)` : ''),
      h('td', { 'data-label': 'State' }, state),
      h('td', { 'data-label': 'Labels' }, labelsText(room.labels) || '–'),
      h('td', { 'data-label': 'Open for', dataset: { since: room.created_at } }, age(new Date(room.created_at * 1000))),
      h('td', { 'data-label': 'Join' }, canJoin
        ? h('a', { class: 'button button-small button-primary', href: `#/play/${room.server_id}`, 'aria-label': `Join ${room.name}` }, 'Join')
        : h('span', { class: 'muted' }, full ? 'Full' : room.locked ? 'Locked' : 'Not ready')));
  }

  function draw() {
    const list = sorted();
    // A keyboard user on a Join link keeps focus while the counts change under it.
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
    clear(tbody).append(...list.map(row));
    if (focused) tbody.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
    empty.hidden = list.length > 0;
    clear(games).append(...[...new Set([...rooms.values()].map((r) => r.game))].map((g) => h('option', { value: g })));
  }

  async function load(streamSignal) {
    const page = await api(`/api/v1/rooms?${query({ forStream: false })}`, { signal: streamSignal });
    rooms.clear();
    for (const room of page.items) rooms.set(room.server_id, room);
    draw();
  }

  function validLabel() {
    const ok = !label.value.trim() || /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}=/.test(label.value.trim());
    labelError.textContent = ok ? '' : 'Write the label as key=value.';
    labelError.hidden = ok;
    if (ok) label.removeAttribute('aria-invalid'); else label.setAttribute('aria-invalid', 'true');
    return ok;
  }

  function restart() {
    if (!validLabel()) return;
    streamAbort?.abort();
    streamAbort = new AbortController();
    const streamSignal = AbortSignal.any([signal, streamAbort.signal]);
    eventStream(`/api/v1/rooms/stream?${query({ forStream: true })}`, {
      signal: streamSignal, label: 'Live room list',
      onState: (s) => {
        live.textContent = s === 'live' ? 'Live: rooms and player counts update by themselves.'
          : s === 'retrying' ? 'Live updates interrupted; reconnecting…' : s === 'failed' ? 'Live updates unavailable.' : 'Connecting…';
        live.dataset.state = s;
      },
      // The matchmaker registers the listener before answering: a list read now misses nothing.
      onOpen: () => load(streamSignal).catch((e) => { if (e?.name !== 'AbortError') console.error(e); }),
      onEvent: (name, data) => {
        if (name === 'removed') rooms.delete(data.server_id);
        else if (data?.server_id) rooms.set(data.server_id, data);
        draw();
      },
    });
  }

  let debounce = null;
  const later = () => { clearTimeout(debounce); debounce = setTimeout(restart, 300); };
  game.addEventListener('input', later);
  label.addEventListener('input', later);
  free.addEventListener('change', restart);
  sort.addEventListener('change', draw);
  restart();
  const timer = setInterval(() => {
    for (const cell of tbody.querySelectorAll('[data-since]')) cell.textContent = age(new Date(cell.dataset.since * 1000));
  }, 15000);
  return () => { clearTimeout(debounce); clearInterval(timer); streamAbort?.abort(); };
}
