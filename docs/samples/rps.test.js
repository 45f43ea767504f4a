// Unit tests of rps.js with Node's own test runner: node --test rps.test.js
const test = require('node:test');
const assert = require('node:assert/strict');

const { createRoom } = require('../../gameserver/runtime/testing.js');
const game = require('./rps.js');

async function twoPlayers() {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  return { room, ada, bob };
}

test('a lone player waits; the second one starts round 1 and locks the room', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  assert.deepEqual(ada.frames.map((f) => f.type), ['welcome', 'waiting']);
  const bob = await room.join('bob');
  assert.deepEqual(bob.last('round'), { round: 1, seconds: 10 });
  assert.deepEqual(ada.last('round'), { round: 1, seconds: 10 });
  assert.equal(room.locked, true);
  assert.deepEqual(room.metadata, { status: 'playing', round: 1 });
});

test('rock beats scissors; the other player only learns that a hand was thrown', async () => {
  const { ada, bob } = await twoPlayers();
  await ada.send('throw', { hand: 'rock' });
  assert.deepEqual(bob.last('thrown'), { by: 'ada' });
  assert.equal(ada.last('thrown'), undefined);
  await bob.send('throw', { hand: 'scissors' });
  const result = ada.last('result');
  assert.deepEqual(result, {
    round: 1, hands: { ada: 'rock', bob: 'scissors' }, winner: 'ada', score: { ada: 1, bob: 0 },
  });
  assert.deepEqual(bob.last('result'), result);
  assert.deepEqual(bob.last('round'), { round: 2, seconds: 10 });
});

test('a refused move comes back as an error frame and changes nothing', async () => {
  const { room, ada } = await twoPlayers();
  await ada.send('throw', { hand: 'lizard' });
  assert.deepEqual(ada.last('error'), {
    code: 'hook_failed', message: 'hand must be "rock", "paper" or "scissors"', hook: 'onMessage',
  });
  await ada.send('throw', { hand: 'paper' });
  await ada.send('throw', { hand: 'rock' });
  assert.equal(ada.last('error').message, 'you already threw this round');
  assert.deepEqual(room.state.hands, { ada: 'paper' });
});

test('the clock: whoever has not thrown after 10 seconds loses the round', async () => {
  const { room, ada, bob } = await twoPlayers();
  await bob.send('throw', { hand: 'paper' });
  await room.ticks(19); // 9.5 s at two ticks a second
  assert.equal(ada.last('result'), undefined);
  await room.tick();
  assert.equal(ada.last('result').winner, 'bob');
});

test('a third player is refused, a taken name too, and a leaver frees the seat', async () => {
  const { room, ada, bob } = await twoPlayers();
  await assert.rejects(room.join('cy'), { code: 'room-full' });
  await room.leave(bob);
  assert.equal(room.locked, false);
  assert.deepEqual(ada.last('waiting'), { for: 'opponent' });
  await assert.rejects(room.join('eve', { name: 'ada' }), {
    code: 'join_refused', message: 'the name "ada" is taken in this room',
  });
  await room.join('cy');
  assert.deepEqual(ada.last('round'), { round: 2, seconds: 10 });
});

test('dispose logs the final score', async () => {
  const { room, ada, bob } = await twoPlayers();
  await ada.send('throw', { hand: 'paper' });
  await bob.send('throw', { hand: 'rock' });
  await room.dispose();
  assert.deepEqual(room.logs, ["closing after 2 rounds { ada: 1, bob: 0 }"]);
  assert.equal(bob.closeCode, 1001);
  assert.deepEqual(room.errors, []);
});
