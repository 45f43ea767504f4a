// My servers: a table kept current by two event streams (server changes from the API, player
// counts from the matchmaker), no polling.

import { api, eventStream } from '../api.js';
import { deleteServer, stopServer } from '../actions.js';
import { RoomSet, serverPlayers } from '../roomlist.js';
import { DONE, age, clear, h, pageHeading, statusBadge } from '../ui.js';

export async function render(main, { signal }) {
  const servers = new Map(); // id -> ServerPublic
  const rooms = new RoomSet(); // every listed room: a server's players are its rooms' (issue #22)
  const rows = new Map(); // id -> <tr>
  const live = h('p', { class: 'live', role: 'status' }, 'Connecting to live updates…');
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty' }, 'No servers yet. ', h('a', { href: '#/upload' }, 'Upload a game'), ' to start one.');
  empty.hidden = true;
  const table = h('table', { class: 'table responsive', id: 'servers-table' },
    h('caption', { class: 'visually-hidden' }, 'Your game servers, updated live'),
    h('thead', {}, h('tr', {},
      ['Name', 'Game', 'Status', 'Players', 'Node', 'Age'].map((t) => h('th', { scope: 'col' }, t)),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    tbody);

  main.append(
    h('div', { class: 'page-head' }, pageHeading('My servers'),
      h('a', { class: 'button button-primary', href: '#/upload' }, 'Upload a game')),
    live, h('div', { class: 'table-wrap' }, table), empty);

  function cells(server) {
    const players = serverPlayers(rooms.ofServer(server.id), server.max_players);
    const actions = h('div', { class: 'row-actions' });
    if (server.status === 'running') {
      actions.append(h('a', { class: 'button button-small', href: `#/play/${server.id}`,
        'aria-label': `Play ${server.name}` }, 'Play'));
    }
    if (!DONE.has(server.status)) {
      const stop = h('button', { type: 'button', class: 'button button-small', 'aria-label': `Stop ${server.name}`,
        onclick: async () => { const s = await stopServer(server, stop); if (s) upsert(s); } }, 'Stop');
      actions.append(stop);
    }
    const del = h('button', { type: 'button', class: 'button button-small button-danger',
      'aria-label': `Delete ${server.name}`,
      onclick: async () => { const s = await deleteServer(server, del); if (s) upsert(s); } }, 'Delete');
    actions.append(del);
    return [
      h('th', { scope: 'row', 'data-label': 'Name' }, h('a', { href: `#/servers/${server.id}` }, server.name)),
      h('td', { 'data-label': 'Game' }, server.game),
      h('td', { 'data-label': 'Status' }, statusBadge(server.status)),
      h('td', { 'data-label': 'Players', class: 'num', dataset: { players: '' } }, players),
      h('td', { 'data-label': 'Node' }, server.node_id ?? '–'),
      h('td', { 'data-label': 'Age', dataset: { age: server.created_at } }, age(server.created_at)),
      h('td', { 'data-label': 'Actions' }, actions),
    ];
  }

  function draw(id) {
    const server = servers.get(id);
    let tr = rows.get(id);
    if (!server || server.status === 'deleted') {
      tr?.remove();
      rows.delete(id);
      servers.delete(id);
    } else if (tr) {
      // Keep focus on a control of the row when it is redrawn (a status change mid-keyboard use).
      const focused = tr.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
      clear(tr).append(...cells(server));
      tr.dataset.status = server.status;
      if (focused) tr.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
    } else {
      tr = h('tr', { dataset: { serverId: id, status: server.status } }, cells(server));
      rows.set(id, tr);
      // Newest first, as the API lists them.
      const next = [...tbody.children].find((row) => servers.get(row.dataset.serverId)?.created_at < server.created_at);
      tbody.insertBefore(tr, next ?? null);
    }
    empty.hidden = rows.size > 0;
  }

  function upsert(server) {
    servers.set(server.id, server);
    draw(server.id);
  }

  async function loadServers() {
    const page = await api('/api/v1/servers?limit=200', { signal });
    clear(tbody);
    rows.clear();
    servers.clear();
    for (const s of page.items) upsert(s);
    empty.hidden = rows.size > 0;
  }

  async function loadRooms() {
    await rooms.load('', signal);
    for (const id of servers.keys()) draw(id);
  }

  const states = { servers: 'connecting', rooms: 'connecting' };
  const showState = () => {
    const all = Object.values(states);
    live.textContent = all.every((s) => s === 'live') ? 'Live: statuses and player counts update by themselves.'
      : all.some((s) => s === 'retrying') ? 'Live updates interrupted; reconnecting…' : 'Connecting to live updates…';
    live.dataset.state = all.every((s) => s === 'live') ? 'live' : 'waiting';
  };
  const ignoreAbort = (error) => { if (error?.name !== 'AbortError') console.error(error); };

  eventStream('/api/v1/events/servers', {
    signal, label: 'Live server updates',
    onState: (s) => { states.servers = s; showState(); },
    onEvent: (name, data) => {
      // `ready` comes after the stream took its baseline: the list read now misses nothing.
      if (name === 'ready') loadServers().catch(ignoreAbort);
      else if (name === 'server') upsert(data);
    },
  });
  eventStream('/api/v1/rooms/stream', {
    signal, label: 'Live player counts',
    onState: (s) => { states.rooms = s; showState(); },
    onOpen: () => loadRooms().catch(ignoreAbort),
    onEvent: (name, data) => {
      const id = rooms.apply(name, data);
      if (id && servers.has(id)) draw(id);
    },
  });
  const timer = setInterval(() => {
    for (const cell of tbody.querySelectorAll('[data-age]')) cell.textContent = age(cell.dataset.age);
  }, 15000);
  return () => clearInterval(timer);
}
