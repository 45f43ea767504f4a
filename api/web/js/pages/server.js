// One server: facts, the status history as a timeline, the workflow link, live logs (follow,
// pause, search), CPU and memory sparklines, and the way in ("Play").

import { ApiError, api, eventStream, ndjsonStream } from '../api.js';
import { deleteServer, stopServer } from '../actions.js';
import { renderFindings } from '../findings.js';
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
    clear(timeline).append(...(server.events ?? []).map((e) => h('li', { class: 'timeline-item', dataset: { status: e.status } },
      h('time', { datetime: e.at }, clock(e.at)), ' ', statusBadge(e.status), e.message ? [' ', textLines(e.message)] : '')));
    if (server.analysis?.findings?.length && !findings.firstChild) {
      findings.append(renderFindings(server.analysis, null, { title: 'Analysis findings' }));
    }
  }
  drawServer();

  const refresh = coalesce(async () => {
    server = await api(`/api/v1/servers/${id}`, { signal });
    drawServer();
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
