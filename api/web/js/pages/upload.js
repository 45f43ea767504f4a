// Upload a game module and follow its deployment: upload progress, then the steps of the
// deployment live (pending → analyzing → building → starting → running), and the analyzer's
// findings on the source when it refuses the code.

import { ApiError, NetworkError, api, eventStream, upload } from '../api.js';
import { renderFindings } from '../findings.js';
import {
  DONE, STEPS, banner, bytes, clear, clock, coalesce, field, h, pageHeading, problemText, setError, statusBadge,
} from '../ui.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;
const LABELS_RE = /^\s*([A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})(\s*,\s*[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})*\s*$/;
const STEP_TEXT = {
  pending: 'Uploaded', analyzing: 'Analyzing the code', building: 'Building the image',
  starting: 'Starting the container', running: 'Running',
};

export async function render(main, { signal, getConfig }) {
  let config = null;
  let chosen = null; // { file, text }
  let autoName = '';
  let deployment = null; // AbortController of the deployment being followed

  const fileInput = h('input', { type: 'file', accept: '.js,.mjs,.cjs,text/javascript', class: 'file-input' });
  const fileInfo = h('p', { class: 'file-info', 'aria-live': 'polite' }, 'No file chosen.');
  const drop = h('div', { class: 'dropzone', dataset: { testid: 'dropzone' } },
    h('p', { class: 'dropzone-text' }, 'Drag a .js game module here, or choose one:'),
    field('file', 'Game module (.js, .mjs or .cjs)', fileInput),
    fileInfo);
  const nameInput = h('input', { type: 'text', required: true, maxlength: 64, autocomplete: 'off' });
  const maxInput = h('input', { type: 'number', min: 1, max: 1000, inputmode: 'numeric' });
  const labelsInput = h('input', { type: 'text', autocomplete: 'off', placeholder: 'mode=casual, region=eu' });
  const selectorInput = h('input', { type: 'text', autocomplete: 'off', placeholder: 'gpu=none' });
  const planSelect = h('select', {}, h('option', { value: 'standard' }, 'Standard'));
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Deploy');
  const check = h('button', { type: 'button', class: 'button' }, 'Check code only');
  const formError = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card form', method: 'post', novalidate: true, 'aria-label': 'Upload a game' },
    drop,
    h('div', { class: 'grid-2' },
      field('name', 'Server name', nameInput, 'Letters, digits, spaces, _ . - (up to 64).'),
      field('max-players', 'Max players (optional)', maxInput, 'Leave empty to use the module’s maxPlayers.')),
    field('labels', 'Labels (optional)', labelsInput, 'key=value pairs, comma-separated; shown in the room list and usable as filters.'),
    field('plan', 'Resource plan', planSelect, 'The memory, CPU and process limits of the server.'),
    h('details', { class: 'advanced' }, h('summary', {}, 'Placement'),
      field('node-selector', 'Node selector (optional)', selectorInput, 'Node labels the server needs: key=value, comma-separated.')),
    formError,
    h('div', { class: 'actions' }, submit, check));

  const progressBar = h('progress', { id: 'upload-progress', max: 100, value: 0 });
  const progressText = h('span', { class: 'progress-text' }, '');
  const progress = h('div', { class: 'upload-progress', hidden: true },
    h('label', { for: 'upload-progress' }, 'Upload'), progressBar, progressText);
  const stepsList = h('ol', { class: 'steps', 'aria-label': 'Deployment steps' });
  const deployStatus = h('p', { class: 'deploy-status', role: 'status', 'aria-live': 'polite' });
  const deployLinks = h('p', { class: 'deploy-links' });
  const deploy = h('section', { class: 'card deploy', 'aria-labelledby': 'deploy-title', hidden: true },
    h('h2', { id: 'deploy-title' }, 'Deployment'), progress, stepsList, deployStatus, deployLinks);
  const findingsBox = h('div', { class: 'findings-box' });

  main.append(pageHeading('Upload a game'), form, deploy, findingsBox);

  getConfig(signal).then((c) => {
    config = c;
    clear(planSelect);
    for (const plan of c.plans) {
      planSelect.append(h('option', { value: plan.name, selected: plan.name === c.default_plan },
        `${plan.name[0].toUpperCase()}${plan.name.slice(1)} (${plan.memory_mb} MB, ${plan.cpus} CPU, ${plan.pids} processes)`));
    }
    document.getElementById('plan-hint').textContent = c.plans.length > 1 ? ''
      : 'Every server gets this plan on this installation.';
  }).catch(() => {});

  async function choose(file) {
    setError(fileInput, null);
    if (!file) return;
    if (!/\.(c|m)?js$/i.test(file.name)) {
      setError(fileInput, 'Choose a JavaScript module: a .js, .mjs or .cjs file.');
      chosen = null;
      fileInfo.textContent = 'No file chosen.';
      return;
    }
    const limit = config?.max_upload_bytes ?? 1024 * 1024;
    if (file.size > limit) {
      setError(fileInput, `The file is ${bytes(file.size)}; the limit is ${bytes(limit)}.`);
      chosen = null;
      return;
    }
    chosen = { file, text: await file.text() };
    fileInfo.textContent = `${file.name}, ${bytes(file.size)}`;
    // Follow the file's name until the user types one of their own.
    if (!nameInput.value || nameInput.value === autoName) nameInput.value = autoName = file.name.replace(/\.(c|m)?js$/i, '').replace(/[^A-Za-z0-9 _.-]/g, '-').slice(0, 64);
    clear(findingsBox);
  }

  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) choose(file);
  });

  function validate() {
    let ok = true;
    const fail = (control, message) => { setError(control, message); if (ok) control.focus(); ok = false; };
    for (const c of [fileInput, nameInput, maxInput, labelsInput, selectorInput]) setError(c, null);
    if (!chosen) fail(fileInput, 'Choose a game module to upload.');
    if (!NAME_RE.test(nameInput.value.trim())) fail(nameInput, 'Give the server a name: 1–64 letters, digits, spaces, _ . -');
    const max = maxInput.value.trim();
    if (max && !(/^\d+$/.test(max) && +max >= 1 && +max <= 1000)) fail(maxInput, 'A whole number from 1 to 1000, or empty.');
    if (labelsInput.value.trim() && !LABELS_RE.test(labelsInput.value)) fail(labelsInput, 'Use key=value pairs separated by commas.');
    if (selectorInput.value.trim() && !LABELS_RE.test(selectorInput.value)) fail(selectorInput, 'Use key=value pairs separated by commas.');
    return ok;
  }

  function showFormError(error) {
    formError.textContent = error instanceof NetworkError
      ? `${error.message}. Nothing was deployed; check your connection and press Deploy again.`
      : problemText(error);
    formError.hidden = false;
  }

  check.addEventListener('click', async () => {
    formError.hidden = true;
    if (!chosen) { setError(fileInput, 'Choose a game module to check.'); fileInput.focus(); return; }
    const data = new FormData();
    data.append('file', chosen.file, chosen.file.name);
    check.disabled = true;
    try {
      const report = await upload('/api/v1/analysis', data, { signal });
      clear(findingsBox).append(renderFindings(report, chosen.text,
        { title: `Analysis of ${chosen.file.name} (not deployed)`, analysisOnly: true }));
    } catch (error) {
      if (error?.name !== 'AbortError') showFormError(error);
    } finally {
      check.disabled = false;
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    formError.hidden = true;
    if (!validate()) return;
    const data = new FormData();
    data.append('file', chosen.file, chosen.file.name);
    data.append('name', nameInput.value.trim());
    if (maxInput.value.trim()) data.append('max_players', maxInput.value.trim());
    if (labelsInput.value.trim()) data.append('labels', labelsInput.value.trim());
    if (selectorInput.value.trim()) data.append('node_selector', selectorInput.value.trim());
    if (planSelect.value) data.append('plan', planSelect.value);
    const source = chosen.text;
    const fileName = chosen.file.name;
    deployment?.abort();
    deployment = new AbortController();
    const followSignal = AbortSignal.any([signal, deployment.signal]);
    clear(findingsBox);
    clear(deployLinks);
    clear(stepsList);
    deploy.hidden = false;
    progress.hidden = false;
    progressBar.value = 0;
    progressText.textContent = '0 %';
    deployStatus.textContent = 'Uploading…';
    submit.disabled = true;
    let created;
    try {
      created = await upload('/api/v1/servers', data, {
        signal: followSignal,
        onProgress: (loaded, total) => {
          const pct = Math.round((loaded / total) * 100);
          progressBar.value = pct;
          progressText.textContent = `${pct} % (${bytes(loaded)} of ${bytes(total)})`;
        },
      });
    } catch (error) {
      if (error?.name === 'AbortError') return;
      deploy.hidden = true;
      showFormError(error);
      if (error instanceof ApiError && error.problem?.errors) formError.focus?.();
      return;
    } finally {
      submit.disabled = false;
    }
    progressBar.value = 100;
    progressText.textContent = '100 %';
    deployStatus.textContent = `Uploaded as ${created.name}; deploying…`;
    deployLinks.append(h('a', { href: `#/servers/${created.id}` }, 'Server details'),
      h('a', { href: created.workflow_url, target: '_blank', rel: 'noopener noreferrer' }, 'Workflow in the Temporal Web UI'));
    followDeployment(created.id, source, fileName, followSignal);
  });

  function drawSteps(server, events) {
    const reached = new Map(events.map((e) => [e.status, e]));
    const failedAt = server.status === 'rejected' ? 'analyzing' : server.status === 'failed'
      ? STEPS.slice().reverse().find((s) => reached.has(s)) ?? 'pending' : null;
    const currentIndex = STEPS.indexOf(server.status);
    clear(stepsList);
    STEPS.forEach((step, i) => {
      let state = 'todo';
      if (failedAt === step) state = 'failed';
      else if (server.status === 'running' || i < currentIndex || (failedAt && i < STEPS.indexOf(failedAt))) state = 'done';
      else if (i === currentIndex) state = 'current';
      const at = reached.get(step)?.at;
      stepsList.append(h('li', { class: `step step-${state}`, dataset: { step, state },
        'aria-current': state === 'current' ? 'step' : null },
      h('span', { class: 'step-mark', 'aria-hidden': 'true' }, { done: '✓', failed: '✕', current: '…', todo: '' }[state]),
      h('span', { class: 'step-name' }, STEP_TEXT[step]),
      h('span', { class: 'visually-hidden' }, `: ${state === 'todo' ? 'not yet' : state}`),
      at ? h('time', { class: 'step-time', datetime: at }, clock(at)) : null));
    });
  }

  function followDeployment(id, source, fileName, followSignal) {
    let lastStatus = null;
    let analysisShown = false;
    const stop = new AbortController();
    const streamSignal = AbortSignal.any([followSignal, stop.signal]);
    const refresh = async () => {
      const detail = await api(`/api/v1/servers/${id}`, { signal: streamSignal });
      drawSteps(detail, detail.events);
      if (detail.status !== lastStatus) {
        lastStatus = detail.status;
        clear(deployStatus).append('Status: ', statusBadge(detail.status),
          detail.error ? ` ${detail.error}` : '');
      }
      if (detail.analysis && !analysisShown && (detail.analysis.findings?.length || detail.status === 'rejected')) {
        analysisShown = true;
        clear(findingsBox).append(renderFindings(detail.analysis, source, { title: `Analysis of ${fileName}` }));
        if (detail.status === 'rejected') findingsBox.querySelector('h2')?.setAttribute('tabindex', '-1');
      }
      if (detail.status === 'running' && !deployLinks.querySelector('[data-play]')) {
        deployLinks.prepend(h('a', { class: 'button button-primary', href: `#/play/${id}`, dataset: { play: '' } }, 'Play'));
      }
      if (DONE.has(detail.status) || detail.status === 'running') stop.abort();
    };
    const guarded = coalesce(refresh, (error) => {
      banner.show('deploy', `Could not read the deployment: ${problemText(error)}`,
        { actions: [{ label: 'Dismiss', run: () => banner.clear('deploy') }] });
    });
    eventStream('/api/v1/events/servers', {
      signal: streamSignal, label: 'Deployment updates',
      onEvent: (name, data) => {
        if (name === 'ready' || (name === 'server' && data.id === id)) guarded();
      },
    });
  }

  return () => deployment?.abort();
}
