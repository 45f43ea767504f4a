// Unit tests of tictactoe.js: node --test examples/games/
const test = require('node:test');
const assert = require('node:assert/strict');

const { createRoom } = require('../../gameserver/runtime/testing.js');
const game = require('./tictactoe.js');

async function match() {
  const room = await createRoom(game);
  const x = await room.join('x');
  const o = await room.join('o');
  return { room, x, o };
}

async function play(players, moves) {
  for (const [mark, cell] of moves) await players[mark].send('move', { cell });
}

test('two players get X and O, the room locks and the round starts', async () => {
  const { room, x, o } = await match();
  assert.deepEqual(x.frames.map((f) => f.type).slice(0, 3), ['welcome', 'seat', 'state']);
  assert.deepEqual(x.last('seat'), { mark: 'X' });
  assert.deepEqual(o.last('seat'), { mark: 'O' });
  assert.equal(o.last('state').status, 'playing');
  assert.equal(room.locked, true);
  await assert.rejects(room.join('z'), { code: 'room-full' });
});

test('X takes the top row and wins', async () => {
  const { room, x, o } = await match();
  await play({ X: x, O: o }, [['X', 0], ['O', 3], ['X', 1], ['O', 4], ['X', 2]]);
  const state = o.last('state');
  assert.equal(state.status, 'won');
  assert.equal(state.winner, 'X');
  assert.equal(state.winnerId, 'x');
  assert.deepEqual(state.line, [0, 1, 2]);
  assert.deepEqual(state.score, { X: 1, O: 0, draws: 0 });
  assert.deepEqual(room.metadata, { status: 'won', round: 1 });
});

test('moves out of turn, on taken cells or off the board are refused', async () => {
  const { room, x, o } = await match();
  await o.send('move', { cell: 0 });
  assert.equal(o.last('error').message, 'not your turn');
  await x.send('move', { cell: 9 });
  assert.equal(x.last('error').message, 'cell must be an integer 0..8');
  await x.send('move', { cell: 4 });
  await o.send('move', { cell: 4 });
  assert.equal(o.last('error').message, 'cell 4 is taken');
  assert.equal(room.state.moves, 1);
});

test('a full board without a line is a draw; restart lets the other mark start', async () => {
  const { x, o } = await match();
  await play({ X: x, O: o }, [['X', 0], ['O', 1], ['X', 2], ['O', 4], ['X', 3], ['O', 5], ['X', 7], ['O', 6], ['X', 8]]);
  assert.equal(x.last('state').status, 'draw');
  await x.send('restart');
  const state = x.last('state');
  assert.equal(state.status, 'playing');
  assert.equal(state.turn, 'O');
  assert.equal(state.round, 2);
});

test('leaving mid-round forfeits to the other player and unlocks the room', async () => {
  const { room, x, o } = await match();
  await x.send('move', { cell: 4 });
  await room.leave(x);
  const state = o.last('state');
  assert.equal(state.status, 'won');
  assert.equal(state.reason, 'forfeit');
  assert.equal(state.winnerId, 'o');
  assert.equal(room.locked, false);
  const z = await room.join('z');
  assert.deepEqual(z.last('seat'), { mark: 'X' });
  assert.deepEqual(room.errors, []);
});
