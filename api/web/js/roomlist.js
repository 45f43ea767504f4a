// The room list as the console keeps it (issue #22: a server hosts many rooms): rooms by room id,
// read in pages from /api/v1/rooms and kept current by the matchmaker's events, and the table row
// of one room. The rooms page and a server's page both use it.

import { api } from './api.js';
import { age, h, labelsText } from './ui.js';

const MAX_PAGES = 10; // 2,000 rooms: more than a console table shows usefully

/** A room's id: the matchmaker's `room_id` (a server's first room has the server's id). */
export const roomId = (room) => room.room_id ?? room.server_id;

export class RoomSet {
  constructor() {
    this.rooms = new Map(); // room id -> RoomPublic
    this.failures = new Map(); // room id -> why its game code failed (a `failed` event)
  }

  /** Read the list afresh (`query`: the filters of /api/v1/rooms), page after page. */
  async load(query, signal) {
    const params = new URLSearchParams(query);
    params.set('limit', '200');
    const items = [];
    for (let n = 0; n < MAX_PAGES; n += 1) {
      const page = await api(`/api/v1/rooms?${params}`, { signal });
      items.push(...page.items);
      if (!page.next_cursor || !page.items.length) break;
      params.set('cursor', page.next_cursor);
    }
    this.rooms.clear();
    for (const room of items) this.rooms.set(roomId(room), room);
  }

  /** Apply an event of /api/v1/rooms/stream; the server id it touched, or null. A server's
   *  `removed` (its first room) takes its other rooms with it. */
  apply(name, data) {
    if (!data?.server_id) return null;
    const id = data.room_id ?? data.server_id;
    if (name === 'failed') {
      this.failures.set(id, data.reason || 'failed');
    } else if (name === 'removed') {
      this.rooms.delete(id);
      if (id === data.server_id) {
        for (const [key, room] of this.rooms) if (room.server_id === data.server_id) this.rooms.delete(key);
      }
    } else {
      this.rooms.set(id, data);
    }
    return data.server_id;
  }

  ofServer(serverId) {
    return [...this.rooms.values()].filter((room) => room.server_id === serverId);
  }

  values() {
    return [...this.rooms.values()];
  }
}

/** Players of a server's rooms, for a table cell: `3/8`, or `5 in 3 rooms` when it hosts several. */
export function serverPlayers(rooms, maxPlayers) {
  if (!rooms.length) return maxPlayers ? `–/${maxPlayers}` : '–';
  if (rooms.length === 1) return `${rooms[0].players}/${rooms[0].max_players}`;
  const players = rooms.reduce((sum, room) => sum + room.players, 0);
  return `${players} in ${rooms.length} rooms`;
}

function metadataText(metadata) {
  const entries = Object.entries(metadata ?? {});
  if (!entries.length) return '';
  return entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
}

export function roomState(room, failure) {
  if (failure) return `failed: ${failure}`;
  if (room.status === 'pending') return 'starting';
  if (room.status === 'gone') return 'ended';
  if (room.locked) return 'locked';
  return room.metadata?.status ?? (room.ready ? 'open' : 'starting');
}

/** The row of one room; `columns` picks which of server/labels to show (the server page shows neither). */
export function roomRow(room, { failure = null, server = true, labels = true } = {}) {
  const id = roomId(room);
  const full = room.free_seats <= 0;
  const canJoin = !full && !room.locked && room.ready && (room.status ?? 'open') === 'open' && !failure;
  const first = id === room.server_id;
  const metadata = metadataText(room.metadata);
  return h('tr', { dataset: { serverId: room.server_id, roomId: id } },
    h('th', { scope: 'row', 'data-label': 'Room' }, h('code', { title: id }, first ? room.name : id),
      first ? h('span', { class: 'muted' }, ' (first room)') : ''),
    server ? h('td', { 'data-label': 'Server' }, h('a', { href: `#/servers/${room.server_id}` }, room.name)) : null,
    h('td', { 'data-label': 'Game' }, room.game),
    h('td', { 'data-label': 'Players', class: 'num', dataset: { players: room.players } },
      `${room.players}/${room.max_players}`, room.reserved ? ` (+${room.reserved} joining)` : ''),
    h('td', { 'data-label': 'Free seats', class: 'num', dataset: { free: room.free_seats } }, String(room.free_seats)),
    h('td', { 'data-label': 'State' }, roomState(room, failure)),
    h('td', { 'data-label': 'Metadata', class: 'break' }, metadata || '–'),
    labels ? h('td', { 'data-label': 'Labels' }, labelsText(room.labels) || '–') : null,
    h('td', { 'data-label': 'Open for', dataset: { since: room.created_at } }, age(new Date(room.created_at * 1000))),
    h('td', { 'data-label': 'Join' }, canJoin
      ? h('a', { class: 'button button-small button-primary', href: `#/play/${id}`, 'aria-label': `Join ${first ? room.name : id}` }, 'Join')
      : h('span', { class: 'muted' }, full ? 'Full' : room.locked ? 'Locked' : 'Not ready')));
}

/** The header row matching `roomRow` with the same options. */
export function roomHead({ server = true, labels = true } = {}) {
  const names = ['Room', server && 'Server', 'Game', 'Players', 'Free seats', 'State', 'Metadata', labels && 'Labels', 'Open for'];
  return h('tr', {}, names.filter(Boolean).map((t) => h('th', { scope: 'col' }, t)),
    h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Join')));
}
