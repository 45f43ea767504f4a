// Any other game: the frames as they come, the synced state (modules with `stateSync`: the SDK
// applies `$state` and `$patch`, this shows the result), and a form to send {"type", "data"}.

import { h } from '../ui.js';

const MAX_FRAMES = 500;

export function mount(stage, { send, showError }) {
  const frames = h('ol', { class: 'frames', role: 'log', 'aria-label': 'Frames received' });
  const type = h('input', { type: 'text', id: 'raw-type', required: true, autocomplete: 'off' });
  const data = h('textarea', { id: 'raw-data', rows: 3, spellcheck: 'false' }, '');
  const form = h('form', { class: 'form raw-send', method: 'post', 'aria-label': 'Send a frame' },
    h('div', { class: 'field' }, h('label', { for: 'raw-type' }, 'Type'), type),
    h('div', { class: 'field' }, h('label', { for: 'raw-data' }, 'Data (JSON, optional)'), data),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button button-primary' }, 'Send')));
  const state = h('pre', { class: 'raw-state', tabindex: '0', 'aria-label': 'Synced state', dataset: { testid: 'synced-state' } });
  const stateBox = h('details', { class: 'raw-state-box', hidden: true, open: true },
    h('summary', {}, 'Synced state'), state);
  stage.append(h('section', { class: 'game raw', 'aria-label': 'Raw frames' }, form, stateBox, frames));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!type.value.trim()) { type.focus(); return; }
    let payload;
    if (data.value.trim()) {
      try { payload = JSON.parse(data.value); } catch (err) { showError(`Data is not JSON: ${err.message}`); return; }
    }
    send(type.value.trim(), payload);
  });
  return {
    onFrame(kind, body) {
      frames.prepend(h('li', {}, h('code', {}, `${kind} ${JSON.stringify(body)}`)));
      while (frames.children.length > MAX_FRAMES) frames.lastChild.remove();
    },
    onState(value) {
      stateBox.hidden = false;
      state.textContent = JSON.stringify(value, null, 2);
    },
  };
}
