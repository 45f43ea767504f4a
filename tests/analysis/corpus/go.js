// Go on a 9x9 board: captures by flood fill with an explicit stack (no recursion).
const SIZE = 9;

function neighbours(i) {
  const x = i % SIZE;
  const y = Math.floor(i / SIZE);
  return [
    x > 0 ? i - 1 : -1,
    x < SIZE - 1 ? i + 1 : -1,
    y > 0 ? i - SIZE : -1,
    y < SIZE - 1 ? i + SIZE : -1,
  ].filter((n) => n >= 0);
}

function group(board, start) {
  const colour = board[start];
  const stones = new Set([start]);
  const liberties = new Set();
  const stack = [start];
  while (stack.length) {
    const i = stack.pop();
    for (const n of neighbours(i)) {
      if (board[n] === null) liberties.add(n);
      else if (board[n] === colour && !stones.has(n)) {
        stones.add(n);
        stack.push(n);
      }
    }
  }
  return { stones, liberties };
}

function play(board, index, colour) {
  const next = [...board];
  next[index] = colour;
  let captured = 0;
  search: for (const n of neighbours(index)) {
    if (next[n] === null || next[n] === colour) continue search;
    const g = group(next, n);
    if (g.liberties.size > 0) continue;
    for (const s of g.stones) next[s] = null;
    captured += g.stones.size;
  }
  if (group(next, index).liberties.size === 0) return null; // suicide
  return { board: next, captured };
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = { board: Array(SIZE * SIZE).fill(null), colours: {}, toMove: 'black', prisoners: { black: 0, white: 0 }, ko: null };
  },

  onJoin(room, player) {
    const used = Object.values(room.state.colours);
    room.state.colours[player.id] = used.includes('black') ? 'white' : 'black';
  },

  onMessage(room, player, type, data) {
    const colour = room.state.colours[player.id];
    if (type === 'pass') {
      room.state.toMove = colour === 'black' ? 'white' : 'black';
      return;
    }
    if (type !== 'play' || colour !== room.state.toMove) throw new Error('not your move');
    const index = (data?.y ?? -1) * SIZE + (data?.x ?? -1);
    if (!(index >= 0 && index < SIZE * SIZE) || room.state.board[index] !== null) throw new Error('illegal point');
    const result = play(room.state.board, index, colour);
    if (!result) throw new Error('suicide is not allowed');
    const key = result.board.join();
    if (key === room.state.ko) throw new Error('ko');
    room.state.ko = room.state.board.join();
    room.state.board = result.board;
    room.state.prisoners[colour] += result.captured;
    room.state.toMove = colour === 'black' ? 'white' : 'black';
    room.broadcast('board', room.state);
  },
};
