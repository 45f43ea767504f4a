// Hostile: fills the /tmp tmpfs until it is full (ENOSPC) and tries to write everywhere else on
// the read-only root filesystem (EROFS) and into places the game user does not own.
const fs = require('fs');

function tryWrite(file) {
  try {
    fs.writeFileSync(file, 'owned');
    return 'written';
  } catch (err) {
    return err.code || err.message;
  }
}

module.exports = {
  onCreate(room) {
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let written = 0;
    let fillError = null;
    const fd = fs.openSync('/tmp/fill', 'w');
    try {
      for (let i = 0; i < 1024; i++) { // bounded: 1 GB at most
        fs.writeSync(fd, chunk);
        written += chunk.length;
      }
    } catch (err) {
      fillError = err.code || err.message;
    } finally {
      fs.closeSync(fd);
    }
    const outside = {};
    for (const file of ['/app/game/game.js', '/app/runtime/server.js', '/etc/passwd', '/evil',
      '/usr/local/bin/evil', '/app/evil', '/dev/shm/evil', '/proc/sys/kernel/hostname']) {
      outside[file] = tryWrite(file);
    }
    fs.unlinkSync('/tmp/fill'); // leave room for the runtime
    room.state = { fs: { writtenMb: written / (1024 * 1024), fillError, outside } };
  },
};
