// Co-op minesweeper: Set-based state, optional calls and an iterative reveal.
const W = 16;
const H = 16;
const MINES = 40;

function makeField(safeIndex) {
  const mines = new Set();
  while (mines.size < MINES) {
    const i = Math.floor(Math.random() * W * H);
    if (i !== safeIndex) mines.add(i);
  }
  return mines;
}

function around(i) {
  const x = i % W;
  const y = (i - x) / W;
  const out = [];
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      const nx = x + dx;
      const ny = y + dy;
      if ((dx || dy) && nx >= 0 && ny >= 0 && nx < W && ny < H) out.push(ny * W + nx);
    }
  }
  return out;
}

function reveal(state, start) {
  const queue = [start];
  while (queue.length) {
    const i = queue.shift();
    if (state.open.has(i)) continue;
    state.open.add(i);
    const n = around(i).filter((j) => state.mines.has(j)).length;
    state.numbers[i] = n;
    if (n === 0) queue.push(...around(i).filter((j) => !state.open.has(j)));
  }
}

module.exports = {
  maxPlayers: 4,

  onCreate(room) {
    room.state = { mines: null, open: new Set(), flags: new Set(), numbers: {}, lost: false, hooks: {} };
  },

  onJoin(room, player) {
    room.state.hooks.onReveal?.(player.id);
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    const i = (data?.y ?? 0) * W + (data?.x ?? 0);
    if (state.lost) throw new Error('boom: the game is over');
    if (type === 'flag') {
      state.flags.has(i) ? state.flags.delete(i) : state.flags.add(i);
    } else if (type === 'open') {
      state.mines ??= makeField(i);
      if (state.mines.has(i)) state.lost = true;
      else reveal(state, i);
    }
    room.broadcast('field', { open: Object.fromEntries([...state.open].map((j) => [j, state.numbers[j]])), flags: [...state.flags], lost: state.lost });
  },
};
