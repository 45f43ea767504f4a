// Hostile: opens listening sockets until the process runs out of file descriptors (EMFILE from the
// nofile ulimit), reports how far it got, then lets them go so the room keeps answering.
const net = require('net');

function listen() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err) => resolve({ server: null, error: err.code || err.message }));
    server.listen(0, '127.0.0.1', () => resolve({ server, error: null }));
  });
}

module.exports = {
  async onCreate(room) {
    const open = [];
    let error = null;
    for (let i = 0; i < 5000 && !error; i++) { // bounded
      const result = await listen();
      if (result.server) open.push(result.server); else error = result.error;
    }
    const opened = open.length;
    await Promise.all(open.map((s) => new Promise((resolve) => s.close(resolve))));
    room.state = { sockets: { opened, error } };
  },
};
