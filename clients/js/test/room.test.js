// The SDK against a real matchmaker and a real runtime (tests/clients/games/counter.js).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  Client, NoRoomAvailableError, RoomClosedError, RoomNotFoundError, ServerError, ValidationError,
} from '../dist/index.js';
import { TrackedWebSocket, next, platform } from './helpers.js';

let client;
const rooms = [];

before(async () => {
  const { matchmaker } = await platform();
  client = new Client(matchmaker, { WebSocket: TrackedWebSocket });
});

after(async () => {
  await Promise.all(rooms.map((room) => room.leave()));
});

async function joined(promise) {
  const room = await promise;
  rooms.push(room);
  return room;
}

test('create with options, joinById, typed messages, frames right behind welcome are kept', async () => {
  const ada = await joined(client.create('counter', { options: { start: 5, mode: 'duel' }, name: 'Ada' }));
  // Registered after the join resolved: `hello` came in the same burst as `welcome`.
  const [hello] = await next((cb) => ada.onMessage('hello', cb));
  assert.match(ada.id, /^rm-[0-9a-f]{16}$/);
  assert.equal(ada.name, 'Ada');
  assert.deepEqual(hello, { id: ada.playerId, count: 5, options: { start: 5, mode: 'duel' } });

  const bob = await joined(client.joinById(ada.id, { name: 'Bob' }));
  assert.equal(bob.id, ada.id);
  assert.notEqual(bob.playerId, ada.playerId);
  const seen = next((cb) => ada.onMessage('count', cb));
  bob.send('inc', { by: 2 });
  const [count] = await seen;
  assert.deepEqual(count, { count: 7, by: bob.playerId });

  const all = [];
  bob.onMessage('*', (data, type) => all.push(type));
  const echo = next((cb) => bob.onMessage('echo', cb));
  bob.send('echo', { n: 1 });
  assert.deepEqual((await echo)[0], { n: 1 });
  assert.ok(all.includes('echo'));

  const error = next((cb) => bob.onError(cb));
  bob.send('boom');
  const [err] = await error;
  assert.ok(err instanceof ServerError);
  assert.equal(err.code, 'hook_failed');
  assert.equal(err.hook, 'onMessage');

  const left = next((cb) => bob.onLeave(cb));
  await bob.leave();
  assert.deepEqual(await left, [1000, null]);
  assert.throws(() => bob.send('inc'), /not connected/);
});

test('joinOrCreate fills the room with a free seat; the room list shows it', async () => {
  const first = await joined(client.joinOrCreate('counter', { filters: { 'metadata.mode': 'solo' }, options: { mode: 'solo' } }));
  // The matchmaker learns of the new room from the relay's next heartbeat.
  let listed = [];
  for (let i = 0; i < 100 && !listed.some((r) => r.room_id === first.id && r.players === 1); i += 1) {
    listed = await client.getAvailableRooms('counter', { 'metadata.mode': 'solo' });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(listed.some((r) => r.room_id === first.id && r.players === 1), JSON.stringify(listed));
  const second = await joined(client.joinOrCreate('counter', { filters: { 'metadata.mode': 'solo' } }));
  assert.equal(second.id, first.id);
});

test('matchmaker problems are typed errors', async () => {
  await assert.rejects(client.joinById('rm-00000000000000ff'), RoomNotFoundError);
  await assert.rejects(client.joinOrCreate('no-such-game'), (err) => err instanceof NoRoomAvailableError && err.status === 409);
  await assert.rejects(client.joinOrCreate('counter', { filters: { mode: 'x' } }), ValidationError);
});

test('watchRooms keeps the list current from the event stream', async () => {
  const updates = [];
  const watch = client.watchRooms('counter', (list, event) => updates.push({ list, event }));
  try {
    for (let i = 0; i < 100 && updates.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(updates[0].event, null); // the first call: the list as read
    const room = await joined(client.create('counter', { options: { mode: 'watched' } }));
    for (let i = 0; i < 200 && !watch.rooms.get(room.id)?.players; i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(watch.rooms.get(room.id)?.players, 1);
    assert.ok(updates.some((u) => u.event?.room_id === room.id && ['added', 'updated'].includes(u.event.type)));
  } finally {
    watch.close();
  }
});

test('state sync: $state then patches, listeners by path', async () => {
  const room = await joined(client.create('counter', { options: { start: 1 } }));
  assert.equal(room.welcome.stateSync, true);
  if (room.state === undefined) await next((cb) => room.onStateChange(cb));
  assert.equal(room.state.count, 1);
  assert.deepEqual(Object.keys(room.state.players), [room.playerId]);
  const before = room.state;
  const changed = next((cb) => room.listen('/count', cb));
  const names = [];
  room.listen('players', (value) => names.push(value));
  room.send('inc', { by: 41 });
  assert.deepEqual(await changed, [42, 1]);
  assert.equal(before.count, 1); // copy-on-write: the old state is untouched
  assert.deepEqual(names, []); // nothing under /players changed
});

test('a cut connection: back in the room with the same player id and state', async () => {
  const room = await joined(client.create('counter', { options: { start: 0 } }));
  const id = room.playerId;
  await next((cb) => room.onMessage('hello', cb));
  assert.equal(room.welcome.reconnectSeconds, 10);
  const dropped = next((cb) => room.onDrop(cb));
  const back = next((cb) => room.onReconnect(cb));
  const token = room.reconnection.token;
  TrackedWebSocket.cutLast();
  assert.equal((await dropped)[0], 1006);
  room.send('inc', { by: 3 }); // waits for the reconnection, then goes out
  const t0 = performance.now();
  await back;
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(room.playerId, id);
  assert.equal(room.welcome.reconnected, true);
  assert.notEqual(room.reconnection.token, token);
  const [count] = await next((cb) => room.onMessage('count', cb));
  assert.equal(count.count, 3);
  for (let i = 0; i < 100 && room.state.count !== 3; i += 1) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(room.state.players[id], { name: id, joins: 2 }); // onReconnect ran, the state caught up
  const left = next((cb) => room.onLeave(cb));
  await room.leave();
  assert.deepEqual(await left, [1000, null]);
});

test('with reconnection off, a cut connection ends the room', async () => {
  const { matchmaker } = await platform();
  const plain = new Client(matchmaker, { WebSocket: TrackedWebSocket, reconnect: false });
  const room = await joined(plain.create('counter'));
  const left = next((cb) => room.onLeave(cb));
  TrackedWebSocket.cutLast();
  const [code, err] = await left;
  assert.equal(code, 1006);
  assert.ok(err instanceof RoomClosedError);
});
