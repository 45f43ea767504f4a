// One fleet: its facts and servers per phase, the servers table, recent allocations, and what can
// be done to it: scale, roll out another game version, allocate a server, release, delete.
// Read again every 2 s (the API has no event stream for fleets).

import { ApiError, api } from '../api.js';
import { fleetBadge, phaseBadge, phaseBar, phaseLegend, policyText, poll, refusal } from '../fleets.js';
import {
  age, append, clear, clock, confirmDialog, dateTime, field, h, labelsText, pageHeading, setError, statusBadge,
} from '../ui.js';
import { offerSeat } from './play.js';

const EVERY_MS = 2000;
// A migrating rollout (issue #25): what became of a server's durable rooms.
const MIGRATION = { moving: '(moving its rooms)', moved: '(rooms moved)', stays: '(rooms stay on this version)' };
const PATCH_TIMEOUT_MS = 45000; // the API waits up to 30 s for the fleet's workflow to answer

function numberInput(value) {
  return h('input', { type: 'number', min: 0, max: 10000, step: 1, inputmode: 'numeric', value: value ?? '' });
}

function wholeNumber(input, { required = true } = {}) {
  const text = input.value.trim();
  if (!text) return required ? NaN : null;
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

export async function render(main, { signal, params: [id], navigate }) {
  let fleet;
  try {
    fleet = await api(`/api/v1/fleets/${encodeURIComponent(id)}`, { signal });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    main.append(pageHeading('Fleet'), h('p', { class: 'error', role: 'alert' }, refusal(error)),
      h('p', {}, h('a', { href: '#/fleets' }, 'Back to the fleets')));
    return undefined;
  }
  let allocations = [];

  // --- header and actions ------------------------------------------------------------------------
  const badge = h('span', { class: 'title-badge' });
  const allocateButton = h('button', { type: 'button', class: 'button button-primary' }, 'Allocate a server');
  const deleteButton = h('button', { type: 'button', class: 'button button-danger' }, 'Delete fleet');
  const actionError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const seat = h('section', { class: 'card seat', 'aria-labelledby': 'seat-title', hidden: true, tabindex: '-1' });

  // --- facts and servers -------------------------------------------------------------------------
  const facts = h('dl', { class: 'facts' });
  const bar = h('div', { class: 'fleet-bar' });
  const serversBody = h('tbody');
  const serversEmpty = h('p', { class: 'muted', hidden: true }, 'The fleet has no servers right now.');
  const serversTable = h('table', { class: 'table responsive', id: 'fleet-servers' },
    h('caption', { class: 'visually-hidden' }, 'The fleet’s servers, read again every 2 seconds'),
    h('thead', {}, h('tr', {}, ['Server', 'Phase', 'Status', 'Version', 'Players', 'Node'].map((t) => h('th', { scope: 'col' }, t)))),
    serversBody);
  const allocBody = h('tbody');
  const allocEmpty = h('p', { class: 'muted', hidden: true }, 'No allocations yet.');
  const allocTable = h('table', { class: 'table responsive', id: 'fleet-allocations' },
    h('caption', { class: 'visually-hidden' }, 'The fleet’s recent allocations, newest first'),
    h('thead', {}, h('tr', {}, ['Allocation', 'Server', 'Status', 'Players', 'Allocated', 'Released'].map((t) => h('th', { scope: 'col' }, t)),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    allocBody);

  // --- scale -------------------------------------------------------------------------------------
  const policySelect = h('select', {},
    h('option', { value: 'fixed' }, 'Fixed size (replicas)'),
    h('option', { value: 'buffer' }, 'Buffer of ready servers'));
  const replicasInput = numberInput();
  const bufferInput = numberInput();
  const minInput = numberInput();
  const maxInput = numberInput();
  const fixedFields = h('div', {}, field('scale-replicas', 'Replicas', replicasInput, 'Servers to keep, allocated ones included.'));
  const bufferFields = h('div', { class: 'grid-3' },
    field('scale-buffer', 'Buffer', bufferInput, 'Ready servers on top of the allocated ones.'),
    field('scale-min', 'Min servers', minInput),
    field('scale-max', 'Max servers', maxInput));
  const scaleButton = h('button', { type: 'submit', class: 'button button-primary' }, 'Scale');
  const scaleStatus = h('p', { class: 'muted', role: 'status' });
  const scaleError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const scaleForm = h('form', { class: 'form', method: 'post', novalidate: true, 'aria-labelledby': 'scale-title' },
    h('h3', { id: 'scale-title' }, 'Scale'),
    field('scale-policy', 'Size policy', policySelect),
    fixedFields, bufferFields, scaleError,
    h('div', { class: 'actions' }, scaleButton, scaleStatus));

  // --- roll out a version ------------------------------------------------------------------------
  const versionSelect = h('select', {}, h('option', { value: '' }, 'Loading versions…'));
  const rollButton = h('button', { type: 'submit', class: 'button button-primary' }, 'Roll out');
  const rollStatus = h('p', { class: 'muted', role: 'status' });
  const rollError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const rollForm = h('form', { class: 'form', method: 'post', novalidate: true, 'aria-labelledby': 'roll-title' },
    h('h3', { id: 'roll-title' }, 'Game version'),
    field('fleet-version', 'Version', versionSelect,
      `A rolling update: at most ${fleet.max_surge} extra and ${fleet.max_unavailable} missing servers at a time; `
      + (fleet.migrate_rooms
        ? 'the durable rooms of allocated servers move into the new version (its onMigrate runs).'
        : 'allocated servers keep their version until their players leave.')),
    rollError,
    h('div', { class: 'actions' }, rollButton, rollStatus));
  const changes = h('section', { class: 'card', 'aria-labelledby': 'change-title' },
    h('h2', { id: 'change-title' }, 'Change'), h('div', { class: 'grid-2 change-forms' }, scaleForm, rollForm));
  const inactive = h('p', { class: 'muted', hidden: true });

  main.append(
    h('div', { class: 'page-head' }, h('div', { class: 'title-row' }, pageHeading(fleet.name), badge),
      h('div', { class: 'actions' }, allocateButton, deleteButton)),
    actionError, seat,
    h('div', { class: 'detail-grid' },
      h('section', { class: 'card', 'aria-labelledby': 'fleet-facts-title' }, h('h2', { id: 'fleet-facts-title' }, 'Fleet'), facts),
      h('section', { class: 'card', 'aria-labelledby': 'fleet-phases-title' },
        h('h2', { id: 'fleet-phases-title' }, 'Servers by phase'), bar, phaseLegend())),
    inactive, changes,
    h('section', { class: 'card', 'aria-labelledby': 'fleet-servers-title' },
      h('h2', { id: 'fleet-servers-title' }, 'Servers'), h('div', { class: 'table-wrap' }, serversTable), serversEmpty),
    h('section', { class: 'card', 'aria-labelledby': 'fleet-allocs-title' },
      h('h2', { id: 'fleet-allocs-title' }, 'Recent allocations'), h('div', { class: 'table-wrap' }, allocTable), allocEmpty));

  function fillScaleForm() {
    const fixed = fleet.replicas !== null;
    policySelect.value = fixed ? 'fixed' : 'buffer';
    replicasInput.value = fixed ? fleet.replicas : '';
    bufferInput.value = fleet.buffer;
    minInput.value = fleet.min_size;
    maxInput.value = fixed ? '' : fleet.max_size;
    showPolicyFields();
  }
  function showPolicyFields() {
    fixedFields.hidden = policySelect.value !== 'fixed';
    bufferFields.hidden = policySelect.value !== 'buffer';
  }
  policySelect.addEventListener('change', showPolicyFields);
  fillScaleForm();

  // --- drawing -----------------------------------------------------------------------------------
  function drawFleet() {
    append(clear(badge), [fleetBadge(fleet)]);
    const fact = (term, value) => [h('dt', {}, term), h('dd', {}, value ?? '–')];
    const limits = fleet.limits ?? {};
    clear(facts).append(
      ...fact('ID', h('code', {}, fleet.id)),
      ...fact('Game', [h('a', { href: '#/games' }, fleet.game), ` v${fleet.version}`]),
      ...fact('Size policy', policyText(fleet)),
      ...fact('Rollout', `max surge ${fleet.max_surge}, max unavailable ${fleet.max_unavailable}`
        + (fleet.migrate_rooms ? '; durable rooms migrate' : '')),
      ...fact('When emptied', fleet.on_empty === 'ready' ? 'back to ready' : 'replaced by a fresh server'),
      ...fact('Labels', labelsText(fleet.labels) || null),
      ...fact('Plan', limits.memory_mb ? `${limits.plan ?? ''} (${limits.memory_mb} MB, ${limits.cpus} CPU)`.trim() : null),
      ...fact('Created', h('time', { datetime: fleet.created_at }, dateTime(fleet.created_at))),
      ...fact('Workflow', h('a', { href: fleet.workflow_url, target: '_blank', rel: 'noopener noreferrer' },
        'Open in the Temporal Web UI', h('span', { class: 'visually-hidden' }, ' (opens a new tab)'))));
    clear(bar).append(phaseBar(fleet.counts));
    const active = fleet.status === 'active';
    changes.hidden = !active;
    allocateButton.hidden = !active;
    deleteButton.hidden = fleet.status === 'deleted';
    inactive.hidden = active;
    inactive.textContent = fleet.status === 'deleting'
      ? 'This fleet is being deleted: idle servers stop now, allocated ones once their players leave.'
      : 'This fleet was deleted.';

    const servers = fleet.servers ?? [];
    serversEmpty.hidden = servers.length > 0;
    clear(serversBody).append(...servers.map((s) => h('tr', { dataset: { serverId: s.server_id, phase: s.phase } },
      h('th', { scope: 'row', 'data-label': 'Server' }, h('a', { href: `#/servers/${s.server_id}` }, h('code', {}, s.server_id))),
      h('td', { 'data-label': 'Phase' }, phaseBadge(s.phase), s.migration ? ` ${MIGRATION[s.migration] ?? s.migration}` : ''),
      h('td', { 'data-label': 'Status' }, statusBadge(s.status)),
      h('td', { 'data-label': 'Version' }, `v${s.version}`),
      h('td', { 'data-label': 'Players', class: 'num' }, String(s.players ?? 0)),
      h('td', { 'data-label': 'Node' }, s.node_id ?? '–'))));
  }

  function drawAllocations() {
    allocEmpty.hidden = allocations.length > 0;
    const focused = allocBody.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
    clear(allocBody).append(...allocations.map((a) => {
      const release = a.status === 'allocated' ? h('button', { type: 'button', class: 'button button-small',
        'aria-label': `Release ${a.id}`, onclick: (e) => releaseAllocation(a, e.currentTarget) }, 'Release') : null;
      return h('tr', { dataset: { allocationId: a.id, serverId: a.server_id, status: a.status } },
        h('th', { scope: 'row', 'data-label': 'Allocation' }, h('code', {}, a.id)),
        h('td', { 'data-label': 'Server' }, h('a', { href: `#/servers/${a.server_id}` }, h('code', {}, a.server_id))),
        h('td', { 'data-label': 'Status' }, h('span', { class: `badge badge-${a.status === 'allocated' ? 'busy' : 'off'}`,
          dataset: { status: a.status } }, a.status)),
        h('td', { 'data-label': 'Players', class: 'num' }, String(a.player_ids?.length ?? 0)),
        h('td', { 'data-label': 'Allocated' }, h('time', { datetime: a.created_at, title: dateTime(a.created_at) },
          `${age(a.created_at)} ago`)),
        h('td', { 'data-label': 'Released' }, a.released_at
          ? h('time', { datetime: a.released_at }, clock(a.released_at)) : '–'),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, release)));
    }));
    if (focused) allocBody.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
  }

  const updates = poll(async () => {
    const [next, allocs] = await Promise.all([
      api(`/api/v1/fleets/${encodeURIComponent(id)}`, { signal }),
      api(`/api/v1/allocations?fleet=${encodeURIComponent(id)}&limit=20`, { signal }),
    ]);
    fleet = next;
    allocations = allocs.items;
    drawFleet();
    drawAllocations();
  }, EVERY_MS, signal);

  // Versions for the rollout menu, newest first.
  api(`/api/v1/games/${encodeURIComponent(fleet.game)}/versions`, { signal }).then((body) => {
    clear(versionSelect).append(...body.items.map((v) => h('option', { value: v.version, selected: v.version === fleet.version },
      `v${v.version}${v.version === fleet.version ? ' (running)' : ''} · ${v.filename} · ${dateTime(v.created_at)}`
      + `${v.notes ? ` · ${v.notes}` : ''}`)));
  }).catch((error) => {
    if (error?.name === 'AbortError') return;
    clear(versionSelect).append(h('option', { value: '' }, 'Versions unavailable'));
    rollError.textContent = `The game's versions could not be read: ${refusal(error)}`;
    rollError.hidden = false;
  });

  // --- actions -----------------------------------------------------------------------------------
  function showError(box, error) {
    box.textContent = typeof error === 'string' ? error : refusal(error);
    box.hidden = !box.textContent;
  }

  async function patch(body, button, status, errorBox, busyText) {
    showError(errorBox, '');
    const before = button.textContent;
    button.disabled = true;
    button.textContent = busyText;
    status.textContent = '';
    try {
      const updated = await api(`/api/v1/fleets/${encodeURIComponent(id)}`, { method: 'PATCH', json: body, signal,
        timeout: PATCH_TIMEOUT_MS });
      fleet = { ...fleet, ...updated, servers: fleet.servers };
      drawFleet();
      updates.now();
      return true;
    } catch (error) {
      if (error?.name !== 'AbortError') showError(errorBox, error);
      return false;
    } finally {
      button.disabled = false;
      button.textContent = before;
    }
  }

  scaleForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const input of [replicasInput, bufferInput, minInput, maxInput]) setError(input, null);
    let body;
    if (policySelect.value === 'fixed') {
      const replicas = wholeNumber(replicasInput);
      if (Number.isNaN(replicas)) { setError(replicasInput, 'A whole number of servers, 0 or more.'); replicasInput.focus(); return; }
      body = { replicas };
    } else {
      const [buffer, min, max] = [wholeNumber(bufferInput), wholeNumber(minInput), wholeNumber(maxInput)];
      const bad = [[bufferInput, buffer], [minInput, min], [maxInput, max]].find(([, v]) => Number.isNaN(v));
      if (bad) { setError(bad[0], 'A whole number of servers, 0 or more.'); bad[0].focus(); return; }
      if (max < min) { setError(maxInput, 'Max servers is below min servers.'); maxInput.focus(); return; }
      body = { buffer, min_size: min, max_size: max };
    }
    if (await patch(body, scaleButton, scaleStatus, scaleError, 'Scaling…')) {
      fillScaleForm();
      scaleStatus.textContent = `Scaled: ${policyText(fleet)}.`;
    }
  });

  rollForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const version = Number(versionSelect.value);
    if (!version) { showError(rollError, 'Choose a version.'); return; }
    if (version === fleet.version) { showError(rollError, `The fleet runs v${version} already.`); return; }
    if (await patch({ version }, rollButton, rollStatus, rollError, 'Starting the rollout…')) {
      rollStatus.textContent = `Rolling out v${version}: new servers start, old ready ones stop.`;
      for (const option of versionSelect.options) {
        option.textContent = option.textContent.replace(' (running)', '');
        if (Number(option.value) === version) option.textContent = option.textContent.replace(/^v\d+/, `v${version} (running)`);
      }
    }
  });

  allocateButton.addEventListener('click', async () => {
    showError(actionError, '');
    allocateButton.disabled = true;
    allocateButton.textContent = 'Allocating…';
    try {
      // A POST is never repeated behind the user's back: a lost answer could hold a second server.
      const got = await api('/api/v1/allocations', { method: 'POST', json: { fleet: fleet.id }, signal });
      showSeat(got);
      updates.now();
    } catch (error) {
      if (error?.name !== 'AbortError') showError(actionError, error);
    } finally {
      allocateButton.disabled = false;
      allocateButton.textContent = 'Allocate a server';
    }
  });

  function showSeat(got) {
    const first = got.seats[0];
    offerSeat(got.server_id, first);
    const expires = new Date(first.expires_at * 1000);
    const fact = (term, value) => [h('dt', {}, term), h('dd', {}, value)];
    clear(seat).append(
      h('h2', { id: 'seat-title' }, 'Allocated'),
      h('dl', { class: 'facts' },
        ...fact('Allocation', h('code', { dataset: { testid: 'allocation-id' } }, got.id)),
        ...fact('Server', h('a', { href: `#/servers/${got.server_id}` }, h('code', {}, got.server_id))),
        ...fact('Address', h('code', { class: 'break', dataset: { testid: 'seat-url' } }, first.ws_url)),
        ...fact('Seat token', h('code', { class: 'break', dataset: { testid: 'seat-token' } }, first.token)),
        ...fact('Seat held until', h('time', { datetime: expires.toISOString() }, clock(expires)))),
      h('p', { class: 'hint' }, 'A player connects to the address (it carries the token) before the seat expires; ',
        'a token is good for one connection.'),
      h('div', { class: 'actions' },
        h('a', { class: 'button button-primary', href: `#/play/${got.server_id}` }, 'Play with this seat')));
    seat.hidden = false;
    seat.focus();
  }

  async function releaseAllocation(allocation, button) {
    const ok = await confirmDialog({
      title: `Release ${allocation.id}?`,
      body: fleet.on_empty === 'ready' ? 'The server goes back to the ready pool as it is.'
        : 'The server is stopped and a fresh one takes its place; players still on it are disconnected.',
      confirm: 'Release',
    });
    if (!ok) return;
    showError(actionError, '');
    button.disabled = true;
    try {
      await api(`/api/v1/allocations/${encodeURIComponent(allocation.id)}`, { method: 'DELETE', signal, retries: 4 });
      updates.now();
    } catch (error) {
      if (error?.name !== 'AbortError') showError(actionError, error);
      if (button.isConnected) button.disabled = false;
    }
  }

  deleteButton.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: `Delete ${fleet.name}?`,
      body: 'Idle servers stop now; allocated servers stop once their players leave. It cannot be undone.',
      confirm: 'Delete fleet',
    });
    if (!ok) return;
    showError(actionError, '');
    deleteButton.disabled = true;
    deleteButton.textContent = 'Deleting…';
    try {
      await api(`/api/v1/fleets/${encodeURIComponent(id)}`, { method: 'DELETE', signal, timeout: PATCH_TIMEOUT_MS, retries: 4 });
      navigate('/fleets');
    } catch (error) {
      if (error?.name !== 'AbortError') showError(actionError, error);
      if (deleteButton.isConnected) {
        deleteButton.disabled = false;
        deleteButton.textContent = 'Delete fleet';
      }
    }
  });

  drawFleet();
  return undefined;
}

