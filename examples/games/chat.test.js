// Unit tests of chat.js: node --test examples/games/
const test = require('node:test');
const assert = require('node:assert/strict');

const { createRoom } = require('../../gameserver/runtime/testing.js');
const game = require('./chat.js');

test('a newcomer gets the history and the roster; the others see them join', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada', { name: 'Ada' });
  await ada.send('chat', { text: 'first!' });
  const bob = await room.join('bob', { name: 'Bob' });
  const history = bob.last('history');
  assert.deepEqual(history.messages.map((m) => [m.from, m.text]), [['ada', 'first!']]);
  assert.deepEqual(history.players, [{ id: 'ada', name: 'Ada' }, { id: 'bob', name: 'Bob' }]);
  assert.deepEqual(ada.last('joined'), { id: 'bob', name: 'Bob' });
  assert.equal(bob.last('joined'), undefined, 'a newcomer is not told about itself');
  assert.deepEqual(room.metadata, { mode: 'chat', players: 2 });
});

test('messages reach everyone, cleaned of control characters and cut to 500 characters', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  await ada.send('chat', { text: '  hi\u0007 there ' });
  assert.equal(bob.last('chat').text, 'hi  there');
  assert.equal(ada.last('chat').text, 'hi  there');
  await bob.send('chat', { text: 'x'.repeat(600) });
  assert.equal(ada.last('chat').text.length, 500);
  assert.equal(room.state.sent, 2);
});

test('history keeps the last 50 messages', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  for (let i = 0; i < 55; i += 1) await ada.send('chat', { text: `m${i}` });
  assert.equal(room.state.history.length, 50);
  assert.equal(room.state.history[0].text, 'm5');
});

test('nick renames; bad frames are answered with error frames', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob');
  await ada.send('nick', { name: 'Ada' });
  assert.deepEqual(bob.last('nick'), { id: 'ada', before: 'ada', name: 'Ada' });
  await ada.send('chat', { text: '   ' });
  assert.equal(ada.last('error').code, 'hook_failed');
  await ada.send('dance');
  assert.match(ada.last('error').message, /unknown message type "dance"/);
  await ada.sendRaw('not json');
  assert.equal(ada.last('error').code, 'bad_frame');
  assert.equal(bob.all('error').length, 0, 'errors go to the sender only');
});

test('leaving is announced, and dispose logs the count', async () => {
  const room = await createRoom(game);
  const ada = await room.join('ada');
  const bob = await room.join('bob', { name: 'Bob' });
  await bob.send('chat', { text: 'bye' });
  await room.leave(bob);
  assert.deepEqual(ada.last('left'), { id: 'bob', name: 'Bob' });
  assert.deepEqual(room.metadata.players, 1);
  await room.dispose();
  assert.deepEqual(room.logs, ['chat closed after 1 messages']);
  assert.deepEqual(room.errors, []);
});
