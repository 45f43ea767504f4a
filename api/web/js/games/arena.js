// Arena (examples/games/arena.js): dots on a field racing for a coin. Steer with the arrow keys
// or WASD while the field has focus, or with the buttons. Frames: `arena`, `positions`, `coin`;
// arena-sync.js sends positions, scores and the coin as synced state instead (`onState`).

import { playerName } from '../players.js';
import { h } from '../ui.js';

const safeColor = (c) => (/^#[0-9a-fA-F]{3,8}$/.test(c) ? c : '#64748b');
// Through the CSSOM: the page's CSP refuses inline style attributes.
function swatch(color) {
  const el = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  el.style.background = safeColor(color);
  return el;
}

const KEYS = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
  w: [0, -1], s: [0, 1], a: [-1, 0], d: [1, 0] };

export function mount(stage, { send, me }) {
  let field = { width: 800, height: 600, radius: 12, color: '#000', coin: null };
  let players = [];
  const held = new Set();
  const canvas = h('canvas', { class: 'arena-field', width: 800, height: 600, tabindex: '0',
    role: 'img', 'aria-label': 'Arena. Focus it and steer with the arrow keys or W A S D.' });
  const scores = h('ol', { class: 'arena-scores', 'aria-label': 'Scores' });
  const pad = h('div', { class: 'arena-pad', role: 'group', 'aria-label': 'Steer' },
    [['Up', 'ArrowUp'], ['Left', 'ArrowLeft'], ['Right', 'ArrowRight'], ['Down', 'ArrowDown']].map(([label, key]) =>
      h('button', { type: 'button', class: 'button button-small', 'aria-label': `Steer ${label.toLowerCase()}`,
        onpointerdown: () => press(key), onpointerup: () => release(key), onpointerleave: () => release(key),
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); press(key); } },
        onkeyup: (e) => { if (e.key === 'Enter' || e.key === ' ') release(key); } }, label)));
  stage.append(h('section', { class: 'game arena', 'aria-label': 'Arena' }, canvas, pad, h('h2', {}, 'Scores'), scores));
  const ctx = canvas.getContext('2d');

  function steer() {
    let dx = 0;
    let dy = 0;
    for (const key of held) { dx += KEYS[key][0]; dy += KEYS[key][1]; }
    send('input', { dx, dy });
  }
  function press(key) { if (!held.has(key)) { held.add(key); steer(); } }
  function release(key) { if (held.delete(key)) steer(); }
  canvas.addEventListener('keydown', (e) => { const k = e.key.length === 1 ? e.key.toLowerCase() : e.key; if (k in KEYS) { e.preventDefault(); press(k); } });
  canvas.addEventListener('keyup', (e) => { const k = e.key.length === 1 ? e.key.toLowerCase() : e.key; if (k in KEYS) release(k); });
  canvas.addEventListener('blur', () => { if (held.size) { held.clear(); steer(); } });

  function draw() {
    ctx.fillStyle = '#f8fafc';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (field.coin) {
      ctx.fillStyle = '#b45309';
      ctx.beginPath();
      ctx.arc(field.coin.x, field.coin.y, 8, 0, Math.PI * 2);
      ctx.fill();
    }
    for (const p of players) {
      ctx.fillStyle = safeColor(p.color);
      ctx.beginPath();
      ctx.arc(p.x, p.y, field.radius, 0, Math.PI * 2);
      ctx.fill();
      if (p.id === me.playerId) { ctx.lineWidth = 3; ctx.strokeStyle = '#111827'; ctx.stroke(); }
    }
    scores.replaceChildren(...[...players].sort((a, b) => b.score - a.score)
      .map((p) => h('li', {}, swatch(p.color),
        p.id === me.playerId ? 'You' : playerName(p.id, p.name), `: ${p.score}`)));
  }

  return {
    onFrame(type, data) {
      if (type === 'arena') {
        field = data;
        canvas.width = data.width;
        canvas.height = data.height;
      } else if (type === 'positions') {
        players = data.players;
        const mine = players.find((p) => p.id === me.playerId);
        if (mine) Object.assign(canvas.dataset, { x: mine.x, y: mine.y }); // where you are, for tests and tools
      } else if (type === 'coin') {
        field.coin = data.coin;
      } else return;
      draw();
    },
    onState(state) {
      players = Object.entries(state?.players ?? {}).map(([id, p]) => ({ id, ...p }));
      field.coin = state?.coin ?? null;
      const mine = players.find((p) => p.id === me.playerId);
      if (mine) Object.assign(canvas.dataset, { x: mine.x, y: mine.y });
      draw();
    },
    onDrop() { held.clear(); }, // keys held meanwhile would steer forever once back
    onClose() { held.clear(); },
  };
}
