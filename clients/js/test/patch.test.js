import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PatchError, applyPatch, formatPointer, parsePointer } from '../dist/index.js';
import { SseParser } from '../dist/sse.js';

test('RFC 6902 operations, copy-on-write', () => {
  const doc = { a: { b: [1, 2, 3] }, c: { d: 1 }, 'x/y': { '~z': 0 } };
  const out = applyPatch(doc, [
    { op: 'add', path: '/a/b/1', value: 9 },
    { op: 'add', path: '/a/b/-', value: 4 },
    { op: 'remove', path: '/a/b/0' },
    { op: 'replace', path: '/x~1y/~0z', value: 1 },
    { op: 'copy', from: '/c', path: '/e' },
    { op: 'move', from: '/c/d', path: '/f' },
    { op: 'test', path: '/f', value: 1 },
  ]);
  assert.deepEqual(out, { a: { b: [9, 2, 3, 4] }, c: {}, 'x/y': { '~z': 1 }, e: { d: 1 }, f: 1 });
  assert.deepEqual(doc, { a: { b: [1, 2, 3] }, c: { d: 1 }, 'x/y': { '~z': 0 } }); // untouched
  const same = applyPatch(doc, [{ op: 'replace', path: '/c/d', value: 2 }]);
  assert.equal(same.a, doc.a); // unchanged branches are shared
  assert.notEqual(same.c, doc.c);
  assert.deepEqual(applyPatch(doc, [{ op: 'replace', path: '', value: 7 }]), 7);
  assert.deepEqual(parsePointer(formatPointer(['a/b', '~c', ''])), ['a/b', '~c', '']);
});

test('a bad patch throws PatchError and leaves the document alone', () => {
  const doc = { a: [1] };
  for (const ops of [
    [{ op: 'remove', path: '/nope' }],
    [{ op: 'replace', path: '/a/5', value: 1 }],
    [{ op: 'add', path: '/x/y', value: 1 }],
    [{ op: 'test', path: '/a/0', value: 2 }],
    [{ op: 'add', path: 'a', value: 1 }],
    [{ op: 'add', path: '/b', value: 1 }, { op: 'frob', path: '/b' }],
  ]) {
    assert.throws(() => applyPatch(doc, ops), PatchError, JSON.stringify(ops));
  }
  assert.deepEqual(doc, { a: [1] });
});

test('the SSE parser splits events across chunks and reads retry', () => {
  const events = [];
  let retry = 0;
  const parser = new SseParser((ev) => events.push(ev), (ms) => { retry = ms; });
  parser.push('retry: 2000\n: connected\n\nevent: added\ndata: {"room_id"');
  parser.push(':"r1"}\r\n\r\nevent: removed\ndata: {}\n');
  assert.equal(events.length, 1);
  parser.push('\n');
  assert.equal(retry, 2000);
  assert.deepEqual(events.map((e) => [e.event, e.data]), [['added', '{"room_id":"r1"}'], ['removed', '{}']]);
});
