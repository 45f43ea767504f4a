// What the fleet pages share: a fleet's size policy and status in words, the stacked bar of its
// servers per phase, and polling (the API has no event stream for fleets).

import { h, svg } from './ui.js';

// The phases FleetWorkflow reports (core/fleets.py FleetPhase), in the bar's order, with the words
// the console uses for them (Agones says "starting" and "shutdown"; "deploying" is the workflow's).
export const PHASES = [
  ['ready', 'ready'],
  ['allocated', 'allocated'],
  ['deploying', 'starting'],
  ['retiring', 'stopping'],
];
export const PHASE_TEXT = Object.fromEntries([...PHASES, ['gone', 'gone']]);

export function policyText(fleet) {
  if (fleet.replicas !== null && fleet.replicas !== undefined) {
    return `${fleet.replicas} replica${fleet.replicas === 1 ? '' : 's'}`;
  }
  return `buffer ${fleet.buffer} (min ${fleet.min_size}, max ${fleet.max_size})`;
}

export function fleetBadge(fleet) {
  const tone = fleet.status === 'active' ? 'ok' : fleet.status === 'deleting' ? 'busy' : 'off';
  return [
    h('span', { class: `badge badge-${tone}`, dataset: { status: fleet.status } }, fleet.status),
    fleet.capacity_limited ? [' ', h('span', { class: 'badge badge-bad', title: 'No node has room for more servers' },
      'no capacity')] : null,
  ];
}

export function phaseBadge(phase) {
  const tone = { ready: 'ok', allocated: 'busy', deploying: 'busy', retiring: 'off', gone: 'off' }[phase] ?? 'busy';
  return h('span', { class: `badge badge-${tone}`, dataset: { phase } }, PHASE_TEXT[phase] ?? phase);
}

/** "2 ready, 1 allocated, 1 starting" (phases with no server left out; "no servers" when empty). */
export function countsText(counts) {
  const parts = PHASES.filter(([key]) => counts?.[key]).map(([key, text]) => `${counts[key]} ${text}`);
  return parts.length ? parts.join(', ') : 'no servers';
}

/**
 * The fleet's servers per phase as a stacked bar (SVG: the CSP allows no inline styles), scaled to
 * the larger of the servers it has and the servers it wants; the gap up to the wanted size is
 * drawn hollow. The numbers are in its label and in data attributes, for tests and scripts.
 */
export function phaseBar(counts = {}) {
  const width = 200;
  const height = 14;
  const desired = counts.desired ?? 0;
  const total = PHASES.reduce((sum, [key]) => sum + (counts[key] ?? 0), 0);
  const scale = Math.max(total, desired, 1);
  const parts = [];
  let x = 0;
  for (const [key] of PHASES) {
    const n = counts[key] ?? 0;
    if (!n) continue;
    const w = (n / scale) * width;
    parts.push(svg('rect', { x: x.toFixed(2), y: 0, width: w.toFixed(2), height, class: `seg seg-${key}` }));
    x += w;
  }
  if (desired > total) {
    parts.push(svg('rect', { x: (x + 0.5).toFixed(2), y: 0.5, width: Math.max(0, width - x - 1).toFixed(2),
      height: height - 1, class: 'seg seg-missing' }));
  }
  const label = `${countsText(counts)}${desired ? ` of ${desired} wanted` : ''}`;
  const data = Object.fromEntries(PHASES.map(([key]) => [key, String(counts[key] ?? 0)]));
  return h('span', { class: 'phase-bar', dataset: { ...data, desired: String(desired) } },
    svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'phase-bar-svg', role: 'img', 'aria-label': label,
      preserveAspectRatio: 'none' }, ...parts),
    h('span', { class: 'phase-bar-text' }, label));
}

/** The key to the bar's colours. */
export function phaseLegend() {
  return h('ul', { class: 'phase-legend', 'aria-hidden': 'true' },
    PHASES.map(([key, text]) => h('li', {}, h('span', { class: `legend-swatch seg-${key}` }), text)));
}

/**
 * Call `load` now and then `everyMs` after each call settles, until `signal` aborts; `now()` asks for
 * a call at once (folded into the running one's next turn, so answers never arrive out of order).
 * The API helper retries a failed GET itself, with its banner; any other error waits for the next turn.
 */
export function poll(load, everyMs, signal) {
  let timer = null;
  let busy = false;
  let again = false;
  const round = async () => {
    if (busy) { again = true; return; }
    clearTimeout(timer);
    busy = true;
    try {
      do {
        again = false;
        try {
          await load();
        } catch (error) {
          if (error?.name !== 'AbortError') console.error(error);
        }
      } while (again && !signal.aborted);
    } finally {
      busy = false;
    }
    if (!signal.aborted) timer = setTimeout(round, everyMs);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  round();
  return { now: round };
}

/** An API refusal as the problem's title and detail ("No ready server: no ready server in …"). */
export function refusal(error) {
  const problem = error?.problem;
  if (problem?.errors?.length) {
    const details = problem.errors.map((e) => `${(e.loc ?? []).filter((p) => p !== 'body').join('.')}: ${e.msg}`);
    return `${problem.title ?? 'Refused'}: ${details.join('; ')}`;
  }
  const detail = problem?.detail ?? error?.message ?? String(error);
  return problem?.title && problem.title !== detail ? `${problem.title}: ${detail}` : detail;
}
