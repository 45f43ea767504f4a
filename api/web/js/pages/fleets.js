// Fleets: the caller's fleets with their game version, size policy, status and servers per phase,
// read again every 2 s (the API has no event stream for fleets).

import { api } from '../api.js';
import { fleetBadge, phaseBar, phaseLegend, policyText, poll } from '../fleets.js';
import { age, clear, h, pageHeading } from '../ui.js';

const EVERY_MS = 2000;

export async function render(main, { signal }) {
  const live = h('p', { class: 'live', role: 'status' }, 'Loading fleets…');
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No fleets yet. ',
    h('a', { href: '#/games' }, 'Create one from a game version'), '.');
  const table = h('table', { class: 'table responsive', id: 'fleets-table' },
    h('caption', { class: 'visually-hidden' }, 'Your fleets, read again every 2 seconds'),
    h('thead', {}, h('tr', {},
      ['Name', 'Game', 'Size policy', 'Status', 'Servers', 'Age'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  main.append(
    h('div', { class: 'page-head' }, pageHeading('Fleets'),
      h('a', { class: 'button button-primary', href: '#/games' }, 'Create a fleet')),
    live, phaseLegend(), h('div', { class: 'table-wrap' }, table), empty);

  function row(fleet) {
    return h('tr', { dataset: { fleetId: fleet.id, status: fleet.status } },
      h('th', { scope: 'row', 'data-label': 'Name' }, h('a', { href: `#/fleets/${fleet.id}` }, fleet.name)),
      h('td', { 'data-label': 'Game' }, `${fleet.game} v${fleet.version}`),
      h('td', { 'data-label': 'Size policy' }, policyText(fleet)),
      h('td', { 'data-label': 'Status' }, fleetBadge(fleet)),
      h('td', { 'data-label': 'Servers' }, phaseBar(fleet.counts)),
      h('td', { 'data-label': 'Age' }, age(fleet.created_at)));
  }

  poll(async () => {
    const page = await api('/api/v1/fleets', { signal });
    // A keyboard user on a fleet's link keeps focus while the rows are redrawn under it.
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
    clear(tbody).append(...page.items.map(row));
    if (focused) tbody.querySelector(`[href="${CSS.escape(focused)}"]`)?.focus();
    empty.hidden = page.items.length > 0;
    live.textContent = 'Live: read again every 2 s.';
    live.dataset.state = 'live';
  }, EVERY_MS, signal);
}
