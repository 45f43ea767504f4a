// The SDK's side of protocol v1 against a scripted server (the `ws` package): reconnection with
// the token, outgoing frames kept across the drop, $state/$patch with path listeners, and every
// refusal as its typed error. The same flows against the real runtime are in room.test.js.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { WebSocketServer } from 'ws';

import {
  JoinRefusedError, ProtocolVersionError, ReconnectExpiredError, ReplacedError, Room, SeatRefusedError,
} from '../dist/index.js';
import { TrackedWebSocket, next } from './helpers.js';

const refuse = new Map(); // token or reconnect token -> HTTP status of the refused upgrade
const script = new Map(); // token -> (ws, url) => void
const wss = new WebSocketServer({
  host: '127.0.0.1', port: 0,
  verifyClient: ({ req }, done) => {
    const url = new URL(req.url, 'http://x');
    const status = refuse.get(url.searchParams.get('token') ?? url.searchParams.get('reconnect'));
    if (status) done(false, status);
    else done(true);
  },
});
wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  script.get(url.searchParams.get('token') ?? `reconnect:${url.searchParams.get('reconnect')}`)(ws, url);
});
await new Promise((resolve) => wss.once('listening', resolve));
const base = `ws://127.0.0.1:${wss.address().port}/ws`;
const opts = {
  WebSocket: TrackedWebSocket, joinTimeoutMs: 2000,
  reconnect: { enabled: true, minDelayMs: 20, maxDelayMs: 100, factor: 2 },
};
const frame = (ws, type, data) => ws.send(JSON.stringify({ type, data }));

after(() => new Promise((resolve) => wss.close(resolve)));

test('drop, reconnect with the token, resync; then an expired window ends the room', async () => {
  const got = [];
  const welcome = { playerId: 'p1', roomId: 'r1', serverId: 's1', protocol: 1, reconnectSeconds: 5, stateSync: true };
  let server;
  script.set('t1', (ws, url) => {
    server = ws;
    assert.equal(url.searchParams.get('v'), '1');
    frame(ws, 'welcome', { ...welcome, reconnect: 'k1' });
    frame(ws, '$state', { count: 0, players: { p1: { x: 1 } } });
    frame(ws, '$patch', [{ op: 'replace', path: '/count', value: 1 }, { op: 'add', path: '/players/p2', value: { x: 9 } }]);
  });
  script.set('reconnect:k1', (ws, url) => {
    server = ws;
    assert.equal(url.searchParams.get('token'), null);
    assert.equal(url.searchParams.get('name'), 'Ada'); // the rest of the address is kept
    ws.on('message', (raw) => got.push(JSON.parse(String(raw))));
    frame(ws, 'welcome', { ...welcome, reconnect: 'k2', reconnected: true });
    frame(ws, '$state', { count: 1, players: { p1: { x: 2 }, p2: { x: 9 } } });
  });
  refuse.set('k2', 410);

  const room = await Room.join(`${base}?token=t1&name=Ada`, 'r1', 's1', opts);
  const counts = [];
  const xs = [];
  room.listen('/count', (value, previous) => counts.push([value, previous]));
  room.listen('players.p1.x', (value, previous) => xs.push([value, previous]));
  await next((cb) => room.onStateChange((state) => state.players.p2 && cb()));
  assert.deepEqual(counts, [[0, undefined], [1, 0]]);
  assert.deepEqual(room.state, { count: 1, players: { p1: { x: 1 }, p2: { x: 9 } } });
  assert.deepEqual(room.reconnection, { url: `${base}?name=Ada`, token: 'k1' });

  const dropped = next((cb) => room.onDrop(cb));
  const back = next((cb) => room.onReconnect(cb));
  server.terminate();
  assert.equal((await dropped)[0], 1006);
  room.send('move', { to: 3 }); // kept, sent once back
  await back;
  assert.equal(room.welcome.reconnected, true);
  assert.equal(room.reconnection.token, 'k2');
  await next((cb) => room.onStateChange(cb));
  assert.deepEqual(counts, [[0, undefined], [1, 0]]); // the resync changed no count: no call
  assert.deepEqual(xs, [[1, undefined], [2, 1]]);
  for (let i = 0; i < 50 && got.length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [{ type: 'move', data: { to: 3 } }]);

  const left = next((cb) => room.onLeave(cb));
  server.terminate(); // k2 is refused with 410: the seat is gone
  const [code, err] = await left;
  assert.equal(code, 1006);
  assert.ok(err instanceof ReconnectExpiredError);
  assert.equal(err.status, 410);
});

test('refusals and final closes are typed', async () => {
  refuse.set('old', 426);
  await assert.rejects(Room.join(`${base}?token=old`, 'r', 's', opts), ProtocolVersionError);
  refuse.set('spent', 401);
  await assert.rejects(Room.join(`${base}?token=spent`, 'r', 's', opts),
    (err) => err instanceof SeatRefusedError && err.status === 401 && err.slug === 'seat-token');
  script.set('no', (ws) => {
    frame(ws, 'error', { code: 'join_refused', message: 'game is full of ducks', hook: 'onJoin' });
    ws.close(4003, 'join refused');
  });
  await assert.rejects(Room.join(`${base}?token=no`, 'r', 's', opts),
    (err) => err instanceof JoinRefusedError && err.message === 'game is full of ducks');

  script.set('twice', (ws) => {
    frame(ws, 'welcome', { playerId: 'p', serverId: 's', reconnect: 'k', reconnectSeconds: 5 });
    setTimeout(() => ws.close(4000, 'replaced by a new connection'), 50);
  });
  const room = await Room.join(`${base}?token=twice`, 'r', 's', opts);
  const [code, err] = await next((cb) => room.onLeave(cb));
  assert.equal(code, 4000);
  assert.ok(err instanceof ReplacedError); // not a drop: no reconnection is tried
});
