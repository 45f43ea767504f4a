'use strict';
// What the bench's player processes (bench/rooms_client.js, bench/statesync_client.js) share: their
// arguments and the command loop bench/driver.py talks to. Required by path next to them, so it
// needs nothing from NODE_PATH.

const readline = require('node:readline');

/** The arguments after the script: the first is the target, `gsf` or `colyseus` (else usage and exit 2). */
function targetArgs(usage) {
  const args = process.argv.slice(2);
  if (args[0] !== 'gsf' && args[0] !== 'colyseus') {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  return args;
}

/**
 * Answer the commands on stdin, one JSON object a line ({id, op, ...}), one at a time and in order:
 * each with one line {id, ok, result} or {id, ok: false, error} on stdout. Says {id: 0, ready} first
 * and exits once stdin closes and the last command is answered.
 */
function serve(ops, ready) {
  const rl = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    let msg;
    try { msg = JSON.parse(line); } catch { return; }
    queue = queue.then(() => handle(msg));
  });

  async function handle(msg) {
    let reply;
    try {
      const op = ops[msg.op];
      if (!op) throw new Error(`unknown op ${msg.op}`);
      reply = { id: msg.id, ok: true, result: await op(msg) };
    } catch (err) {
      reply = { id: msg.id, ok: false, error: String(err && err.stack ? err.stack : err) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  rl.on('close', () => { queue.then(() => process.exit(0)); });
  process.stdout.write(JSON.stringify({ id: 0, ok: true, result: { ready } }) + '\n');
}

module.exports = { serve, targetArgs };
