// Games: the caller's games and their versions (each with its analysis), uploading a new version,
// and creating a fleet from a version.

import { ApiError, NetworkError, api, upload } from '../api.js';
import { renderFindings } from '../findings.js';
import { refusal } from '../fleets.js';
import { bytes, clear, dateTime, field, h, pageHeading, setError } from '../ui.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LABELS_RE = /^\s*([A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})(\s*,\s*[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})*\s*$/;
const SEVERITY_WORDS = { warn: ['warning', 'warnings'], info: ['note', 'notes'] };

function parseLabels(text) {
  const out = {};
  for (const pair of text.split(',')) {
    const [key, ...rest] = pair.split('=');
    if (key.trim()) out[key.trim()] = rest.join('=').trim();
  }
  return out;
}

function numberInput(value) {
  return h('input', { type: 'number', min: 0, max: 10000, step: 1, inputmode: 'numeric', value });
}

/** "passed", "passed, 2 warnings", "blocked": the version's analysis in a badge. */
export function analysisBadge(analysis) {
  if (!analysis || analysis.ok === undefined) {
    return h('span', { class: 'badge badge-off', dataset: { analysis: 'unknown' } }, 'not analyzed');
  }
  if (!analysis.ok) return h('span', { class: 'badge badge-bad', dataset: { analysis: 'blocked' } }, 'blocked');
  const counts = Object.entries(SEVERITY_WORDS).map(([severity, [one, many]]) => {
    const n = (analysis.findings ?? []).filter((f) => f.severity === severity).length;
    return n ? `${n} ${n === 1 ? one : many}` : null;
  }).filter(Boolean);
  return h('span', { class: `badge badge-${counts.length ? 'busy' : 'ok'}`, dataset: { analysis: 'passed' } },
    ['passed', ...counts].join(', '));
}

export async function render(main, { signal, navigate, getConfig }) {
  const list = h('div', { class: 'games', 'aria-live': 'off' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No games yet: upload a first version above.');

  // --- upload a version --------------------------------------------------------------------------
  const fileInput = h('input', { type: 'file', accept: '.js,.mjs,.cjs,text/javascript', class: 'file-input' });
  const gameInput = h('input', { type: 'text', maxlength: 64, autocomplete: 'off', list: 'game-names' });
  const gameNames = h('datalist', { id: 'game-names' });
  const notesInput = h('input', { type: 'text', maxlength: 500, autocomplete: 'off' });
  const uploadButton = h('button', { type: 'submit', class: 'button button-primary' }, 'Upload version');
  const uploadStatus = h('p', { class: 'muted', role: 'status' });
  const uploadError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const uploadFindings = h('div');
  const uploadForm = h('form', { class: 'card form', method: 'post', novalidate: true, 'aria-labelledby': 'upload-version-title' },
    h('h2', { id: 'upload-version-title' }, 'Upload a version'),
    h('div', { class: 'grid-2' },
      field('version-file', 'Game module (.js, .mjs or .cjs)', fileInput),
      h('div', { class: 'field-group' },
        field('version-game', 'Game name', gameInput, 'A new name creates the game; an existing one gets its next version.'),
        gameNames)),
    field('version-notes', 'Notes (optional)', notesInput, 'What changed in this version.'),
    uploadError,
    h('div', { class: 'actions' }, uploadButton, uploadStatus));

  // --- create a fleet ----------------------------------------------------------------------------
  let chosen = null; // { game, version }
  const createTitle = h('h2', { id: 'create-fleet-title', tabindex: '-1' }, 'Create a fleet');
  const nameInput = h('input', { type: 'text', maxlength: 64, autocomplete: 'off' });
  const policySelect = h('select', {},
    h('option', { value: 'fixed' }, 'Fixed size (replicas)'),
    h('option', { value: 'buffer' }, 'Buffer of ready servers'));
  const replicasInput = numberInput(1);
  const bufferInput = numberInput(1);
  const minInput = numberInput(0);
  const maxInput = numberInput(4);
  const planSelect = h('select', {}, h('option', { value: '' }, 'Default'));
  const labelsInput = h('input', { type: 'text', autocomplete: 'off', placeholder: 'mode=casual, region=eu' });
  const onEmptySelect = h('select', {},
    h('option', { value: 'replace' }, 'Replace it with a fresh server'),
    h('option', { value: 'ready' }, 'Put it back in the ready pool'));
  const fixedFields = field('fleet-replicas', 'Replicas', replicasInput, 'Servers to keep, allocated ones included.');
  const bufferFields = h('div', { class: 'grid-3', hidden: true },
    field('fleet-buffer', 'Buffer', bufferInput, 'Ready servers on top of the allocated ones.'),
    field('fleet-min', 'Min servers', minInput),
    field('fleet-max', 'Max servers', maxInput));
  const createButton = h('button', { type: 'submit', class: 'button button-primary' }, 'Create fleet');
  const cancelButton = h('button', { type: 'button', class: 'button' }, 'Cancel');
  const createError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const createForm = h('form', { class: 'card form', method: 'post', novalidate: true, hidden: true,
    'aria-labelledby': 'create-fleet-title' },
  createTitle,
  h('div', { class: 'grid-2' },
    field('fleet-name', 'Fleet name', nameInput, 'Letters, digits, _ . - (up to 64), no spaces.'),
    field('fleet-policy', 'Size policy', policySelect)),
  fixedFields, bufferFields,
  h('div', { class: 'grid-2' },
    field('fleet-plan', 'Resource plan', planSelect),
    field('fleet-on-empty', 'When its players leave a server', onEmptySelect)),
  field('fleet-labels', 'Labels (optional)', labelsInput, 'key=value pairs, comma-separated; allocations can select on them.'),
  createError,
  h('div', { class: 'actions' }, createButton, cancelButton));

  main.append(pageHeading('Games'), createForm, uploadForm, uploadFindings, list, empty);

  getConfig(signal).then((c) => {
    clear(planSelect).append(...c.plans.map((plan) => h('option', { value: plan.name, selected: plan.name === c.default_plan },
      `${plan.name[0].toUpperCase()}${plan.name.slice(1)} (${plan.memory_mb} MB, ${plan.cpus} CPU)`)));
  }).catch(() => {});

  policySelect.addEventListener('change', () => {
    fixedFields.hidden = policySelect.value !== 'fixed';
    bufferFields.hidden = policySelect.value !== 'buffer';
  });
  cancelButton.addEventListener('click', () => {
    createForm.hidden = true;
    const opener = chosen && list.querySelector(`[data-create="${CSS.escape(`${chosen.game}@${chosen.version}`)}"]`);
    chosen = null;
    opener?.focus();
  });

  function openCreate(game, version) {
    chosen = { game, version };
    createTitle.textContent = `Create a fleet from ${game} v${version}`;
    if (!nameInput.value) nameInput.value = game.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64);
    createError.hidden = true;
    createForm.hidden = false;
    createForm.scrollIntoView({ block: 'start' });
    nameInput.focus();
  }

  // --- the list ----------------------------------------------------------------------------------
  function versionRow(game, version, analysis) {
    const findings = analysis?.findings?.length
      ? h('details', { class: 'version-findings' }, h('summary', {}, 'Findings'),
        renderFindings(analysis, null, { title: `Analysis of ${game.name} v${version.version}` }))
      : null;
    return h('tr', { dataset: { version: version.version } },
      h('th', { scope: 'row', 'data-label': 'Version' }, `v${version.version}`,
        version.version === game.latest_version ? h('span', { class: 'muted' }, ' (newest)') : null),
      h('td', { 'data-label': 'Uploaded' }, h('time', { datetime: version.created_at }, dateTime(version.created_at))),
      h('td', { 'data-label': 'Module' }, `${version.filename}, ${version.module_kind}, ${bytes(version.source_size)}`),
      h('td', { 'data-label': 'Max players', class: 'num' }, version.max_players || '–'),
      h('td', { 'data-label': 'Analysis' }, analysisBadge(analysis), findings),
      h('td', { 'data-label': 'Notes' }, version.notes || '–'),
      h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'button button-small', dataset: { create: `${game.name}@${version.version}` },
          'aria-label': `Create a fleet from ${game.name} v${version.version}`,
          onclick: () => openCreate(game.name, version.version) }, 'Create fleet'))));
  }

  async function gameSection(game) {
    const path = `/api/v1/games/${encodeURIComponent(game.name)}/versions`;
    const versions = (await api(path, { signal })).items;
    // The list has no analysis: each version's own record has it.
    const details = await Promise.all(versions.map((v) => api(`${path}/${v.version}`, { signal })
      .then((d) => d.analysis).catch((error) => { if (error?.name === 'AbortError') throw error; return null; })));
    const titleId = `game-${game.id}`;
    return h('section', { class: 'card game-card', 'aria-labelledby': titleId, dataset: { game: game.name } },
      h('h2', { id: titleId }, game.name),
      h('p', { class: 'muted' }, `${game.versions} version${game.versions === 1 ? '' : 's'}`,
        game.latest_version ? `, newest v${game.latest_version}` : '', ` · updated ${dateTime(game.updated_at)}`),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table responsive' },
        h('caption', { class: 'visually-hidden' }, `Versions of ${game.name}, newest first`),
        h('thead', {}, h('tr', {}, ['Version', 'Uploaded', 'Module', 'Max players', 'Analysis', 'Notes']
          .map((t) => h('th', { scope: 'col' }, t)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, versions.map((v, i) => versionRow(game, v, details[i]))))));
  }

  async function load() {
    const games = (await api('/api/v1/games', { signal })).items;
    const sections = await Promise.all(games.map(gameSection));
    clear(list).append(...sections);
    clear(gameNames).append(...games.map((g) => h('option', { value: g.name })));
    empty.hidden = games.length > 0;
  }

  // --- forms -------------------------------------------------------------------------------------
  uploadForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    uploadError.hidden = true;
    uploadStatus.textContent = '';
    clear(uploadFindings);
    for (const c of [fileInput, gameInput]) setError(c, null);
    const file = fileInput.files[0];
    if (!file || !/\.(c|m)?js$/i.test(file.name)) { setError(fileInput, 'Choose a .js, .mjs or .cjs file.'); fileInput.focus(); return; }
    if (!NAME_RE.test(gameInput.value.trim())) {
      setError(gameInput, 'Name the game: 1–64 letters, digits, _ . - (no spaces).');
      gameInput.focus();
      return;
    }
    const data = new FormData();
    data.append('file', file, file.name);
    data.append('name', gameInput.value.trim());
    if (notesInput.value.trim()) data.append('notes', notesInput.value.trim());
    uploadButton.disabled = true;
    uploadStatus.textContent = 'Uploading and analyzing…';
    try {
      // Not retried behind the user's back: a second try would make a second version.
      const created = await upload('/api/v1/games', data, { signal });
      uploadStatus.textContent = `Uploaded ${created.game} v${created.version}.`;
      fileInput.value = '';
      notesInput.value = '';
      await load();
    } catch (error) {
      if (error?.name === 'AbortError') return;
      uploadStatus.textContent = '';
      uploadError.textContent = error instanceof NetworkError
        ? `${error.message}. Nothing was stored; press Upload version again.` : refusal(error);
      uploadError.hidden = false;
      if (error instanceof ApiError && error.problem?.findings?.length) {
        uploadFindings.append(renderFindings({ findings: error.problem.findings }, await file.text(),
          { title: `Analysis of ${file.name}` }));
      }
    } finally {
      uploadButton.disabled = false;
    }
  });

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    createError.hidden = true;
    const controls = [nameInput, replicasInput, bufferInput, minInput, maxInput, labelsInput];
    for (const c of controls) setError(c, null);
    let ok = true;
    const fail = (control, message) => { setError(control, message); if (ok) control.focus(); ok = false; };
    const whole = (input) => (/^\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : null);
    if (!NAME_RE.test(nameInput.value.trim())) fail(nameInput, 'Name the fleet: 1–64 letters, digits, _ . - (no spaces).');
    const body = { name: nameInput.value.trim(), game: chosen.game, version: chosen.version, on_empty: onEmptySelect.value };
    if (policySelect.value === 'fixed') {
      body.replicas = whole(replicasInput);
      if (body.replicas === null) fail(replicasInput, 'A whole number of servers, 0 or more.');
    } else {
      body.buffer = whole(bufferInput);
      body.min_size = whole(minInput);
      body.max_size = whole(maxInput);
      for (const [input, key] of [[bufferInput, 'buffer'], [minInput, 'min_size'], [maxInput, 'max_size']]) {
        if (body[key] === null) fail(input, 'A whole number of servers, 0 or more.');
      }
      if (ok && body.max_size < body.min_size) fail(maxInput, 'Max servers is below min servers.');
    }
    if (labelsInput.value.trim() && !LABELS_RE.test(labelsInput.value)) fail(labelsInput, 'Use key=value pairs separated by commas.');
    if (!ok) return;
    if (labelsInput.value.trim()) body.labels = parseLabels(labelsInput.value);
    if (planSelect.value) body.plan = planSelect.value;
    createButton.disabled = true;
    try {
      // A POST that creates a fleet is not repeated behind the user's back.
      const created = await api('/api/v1/fleets', { method: 'POST', json: body, signal });
      navigate(`/fleets/${created.id}`);
    } catch (error) {
      if (error?.name === 'AbortError') return;
      createError.textContent = error instanceof NetworkError
        ? `${error.message}. Check the fleets list before trying again.` : refusal(error);
      createError.hidden = false;
    } finally {
      if (createButton.isConnected) createButton.disabled = false;
    }
  });

  await load();
}
