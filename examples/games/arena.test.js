// Unit tests of arena.js: node --test examples/games/
const test = require('node:test');
const assert = require('node:assert/strict');

const { createRoom } = require('../../gameserver/runtime/testing.js');
const game = require('./arena.js');

test('a newcomer gets the arena and a colour of its own', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  const a = ada.last('arena');
  const b = bob.last('arena');
  assert.equal(a.width, 800);
  assert.equal(a.height, 600);
  assert.notEqual(a.color, b.color);
  assert.deepEqual(room.metadata, { mode: 'arena', players: 2 });
  assert.equal(room.tickRate, 20);
});

test('input steers by the measured tick time, normalized and clamped to the field', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const me = room.state.players.ada;
  me.x = 100;
  me.y = 100;
  room.state.coin = { x: 700, y: 500 }; // out of the way
  await ada.send('input', { dx: 1, dy: 0 });
  await room.tick(50); // 240 units/s for 50 ms: 12 units
  assert.equal(me.x, 112);
  await ada.send('input', { dx: 5, dy: 5 }); // clamped to 1, then normalized to length 1
  await room.tick(1000);
  assert.ok(Math.abs(me.x - (112 + 240 * Math.SQRT1_2 * 0.25)) < 1e-9, 'a long tick counts as 250 ms at most');
  await ada.send('input', { dx: -1, dy: -1 });
  await room.ticks(20, 250);
  assert.deepEqual([me.x, me.y], [12, 12]);
});

test('every tick broadcasts positions; touching the coin scores', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  const me = room.state.players.ada;
  room.state.coin = { x: me.x + 5, y: me.y };
  await room.tick(50);
  const [coin] = bob.all('coin'); // the new coin could land on bob: look at the first one only
  assert.equal(coin.by, 'ada');
  assert.equal(coin.score, 1);
  const positions = ada.last('positions');
  assert.equal(positions.tick, 1);
  assert.deepEqual(positions.players.map((p) => p.id), ['ada', 'bob']);
  assert.equal(positions.players[0].score, 1);
});

test('unknown frames are refused; a leaver disappears from the field', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  await ada.send('jump');
  assert.match(ada.last('error').message, /use "input"/);
  await room.leave(bob);
  await room.tick();
  assert.deepEqual(ada.last('positions').players.map((p) => p.id), ['ada']);
  assert.deepEqual(room.errors, []);
});
