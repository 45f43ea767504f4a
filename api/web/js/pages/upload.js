// Upload a game and follow its deployment: upload progress, then the steps of the deployment
// live (pending → analyzing → building → starting → running), and the analyzer's findings on the
// source. A game is one module file, a project archive (.zip, .tar.gz), or a project folder
// (chosen or dropped), which is packed into an archive here first (js/pack.js).

import { ApiError, NetworkError, api, eventStream, upload } from '../api.js';
import { renderFindings } from '../findings.js';
import { filesFromEntry, filesFromInput, packProject } from '../pack.js';
import {
  DONE, STEPS, banner, bytes, clear, clock, coalesce, field, h, pageHeading, problemText, setError, statusBadge,
} from '../ui.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;
const LABELS_RE = /^\s*([A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})(\s*,\s*[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\s*=\s*[^,]{0,128})*\s*$/;
const STEP_TEXT = {
  pending: 'Uploaded', analyzing: 'Analyzing the code', building: 'Building the image',
  starting: 'Starting the container', running: 'Running',
};
const MODULE_RE = /\.(c|m)?js$/i;
const PROJECT_RE = /\.(zip|tar\.gz|tgz|ts|mts|cts)$/i;
const TEXT_RE = /\.(c|m)?(js|ts)$|\.json$/i;
const SHOWN_SOURCE_BYTES = 512 * 1024; // larger files show the finding's own line only

export async function render(main, { signal, getConfig }) {
  let config = null;
  let chosen = null; // { file, text } for a module; { file, project, sources } for a project
  let autoName = '';
  let deployment = null; // AbortController of the deployment being followed

  const fileInput = h('input', { type: 'file', class: 'file-input',
    accept: '.js,.mjs,.cjs,.ts,.zip,.tar.gz,.tgz,text/javascript,application/zip,application/gzip' });
  const folderInput = h('input', { type: 'file', class: 'file-input', webkitdirectory: true, multiple: true });
  const fileInfo = h('p', { class: 'file-info', 'aria-live': 'polite', dataset: { testid: 'file-info' } },
    'No file chosen.');
  const drop = h('div', { class: 'dropzone', dataset: { testid: 'dropzone' } },
    h('p', { class: 'dropzone-text' }, 'Drag a game here (a .js module, a project folder, or its .zip or .tar.gz), or choose one:'),
    field('file', 'Game module or project archive (.js, .zip, .tar.gz)', fileInput),
    field('folder', 'Project folder', folderInput,
      'A folder with a package.json: packed here into a .tar.gz, without node_modules and .git.'),
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

  function followName(name) {
    // Follow the file's name until the user types one of their own.
    if (!nameInput.value || nameInput.value === autoName) {
      nameInput.value = autoName = name.replace(/[^A-Za-z0-9 _.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
    }
  }

  function projectChosen(file, project, sources = new Map()) {
    chosen = { file, project, sources };
    check.hidden = true; // the analysis endpoint takes one module; a project is analyzed as it deploys
    followName(project);
    clear(findingsBox);
  }

  async function choose(file) {
    setError(fileInput, null);
    setError(folderInput, null);
    check.hidden = false;
    if (!file) return;
    if (PROJECT_RE.test(file.name)) {
      const project = file.name.replace(PROJECT_RE, '');
      fileInfo.textContent = `${file.name}, ${bytes(file.size)}: a game project`;
      projectChosen(file, project);
      return;
    }
    if (!MODULE_RE.test(file.name)) {
      setError(fileInput, 'Choose a JavaScript module (.js, .mjs, .cjs), a project archive (.zip, .tar.gz) or a folder.');
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
    followName(file.name.replace(MODULE_RE, ''));
    clear(findingsBox);
  }

  /** A folder's files ([{path, file}], paths under the folder's name), packed into one archive. */
  async function chooseFolder(files) {
    setError(fileInput, null);
    setError(folderInput, null);
    chosen = null;
    if (!files.length) {
      setError(folderInput, 'The folder has no files to upload (node_modules and .git are left out).');
      fileInfo.textContent = 'No file chosen.';
      return;
    }
    const folder = files[0].path.split('/')[0];
    const inside = files.filter((f) => f.path.includes('/'));
    fileInfo.textContent = `Packing ${folder}/ (${inside.length} files)…`;
    const archive = await packProject(folder, inside);
    // The sources as text, to show findings on their lines (paths as the analysis names them).
    const sources = new Map();
    for (const { path, file } of inside) {
      if (TEXT_RE.test(path) && file.size <= SHOWN_SOURCE_BYTES) sources.set(path.slice(folder.length + 1), await file.text());
    }
    const size = inside.reduce((n, f) => n + f.file.size, 0);
    fileInfo.textContent = `${folder}/: ${inside.length} files, ${bytes(size)}, packed as ${archive.name} `
      + `(${bytes(archive.size)}); node_modules and .git left out`;
    projectChosen(archive, folder, sources);
  }

  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  folderInput.addEventListener('change', () => chooseFolder(filesFromInput(folderInput.files)));
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    // The entry must be taken during the event: the drop's items are gone once it returns.
    const entry = e.dataTransfer?.items?.[0]?.webkitGetAsEntry?.();
    if (entry?.isDirectory) {
      fileInfo.textContent = `Reading ${entry.name}/…`;
      filesFromEntry(entry).then(chooseFolder).catch((error) => setError(folderInput, `The folder could not be read: ${error}`));
      return;
    }
    const file = e.dataTransfer?.files?.[0];
    if (file) choose(file);
  });

  function validate() {
    let ok = true;
    const fail = (control, message) => { setError(control, message); if (ok) control.focus(); ok = false; };
    for (const c of [fileInput, nameInput, maxInput, labelsInput, selectorInput]) setError(c, null);
    if (!chosen) fail(fileInput, 'Choose a game module, a project archive or a project folder to upload.');
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
    const source = chosen.project ? chosen.sources : chosen.text;
    const fileName = chosen.project ?? chosen.file.name;
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
      const project = source instanceof Map || Boolean(detail.analysis?.entry);
      if (detail.analysis && !analysisShown
          && (project || detail.analysis.findings?.length || detail.status === 'rejected')) {
        analysisShown = true;
        clear(findingsBox).append(project
          ? renderProjectAnalysis(detail.analysis, source instanceof Map ? source : new Map(), fileName)
          : renderFindings(detail.analysis, source, { title: `Analysis of ${fileName}` }));
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

/**
 * A project's analysis: what was analyzed (entry, files, npm packages and their verdicts), every
 * finding as file:line:column, then each file's findings on its source (the folder's text when
 * the folder was packed here, else the line the analyzer kept).
 */
function renderProjectAnalysis(report, sources, name) {
  const findings = report.findings ?? [];
  const blocking = findings.filter((f) => f.severity === 'block').length;
  const packages = report.dependencies ?? [];
  const section = h('section', { class: 'findings card', 'aria-label': `Analysis of ${name}`,
    dataset: { testid: 'project-analysis', verdict: report.ok === false || blocking ? 'blocked' : 'passed' } },
  h('h2', {}, `Analysis of ${name}`),
  h('p', { class: blocking ? 'error' : '' }, blocking ? `${blocking} blocking finding${blocking === 1 ? '' : 's'}: the upload was refused.`
    : findings.length ? `${findings.length} finding${findings.length === 1 ? '' : 's'}, none blocking.` : 'No findings.'),
  h('p', { dataset: { testid: 'project-summary' } },
    `Entry ${report.entry ?? '?'}; ${(report.files ?? []).length} files analyzed`,
    packages.length ? `; npm packages: ${packages.map((d) => `${d.package} ${d.verdict}`).join(', ')}` : '; no npm packages'));
  if (!findings.length) return section;
  const where = (f) => `${f.file || report.entry || '?'}:${f.line}:${f.column}`;
  section.append(h('ul', { class: 'finding-list' }, findings.map((f) => h('li', { dataset: { testid: 'finding' } },
    h('code', {}, where(f)), ' ', h('span', { class: `severity severity-${f.severity}` }, f.severity),
    ' ', h('code', {}, f.rule), ' ', f.message))));
  const byFile = new Map();
  for (const f of findings) {
    const file = f.file || report.entry || '';
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file).push(f);
  }
  for (const [file, here] of byFile) {
    section.append(renderFindings({ findings: here }, sources.get(file) ?? null, { title: file }));
  }
  return section;
}
