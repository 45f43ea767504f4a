// Rooms: the matchmaker's room list (one row per room: a server hosts many, issue #22) with
// filters, live player counts and free seats; join a room.

import { eventStream } from '../api.js';
import { RoomSet, roomHead, roomId, roomRow } from '../roomlist.js';
import { age, clear, h, pageHeading } from '../ui.js';

const SORTS = [['created', 'Oldest first'], ['-created', 'Newest first'], ['-players', 'Most players'], ['players', 'Fewest players']];

export async function render(main, { signal }) {
  const rooms = new RoomSet();
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
    h('thead', {}, roomHead()),
    tbody);
  const summary = h('p', { class: 'muted', dataset: { testid: 'rooms-summary' } });
  main.append(pageHeading('Rooms'), filters, live, h('div', { class: 'table-wrap' }, table), summary, empty);
  filters.addEventListener('submit', (e) => e.preventDefault());

  function query({ forStream }) {
    const params = new URLSearchParams();
    if (game.value.trim()) params.set('game', game.value.trim());
    const [k, ...rest] = label.value.split('=');
    if (label.value.trim()) params.set(`label.${k.trim()}`, rest.join('=').trim());
    if (!forStream) {
      params.set('sort', sort.value);
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
        || roomId(a).localeCompare(roomId(b))));
  }

  function draw() {
    const list = sorted();
    // A keyboard user on a Join link keeps focus while the counts change under it.
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
    clear(tbody).append(...list.map((room) => roomRow(room, { failure: rooms.failures.get(roomId(room)) })));
    if (focused) tbody.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
    empty.hidden = list.length > 0;
    const servers = new Set(list.map((room) => room.server_id)).size;
    const seats = list.reduce((sum, room) => sum + Math.max(0, room.free_seats), 0);
    summary.textContent = list.length
      ? `${list.length} room${list.length === 1 ? '' : 's'} on ${servers} server${servers === 1 ? '' : 's'}, ${seats} free seat${seats === 1 ? '' : 's'}.`
      : '';
    clear(games).append(...[...new Set([...rooms.values()].map((r) => r.game))].map((g) => h('option', { value: g })));
  }

  async function load(streamSignal) {
    await rooms.load(query({ forStream: false }), streamSignal);
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
        if (rooms.apply(name, data)) draw();
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
