// Connect Four with named exports only (no default export): the runtime uses the namespace.
const COLS = 7;
const ROWS = 6;

export const maxPlayers = 2;

const lines = function* () {
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) {
      for (const [dr, dc] of [[0, 1], [1, 0], [1, 1], [1, -1]]) {
        const cells = [0, 1, 2, 3].map((i) => [r + dr * i, c + dc * i]);
        if (cells.every(([rr, cc]) => rr >= 0 && rr < ROWS && cc >= 0 && cc < COLS)) yield cells;
      }
    }
  }
};

function winner(board) {
  for (const cells of lines()) {
    const [first, ...rest] = cells.map(([r, c]) => board[r][c]);
    if (first && rest.every((v) => v === first)) return first;
  }
  return null;
}

export function onCreate(room) {
  room.state = { board: Array.from({ length: ROWS }, () => Array(COLS).fill(null)), discs: {}, next: 'red', winner: null };
}

export function onJoin(room, player) {
  const taken = Object.values(room.state.discs);
  if (taken.length === 2) throw new Error('two players already');
  room.state.discs[player.id] = taken.includes('red') ? 'yellow' : 'red';
}

export function onMessage(room, player, type, data) {
  const disc = room.state.discs[player.id];
  if (type !== 'drop' || disc !== room.state.next || room.state.winner) throw new Error('not now');
  const col = Number(data?.col);
  const row = room.state.board.findLastIndex((r) => r[col] === null);
  if (row < 0) throw new Error('that column is full');
  room.state.board[row][col] = disc;
  room.state.winner = winner(room.state.board);
  room.state.next = disc === 'red' ? 'yellow' : 'red';
  room.broadcast('board', room.state);
}

export function onLeave(room, player) {
  delete room.state.discs[player.id];
}
