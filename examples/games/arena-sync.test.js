// Unit tests of arena-sync.js: node --test examples/games/
const test = require('node:test');
const assert = require('node:assert/strict');

const { createRoom } = require('../../gameserver/runtime/testing.js');
const game = require('./arena-sync.js');

test('a newcomer gets the full state, then patches rebuild what the room holds', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  assert.deepEqual(ada.frames.slice(0, 2).map((f) => f.type), ['welcome', '$state']);
  assert.equal(ada.frames[0].data.stateSync, true);
  const bob = await room.join('bob');
  await ada.send('input', { dx: 1, dy: 0 });
  await room.ticks(10);
  assert.ok(ada.all('$patch').length > 0);
  assert.deepEqual(ada.state, room.state);
  assert.deepEqual(bob.state, room.state);
  assert.ok(room.state.players.ada.x > 0);
});

test('a dropped player keeps its dot and catches up with a fresh $state', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  await room.drop(bob);
  assert.equal(room.room.players.length, 2);
  await ada.send('input', { dx: 0, dy: 1 });
  await room.ticks(5);
  bob.take();
  await room.reconnect(bob);
  assert.deepEqual(bob.frames.slice(0, 2).map((f) => f.type), ['welcome', '$state']);
  assert.equal(bob.frames[0].data.reconnected, true);
  await room.ticks(3);
  assert.deepEqual(bob.state, room.state);
  await room.leave(bob);
  assert.deepEqual(Object.keys(room.state.players), ['ada']);
});
