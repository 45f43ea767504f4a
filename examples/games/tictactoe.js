// Tic-tac-toe for two players. Frames from a client:
//   {"type": "move", "data": {"cell": 4}}     cells 0..8, row by row; only on your turn
//   {"type": "restart"}                       after a win or a draw: play again (the other player starts)
// The room answers every change with {"type": "state", "data": <room.state>}; a refused move
// comes back as an "error" frame (the runtime turns the thrown Error into one).

const LINES = [
  [0, 1, 2], [3, 4, 5], [6, 7, 8], // rows
  [0, 3, 6], [1, 4, 7], [2, 5, 8], // columns
  [0, 4, 8], [2, 4, 6], // diagonals
];

function winningLine(board) {
  for (const line of LINES) {
    const [a, b, c] = line;
    if (board[a] && board[a] === board[b] && board[a] === board[c]) return line;
  }
  return null;
}

function playerWith(state, mark) {
  return Object.keys(state.marks).find((id) => state.marks[id] === mark) ?? null;
}

function newRound(state) {
  state.board = Array(9).fill(null);
  state.turn = state.starts;
  state.status = 'playing';
  state.winner = null;
  state.winnerId = null;
  state.line = null;
  state.reason = null;
  state.moves = 0;
  state.round += 1;
}

function publish(room) {
  room.broadcast('state', room.state);
  room.setMetadata({ status: room.state.status, round: room.state.round });
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = {
      board: Array(9).fill(null),
      marks: {}, // player id -> "X" | "O"
      turn: 'X',
      starts: 'X',
      status: 'waiting', // waiting | playing | won | draw
      winner: null, // "X" | "O"
      winnerId: null,
      line: null, // the three winning cells
      reason: null, // "line" | "forfeit"
      moves: 0,
      round: 0,
      score: { X: 0, O: 0, draws: 0 },
    };
    room.setMetadata({ status: 'waiting', round: 0 });
  },

  onJoin(room, player) {
    const state = room.state;
    const taken = new Set(Object.values(state.marks));
    const mark = ['X', 'O'].find((m) => !taken.has(m));
    if (!mark) throw new Error('two players are already playing');
    state.marks[player.id] = mark;
    room.send(player.id, 'seat', { mark });
    if (Object.keys(state.marks).length === 2) {
      room.lock();
      newRound(state);
    }
    publish(room);
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    const mark = state.marks[player.id];
    if (type === 'move') {
      if (state.status === 'waiting') throw new Error('waiting for a second player');
      if (state.status !== 'playing') throw new Error('the round is over: send "restart"');
      if (mark !== state.turn) throw new Error('not your turn');
      const cell = data?.cell;
      if (!Number.isInteger(cell) || cell < 0 || cell > 8) throw new Error('cell must be an integer 0..8');
      if (state.board[cell] !== null) throw new Error(`cell ${cell} is taken`);
      state.board[cell] = mark;
      state.moves += 1;
      const line = winningLine(state.board);
      if (line) {
        state.status = 'won';
        state.winner = mark;
        state.winnerId = player.id;
        state.line = line;
        state.reason = 'line';
        state.score[mark] += 1;
      } else if (state.moves === 9) {
        state.status = 'draw';
        state.score.draws += 1;
      } else {
        state.turn = mark === 'X' ? 'O' : 'X';
      }
      publish(room);
    } else if (type === 'restart') {
      if (state.status === 'playing') throw new Error('the round is still being played');
      if (Object.keys(state.marks).length < 2) throw new Error('waiting for a second player');
      state.starts = state.starts === 'X' ? 'O' : 'X';
      newRound(state);
      publish(room);
    } else {
      throw new Error(`unknown message type "${type}" (use "move" or "restart")`);
    }
  },

  onLeave(room, player) {
    const state = room.state;
    const mark = state.marks[player.id];
    delete state.marks[player.id];
    if (state.status === 'playing' && mark) {
      const other = mark === 'X' ? 'O' : 'X';
      state.status = 'won';
      state.winner = other;
      state.winnerId = playerWith(state, other);
      state.reason = 'forfeit';
      state.score[other] += 1;
    } else if (Object.keys(state.marks).length === 0) {
      state.status = 'waiting';
    }
    room.unlock();
    publish(room);
  },
};
