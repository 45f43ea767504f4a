// DOM helpers, the network banner, confirmation dialogs and small formatters.
// Untrusted text (names, logs, chat) only ever reaches the page through text nodes.

/** Build an element: h('button', {class: 'x', onclick: fn, 'aria-label': '...'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'disabled' || key === 'selected' || key === 'hidden') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** SVG element (the sparklines). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idCounter = 0;
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// --- the banner ----------------------------------------------------------------------------------
// One region at the top of the page; several sources may have a message at once (a retrying list,
// a dropped live stream). The newest one is shown; each source clears its own.

const messages = new Map();

export const banner = {
  show(source, text, { actions = [], kind = 'error' } = {}) {
    // A new source goes to the end (the newest is shown); an update keeps its place.
    messages.set(source, { text, actions, kind });
    renderBanner();
  },
  clear(source) {
    if (messages.delete(source)) renderBanner();
  },
  clearAll() {
    messages.clear();
    renderBanner();
  },
};

// What the region shows now; a countdown re-renders many times a second, and replacing its
// buttons each time would swallow clicks, so an update of the same message only changes the text.
let shown = null;

function renderBanner() {
  const region = document.getElementById('banner');
  if (!region) return;
  const entry = [...messages.entries()].at(-1);
  if (!entry) {
    clear(region);
    region.hidden = true;
    shown = null;
    return;
  }
  const [source, last] = entry;
  const labels = last.actions.map((a) => a.label).join('\n');
  if (shown && shown.source === source && shown.labels === labels && shown.kind === last.kind
      && shown.count === messages.size) {
    shown.text.textContent = last.text;
    return;
  }
  clear(region);
  region.hidden = false;
  region.className = `banner banner-${last.kind}`;
  const text = h('p', { class: 'banner-text' }, last.text);
  region.append(text);
  last.actions.forEach((action, i) => {
    // The handler reads the newest message's action: the message may be updated in place.
    region.append(h('button', { type: 'button', class: 'button button-small',
      onclick: () => messages.get(source)?.actions[i]?.run() }, action.label));
  });
  if (messages.size > 1) region.append(h('span', { class: 'banner-more' }, `(+${messages.size - 1} more)`));
  shown = { source, labels, kind: last.kind, count: messages.size, text };
}

// --- form fields ---------------------------------------------------------------------------------

/** A labelled form field: the control gets `id`, a hint and an error line it is described by. */
export function field(id, label, control, hint) {
  const hintId = hint ? `${id}-hint` : null;
  const error = h('p', { id: `${id}-error`, class: 'field-error', hidden: true });
  control.id = id;
  control.setAttribute('aria-describedby', [hintId, `${id}-error`].filter(Boolean).join(' '));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    hint ? h('p', { id: hintId, class: 'hint' }, hint) : null, error);
}

/** Show (or with no message, clear) the error line of a field made by `field`. */
export function setError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (message) control.setAttribute('aria-invalid', 'true');
  else control.removeAttribute('aria-invalid');
  if (error) {
    error.textContent = message ?? '';
    error.hidden = !message;
  }
}

// --- dialogs -------------------------------------------------------------------------------------

/** Ask before something that cannot be undone; resolves true when confirmed. Esc cancels. */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = true }) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('form', { method: 'dialog' },
        h('h2', { id: titleId }, title),
        h('p', {}, body),
        h('div', { class: 'dialog-actions' },
          h('button', { value: 'cancel', class: 'button', autofocus: true }, 'Cancel'),
          h('button', { value: 'ok', class: `button ${danger ? 'button-danger' : 'button-primary'}` }, confirm))));
    const opener = document.activeElement;
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// --- formatting ----------------------------------------------------------------------------------

export const DONE = new Set(['stopped', 'deleted', 'failed', 'rejected']);
export const STEPS = ['pending', 'analyzing', 'building', 'starting', 'running'];

export function statusBadge(status) {
  return h('span', { class: `badge badge-${statusTone(status)}`, dataset: { status } }, status);
}

export function statusTone(status) {
  if (status === 'running') return 'ok';
  if (status === 'failed' || status === 'rejected') return 'bad';
  if (status === 'stopped' || status === 'deleted' || status === 'stopping') return 'off';
  return 'busy';
}

export function parseTime(value) {
  if (!value) return null;
  // The API sends naive UTC times from SQLite; read them as UTC, not local time.
  const text = typeof value === 'string' && !/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? `${value}Z` : value;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function age(value, now = Date.now()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return '';
  const s = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

export function clock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  return date ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}

export function dateTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  return date ? date.toLocaleString() : '';
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function labelsText(labels) {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** A line chart of numbers, most recent last, as an accessible SVG. */
export function sparkline(values, { label, width = 240, height = 48, max } = {}) {
  const top = max ?? Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / top) * (height - 4) - 2).toFixed(1)}`);
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'sparkline', role: 'img', 'aria-label': label,
    preserveAspectRatio: 'none' },
  svg('polyline', { points: points.join(' '), fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
    'vector-effect': 'non-scaling-stroke' }));
}

/** Title + focus for a freshly rendered page, so keyboard and screen-reader users land on it. */
export function pageHeading(text) {
  document.title = `${text} · Game Server Factory`;
  return h('h1', { tabindex: '-1', class: 'page-title' }, text);
}

export function problemText(error) {
  if (!error) return '';
  const problem = error.problem;
  if (problem?.errors?.length) {
    const details = problem.errors.map((e) => `${(e.loc ?? []).filter((p) => p !== 'body').join('.')}: ${e.msg}`);
    return `${problem.detail ?? problem.title}: ${details.join('; ')}`;
  }
  return problem?.detail ?? error.message ?? String(error);
}

/** Run `fn` one call at a time; calls made meanwhile fold into one more run, so an older answer
 * never overwrites a newer one. Errors go to `onError` (aborts are ignored). */
export function coalesce(fn, onError = (e) => console.error(e)) {
  let busy = false;
  let again = false;
  return async function run() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } catch (error) {
      if (error?.name !== 'AbortError') onError(error);
    } finally {
      busy = false;
    }
  };
}
