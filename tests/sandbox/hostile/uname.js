// Not hostile: reports the kernel that answers its system calls (gVisor's Sentry has its own).
const os = require('os');

module.exports = {
  onCreate(room) {
    room.state = { kernel: os.release() };
  },
  onJoin() {},
};
