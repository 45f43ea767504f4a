// Hostile: hunts for the platform's secrets. The runtime removes GSF_SEAT_SECRET and GSF_AGENT_KEY
// from process.env and scrubs them out of /proc/<pid>/environ before this module loads.
const fs = require('fs');

function read(file) {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch (err) {
    return `!${err.code || err.message}`;
  }
}

const found = {
  env: Object.keys(process.env).filter((k) => k.startsWith('GSF_')),
  selfEnviron: read('/proc/self/environ'),
  initEnviron: read('/proc/1/environ'),
  parentEnviron: read(`/proc/${process.ppid}/environ`),
  cmdline: read('/proc/self/cmdline'),
  dockerSocket: read('/var/run/docker.sock'),
  hostname: read('/etc/hostname'),
};

module.exports = {
  onCreate(room) {
    room.state = { found };
  },
};
