// One server: facts, the status history as a timeline, the workflow link, its rooms (live), live
// logs (follow, pause, search), CPU and memory sparklines, and the way in ("Play").

import { ApiError, api, eventStream, ndjsonStream } from '../api.js';
import { deleteServer, stopServer } from '../actions.js';
import { renderFindings } from '../findings.js';
import { RoomSet, roomHead, roomId, roomRow } from '../roomlist.js';
import {
  DONE, bytes, clear, clock, coalesce, dateTime, h, labelsText, pageHeading, problemText, sparkline, statusBadge,
} from '../ui.js';

const MAX_LOG_LINES = 5000;

/** Text of several lines (an error with a container's last lines) as lines, without markup. */
function textLines(text) {
  return String(text).split('\n').flatMap((line, i) => (i ? [h('br'), line] : [line]));
}
const STATS_EVERY_MS = 5000;
const STATS_ABSENT_EVERY_MS = 15000;

export async function render(main, { signal, params: [id], navigate }) {
  let server = await api(`/api/v1/servers/${id}`, { signal });
  const title = pageHeading(server.name);
  const badge = h('span', { class: 'title-badge' }, statusBadge(server.status));
  const facts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'actions' });
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'Status history' });
  const findings = h('div');
  const stats = h('div', { class: 'stats', 'aria-live': 'off' }, h('p', { class: 'muted' }, 'Loading stats…'));
  const rooms = new RoomSet();
  const roomsBody = h('tbody');
  const roomsNote = h('p', { class: 'muted', role: 'status', dataset: { testid: 'server-rooms-note' } });
  const roomsTable = h('table', { class: 'table responsive', id: 'server-rooms' },
    h('caption', { class: 'visually-hidden' }, 'The rooms of this server, updated live'),
    h('thead', {}, roomHead({ server: false, labels: false })), roomsBody);

  // --- logs --------------------------------------------------------------------------------------
  const entries = []; // { id, ts, stream, line, el }
  let lastLogId = 0;
  let following = true;
  let held = []; // lines that arrived while paused
  const logBox = h('div', { class: 'logs', role: 'log', tabindex: '0', 'aria-label': 'Container logs',
    dataset: { testid: 'logs' } });
  const logState = h('span', { class: 'muted', role: 'status' }, 'Connecting…');
  const followButton = h('button', { type: 'button', class: 'button button-small', 'aria-pressed': 'true' }, 'Pause');
  const search = h('input', { type: 'search', id: 'log-search', autocomplete: 'off', placeholder: 'Filter lines' });
  const matchCount = h('span', { class: 'muted', 'aria-live': 'polite' });
  const logTools = h('div', { class: 'log-tools' },
    followButton,
    h('label', { for: 'log-search', class: 'inline-label' }, 'Search'), search, matchCount, logState);

  main.append(
    h('div', { class: 'page-head' }, h('div', { class: 'title-row' }, title, badge), actions),
    h('div', { class: 'detail-grid' },
      h('section', { class: 'card', 'aria-labelledby': 'facts-title' }, h('h2', { id: 'facts-title' }, 'Server'), facts),
      h('section', { class: 'card', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Status history'), timeline),
      h('section', { class: 'card', 'aria-labelledby': 'stats-title' }, h('h2', { id: 'stats-title' }, 'Resources'), stats)),
    h('section', { class: 'card', 'aria-labelledby': 'rooms-title' }, h('h2', { id: 'rooms-title' }, 'Rooms'),
      roomsNote, h('div', { class: 'table-wrap' }, roomsTable)),
    findings,
    h('section', { class: 'card', 'aria-labelledby': 'logs-title' }, h('h2', { id: 'logs-title' }, 'Logs'), logTools, logBox));

  function drawServer() {
    clear(badge).append(statusBadge(server.status));
    const fact = (term, value) => [h('dt', {}, term), h('dd', {}, value ?? '–')];
    clear(facts).append(
      ...fact('ID', h('code', {}, server.id)),
      ...fact('Game', server.game),
      ...fact('Node', server.node_id),
      ...fact('Address', server.ws_url ? h('code', { class: 'break' }, server.ws_url) : null),
      ...fact('Max players', server.max_players || null),
      ...fact('Max rooms', server.max_rooms ?? 1),
      ...fact('Labels', labelsText(server.labels) || null),
      ...fact('Plan', server.limits?.memory_mb ? `${server.limits.memory_mb} MB, ${server.limits.cpus} CPU` : null),
      ...fact('Image', server.image ? h('code', { class: 'break' }, server.image) : null),
      ...fact('Created', h('time', { datetime: server.created_at }, dateTime(server.created_at))),
      ...fact('Workflow', h('a', { href: server.workflow_url, target: '_blank', rel: 'noopener noreferrer' },
        'Open in the Temporal Web UI', h('span', { class: 'visually-hidden' }, ' (opens a new tab)'))),
      ...(server.error ? fact('Error', h('span', { class: 'error' }, textLines(server.error))) : []));
    clear(actions);
    if (server.status === 'running') {
      actions.append(h('a', { class: 'button button-primary', href: `#/play/${server.id}` }, 'Play'));
    }
    if (!DONE.has(server.status)) {
      const stop = h('button', { type: 'button', class: 'button', onclick: async () => {
        const s = await stopServer(server, stop);
        if (s) { server = { ...server, ...s }; refresh(); }
      } }, 'Stop');
      actions.append(stop);
    }
    if (server.status !== 'deleted') {
      const del = h('button', { type: 'button', class: 'button button-danger', onclick: async () => {
        const s = await deleteServer(server, del);
        if (s) navigate('/servers');
      } }, 'Delete');
      actions.append(del);
    }
    clear(timeline).append(...(server.events ?? []).map((e) => h('li', { class: 'timeline-item',
      dataset: { status: e.status, event: e.detail?.event ?? '' } },
      h('time', { datetime: e.at }, clock(e.at)), ' ', statusBadge(e.status), e.message ? [' ', textLines(e.message)] : '',
      restoredRooms(e))));
    if (server.analysis?.findings?.length && !findings.firstChild) {
      findings.append(renderFindings(server.analysis, null, { title: 'Analysis findings' }));
    }
  }
  drawServer();

  // --- rooms (issue #22): this server's rows of the room list, kept current by its events ------------
  function drawRooms() {
    const list = rooms.ofServer(id).sort((a, b) => (roomId(a) === id ? -1 : roomId(b) === id ? 1 : a.created_at - b.created_at));
    clear(roomsBody).append(...list.map((room) => roomRow(room, { failure: rooms.failures.get(roomId(room)), server: false, labels: false })));
    roomsTable.hidden = !list.length;
    const players = list.reduce((sum, room) => sum + room.players, 0);
    roomsNote.textContent = list.length
      ? `${list.length} of at most ${server.max_rooms ?? 1} room${(server.max_rooms ?? 1) === 1 ? '' : 's'}, ${players} player${players === 1 ? '' : 's'}.`
      : server.status === 'running' ? 'No rooms listed yet: the first appears with the server\'s first heartbeat.'
        : 'No rooms: the server is not running.';
  }
  drawRooms();
  eventStream(`/api/v1/rooms/stream?game=${encodeURIComponent(server.game)}`, {
    signal, label: 'Live rooms',
    onOpen: () => rooms.load(new URLSearchParams({ game: server.game }).toString(), signal).then(drawRooms)
      .catch((e) => { if (e?.name !== 'AbortError') console.error(e); }),
    onEvent: (name, data) => { if (rooms.apply(name, data) === id) drawRooms(); },
  });

  const refresh = coalesce(async () => {
    server = await api(`/api/v1/servers/${id}`, { signal });
    drawServer();
    drawRooms();
    if (!entries.length) redrawLogs(); // a failure brings the captured output
  });
  eventStream('/api/v1/events/servers', {
    signal, label: 'Live status',
    onEvent: (name, data) => {
      if (name === 'ready' || (name === 'server' && data.id === id)) refresh();
    },
  });

  // --- logs --------------------------------------------------------------------------------------
  function matches(entry) {
    const q = search.value.trim().toLowerCase();
    return !q || entry.line.toLowerCase().includes(q);
  }

  function lineElement(entry) {
    const q = search.value.trim();
    const text = entry.line;
    let body = [text];
    if (q) {
      const at = text.toLowerCase().indexOf(q.toLowerCase());
      if (at >= 0) body = [text.slice(0, at), h('mark', {}, text.slice(at, at + q.length)), text.slice(at + q.length)];
    }
    return h('div', { class: `log-line log-${entry.stream}`, dataset: { id: entry.id } },
      h('time', { datetime: entry.ts }, clock(entry.ts)), ' ', h('span', { class: 'log-text' }, ...body));
  }

  function redrawLogs() {
    const shown = entries.filter(matches);
    clear(logBox).append(...shown.map(lineElement));
    if (!entries.length) logBox.append(noLines());
    matchCount.textContent = search.value.trim() ? `${shown.length} of ${entries.length} lines match` : '';
    if (following) logBox.scrollTop = logBox.scrollHeight;
  }

  // A server that failed before it was ready: its last output, from the status history, until
  // (or should never) its log lines arrive.
  function noLines() {
    const failed = [...(server.events ?? [])].reverse().find((e) => e.status === 'failed');
    const output = failed?.detail?.log_tail;
    if (!DONE.has(server.status) || !Array.isArray(output) || !output.length) {
      return h('p', { class: 'muted' }, 'No log lines yet.');
    }
    return h('div', { class: 'muted', dataset: { testid: 'captured-output' } },
      h('p', {}, 'The last output of its container:'),
      ...output.map((line) => h('div', { class: 'log-line' }, h('span', { class: 'log-text' }, line))));
  }

  function addLines(items) {
    for (const item of items) entries.push(item);
    if (entries.length > MAX_LOG_LINES) entries.splice(0, entries.length - MAX_LOG_LINES);
    const placeholder = logBox.querySelector('p.muted, [data-testid="captured-output"]');
    if (placeholder) placeholder.remove();
    if (logBox.children.length + items.length > MAX_LOG_LINES) { redrawLogs(); return; }
    for (const item of items) if (matches(item)) logBox.append(lineElement(item));
    if (search.value.trim()) matchCount.textContent = `${entries.filter(matches).length} of ${entries.length} lines match`;
    if (following) logBox.scrollTop = logBox.scrollHeight;
  }

  followButton.addEventListener('click', () => {
    following = !following;
    followButton.setAttribute('aria-pressed', String(following));
    followButton.textContent = following ? 'Pause' : 'Follow';
    if (following) {
      addLines(held);
      held = [];
      logState.textContent = 'Following';
    } else {
      logState.textContent = 'Paused';
    }
  });
  search.addEventListener('input', redrawLogs);
  redrawLogs();

  ndjsonStream(`/api/v1/servers/${id}/logs?tail=500&follow=true`, {
    signal, label: 'Log stream',
    shouldReconnect: () => !DONE.has(server.status),
    onState: (state) => {
      logState.textContent = {
        live: following ? 'Following' : 'Paused', retrying: 'Reconnecting…', ended: 'The log stream ended (the server is not running).',
        failed: 'Logs unavailable.',
      }[state] ?? state;
    },
    onItem: (item) => {
      if (item.id <= lastLogId) return; // a reconnect repeats the tail
      lastLogId = item.id;
      if (following) addLines([item]);
      else {
        held.push(item);
        logState.textContent = `Paused: ${held.length} new line${held.length === 1 ? '' : 's'}`;
      }
    },
  });

  // --- stats -------------------------------------------------------------------------------------
  let statsTimer = null;
  async function loadStats() {
    let next = STATS_EVERY_MS;
    try {
      const body = await api(`/api/v1/servers/${id}/stats`, { signal, retries: 0, quiet: true });
      const samples = body?.samples ?? [];
      if (!samples.length) {
        clear(stats).append(h('p', { class: 'muted' }, 'No stats yet.'));
      } else {
        const cpu = samples.map((s) => s.cpu_percent ?? 0);
        const mem = samples.map((s) => s.memory_bytes ?? 0);
        const limit = (server.limits?.memory_mb ?? 0) * 1024 * 1024;
        clear(stats).append(
          h('div', { class: 'stat' }, h('h3', {}, 'CPU'), h('p', { class: 'stat-value' }, `${cpu.at(-1).toFixed(1)} %`),
            sparkline(cpu, { label: `CPU over the last ${cpu.length} samples, now ${cpu.at(-1).toFixed(1)} %`, max: Math.max(100, ...cpu) })),
          h('div', { class: 'stat' }, h('h3', {}, 'Memory'),
            h('p', { class: 'stat-value' }, `${bytes(mem.at(-1))}${limit ? ` of ${bytes(limit)}` : ''}`),
            sparkline(mem, { label: `Memory over the last ${mem.length} samples, now ${bytes(mem.at(-1))}`, max: limit || undefined })));
      }
    } catch (error) {
      if (error?.name === 'AbortError') return;
      next = STATS_ABSENT_EVERY_MS;
      const text = error instanceof ApiError && error.status === 404 ? 'No stats yet.' : `Stats unavailable: ${problemText(error)}`;
      clear(stats).append(h('p', { class: 'muted' }, text));
    }
    if (!signal.aborted && !DONE.has(server.status)) statsTimer = setTimeout(loadStats, next);
  }
  loadStats();

  return () => clearTimeout(statsTimer);
}

/**
 * Durable rooms (issue #25) under their history line: the rooms a restore brought back, the rooms a
 * drain or a migration moved (and those it could not), the rooms a new version refused.
 */
function restoredRooms(e) {
  const d = e.detail ?? {};
  const lines = [];
  if (d.event === 'restored') {
    for (const r of d.rooms ?? []) {
      lines.push(`room ${r.room_id}: snapshot ${r.seq}, ${r.age_ms} ms old, from ${d.from ?? 'crash'}`
        + (r.players?.length ? `; players ${r.players.join(', ')}` : ''));
    }
  } else if (d.event === 'drained' || d.event === 'migrated') {
    const how = d.from_version ? `migrated from version ${d.from_version}` : 'moved';
    for (const r of d.rooms ?? []) {
      lines.push(`room ${r.room_id}: ${how} to server ${r.to} (snapshot ${r.seq})`
        + (r.players?.length ? `; players ${r.players.join(', ')}` : ''));
    }
    for (const [id, why] of Object.entries(d.failed ?? {})) lines.push(`room ${id}: not moved: ${why}`);
    for (const id of d.not_moved ?? []) lines.push(`room ${id}: not moved: no server had room for it`);
  } else if (d.event === 'migrate_failed') {
    for (const [id, why] of Object.entries(d.rooms ?? {})) lines.push(`room ${id}: stays on this version: ${why}`);
  }
  if (!lines.length) return '';
  return h('ul', { class: 'restored-rooms' }, ...lines.map((line) => h('li', {}, line)));
}
