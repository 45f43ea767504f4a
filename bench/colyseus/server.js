'use strict';
// The Colyseus 0.17 peer of bench/rooms.py: the same echo room as the platform's bench module
// (4 seats; `echo` answered to its sender; `spin` and `balloon` for the fault figures), one
// process, Colyseus's own matchmaker (LocalDriver, LocalPresence) and WebSocket transport.
//
//   PORT=0 node server.js     (0: a free port; the `listening host=... port=N` line says which)
//
// Its modules come from the scratch folder the bench installs into (NODE_PATH).

const http = require('node:http');
const { Server, Room } = require('@colyseus/core');
const { WebSocketTransport } = require('@colyseus/ws-transport');

const SEATS = 4;
const MIB = 1024 * 1024;

/** Busy-wait: the event loop (every room of this process) is held for `ms`. */
function spin(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += 1;
  return x;
}

class EchoRoom extends Room {
  onCreate() {
    this.maxClients = SEATS;
    this.hold = [];
    this.onMessage('echo', (client, data) => client.send('echo', data));
    this.onMessage('spin', (client, data) => spin(Number(data?.ms) || 0));
    this.onMessage('balloon', (client, data) => this.balloon(Number(data?.mb) || 0, Number(data?.ms) || 0));
  }

  /** Grow the heap by 8 MiB every 20 ms up to `mb`, hold it `ms`, let it go: a leak in one room. */
  balloon(mb, ms) {
    const step = () => {
      if (this.hold.length * 8 >= mb) {
        this.clock.setTimeout(() => { this.hold = []; }, ms);
        return;
      }
      this.hold.push(new Array(MIB).fill(this.hold.length)); // 1 Mi slots of 8 bytes
      this.clock.setTimeout(step, 20);
    };
    step();
  }
}

async function main() {
  const httpServer = http.createServer();
  const transport = new WebSocketTransport({ server: httpServer });
  const gameServer = new Server({ transport, greet: false, gracefullyShutdown: true });
  gameServer.define('echo', EchoRoom);
  const port = Number(process.env.PORT || 0);
  await gameServer.listen(port, '127.0.0.1');
  const bound = httpServer.address().port;
  process.stdout.write(`listening host=127.0.0.1 port=${bound} pid=${process.pid}\n`);
}

main().catch((err) => {
  process.stderr.write(`colyseus peer: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
